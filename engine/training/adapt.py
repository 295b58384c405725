"""Few-shot adaptation to CP faces (the ``cp_adapt`` scenario): a kept external model fine-tuned on the other
CP-PAIN subjects' frames, tested on the subject left out.

The external model (trained on all of PAIN-DB, seed ``[adapt] base_seed``) is loaded once per process; each run
resets a compiled copy to its weights and its optimizer to the start, then fine-tunes the last ``[adapt] layers``
layers that have weights (0: all) for ``[adapt] epochs`` with Adam at a constant ``[adapt] learning_rate``. The
learning curve: the same from the same start on ``n`` of the other subjects (a draw seeded by the run's seed and
``n``) for each ``n`` in ``[adapt] curve`` below the number of other subjects.

Why a constant small rate and no warm-up: the start is a trained model, a few dozen frames are a few batches,
and the point is a small step from it, not a new training.

Only the softmax layer (``layers = 1``, the demo's choice) of a network without dropout or augmentation: the
frozen part gives every CP-PAIN face the same penultimate features in every run, so they are computed once per
process, and the softmax layer is trained on them in NumPy (``fit_softmax``): mean cross-entropy and Keras's
Adam update (on the same batches, Keras fitting the network with the rest frozen gives the same p(pain) to 3
decimals; measured on the demo's WeiNet), without Keras's per-step overhead, which made a run of 3 fine-tunings
8-16 s on the shared 2-core CPU.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from engine.errors import PainLensError

_STOCHASTIC = ("Dropout", "Random")  # layers that act differently in training: the features would not be fixed


@dataclass
class AdaptResult:
    p_pain: np.ndarray  # the left-out subject's faces, after adapting on all other subjects
    history: list[dict]
    curve: pd.DataFrame  # n_subjects, image_id, p_pain (the left-out subject's faces after adapting on n)
    base: str  # which external run's model was adapted
    seconds: float = 0.0
    info: dict = field(default_factory=dict)


@dataclass
class _Adaptable:
    """What is fine-tuned (the whole network, or its softmax layer alone), its starting weights and its optimizer's
    start; ``front``: the frozen rest when only the softmax layer is trained, and its features of the faces seen."""

    stamp: tuple
    model: object
    weights: list
    optimizer_start: list
    front: object = None
    features: dict = field(default_factory=dict)


_kept: _Adaptable | None = None


def _head_only(network, layers: int) -> bool:
    last = network.layers[-1]
    return (layers == 1 and type(last).__name__ == "Dense" and len(last.input.shape) == 2
            and not any(type(layer).__name__.startswith(_STOCHASTIC) for layer in network.layers))


def adaptable(path: Path, layers: int, learning_rate: float) -> _Adaptable:
    """The compiled model to fine-tune, reset to the kept model's weights (loaded and traced once per process)."""
    global _kept
    import keras

    stamp = (str(path), path.stat().st_mtime_ns, layers, learning_rate)
    if _kept is None or _kept.stamp != stamp:
        network = keras.saving.load_model(path, compile=False)
        if _head_only(network, layers):  # the softmax layer's start; fit_softmax trains it on fixed features
            last = network.layers[-1]
            _kept = _Adaptable(stamp, None, [np.asarray(w) for w in last.get_weights()], [],
                               keras.Model(network.inputs, last.input))
            return _kept
        model = network
        weighted = [layer for layer in model.layers if layer.weights]
        for layer in (weighted[:-layers] if layers else []):
            layer.trainable = False
        model.compile(optimizer=keras.optimizers.Adam(learning_rate=learning_rate), loss="categorical_crossentropy",
                      metrics=["accuracy"])
        model.optimizer.build(model.trainable_variables)
        _kept = _Adaptable(stamp, model, [w.copy() for w in model.get_weights()],
                           [v.numpy() for v in model.optimizer.variables])
    if _kept.front is not None:
        return _kept
    model = _kept.model
    model.set_weights(_kept.weights)
    for variable, start in zip(model.optimizer.variables, _kept.optimizer_start, strict=True):
        variable.assign(start)
    return _kept


def inputs_of(adapting: _Adaptable, x: np.ndarray, batch_size: int) -> np.ndarray:
    """What the fine-tuned part takes: the faces, or (softmax layer alone) their features, computed once."""
    if adapting.front is None:
        return x
    key = (id(x), x.shape)
    if key not in adapting.features:
        from engine.training.train import _batched

        adapting.features = {key: np.concatenate([np.asarray(f, dtype=np.float32) for f in
                                                  _batched(adapting.front.predict_on_batch, adapting.front, x, batch_size)])}
    return adapting.features[key]


