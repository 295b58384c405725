"""One training run: arrays in, a trained Keras model and its per-epoch history out.

Reads top to bottom like a Keras example: seed, model, compile, fit. Only Keras 3 and NumPy, so the
same code runs with ``KERAS_BACKEND=tensorflow`` and ``KERAS_BACKEND=jax``. Images come from the face
cache as uint8 arrays (N, S, S, 3) already at the network's input size; labels are 0 = no pain,
1 = pain, trained as a 2-way softmax (index 1 = pain) with categorical cross-entropy.

Choices worth knowing:
- Seeds: ``keras.utils.set_random_seed`` (Python, NumPy, backend, Keras's seed generators) before
  the model is built; augmentation and dropout layers take seeds derived from the run's seed; the
  batch order comes from its own generator seeded by (seed, epoch), never from global state. On a
  CPU two runs with the same seed give the same predictions (tested on TensorFlow and JAX).
- Mixed precision ("auto"): float16 compute when the backend sees a GPU, float32 otherwise.
- Memory: on a CPU a batch of 128 images of 224 px through VGG19 needs over 10 GB of activations,
  so the batch is split into micro-batches of at most 32 (``training.micro_batch_size``) and the
  optimizer accumulates their gradients (``gradient_accumulation_steps``): one update per batch as
  configured. BatchNorm statistics are then per micro-batch.
- Class imbalance: by default none is corrected, as the authors did; PAIN-DB is balanced by
  construction (20 frames per subject and class). ``training.class_weight = "balanced"`` weights
  each class by n / (2 n_class).
- Fixed cost: tracing a training step takes 20-70 s for the ResNets on a 2-core CPU (TensorFlow),
  so a grid may pass ``reuse_compiled=True``: consecutive runs of the same network and settings
  reset one compiled model to their own seeded start instead (same results, no tracing); a network
  trained on a few batches only can skip tracing altogether (``training.run_eagerly``).
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import keras
import numpy as np

from engine.config import TrainingSection
from engine.models.registry import build_model, get_spec, input_size_for

CPU_MICRO_BATCH = 32  # largest micro-batch on a CPU when training.micro_batch_size is 0 (auto)
_OPTIMIZERS = {"adam": keras.optimizers.Adam, "rmsprop": keras.optimizers.RMSprop, "sgd": keras.optimizers.SGD}


@dataclass
class TrainResult:
    """The trained model, one dict per epoch (epoch, loss, accuracy[, val_loss, val_accuracy],
    seconds), and ``info``: what actually ran (sizes, optimizer, precision, weights, backend)."""

    model: keras.Model
    history: list[dict[str, float]]
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def weights_used(self) -> str:
        """"imagenet" or "none": how the network's weights started."""
        return str(self.info.get("weights", "none"))


def gpu_available() -> bool:
    """True when the Keras backend sees a GPU."""
    try:
        return any(str(d).lower().startswith("gpu") for d in keras.distribution.list_devices())
    except (RuntimeError, ValueError):  # a backend without a device list: treat as CPU
        return False


def micro_batching(batch_size: int, micro_batch_size: int, on_gpu: bool) -> tuple[int, int]:
    """(images per pass, passes per update) for a configured batch; their product is ≤ batch_size."""
    cap = micro_batch_size or (batch_size if on_gpu else CPU_MICRO_BATCH)
    steps = max(1, math.ceil(batch_size / cap))
    return batch_size // steps, steps


