"""The grid runner: every (model, scenario, fold) run of an experiment, resumable.

Each run writes ``predictions.parquet``, ``history.csv``, ``split.json`` (and for the first
``scenarios.kept_seeds`` external seeds of each network ``model.keras``), each atomically, and then
``done.json`` last. A run without ``done.json`` is redone from scratch; readers only trust runs that
have it. Metrics are recomputed from the stored predictions of finished runs, so an
interrupted-then-resumed grid gives the same metrics as one that was never interrupted.
"""

from __future__ import annotations

import multiprocessing
import os
import queue
import signal
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from engine.artifacts import ExperimentStore, atomic_path, read_json, write_csv, write_json, write_parquet
from engine.config import ExperimentConfig
from engine.errors import PainLensError
from engine.evaluation.metrics import run_metrics, summarize
from engine.training.scenarios import Split, make_splits


@dataclass(frozen=True)
class PlannedRun:
    model: str
    split: Split

    @property
    def key(self) -> tuple[str, str, int]:
        return (self.model, self.split.scenario, self.split.fold)


def plan_runs(config: ExperimentConfig, paindb: pd.DataFrame, cppain: pd.DataFrame,
              models: list[str], scenarios: list[str]) -> list[PlannedRun]:
    runs = []
    for scenario in scenarios:
        splits = make_splits(scenario, paindb, cppain, config.scenarios.folds, config.scenarios.seeds,
                             config.experiment.seed)
        runs.extend(PlannedRun(model, split) for model in models for split in splits)
    # Model-major order: a network's runs share its input size, so its arrays are loaded once.
    return sorted(runs, key=lambda run: (models.index(run.model), scenarios.index(run.split.scenario), run.split.fold))


class ArrayCache:
    """Face crops resized to one input size, loaded once per size for the whole grid."""

    def __init__(self, paindb: pd.DataFrame, cppain: pd.DataFrame):
        self.tables = {"paindb": paindb, "cppain": cppain}
        self._size = None
        self._arrays: dict[str, np.ndarray] = {}

    def get(self, table: str, size: int) -> np.ndarray:
        from engine.preprocess import load_faces

        if size != self._size:
            self._arrays, self._size = {}, size
        if table not in self._arrays:
            self._arrays[table] = load_faces(self.tables[table], size)
        return self._arrays[table]


def run_grid(config: ExperimentConfig, store: ExperimentStore, paindb: pd.DataFrame, cppain: pd.DataFrame,
             models: list[str], scenarios: list[str], force: bool = False, progress: bool = True) -> dict:
    """Run every planned run that is not finished yet (all of them with ``force``); return counts.

    Each network's runs execute in a child process of their own: Keras/TensorFlow keep memory from
    run to run in one process (a 60-run CPU grid grew past 16 GB), and a process that ends returns it.
    """
    runs = plan_runs(config, paindb, cppain, models, scenarios)
    todo = [run for run in runs if force or not store.is_done(*run.key)]
    with _progress(progress) as bar:
        task = bar.add_task("training", total=len(todo))
        for model in models:
            group = [run for run in todo if run.model == model]
            if group:
                bar.update(task, description=f"{model}: {len(group)} runs")
                _run_in_child(config, store, group, paindb, cppain, on_done=lambda: bar.advance(task))
    collect_metrics(store)
    return {"planned": len(runs), "ran": len(todo), "skipped": len(runs) - len(todo)}


def _run_in_child(config: ExperimentConfig, store: ExperimentStore, group: list[PlannedRun],
                  paindb: pd.DataFrame, cppain: pd.DataFrame, on_done) -> None:
    context = multiprocessing.get_context("spawn")
    messages = context.Queue()
    child = context.Process(target=_child_main, args=(config, store, group, paindb, cppain, messages))
    child.start()
    error = ""
    while child.is_alive() or not messages.empty():
        try:
            message = messages.get(timeout=0.5)
        except queue.Empty:
            continue
        if message == "done":
            on_done()
        else:
            error = message
    child.join()
    if child.exitcode != 0:
        detail = error or f"exit code {child.exitcode}"
        raise PainLensError(f"Training {group[0].model} stopped ({detail}); finished runs are kept: run the same "
                            "command again to resume.")


def _child_main(config, store, group, paindb, cppain, messages) -> None:
    _die_with_parent()
    if os.environ.get("KERAS_BACKEND", "tensorflow") == "tensorflow":
        from engine.native_log import import_tensorflow_quietly

        import_tensorflow_quietly()
    arrays = ArrayCache(paindb, cppain)
    try:
        for run in group:
            execute_run(config, store, run, paindb, cppain, arrays)
            messages.put("done")
    except PainLensError as exc:
        messages.put(str(exc))
        raise SystemExit(1) from None


