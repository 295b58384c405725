"""Training throughput: images per second per network, through the same path ``train_run`` uses.

    .venv/bin/python bench/train_throughput.py [--models AlexNet WeiNet ...] [--size-from experiments/demo.toml]
        [--sizes 48 64] [--batch 32] [--steps 5] [--warmup 2] [--compare-loop]

Each network is built and compiled by ``engine.training.train.compiled_model`` (augmentation,
scaling, optimizer, micro-batching, mixed precision as configured; weights "none", as throughput
does not depend on them) and trained with ``model.fit`` on random uint8 arrays fed by ``TrainBatches`` (the input pipeline of
a real run). The time of each
step is taken at the end of the step after reading its loss (so asynchronous backends have
finished it); the figure is the median over ``--steps`` steps after ``--warmup`` steps, as images
per second of micro-batch. "build s" (build + compile) and "1st step s" (tracing) are the fixed cost
of a run on a fresh model; "rerun s" is the fixed cost of the next run of the same network when
``train_run(..., reuse_compiled=True)`` resets the compiled model instead (build for the seeded
initial weights, copy, no tracing). Input sizes: ``--sizes`` for every network, else the config's
(``--size-from``), else the authors' sizes.

``--compare-loop`` also times a plain training loop on one batch already on the device (a jitted
``stateless_call`` + ``jax.value_and_grad`` + ``optimizer.stateless_apply`` under JAX, a
``tf.function`` with a GradientTape under TensorFlow: forward, backward, update; no fit loop, no
input pipeline) and prints fit/loop: near 1.0 means the input pipeline is not the bottleneck.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from engine.native_memory import as_the_training_children  # noqa: E402

as_the_training_children()  # glibc's allocator settings of a real run's training child (figures: half without)

import keras  # noqa: E402
import numpy as np  # noqa: E402

from engine.config import TrainingSection, load_config  # noqa: E402
from engine.models.registry import MODELS, get_spec, input_size_for  # noqa: E402
from engine.training.train import TrainBatches, compiled_model, gpu_available  # noqa: E402


class StepClock(keras.callbacks.Callback):
    """Seconds per training step, measured from one step's end to the next."""

    def __init__(self):
        super().__init__()
        self.stamps: list[float] = []

    def on_train_begin(self, logs=None):
        self.stamps = [time.perf_counter()]

    def on_train_batch_end(self, batch, logs=None):
        float(logs["loss"])  # wait for the step to finish on the device
        self.stamps.append(time.perf_counter())

    def step_seconds(self) -> list[float]:
        return list(np.diff(self.stamps))


def fit_rate(model: keras.Model, micro: int, size: int, steps: int, warmup: int, seed: int) -> tuple[float, float]:
    """Median training images/s of ``model.fit`` on random uint8 images (micro-batch per step), and
    the seconds of the first step (tracing and compilation included)."""
    rng = np.random.default_rng(seed)
    n = micro * (warmup + steps)
    x = rng.integers(0, 256, size=(n, size, size, 3), dtype=np.uint8)
    clock = StepClock()
    model.fit(TrainBatches(x, rng.integers(0, 2, n), micro, seed), epochs=1, shuffle=False, verbose=0,
              callbacks=[clock])
    seconds = clock.step_seconds()
    return micro / statistics.median(seconds[warmup:]), seconds[0]


def loop_rate(model: keras.Model, micro: int, size: int, steps: int, warmup: int, seed: int) -> float:
    """Median images/s of a hand-written training step (forward, backward, optimizer update) on one
    batch already on the device: the same model without Keras's fit loop and input pipeline."""
    rng = np.random.default_rng(seed)
    x = keras.ops.convert_to_tensor(rng.integers(0, 256, size=(micro, size, size, 3)).astype(np.float32))
    y = keras.ops.convert_to_tensor(np.eye(2, dtype=np.float32)[rng.integers(0, 2, micro)])
    step = _jax_step(model, x, y) if keras.backend.backend() == "jax" else _tf_step(model, x, y)
    times = []
    for _ in range(warmup + steps):
        start = time.perf_counter()
        float(np.asarray(step()))
        times.append(time.perf_counter() - start)
    return micro / statistics.median(times[warmup:])