def train_run(model_name: str, x_train: np.ndarray, y_train: np.ndarray, x_val: np.ndarray | None = None,
              y_val: np.ndarray | None = None, config: TrainingSection = TrainingSection(), seed: int = 0,
              on_epoch: Callable[[dict[str, float]], None] | None = None,
              weights_dir: str | Path | None = None, reuse_compiled: bool = False,
              epochs: int | None = None) -> TrainResult:
    """Train ``model_name`` on uint8 images (N, S, S, 3) with labels (N,) in {0, 1}.

    ``config`` gives optimizer, learning rate, batch size, epochs, input size, weights, scaling and
    precision; ``epochs`` overrides the network's epochs (the runner passes those of the run's
    scenario, ``TrainingSection.epochs_for``); ``weights_dir`` overrides ``config.weights_dir`` (the
    runner passes it resolved against the project root). ``on_epoch`` receives each epoch's history
    record as it is completed.

    ``reuse_compiled``: keep the compiled model of the last run and, when the next run trains the
    same network with the same settings, reset it to this run's seeded initial state instead of
    building and tracing anew (tracing a ResNet's training step costs about a minute on a CPU). The
    result is the same as a fresh run; but the returned model is then overwritten by the next
    reusing run of that network, so save or use it before.
    """
    size = input_size_for(model_name, config)
    _check_arrays(x_train, y_train, size, "training")
    validation = None
    if x_val is not None and y_val is not None and len(x_val):
        _check_arrays(x_val, y_val, size, "validation")
        validation = (x_val, _one_hot(y_val))
    model, info = compiled_model(model_name, config, seed, weights_dir, reuse=reuse_compiled)

    history: list[dict[str, float]] = []
    batches = TrainBatches(x_train, y_train, info["micro_batch_size"], seed,
                           max_batches=config.steps_per_epoch_per_model.get(model_name, 0) * info["accumulation_steps"])
    epochs = epochs or config.epochs_for(model_name)
    info["epochs"] = epochs
    callbacks = [_EpochRecorder(history, on_epoch)]
    if config.lr_schedule == "warmup_cosine":
        callbacks.append(WarmupCosine(info["learning_rate"], epochs * len(batches), config.warmup_fraction))
    model.fit(batches, epochs=epochs, validation_data=validation, shuffle=False,
              class_weight=_class_weight(y_train, config.class_weight), verbose=0, callbacks=callbacks)
    return TrainResult(model, history, info)


class TrainBatches(keras.utils.PyDataset):
    """Shuffled training batches from in-memory arrays: (uint8 images (B, S, S, 3), one-hot (B, 2)).

    The order of epoch e is a permutation drawn from (seed, e) alone, so it does not depend on what
    else consumed the global random state (which differs between a fresh and a reused model).
    Works for every backend; slicing a batch out of the array is the whole input pipeline.
    ``max_batches`` > 0 ends each epoch after that many batches (``steps_per_epoch_per_model``): the
    epoch's first batches of its permutation, so each epoch still sees a fresh random part of the data.
    """

    def __init__(self, x: np.ndarray, y: np.ndarray, batch_size: int, seed: int, max_batches: int = 0):
        super().__init__()
        self.x, self.y, self.batch_size, self.seed = x, _one_hot(y), batch_size, seed
        self.max_batches = max_batches
        self.epoch, self._order_epoch, self._order = 0, -1, np.arange(len(x))

    def __len__(self) -> int:
        batches = math.ceil(len(self.x) / self.batch_size)
        return min(batches, self.max_batches) if self.max_batches > 0 else batches

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        if self._order_epoch != self.epoch:
            self._order = np.random.default_rng([self.seed, self.epoch]).permutation(len(self.x))
            self._order_epoch = self.epoch
        rows = self._order[index * self.batch_size:(index + 1) * self.batch_size]
        return self.x[rows], self.y[rows]

    def on_epoch_end(self) -> None:
        self.epoch += 1


@dataclass
class _Compiled:
    """The one compiled model kept for reuse, and its optimizer's state before any step."""

    key: tuple
    model: keras.Model
    optimizer_start: list[np.ndarray]


_kept: _Compiled | None = None