def _die_with_parent() -> None:
    # A killed runner must not leave its training child running on: ask Linux to kill it too.
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def execute_run(config: ExperimentConfig, store: ExperimentStore, run: PlannedRun,
                paindb: pd.DataFrame, cppain: pd.DataFrame, arrays: ArrayCache) -> None:
    from engine.models.registry import input_size_for
    from engine.training.train import predict_proba, train_run

    split, folder = run.split, store.run_dir(*run.key)
    done = folder / "done.json"
    if done.exists():
        done.unlink()  # --force: the run is redone, so it is not finished until rewritten
    for stale in folder.glob(".*.tmp"):
        stale.unlink()  # temp files of a run that was killed mid-write: never read, now removed
    size = input_size_for(run.model, config.training)
    x_all = arrays.get("paindb", size)
    test_table = cppain if split.test_set == "cppain" else paindb
    x_test = arrays.get(split.test_set, size)[split.test]
    y_train = paindb["label"].to_numpy()[split.train]

    started = time.perf_counter()
    weights_dir = config.training.weights_dir
    if weights_dir and not Path(weights_dir).is_absolute():
        weights_dir = str(config.base_dir / weights_dir)
    # Reuse: the network's previous run in this child process is reset to this run's seeded start
    # instead of rebuilt and re-traced (a ResNet's trace costs tens of seconds on a CPU); same results.
    result = train_run(run.model, x_all[split.train], y_train, config=config.training, seed=split.seed,
                       weights_dir=weights_dir or None, reuse_compiled=True)
    p_pain = predict_proba(result.model, x_test, batch_size=config.training.batch_size)
    seconds = time.perf_counter() - started

    tested = test_table.iloc[split.test]
    predictions = pd.DataFrame({
        "model": run.model, "scenario": split.scenario, "fold": split.fold, "seed": split.seed,
        "image_id": tested["image_id"].to_numpy(), "subject": tested["subject"].to_numpy(),
        "dataset": tested["dataset"].to_numpy(), "true_label": tested["label"].to_numpy(dtype=int),
        "p_pain": p_pain.astype(float), "predicted_label": (p_pain >= 0.5).astype(int),
    })
    write_parquet(folder / "predictions.parquet", predictions)
    write_csv(folder / "history.csv", pd.DataFrame(result.history))
    write_json(folder / "split.json", {
        "scenario": split.scenario, "fold": split.fold, "seed": split.seed, "test_set": split.test_set,
        "input_size": size, "train_image_ids": paindb["image_id"].iloc[split.train].tolist(),
        "test_image_ids": tested["image_id"].tolist(),
    })
    if split.scenario == "external" and split.fold < config.scenarios.kept_seeds and config.scenarios.keep_models:
        save_for_inference(result.model, folder / "model.keras")
    if config.explain.enabled:
        from engine.explain.explain_run import explain_run

        # Only now does every run's model exist (one per network is kept on disk), so explain here.
        explain_run(result.model, x_test, predictions, config, store)
    write_json(done, {"seconds": round(seconds, 3), "train_images": int(len(y_train)),
                      "test_images": int(len(tested)), "input_size": size,
                      "weights": getattr(result, "weights_used", config.training.weights)})


def save_for_inference(model, path: Path) -> None:
    """Save ``model`` atomically without its optimizer: the upload page only predicts, and Adam's two
    moments per weight would triple the file (AlexNet at 32 px in the demo: 440 MB with them, 147 MB without)."""
    import keras

    # From the layer config alone: uncompiled, so no optimizer (clone_model and model_from_json
    # would compile the copy).
    inference = keras.Model.from_config(model.get_config())
    inference.set_weights(model.get_weights())
    with atomic_path(path) as tmp:
        keras_tmp = tmp.with_suffix(".keras")  # Keras insists on the extension
        inference.save(keras_tmp)
        keras_tmp.replace(tmp)


def finished_predictions(store: ExperimentStore) -> pd.DataFrame:
    """Predictions of every finished run (those with done.json), concatenated."""
    frames = []
    for done in sorted((store.root / "runs").glob("*/*/*/done.json")):
        frames.append(pd.read_parquet(done.parent / "predictions.parquet"))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def collect_metrics(store: ExperimentStore) -> pd.DataFrame:
    predictions = finished_predictions(store)
    metrics = run_metrics(predictions) if len(predictions) else pd.DataFrame()
    write_parquet(store.metrics, metrics)
    write_parquet(store.summary, summarize(metrics))
    return metrics


def _progress(enabled: bool) -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(), disable=not enabled)
