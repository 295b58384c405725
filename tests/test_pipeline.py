"""The whole `painlens run` on tiny synthetic data, and a real kill of the runner mid-grid."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from engine.artifacts import ExperimentStore, read_json
from engine.training.runner import collect_metrics

pytestmark = pytest.mark.slow

PAINLENS = [sys.executable, "-m", "engine.cli"]


def tiny_config(folder: Path, models: list[str], scenarios: list[str], folds: int = 2, seeds: int = 2,
                epochs: int = 1, explain: bool = False, kept_seeds: int = 1) -> Path:
    sizes = {"AlexNet": 64, "SongNet": 32, "WeiNet": 32, "SilNet": 32, "VGG16": 32, "VGG19": 32, "ResNet50": 32,
             "ResNet101V2": 32, "InceptionV3": 75, "Xception": 71}
    input_size = ", ".join(f"{m} = {sizes[m]}" for m in models)
    path = folder / "tiny.toml"
    path.write_text(f"""
[experiment]
name = "tiny"
seed = 3
[data]
root = "data"
synthetic_size = "tiny"
synthetic_seed = 0
frames_per_class = 4
[preprocess]
crop_size = 80
cache_dir = "cache"
[training]
models = {models!r}
epochs = {epochs}
batch_size = 16
weights = "none"
input_size = {{ {input_size} }}
[scenarios]
names = {scenarios!r}
folds = {folds}
seeds = {seeds}
kept_seeds = {kept_seeds}
[explain]
enabled = {str(explain).lower()}
images_per_class = 2
all_cppain = false
num_samples = 50
""".replace("'", '"'))
    return path


def painlens(*args: str, **kwargs) -> subprocess.CompletedProcess:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.run([*PAINLENS, *args], capture_output=True, text=True, env=env, timeout=900, **kwargs)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("pipeline")


def test_whole_grid_on_tiny_data_writes_every_artifact(workspace):
    # Two scratch networks and one pretrained-family base keep this under a few minutes on 2 cores;
    # test_models builds all ten, and the demo profile trains all ten through this same path.
    models = ["SongNet", "WeiNet", "ResNet50"]
    config = tiny_config(workspace, models, ["image", "subject", "external"], explain=True, kept_seeds=2)
    started = time.perf_counter()
    result = painlens("run", str(config), "--out", str(workspace / "grid"), "--no-progress")
    seconds = time.perf_counter() - started
    assert result.returncode == 0, result.stderr[-3000:]
    store = ExperimentStore(workspace / "grid", "tiny")
    runs = sorted(store.root.glob("runs/*/*/*/done.json"))
    assert len(runs) == len(models) * 3 * 2
    manifest = read_json(store.manifest)
    assert manifest["synthetic"] is True and manifest["status"] == "finished"
    samples = pd.read_parquet(store.samples)
    assert "path" not in samples.columns  # paths can hold names: never stored
    metrics = pd.read_parquet(store.metrics)
    assert set(metrics["model"]) == set(models)
    # Metrics are a pure function of the stored predictions.
    pd.testing.assert_frame_equal(metrics, collect_metrics(store))
    # Both external seeds' models are kept for uploads (kept_seeds = 2), and nothing else.
    kept = sorted(store.root.glob("runs/*/*/*/model.keras"))
    assert sorted(str(p.relative_to(store.root / "runs").parent) for p in kept) == sorted(
        f"{m}/external/{seed}" for m in models for seed in (0, 1))
    assert (store.ratings_dir / "summary.json").exists()
    assert len(list(store.root.glob("explanations/*/*/*/done.json"))) == len(models) * 3 * 2
    assert (store.root / "heatmaps.npz").exists() and (store.root / "region_scores.parquet").exists()
    print(f"whole tiny grid ({len(runs)} trainings, incl. synth + preprocess + LIME): {seconds:.1f} s")


def test_rerun_skips_finished_runs(workspace):
    config = tiny_config(workspace, ["WeiNet"], ["image"])
    first = painlens("run", str(config), "--out", str(workspace / "rerun"), "--no-progress")
    assert first.returncode == 0, first.stderr[-3000:]
    again = painlens("run", str(config), "--out", str(workspace / "rerun"), "--no-progress")
    assert again.returncode == 0, again.stderr[-3000:]
    assert "0 runs trained, 2 already done" in " ".join(again.stdout.split())


def test_killed_runner_resumes_to_the_metrics_of_an_uninterrupted_run(workspace):
    config = tiny_config(workspace, ["WeiNet", "SongNet"], ["image", "subject"], folds=2, epochs=2)
    reference = painlens("run", str(config), "--out", str(workspace / "whole"), "--no-progress")
    assert reference.returncode == 0, reference.stderr[-3000:]

    out = workspace / "killed"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    child = subprocess.Popen([*PAINLENS, "run", str(config), "--out", str(out), "--no-progress"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:
        deadline = time.monotonic() + 600
        while not list(out.glob("tiny/runs/*/*/*/done.json")):
            assert child.poll() is None, "the runner ended before it could be killed"
            assert time.monotonic() < deadline
            time.sleep(0.2)
        child.send_signal(signal.SIGKILL)  # a real, unannounced kill in the middle of the grid
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
    finished_before = len(list(out.glob("tiny/runs/*/*/*/done.json")))
    assert 1 <= finished_before < 8

    resumed = painlens("run", str(config), "--out", str(out), "--no-progress")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"{finished_before} already done" in " ".join(resumed.stdout.split())
    whole = pd.read_parquet(workspace / "whole" / "tiny" / "metrics.parquet")
    after_kill = pd.read_parquet(out / "tiny" / "metrics.parquet")
    pd.testing.assert_frame_equal(whole, after_kill)
    assert not list(out.glob("tiny/runs/**/.*.tmp"))
