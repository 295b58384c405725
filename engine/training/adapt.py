"""Few-shot adaptation to CP faces (the ``cp_adapt`` scenario): a kept external model fine-tuned on the other
CP-PAIN subjects' frames, tested on the subject left out.

The external model (trained on all of PAIN-DB, seed ``[adapt] base_seed``) is loaded once per process; each run
resets a compiled copy to its weights and its optimizer to the start, then fine-tunes the last ``[adapt] layers``
layers that have weights (0: all) for ``[adapt] epochs`` with Adam at a constant ``[adapt] learning_rate``. The
learning curve: the same from the same start on ``n`` of the other subjects (a draw seeded by the run's seed and
``n``) for each ``n`` in ``[adapt] curve`` below the number of other subjects.

Why a constant small rate and no warm-up: the start is a trained model, a few dozen frames are a few batches,
and the point is a small step from it, not a new training.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from engine.errors import PainLensError


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
    """A compiled copy of one kept external model, its starting weights and its optimizer's start."""

    stamp: tuple
    model: object
    weights: list
    optimizer_start: list


_kept: _Adaptable | None = None


def adaptable(path: Path, layers: int, learning_rate: float):
    """The compiled model to fine-tune, reset to the kept model's weights (loaded and traced once per process)."""
    global _kept
    import keras

    stamp = (str(path), path.stat().st_mtime_ns, layers, learning_rate)
    if _kept is None or _kept.stamp != stamp:
        model = keras.saving.load_model(path, compile=False)
        weighted = [layer for layer in model.layers if layer.weights]
        frozen = weighted[:-layers] if layers else []
        for layer in frozen:
            layer.trainable = False
        model.compile(optimizer=keras.optimizers.Adam(learning_rate=learning_rate), loss="categorical_crossentropy",
                      metrics=["accuracy"])
        model.optimizer.build(model.trainable_variables)
        _kept = _Adaptable(stamp, model, [w.copy() for w in model.get_weights()],
                           [v.numpy() for v in model.optimizer.variables])
    model = _kept.model
    model.set_weights(_kept.weights)
    for variable, start in zip(model.optimizer.variables, _kept.optimizer_start, strict=True):
        variable.assign(start)
    return model


def fine_tune(path: Path, x: np.ndarray, y: np.ndarray, x_test: np.ndarray, settings, batch_size: int,
              seed: int) -> tuple[np.ndarray, list[dict]]:
    """p(pain) of ``x_test`` after fine-tuning the kept model at ``path`` on (``x``, ``y``), and the history."""
    import keras

    from engine.training.train import TrainBatches, predict_proba

    model = adaptable(path, settings.layers, settings.learning_rate)
    keras.utils.set_random_seed(seed)
    fitted = model.fit(TrainBatches(x, y, batch_size, seed), epochs=settings.epochs, shuffle=False, verbose=0)
    history = [{"epoch": e + 1, **{k: float(v[e]) for k, v in fitted.history.items()}} for e in range(settings.epochs)]
    return predict_proba(model, x_test, batch_size=batch_size), history


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
    x_test = x_cp[split.test]
    p_pain, history = fine_tune(path, x_cp[split.train], labels[split.train], x_test, settings, batch, split.seed)
    others = sorted(set(subjects[split.train]))
    rows = []
    for n in sorted(set(settings.curve)):
        if n >= len(others):
            continue
        rng = np.random.default_rng([split.seed, n])
        chosen = set(rng.choice(others, n, replace=False).tolist())
        train = split.train[np.isin(subjects[split.train], list(chosen))]
        p_n, _ = fine_tune(path, x_cp[train], labels[train], x_test, settings, batch, split.seed)
        rows.append(pd.DataFrame({"n_subjects": n, "image_id": cppain["image_id"].to_numpy()[split.test], "p_pain": p_n}))
    rows.append(pd.DataFrame({"n_subjects": len(others), "image_id": cppain["image_id"].to_numpy()[split.test],
                              "p_pain": p_pain}))
    curve = pd.concat(rows, ignore_index=True)
    return AdaptResult(p_pain, history, curve, str(base), time.perf_counter() - started,
                       {"adapted_from": str(base), "layers": settings.layers, "epochs": settings.epochs,
                        "learning_rate": settings.learning_rate, "adaptation_subjects": len(others)})