def compiled_model(model_name: str, config: TrainingSection, seed: int, weights_dir: str | Path | None = None,
                   reuse: bool = False) -> tuple[keras.Model, dict[str, Any]]:
    """Seed everything, build and compile ``model_name`` as ``train_run`` trains it.

    Returns the model and ``info``: what will run (input size, optimizer, effective and micro batch,
    accumulation steps, precision, weights, backend, seed, reused). With ``reuse`` the last compiled
    model is reset and returned when its settings match (see ``train_run``). Also used by
    bench/train_throughput.py.
    """
    global _kept
    spec = get_spec(model_name)
    size = input_size_for(model_name, config)
    on_gpu = gpu_available()
    mixed = config.mixed_precision == "on" or (config.mixed_precision == "auto" and on_gpu)
    micro, steps = micro_batching(config.batch_size, config.micro_batch_size, on_gpu)
    optimizer_name = (config.optimizer or spec.optimizer).lower()
    learning_rate = config.learning_rate_per_model.get(model_name, config.learning_rate)
    regularized = model_name not in config.unregularized  # augmentation and dropout, or neither
    eager = model_name in config.run_eagerly
    key = (keras.backend.backend(), model_name, size, optimizer_name, learning_rate, micro, steps, mixed,
           config.input_scaling, regularized, eager)
    hit = reuse and _kept is not None and _kept.key == key
    if hit:
        # Initial weights draw their seeds from Python's random; every random layer has its own
        # seed. TensorFlow's global seed is left alone: setting it makes traced functions retrace.
        random.seed(seed)
        np.random.seed(seed)
    else:
        _kept = None
        keras.backend.clear_session()  # fresh names and global seed generator
        keras.utils.set_random_seed(seed)
    model = build_model(model_name, input_size=size, num_classes=2, weights=config.weights, augment=regularized,
                        dropout=regularized, seed=seed, input_scaling=config.input_scaling,
                        weights_dir=weights_dir or config.weights_dir or None, mixed_precision=mixed)
    if hit:
        # Same graph, this run's seeded start: weights, BatchNorm statistics, random-layer seeds.
        for target, source in zip(_kept.model.variables, model.variables, strict=True):
            target.assign(source.value)
        for variable, start in zip(_kept.model.optimizer.variables, _kept.optimizer_start, strict=True):
            variable.assign(start)
        model = _kept.model
    else:
        optimizer = _OPTIMIZERS[optimizer_name](learning_rate=learning_rate,
                                                gradient_accumulation_steps=steps if steps > 1 else None)
        model.compile(optimizer=optimizer, loss="categorical_crossentropy", metrics=["accuracy"], run_eagerly=eager)
        if reuse:
            model.optimizer.build(model.trainable_variables)
            _kept = _Compiled(key, model, [v.numpy() for v in model.optimizer.variables])
    info = {"model": model_name, "input_size": size, "optimizer": optimizer_name,
            "learning_rate": learning_rate, "lr_schedule": config.lr_schedule, "batch_size": micro * steps, "micro_batch_size": micro,
            "accumulation_steps": steps, "epochs": config.epochs_for(model_name), "mixed_precision": mixed,
            "weights": config.weights if spec.pretrained else "none", "input_scaling": config.input_scaling,
            "class_weight": config.class_weight, "regularized": regularized, "eager": eager, "backend": keras.backend.backend(), "gpu": on_gpu,
            "seed": seed, "reused": hit}
    return model, info


def predict_proba(model: keras.Model, x: np.ndarray, batch_size: int = 64) -> np.ndarray:
    """p(pain) per image (N,), float in [0, 1], for uint8 images (N, S, S, 3) at the model's input size.

    Fixed-size batches (the last one padded) so a backend compiles the forward pass once.
    """
    return np.concatenate([np.asarray(out, dtype=np.float32)[:, 1]
                           for out in _batched(model.predict_on_batch, model, x, batch_size)] or [np.zeros(0, np.float32)])