def fit_softmax(weights: list[np.ndarray], x: np.ndarray, y: np.ndarray, settings, batch_size: int,
                seed: int) -> tuple[list[np.ndarray], list[dict]]:
    """A softmax layer ([kernel (D, 2), bias (2,)]) trained on features ``x`` with labels ``y`` as Keras trains it:
    each epoch's batches in a permutation seeded by (``seed``, epoch), mean categorical cross-entropy, Adam as
    Keras updates (beta 0.9 / 0.999, epsilon 1e-7, bias-corrected step) at ``settings.learning_rate`` for
    ``settings.epochs``. The history's loss and accuracy are over the epoch's faces, before each batch's update."""
    params = [w.astype(np.float64).copy() for w in weights]
    first = [np.zeros_like(w) for w in params]
    second = [np.zeros_like(w) for w in params]
    targets = np.eye(2)[np.asarray(y, dtype=np.int64)]
    step, history = 0, []
    for epoch in range(settings.epochs):
        order = np.random.default_rng([seed, epoch]).permutation(len(x))
        loss, right = 0.0, 0
        for start in range(0, len(x), batch_size):
            rows = order[start:start + batch_size]
            p = _softmax(x[rows] @ params[0] + params[1])
            error = (p - targets[rows]) / len(rows)  # d(mean cross-entropy) / d(logits)
            step += 1
            rate = settings.learning_rate * np.sqrt(1 - 0.999 ** step) / (1 - 0.9 ** step)
            for i, grad in enumerate((x[rows].T @ error, error.sum(axis=0))):
                first[i] += (grad - first[i]) * (1 - 0.9)
                second[i] += (grad * grad - second[i]) * (1 - 0.999)
                params[i] -= rate * first[i] / (np.sqrt(second[i]) + 1e-7)
            loss += float(-(targets[rows] * np.log(np.clip(p, 1e-7, 1.0))).sum())
            right += int((p.argmax(axis=1) == targets[rows].argmax(axis=1)).sum())
        history.append({"epoch": epoch + 1, "loss": loss / len(x), "accuracy": right / len(x)})
    return params, history


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def fine_tune(adapting: _Adaptable, x: np.ndarray, y: np.ndarray, x_test: np.ndarray, settings, batch_size: int,
              seed: int) -> tuple[np.ndarray, list[dict]]:
    """p(pain) of ``x_test`` after fine-tuning (from the kept model's start) on (``x``, ``y``), and the history."""
    from engine.training.train import TrainBatches

    if adapting.front is not None:  # the softmax layer alone, on the fixed features
        weights, history = fit_softmax(adapting.weights, x, y, settings, batch_size, seed)
        return _softmax(np.asarray(x_test, dtype=np.float64) @ weights[0] + weights[1])[:, 1].astype(np.float32), history
    model = adaptable(Path(adapting.stamp[0]), settings.layers, settings.learning_rate).model
    # The batch order is the only draw (seeded by the run); the global seed is left alone: setting it makes
    # TensorFlow retrace the training step, which would cost more than the fine-tuning itself.
    fitted = model.fit(TrainBatches(x, y, batch_size, seed), epochs=settings.epochs, shuffle=False, verbose=0)
    history = [{"epoch": e + 1, **{k: float(v[e]) for k, v in fitted.history.items()}} for e in range(settings.epochs)]
    # One eager call: a traced prediction would be traced again for every subject's number of faces.
    return np.asarray(model(x_test, training=False), dtype=np.float32)[:, 1], history


def adapt_run(config, store, model_name: str, split, cppain: pd.DataFrame, x_cp: np.ndarray) -> AdaptResult:
    """One cp_adapt run: ``split.train`` / ``split.test`` are positions in the CP-PAIN table ``cppain``,
    whose faces ``x_cp`` are at the network's input size."""
    from engine.artifacts import RunKey

    started = time.perf_counter()
    base = RunKey(model_name, "external", config.adapt.base_seed)
    path = store.kept_model_path(base)
    if not store.is_done(base) or not path.is_file():
        raise PainLensError(f"cp_adapt adapts {model_name}'s kept external model of seed {config.adapt.base_seed}, which "
                            "is not there: run the external scenario first (with [scenarios] keep_models = true).")
    labels = cppain["label"].to_numpy(dtype=int)
    subjects = cppain["subject"].astype(str).to_numpy()
    batch, settings = config.training.batch_size, config.adapt
    adapting = adaptable(path, settings.layers, settings.learning_rate)
    inputs = inputs_of(adapting, x_cp, batch)
    x_test = inputs[split.test]
    p_pain, history = fine_tune(adapting, inputs[split.train], labels[split.train], x_test, settings, batch, split.seed)
    others = sorted(set(subjects[split.train]))
    rows = []
    for n in sorted(set(settings.curve)):
        if n >= len(others):
            continue
        rng = np.random.default_rng([split.seed, n])
        chosen = set(rng.choice(others, n, replace=False).tolist())
        train = split.train[np.isin(subjects[split.train], list(chosen))]
        p_n, _ = fine_tune(adapting, inputs[train], labels[train], x_test, settings, batch, split.seed)
        rows.append(pd.DataFrame({"n_subjects": n, "image_id": cppain["image_id"].to_numpy()[split.test], "p_pain": p_n}))
    rows.append(pd.DataFrame({"n_subjects": len(others), "image_id": cppain["image_id"].to_numpy()[split.test],
                              "p_pain": p_pain}))
    curve = pd.concat(rows, ignore_index=True)
    return AdaptResult(p_pain, history, curve, str(base), time.perf_counter() - started,
                       {"adapted_from": str(base), "layers": settings.layers, "epochs": settings.epochs,
                        "learning_rate": settings.learning_rate, "adaptation_subjects": len(others),
                        "trained": "softmax layer on fixed features" if adapting.front is not None else "network"})
