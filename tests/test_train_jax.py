"""The tiny training and prediction of test_train.py, run again under ``KERAS_BACKEND=jax`` in a
subprocess (the GPU machines have JAX, not TensorFlow): same code, loss falls, seeds repeat, and a
reused compiled model gives the same predictions as a fresh one."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

# Run after SCHEDULE_SCRIPT in the same interpreter (the ``under_jax`` fixture): prints both results.
JAX_SCRIPT = textwrap.dedent("""
    import dataclasses, json, sys
    import numpy as np
    import keras
    sys.path.insert(0, sys.argv[1])
    from test_train import CONFIG, pattern_images
    from engine.training.train import predict_proba, train_run
    x, y = pattern_images(48, seed=0)
    x_test, y_test = pattern_images(16, seed=1)
    fresh = train_run("WeiNet", x, y, config=CONFIG, seed=3)
    p = predict_proba(fresh.model, x_test, batch_size=16)
    # Another seed on the compiled model (one epoch is enough to change its weights and optimizer state;
    # the epochs are not part of what a compiled model is kept for).
    train_run("WeiNet", x, y, config=dataclasses.replace(CONFIG, epochs=1), seed=4, reuse_compiled=True)
    # The same seed again, on the compiled model the seed-4 run left: the same bits as the fresh run
    # (so seeds repeat, and reuse changes nothing).
    reused = train_run("WeiNet", x, y, config=CONFIG, seed=3, reuse_compiled=True)
    print(json.dumps({"backend": keras.backend.backend(), "losses": [h["loss"] for h in fresh.history],
                      "schedule": schedule,  # from SCHEDULE_SCRIPT, run first in the same interpreter
                      "reused": reused.info["reused"],
                      "reused_same": bool(np.array_equal(p, predict_proba(reused.model, x_test, batch_size=16))),
                      "accuracy": float(((p >= 0.5) == y_test).mean())}))
""")


SCHEDULE_SCRIPT = textwrap.dedent("""
    import json, sys
    import numpy as np
    import keras
    sys.path.insert(0, sys.argv[1])
    from test_train import pattern_images
    from engine.training.train import WarmupCosine, warmup_cosine

    class Seen(keras.callbacks.Callback):
        # The rate each step ran with, read from the JAX training state (not the variable; via
        # self._model, as self.model would sync).
        def __init__(self):
            super().__init__()
            self.rates = []
        def on_train_batch_end(self, batch, logs=None):
            optimizer = self._model.optimizer
            index = next(i for i, v in enumerate(optimizer.variables) if v is optimizer._learning_rate)
            self.rates.append(float(np.asarray(self._model._jax_state["optimizer_variables"][index])))

    x, y = pattern_images(32, seed=0)
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Flatten(), keras.layers.Dense(2, activation="softmax")])
    model.compile(keras.optimizers.Adam(1e-3), "categorical_crossentropy")
    seen = Seen()
    model.fit(x.astype("float32") / 255, np.eye(2)[y], batch_size=8, epochs=3, verbose=0,
              callbacks=[WarmupCosine(1e-3, 12, 0.25), seen])
""")


def run_under_jax(script: str, folder: Path) -> dict:
    """Run ``script`` in a fresh interpreter with KERAS_BACKEND=jax; return the JSON of its last line."""
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu", "TF_CPP_MIN_LOG_LEVEL": "2"}
    done = subprocess.run([sys.executable, "-c", script, str(Path(__file__).parent)], env=env, cwd=folder,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def under_jax(tmp_path_factory) -> dict:
    """Both scripts' results from one JAX interpreter (its start-up and compilations are most of the time)."""
    script = SCHEDULE_SCRIPT + "\nschedule = {'seen': seen.rates, 'expected': [warmup_cosine(s, 12, 1e-3, 0.25) for s in range(12)]}\n"
    script += JAX_SCRIPT
    return run_under_jax(script, tmp_path_factory.mktemp("jax"))


@pytest.mark.slow
def test_the_learning_rate_schedule_reaches_every_step_under_jax(under_jax):
    # JAX keeps the optimizer state outside the variables during an epoch: a rate assigned to the
    # variable only reaches a step if the state is synced and re-read (Keras's Callback.model does).
    result = under_jax["schedule"]
    assert result["seen"] == pytest.approx(result["expected"], rel=1e-5)


@pytest.mark.slow
def test_the_same_training_and_prediction_run_under_jax(under_jax):
    result = under_jax
    assert result["backend"] == "jax"
    assert result["losses"][-1] < 0.5 * result["losses"][0]
    assert result["accuracy"] >= 0.75
    assert result["reused"] and result["reused_same"]
