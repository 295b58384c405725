"""The whole `painlens run` on tiny synthetic data, and a real kill of the runner mid-grid."""

from __future__ import annotations

import dataclasses
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from engine.artifacts import ExperimentStore, RunKey
from engine.evaluation.metrics import run_metrics
from engine.evaluation.results import current_results

pytestmark = pytest.mark.slow

PAINLENS = [sys.executable, "-m", "painlens.cli"]


def tiny_config(folder: Path, data: Path, cache: Path, models: list[str], scenarios: list[str], folds: int = 2, seeds: int = 2,
                epochs: int = 1, explain: bool = False, kept_seeds: int = 1, name: str = "tiny",
                per_model: dict[str, list[str]] | None = None, local_workers: int = 1, training: str = "") -> Path:
    """A config in ``folder`` that reads the shared tiny experiment's synthetic data at ``data`` with its face
    cache ``cache`` (the ``shared_data`` fixture: the same data settings and preprocessing, so every face is
    already in the cache); ``training``: more lines of its [training] section."""
    sizes = {"AlexNet": 64, "SongNet": 32, "WeiNet": 32, "SilNet": 32, "VGG16": 32, "VGG19": 32, "ResNet50": 32,
             "ResNet101V2": 32, "InceptionV3": 75, "Xception": 71}
    input_size = ", ".join(f"{m} = {sizes[m]}" for m in models)
    only = ", ".join(f"{m} = {names!r}" for m, names in (per_model or {}).items())
    path = folder / f"{name}.toml"
    path.write_text(f"""
[experiment]
name = "tiny"
seed = 3
[data]
root = "{data}"
synthetic_size = "tiny"
synthetic_seed = 3
frames_per_class = 3
[preprocess]
crop_size = 64
background = "fallback"
workers = 1
cache_dir = "{cache}"
[training]
models = {models!r}
epochs = {epochs}
batch_size = 16
weights = "none"
input_size = {{ {input_size} }}
{training}
[scenarios]
names = {scenarios!r}
folds = {folds}
seeds = {seeds}
kept_seeds = {kept_seeds}
per_model = {{ {only} }}
[execution]
local_workers = {local_workers}
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


def painlens_here(*args: str) -> subprocess.CompletedProcess:
    """The same command function in this process (TensorFlow is loaded here already: one import less than a
    new `painlens` process; the training children are new processes either way), as a finished process."""
    from typer.testing import CliRunner

    from painlens.cli import app

    done = CliRunner().invoke(app, list(args))
    if done.exception is not None and not isinstance(done.exception, SystemExit):
        raise done.exception
    return subprocess.CompletedProcess(["painlens", *args], done.exit_code, done.stdout, done.stderr)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("pipeline")


@pytest.fixture(scope="module")
def shared_data(tiny_experiment_dir) -> tuple[Path, Path]:
    """(data root, face cache) of the session's shared tiny experiment (tests/conftest.py), whose [data] and
    [preprocess] settings ``tiny_config`` repeats: its faces were found once, for every file. Read only."""
    from dashboard_fixtures import TINY_TOML

    base = tiny_experiment_dir.parent.parent  # <base>/artifacts/tiny: data and cache live in <base>
    for line in ('synthetic_seed = 3', 'frames_per_class = 3', 'crop_size = 64', 'background = "fallback"'):
        assert line in TINY_TOML, "the shared experiment's config changed: update tiny_config"
    return base / "data", base / ".cache" / "faces"


# One scratch network and one pretrained-family base (the cheapest to build, train and explain), each in
# its own training child, the base in the external scenario only as in the demo profile: the grid's
# every path at the least cost (test_models builds all ten; the demo profile trains all ten this way).
# The two children train at the same time (local_workers = 2); the killed run below trains WeiNet alone
# and must give the same metrics.
GRID_MODELS = ["WeiNet", "VGG16"]
GRID_SCENARIOS = {"WeiNet": ["image", "subject", "external"], "VGG16": ["external"]}
GRID_RUNS = sum(len(names) for names in GRID_SCENARIOS.values()) * 2  # 2 folds / seeds each


@pytest.fixture(scope="module")
def grid(workspace, shared_data) -> tuple[Path, subprocess.CompletedProcess, float]:
    """The whole grid, run once by `painlens run`: (its config, the run, seconds)."""
    config = tiny_config(workspace, *shared_data, GRID_MODELS, ["image", "subject", "external"],
                         explain=True, kept_seeds=2, name="grid", per_model={"VGG16": ["external"]},
                         local_workers=2, training="epochs_per_model = { WeiNet = 2 }\nexternal_epoch_share = 0.5")
    started = time.perf_counter()
    result = painlens("run", str(config), "--out", str(workspace / "grid"), "--no-progress")
    return config, result, time.perf_counter() - started


# The killed run redoes part of the grid, WeiNet's subject-wise runs (2: the answer's development runs, with
# their kept fold models): the grid is its uninterrupted reference.
KILLED_RUNS = ["--models", "WeiNet", "--scenarios", "subject"]


@pytest.fixture(scope="module")
def killed_and_resumed(workspace, grid) -> tuple[Path, int, subprocess.CompletedProcess]:
    """Part of the grid run by `painlens run`, SIGKILLed once its first run finished, then run again:
    (its output folder, the runs finished before the kill, the resumed run)."""
    config, out = grid[0], workspace / "killed"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    child = subprocess.Popen([*PAINLENS, "run", str(config), *KILLED_RUNS, "--out", str(out), "--no-progress"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:
        deadline = time.monotonic() + 600
        while not ExperimentStore(out, "tiny").finished_runs():
            assert child.poll() is None, "the runner ended before it could be killed"
            assert time.monotonic() < deadline
            time.sleep(0.2)
        child.send_signal(signal.SIGKILL)  # a real, unannounced kill in the middle of the grid
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
    finished_before = len(ExperimentStore(out, "tiny").finished_runs())
    resumed = painlens_here("run", str(config), *KILLED_RUNS, "--out", str(out), "--no-progress")
    return out, finished_before, resumed


def test_whole_grid_on_tiny_data_writes_every_artifact(workspace, grid):
    models = GRID_MODELS
    _, result, seconds = grid
    assert result.returncode == 0, result.stderr[-3000:]
    store = ExperimentStore(workspace / "grid", "tiny")
    runs = store.finished_runs()
    assert sorted(runs) == sorted(RunKey(m, s, f) for m, names in GRID_SCENARIOS.items() for s in names for f in (0, 1))
    manifest = store.manifest()
    assert manifest["synthetic"] is True and manifest["status"] == "finished"
    assert store.config().training.models == tuple(models)  # the typed config, rebuilt from the manifest
    samples = store.samples()
    assert "path" not in samples.columns  # paths can hold names: never stored
    metrics = store.table("metrics")
    assert set(metrics["model"]) == set(models)
    # Metrics are a pure function of the stored predictions.
    recomputed = run_metrics(store.finished_predictions())
    pd.testing.assert_frame_equal(metrics[recomputed.columns], recomputed)
    # Both external seeds' models are kept for uploads (kept_seeds = 2), and nothing else.
    assert store.kept_models("external") == sorted(RunKey(m, "external", seed) for m in models for seed in (0, 1))
    # The answer's fold models and their descriptors, and its parameters and evaluation (engine.evaluation.answer).
    assert store.kept_models("subject") == sorted(RunKey(m, "subject", f) for m in models for f in (0, 1)
                                                  if "subject" in GRID_SCENARIOS[m])
    assert all(store.features(key) is not None for key in store.kept_models("subject"))
    assert store.answer()["scenario"] == "subject" and store.table("answer_evaluation") is not None
    assert store.ratings_summary() is not None
    assert len(store.explained_runs()) == GRID_RUNS
    assert store.heatmap_arrays() is not None and store.table("region_scores") is not None
    # The external runs train on all of PAIN-DB, with half the epochs here (external_epoch_share = 0.5).
    epochs = {key: len(store.history(key)) for key in runs}
    assert epochs == {key: 1 if key.scenario == "external" or key.model == "VGG16" else 2 for key in runs}
    print(f"whole tiny grid ({len(runs)} trainings, incl. synth + preprocess + LIME): {seconds:.1f} s")


def test_killed_runner_resumes_to_the_metrics_of_an_uninterrupted_run(workspace, killed_and_resumed):
    out, finished_before, resumed = killed_and_resumed
    assert finished_before == 1
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"{finished_before} already done" in " ".join(resumed.stdout.split())
    grid = ExperimentStore(workspace / "grid", "tiny").table("metrics")
    reference = grid[(grid["model"] == "WeiNet") & (grid["scenario"] == "subject")]
    after_kill = ExperimentStore(out, "tiny").table("metrics")
    order = ["model", "scenario", "fold"]
    pd.testing.assert_frame_equal(reference.sort_values(order).reset_index(drop=True),
                                  after_kill.sort_values(order).reset_index(drop=True))
    assert not list(out.rglob(".*.tmp*"))  # a killed write leaves no temp file (a kept model's ends .tmp.keras)


def test_interrupted_force_rerun_never_leaves_stale_metrics(workspace, shared_data, killed_and_resumed):
    """`painlens run --force` with other settings, killed after some runs were redone: every metric a
    reader gets (the stored table and the dashboard's reader) is that of the run's current predictions."""
    from dashboard import loaders

    out = workspace / "forced"
    shutil.copytree(killed_and_resumed[0], out)  # a finished grid of the same networks, as `painlens run` left it
    store = ExperimentStore(out, "tiny")
    before = {key: store.run_record(key)["predictions_digest"] for key in store.finished_runs()}
    assert len(before) == 2
    # Other settings, so other predictions:
    changed = tiny_config(workspace, *shared_data, ["WeiNet"], ["subject"], epochs=3, name="changed")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    child = subprocess.Popen([*PAINLENS, "run", str(changed), "--out", str(out), "--no-progress", "--force"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:
        deadline = time.monotonic() + 600
        while not any(store.run_record(k).get("predictions_digest") not in (None, before[k]) for k in before):
            assert child.poll() is None, "the forced run ended before it could be killed"
            assert time.monotonic() < deadline
            time.sleep(0.1)
        child.send_signal(signal.SIGKILL)  # some runs redone, the others still old (or unfinished)
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
    redone = [k for k in store.finished_runs() if store.run_record(k)["predictions_digest"] != before[k]]
    assert redone, "no run was redone before the kill"
    truth = run_metrics(store.finished_predictions())
    metrics, summary = current_results(store)
    pd.testing.assert_frame_equal(metrics[truth.columns].reset_index(drop=True), truth)
    shown, _ = loaders.load_results(store.root)
    pd.testing.assert_frame_equal(shown[truth.columns].reset_index(drop=True), truth)
    assert set(summary["runs"]) <= {1, 2} and len(summary)


def stop_explaining_songnet(model, x_test, predictions) -> None:
    """An ``after_run`` hook that fails in SongNet's training child (module level: it crosses into the child)."""
    from engine.errors import PainLensError

    if predictions["model"].iloc[0] == "SongNet":
        raise PainLensError("SongNet's explanation failed (on purpose, in a test).")


def test_a_failing_training_child_lets_the_other_finish_its_network_and_is_named(workspace, grid):
    """Two networks train at once; SongNet's child stops on its first run: WeiNet's child, which trains at the
    same time, still finishes its run, and the sentence names what stopped. Two scratch networks at 32 px: the
    grid's other network, VGG16, takes seconds longer to build and train, and only this test's time depends on it."""
    from engine.config import load_config
    from engine.errors import PainLensError
    from engine.experiment import prepare_data
    from engine.training.runner import run_grid

    config = load_config(grid[0])
    assert config.execution.local_workers == 2
    training = dataclasses.replace(config.training, input_size={**config.training.input_size, "SongNet": 32})
    config = dataclasses.replace(config, training=training,
                                 scenarios=dataclasses.replace(config.scenarios, seeds=1, kept_seeds=1))
    data = prepare_data(config, progress=False)
    store = ExperimentStore(workspace / "one-fails", "tiny")
    with pytest.raises(PainLensError) as stopped:
        run_grid(config, store, data.paindb, data.cppain, ["WeiNet", "SongNet"], ["external"], progress=False,
                 after_run=stop_explaining_songnet)
    assert str(stopped.value).startswith("Training stopped: SongNet (SongNet's explanation failed")
    assert "finished runs are kept" in str(stopped.value)
    assert store.finished_runs() == [RunKey("WeiNet", "external", 0)]


def test_a_child_killed_by_a_signal_is_named_in_words():
    from engine.training.runner import _ended_how

    assert _ended_how(1) == "exit code 1"
    assert _ended_how(-9).startswith("killed by SIGKILL: the system may have run out of memory")
    assert _ended_how(-15) == "killed by SIGTERM"


def test_a_rerun_redoes_the_finished_runs_whose_settings_changed_and_says_what_changed(workspace, shared_data, grid):
    """Same command, one setting changed (the external runs' epochs): those runs are redone, the others kept
    (a rerun of an unchanged grid is this with nothing changed: every run kept)."""
    out = workspace / "settings-changed"
    shutil.copytree(workspace / "grid", out)
    store = ExperimentStore(out, "tiny")
    external = [RunKey("WeiNet", "external", 0), RunKey("WeiNet", "external", 1)]
    assert {len(store.history(key)) for key in external} == {1}
    changed = tiny_config(workspace, *shared_data, GRID_MODELS, ["image", "subject", "external"],
                          kept_seeds=2, name="grid-changed", per_model={"VGG16": ["external"]},
                          training="epochs_per_model = { WeiNet = 2 }\nexternal_epoch_share = 1.0")
    result = painlens_here("run", str(changed), "--models", "WeiNet", "--out", str(out), "--no-progress")
    assert result.returncode == 0, result.stderr[-3000:]
    said = " ".join(result.stdout.split())
    assert "2 runs trained, 4 already done" in said  # the image- and subject-wise runs kept their 2 epochs
    assert ("2 finished runs were trained with other settings and were redone: WeiNet (2 runs): training.epochs 1 -> 2."
            in said)
    assert {len(store.history(key)) for key in external} == {2}
    assert store.run_record(external[0])["settings"]["training.epochs"] == 2


def test_runs_finished_before_settings_were_recorded_are_judged_by_the_config_they_were_trained_with(workspace, grid):
    from engine.config import load_config
    from engine.experiment import prepare_data
    from engine.training.runner import _outdated_runs, plan_runs

    out = workspace / "older-store"
    shutil.copytree(workspace / "grid", out)
    store = ExperimentStore(out, "tiny")
    for index, key in enumerate(store.finished_runs()):  # as an older PainLens left them: no settings
        record = store.run_record(key)
        del record["settings"]
        if index == 0:
            record["settings"] = "damaged"  # an unreadable record is judged the same way
        store.finish_run(key, record)
        assert not isinstance(store.run_record(key).get("settings"), dict)
    config = load_config(grid[0])
    data = prepare_data(config, progress=False)
    runs = plan_runs(config, data.paindb, data.cppain, GRID_MODELS, ["image", "subject", "external"])
    assert _outdated_runs(config, store, runs, previous=config) == {}  # trained with the config of the manifest
    assert _outdated_runs(config, store, runs, previous=None) == {}  # nothing to compare with: kept
    other = dataclasses.replace(config, training=dataclasses.replace(config.training, learning_rate=0.01))
    outdated = _outdated_runs(config, store, runs, previous=other)
    assert len(outdated) == GRID_RUNS and outdated[RunKey("VGG16", "external", 0)] == [
        f"training.learning_rate 0.01 -> {config.training.learning_rate}"]
