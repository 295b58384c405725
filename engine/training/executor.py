"""One run of the grid, start to finish: train, predict, write through the store, mark it finished.

Both execution engines run a run with ``execute_run``: the local engine in one child process per
network (``engine.training.runner``), the Ray engine as one task per run (``engine.training.ray_engine``).
A run writes its predictions, history and split (and for the first ``scenarios.kept_seeds`` external
seeds of each network its kept model) through the store, each atomically, and marks itself finished last
(``ExperimentStore.finish_run``); a run that is not finished is redone from scratch.

A run of the development scenario (``DEVELOPMENT_SCENARIO``, subject-wise: its held-out faces are PAIN-DB
subjects it never saw) also keeps its fold model and writes ``features``: the penultimate features of its
training and held-out faces, and its p(pain) and features on CP-PAIN. The served answer is those fold models
(``engine.evaluation.answer``): everything it uses is fitted on their held-out PAIN-DB faces, and the
CP-PAIN arrays let it be evaluated exactly as served without loading a model again.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from engine.artifacts import ExperimentStore, RunKey
from engine.config import ExperimentConfig
from engine.evaluation.answer import DEVELOPMENT_SCENARIO
from engine.files import atomic_path
from engine.training.run_settings import run_settings
from engine.training.scenarios import Split


@dataclass(frozen=True)
class PlannedRun:
    model: str
    split: Split

    @property
    def key(self) -> RunKey:
        return RunKey(self.model, self.split.scenario, self.split.fold)


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


def execute_run(config: ExperimentConfig, store: ExperimentStore, run: PlannedRun,
                paindb: pd.DataFrame, cppain: pd.DataFrame, arrays: ArrayCache, after_run=None) -> None:
    from engine.models.registry import input_size_for
    from engine.models.features import feature_model
    from engine.training.train import predict_proba, predict_with_features, train_run

    split, key = run.split, run.key
    store.start_run(key)  # --force: the run is redone, so it is not finished until finish_run
    size = input_size_for(run.model, config.training)
    if split.scenario == "cp_adapt":
        return _execute_adapt_run(config, store, run, cppain, arrays.get("cppain", size), size)
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
                       weights_dir=weights_dir or None, reuse_compiled=True,
                       epochs=config.training.epochs_for(run.model, split.scenario))
    batch = config.training.batch_size
    development = split.scenario == DEVELOPMENT_SCENARIO and config.scenarios.keep_models
    if development:
        both = feature_model(result.model)
        p_pain, test_features = predict_with_features(both, x_test, batch_size=batch)
    else:
        p_pain = predict_proba(result.model, x_test, batch_size=batch)
    seconds = time.perf_counter() - started

    tested = test_table.iloc[split.test]
    predictions = pd.DataFrame({
        "model": run.model, "scenario": split.scenario, "fold": split.fold, "seed": split.seed,
        "image_id": tested["image_id"].to_numpy(), "subject": tested["subject"].to_numpy(),
        "dataset": tested["dataset"].to_numpy(), "true_label": tested["label"].to_numpy(dtype=int),
        "p_pain": p_pain.astype(float), "predicted_label": (p_pain >= 0.5).astype(int),
    })
    store.write_predictions(key, predictions)
    store.write_history(key, pd.DataFrame(result.history))
    store.write_split(key, {
        "scenario": split.scenario, "fold": split.fold, "seed": split.seed, "test_set": split.test_set,
        "input_size": size, "train_image_ids": paindb["image_id"].iloc[split.train].tolist(),
        "test_image_ids": tested["image_id"].tolist(),
    })
    if split.scenario == "external" and split.fold < config.scenarios.kept_seeds and config.scenarios.keep_models:
        save_for_inference(result.model, store.kept_model_path(key))
    if development:
        _, train_features = predict_with_features(both, x_all[split.train], batch_size=batch)
        cppain_p, cppain_features = predict_with_features(both, arrays.get("cppain", size), batch_size=batch)
        store.write_features(key, train=train_features.astype(np.float16), test=test_features.astype(np.float16),
                             cppain=cppain_features.astype(np.float16), cppain_p_pain=cppain_p.astype(np.float32),
                             cppain_image_ids=cppain["image_id"].to_numpy().astype(str))
        save_for_inference(result.model, store.kept_model_path(key))
    if after_run is not None:
        after_run(result.model, x_test, predictions)  # e.g. LIME: only now does every run's model exist
    store.finish_run(key, {"seconds": round(seconds, 3), "train_images": int(len(y_train)),
                           "test_images": int(len(tested)), "input_size": size,
                           "weights": getattr(result, "weights_used", config.training.weights),
                           "settings": run_settings(config, run.model, split.scenario)})


def _execute_adapt_run(config: ExperimentConfig, store: ExperimentStore, run: PlannedRun, cppain: pd.DataFrame,
                       x_cp: np.ndarray, size: int) -> None:
    """A cp_adapt run (``engine.training.adapt``): predictions, history, split and learning curve through the
    store, finished last. No LIME, no kept model: a research scenario the served answer never uses."""
    from engine.training.adapt import adapt_run

    split, key = run.split, run.key
    result = adapt_run(config, store, run.model, split, cppain, x_cp)
    tested = cppain.iloc[split.test]
    store.write_predictions(key, pd.DataFrame({
        "model": run.model, "scenario": split.scenario, "fold": split.fold, "seed": split.seed,
        "image_id": tested["image_id"].to_numpy(), "subject": tested["subject"].to_numpy(),
        "dataset": tested["dataset"].to_numpy(), "true_label": tested["label"].to_numpy(dtype=int),
        "p_pain": result.p_pain.astype(float), "predicted_label": (result.p_pain >= 0.5).astype(int)}))
    store.write_history(key, pd.DataFrame(result.history))
    store.write_split(key, {"scenario": split.scenario, "fold": split.fold, "seed": split.seed, "test_set": "cppain",
                            "train_set": "cppain", "input_size": size, "adapted_from": result.base,
                            "train_image_ids": cppain["image_id"].iloc[split.train].tolist(),
                            "test_image_ids": tested["image_id"].tolist()})
    store.write_adapt_curve(key, result.curve.assign(subject=str(tested["subject"].iloc[0])))
    store.finish_run(key, {"seconds": round(result.seconds, 3), "train_images": int(len(split.train)),
                           "test_images": int(len(tested)), "input_size": size, **result.info,
                           "settings": run_settings(config, run.model, split.scenario)})


def save_for_inference(model, path: Path) -> None:
    """Save ``model`` atomically without its optimizer: the upload page only predicts, and Adam's two
    moments per weight would triple the file (AlexNet at 32 px in the demo: 440 MB with them, 147 MB without)."""
    import keras

    # From the layer config alone: uncompiled, so no optimizer (clone_model and model_from_json
    # would compile the copy).
    inference = keras.Model.from_config(model.get_config())
    inference.set_weights(model.get_weights())
    with atomic_path(path, extension=".keras") as tmp:  # Keras insists on the extension
        inference.save(tmp)
