"""bench/gpu_protocol.py: its smoke mode runs end to end on the CPU and prints every figure; the
protocol's extrapolation counts what ``painlens run`` does.

The smoke runs under the suite's backend (TensorFlow): under JAX, XLA compiles every eager operation
and the training step on the CPU, about 80 s of the 2 cores against 30 s (the JAX path is the GPU
machine's: check it there, or in a Python 3.12 venv as the script's docstring sets the GPU machine up)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"
sys.path.insert(0, str(BENCH))

from gpu_protocol import explained_images, paper_shaped_tables, protocol_minutes  # noqa: E402

from engine.config import ExplainSection  # noqa: E402

NUMBER = r"(\d+(?:\.\d+)?)"


@pytest.mark.slow  # trains two networks in a fresh interpreter
def test_smoke_mode_prints_every_figure_for_each_network():
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run([sys.executable, str(BENCH / "gpu_protocol.py"), "--smoke"], capture_output=True,
                            text=True, env=env, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    assert f"backend {os.environ.get('KERAS_BACKEND', 'tensorflow')}" in out
    rows = {}
    for name in ("WeiNet", "SongNet"):
        # network, size, batch, precision, build s, 1st step s, fit img/s, loop img/s, fit/loop, peak GiB, LIME s/img
        match = re.search(rf"^{name}\s+32\s+8\s+float32" + rf"\s+{NUMBER}" * 7 + r"\s*$", out, re.MULTILINE)
        assert match, f"no figures for {name}:\n{out}"
        rows[name] = [float(v) for v in match.groups()]
        build, first, fit, loop, ratio, peak, lime = rows[name]
        assert fit > 0 and loop > 0 and peak > 0 and lime > 0
        assert abs(ratio - fit / loop) < 0.01 + 0.01 * ratio
    total = re.search(rf"^whole protocol: {NUMBER} min", out, re.MULTILINE)
    assert total and float(total.group(1)) > 0, out
    assert re.search(rf"^fit/loop: median {NUMBER}, lowest {NUMBER}", out, re.MULTILINE), out


def test_explained_images_follow_choose_images_rules():
    explain = ExplainSection(images_per_class=2, all_cppain=True)
    tested = pd.DataFrame({"dataset": ["unbc"] * 5 + ["cppain"] * 3, "label": [0, 0, 0, 1, 1, 0, 1, 1]})
    assert explained_images(tested, explain) == 2 + 2 + 3  # two per class of PAIN-DB, every CP-PAIN image
    capped = ExplainSection(images_per_class=1, all_cppain=False)
    assert explained_images(tested, capped) == 1 + 1 + 1 + 1  # one per class of each
    assert explained_images(tested, ExplainSection(enabled=False)) == 0


def test_protocol_minutes_count_every_run_of_the_paper_config():
    paindb, cppain = paper_shaped_tables()
    row = {"network": "WeiNet", "fit_img_s": 1000.0, "infer_img_s": 5000.0, "build_s": 1.0, "first_step_s": 30.0,
           "lime_s": 0.5}
    share = protocol_minutes(str(BENCH.parent / "experiments" / "paper.toml"), paindb, cppain, row)
    assert share["runs"] == 15  # 5 image-wise folds, 5 subject-wise folds, 5 external seeds
    # 30 epochs over 4/5 of PAIN-DB for 10 cross-validation runs and all of it for the 5 external ones
    expected_train = 30 * (10 * 0.8 * len(paindb) + 5 * len(paindb)) / 1000 / 60
    assert abs(share["train_min"] - expected_train) / expected_train < 0.02
    assert share["total_min"] > share["train_min"] + share["lime_min"]
