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

JAX_SCRIPT = textwrap.dedent("""
    import json, sys
    import numpy as np
    import keras
    sys.path.insert(0, sys.argv[1])
    from test_train import CONFIG, pattern_images
    from engine.training.train import predict_proba, train_run
    x, y = pattern_images(48, seed=0)
    x_test, y_test = pattern_images(16, seed=1)
    runs = [train_run("WeiNet", x, y, config=CONFIG, seed=3) for _ in range(2)]
    p = [predict_proba(r.model, x_test, batch_size=16) for r in runs]
    train_run("WeiNet", x, y, config=CONFIG, seed=4, reuse_compiled=True)
    reused = train_run("WeiNet", x, y, config=CONFIG, seed=3, reuse_compiled=True)
    print(json.dumps({"backend": keras.backend.backend(), "losses": [h["loss"] for h in runs[0].history],
                      "same": bool(np.array_equal(p[0], p[1])), "reused": reused.info["reused"],
                      "reused_same": bool(np.array_equal(p[0], predict_proba(reused.model, x_test, batch_size=16))),
                      "accuracy": float(((p[0] >= 0.5) == y_test).mean())}))
""")


@pytest.mark.slow
def test_the_same_training_and_prediction_run_under_jax(tmp_path):
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu", "TF_CPP_MIN_LOG_LEVEL": "2"}
    done = subprocess.run([sys.executable, "-c", JAX_SCRIPT, str(Path(__file__).parent)], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["backend"] == "jax"
    assert result["losses"][-1] < 0.5 * result["losses"][0]
    assert result["same"] and result["accuracy"] >= 0.75
    assert result["reused"] and result["reused_same"]