def _loss(y, probs):
    return keras.ops.mean(keras.losses.categorical_crossentropy(y, keras.ops.cast(probs, "float32")))


def _jax_step(model, x, y):
    """The Keras 3 stateless training step under jax.jit; returns a callable giving the loss."""
    import jax

    def loss_fn(trainable, non_trainable):
        probs, non_trainable = model.stateless_call(trainable, non_trainable, x, training=True)
        return _loss(y, probs), non_trainable

    @jax.jit
    def train_step(trainable, non_trainable, optimizer_state):
        (loss, non_trainable), grads = jax.value_and_grad(loss_fn, has_aux=True)(trainable, non_trainable)
        trainable, optimizer_state = model.optimizer.stateless_apply(optimizer_state, grads, trainable)
        return loss, trainable, non_trainable, optimizer_state

    model.optimizer.build(model.trainable_variables)
    state = [[v.value for v in vs] for vs in (model.trainable_variables, model.non_trainable_variables,
                                              model.optimizer.variables)]

    def run():
        loss, *new_state = train_step(*state)
        state[:] = new_state
        return loss

    return run


def _tf_step(model, x, y):
    """The same step as a tf.function with a GradientTape."""
    import tensorflow as tf

    @tf.function
    def train_step():
        with tf.GradientTape() as tape:
            loss = _loss(y, model(x, training=True))
        model.optimizer.apply(tape.gradient(loss, model.trainable_variables), model.trainable_variables)
        return loss

    return train_step


def sizes_for(name: str, args: argparse.Namespace, training: TrainingSection) -> list[int]:
    if args.sizes:
        return [s for s in args.sizes if s >= get_spec(name).min_input_size]
    return [input_size_for(name, training)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=list(MODELS), help="networks (default: all ten)")
    parser.add_argument("--size-from", help="experiment TOML whose [training] gives sizes, batch and optimizer")
    parser.add_argument("--sizes", nargs="+", type=int, help="measure every network at these sizes instead")
    parser.add_argument("--batch", type=int, help="batch size (default: the config's, else 32)")
    parser.add_argument("--steps", type=int, default=5, help="timed steps (median reported)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first (tracing, compilation)")
    parser.add_argument("--compare-loop", action="store_true", help="also time a plain train_on_batch loop")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    training = load_config(args.size_from).training if args.size_from else TrainingSection(batch_size=32)
    training = dataclasses.replace(training, weights="none", batch_size=args.batch or training.batch_size)
    print(f"backend {keras.backend.backend()}, gpu {gpu_available()}, {os.cpu_count()} CPUs "
          f"({platform.processor() or platform.machine()}), batch {training.batch_size}, "
          f"median of {args.steps} steps after {args.warmup}")
    header = (f"{'network':<12} {'size':>4} {'micro':>5} {'params':>9} {'build s':>7} {'1st step s':>10} "
              f"{'rerun s':>7} {'fit img/s':>10} {'ms/img':>7}")
    print(header + (f" {'loop img/s':>10} {'fit/loop':>8}" if args.compare_loop else ""))
    for name in args.models:
        for size in sizes_for(name, args, training):
            config = dataclasses.replace(training, input_size={**training.input_size, name: size})
            start = time.perf_counter()
            model, info = compiled_model(name, config, seed=args.seed, reuse=True)
            build = time.perf_counter() - start
            micro = info["micro_batch_size"]
            rate, first = fit_rate(model, micro, size, args.steps, args.warmup, args.seed)
            start = time.perf_counter()
            model, info = compiled_model(name, config, seed=args.seed + 1, reuse=True)
            fit_rate(model, micro, size, 1, 0, args.seed)
            rerun = time.perf_counter() - start - micro / rate
            line = (f"{name:<12} {size:>4} {micro:>5} {model.count_params() / 1e6:>8.2f}M {build:>7.1f} "
                    f"{first:>10.1f} {rerun:>7.1f} {rate:>10.1f} {1000 / rate:>7.1f}")
            if args.compare_loop:
                plain = loop_rate(model, micro, size, args.steps, args.warmup, args.seed)
                line += f" {plain:>10.1f} {rate / plain:>8.2f}"
            print(line, flush=True)


if __name__ == "__main__":
    main()