def predict_with_features(both: keras.Model, x: np.ndarray, batch_size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """(p(pain) (N,), penultimate features (N, D) float32) in one pass of ``both`` (``feature_model``: build it
    once per model, each new one traces again), batched like ``predict_proba``."""
    parts = list(_batched(both.predict_on_batch, both, x, batch_size))
    if not parts:
        return np.zeros(0, np.float32), np.zeros((0, int(both.outputs[0].shape[-1])), np.float32)
    features = np.concatenate([np.asarray(f, dtype=np.float32) for f, _ in parts])
    p_pain = np.concatenate([np.asarray(probs, dtype=np.float32)[:, 1] for _, probs in parts])
    return p_pain, features.reshape(len(features), -1)


def _batched(predict, model: keras.Model, x: np.ndarray, batch_size: int):
    """``predict``'s outputs for ``x`` in fixed-size batches, each cut back to its real images."""
    x = np.asarray(x)
    expected = tuple(model.input_shape[1:])
    if x.ndim != 4 or tuple(x.shape[1:]) != expected:
        raise ValueError(f"predict_proba expects images (N, {', '.join(map(str, expected))}), got {x.shape}.")
    if len(x) == 0:
        return
    batch = min(batch_size, len(x))
    for start in range(0, len(x), batch):
        chunk = x[start:start + batch]
        n = len(chunk)
        if n < batch:
            chunk = np.concatenate([chunk, np.repeat(chunk[-1:], batch - n, axis=0)])
        out = predict(chunk)
        yield tuple(np.asarray(o)[:n] for o in out) if isinstance(out, (list, tuple)) else np.asarray(out)[:n]


def warmup_cosine(step: int, total: int, peak: float, warmup_fraction: float) -> float:
    """Learning rate at ``step`` of ``total``: linear from 1 % of ``peak`` to ``peak`` over the
    warm-up, then half a cosine down to zero at the last step."""
    warmup = int(round(warmup_fraction * total))
    if step < warmup:
        return peak * (0.01 + 0.99 * step / warmup)
    progress = (step - warmup) / max(1, total - warmup)
    return peak * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


class WarmupCosine(keras.callbacks.Callback):
    """Sets the optimizer's learning rate before every batch (``training.lr_schedule = "warmup_cosine"``).

    Why a callback and not a keras LearningRateSchedule: a schedule's step count is baked into the
    traced training step, and runs of different sizes could then not share one compiled model. A
    callback only assigns a variable. Why at all: from scratch, on a few hundred images, full-size
    Adam steps from the first batch often left WeiNet at a constant output (loss exactly ln 2) for
    good; with the warm-up it learned (ablation in README "The demo profile" and the issue notes).
    Counted in micro-batches (with gradient accumulation an update uses the rate of its last one).
    """

    def __init__(self, peak: float, total_batches: int, warmup_fraction: float):
        super().__init__()
        self.peak, self.total, self.warmup_fraction, self.step = peak, max(1, total_batches), warmup_fraction, 0

    def on_train_batch_begin(self, batch, logs=None):
        # On JAX, ``self.model`` writes the in-epoch training state back to the variables first, so
        # the loop re-reads it, new rate included (test_train_jax checks every step's rate).
        self.model.optimizer.learning_rate.assign(warmup_cosine(self.step, self.total, self.peak, self.warmup_fraction))
        self.step += 1

    def on_train_end(self, logs=None):
        self.model.optimizer.learning_rate.assign(self.peak)  # a reused compiled model starts from the configured rate


class _EpochRecorder(keras.callbacks.Callback):
    """Append one record per epoch to ``history`` and hand it to ``on_epoch``."""

    def __init__(self, history: list[dict[str, float]], on_epoch: Callable | None):
        super().__init__()
        self.history, self.on_epoch, self.started = history, on_epoch, 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self.started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        record = {"epoch": epoch + 1, **{k: float(v) for k, v in (logs or {}).items()},
                  "seconds": time.perf_counter() - self.started}
        self.history.append(record)
        if self.on_epoch is not None:
            self.on_epoch(record)


def _check_arrays(x: np.ndarray, y: np.ndarray, size: int, what: str) -> None:
    if x.ndim != 4 or x.shape[1:] != (size, size, 3):
        raise ValueError(f"{what} images must be (N, {size}, {size}, 3), got {x.shape}.")
    if len(x) != len(y):
        raise ValueError(f"{what}: {len(x)} images but {len(y)} labels.")
    if not np.isin(y, (0, 1)).all():
        raise ValueError(f"{what} labels must be 0 (no pain) or 1 (pain).")


def _one_hot(y: np.ndarray) -> np.ndarray:
    return np.eye(2, dtype=np.float32)[np.asarray(y, dtype=np.int64)]


def _class_weight(y: np.ndarray, mode: str) -> dict[int, float] | None:
    if mode != "balanced":
        return None
    counts = np.bincount(np.asarray(y, dtype=np.int64), minlength=2)
    return {c: float(len(y) / (2 * counts[c])) if counts[c] else 1.0 for c in range(2)}
