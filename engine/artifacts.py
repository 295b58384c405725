"""The artifact store: the one module that knows where an experiment's artifacts live.

``ExperimentStore`` is the engine's and the dashboard's API to an experiment folder: writers and readers
ask it for finished runs (typed :class:`RunKey`), a run's predictions, history, split, kept model and LIME
masks, the heatmaps, ratings, experiment-level tables and the typed config. No other module builds a
path inside the store or globs it (``tests/test_store_layout.py`` enforces it).

Every file is written atomically (``engine.files``), so a killed process never leaves a half-written
file under its final name; the temporary files of killed writes are removed when a command starts
writing (``remove_stale_temp_files``).
"""

from __future__ import annotations

import hashlib
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from engine.files import atomic_path, read_json, remove_temp_files, write_csv, write_json, write_parquet


# --- the layout: every file name of the store, and nowhere else -------------------------------------

MANIFEST = "manifest.json"
SAMPLES = "samples.parquet"
RUNS = "runs"
DONE = "done.json"  # written last in a run's (or a run's masks') folder: the run is complete
PREDICTIONS = "predictions.parquet"
HISTORY = "history.csv"
SPLIT = "split.json"
KEPT_MODEL = "model.keras"
EXPLANATIONS = "explanations"
MASK_PART = "part-{index:05d}.npz"
MASK_PART_PATTERN = re.compile(r"^part-(\d{5})\.npz$")
RATINGS = "ratings"
HEATMAP_ARRAYS = "heatmaps.npz"
GRADCAM = "gradcam.npz"  # beside a run's masks: its Grad-CAM maps
SANITY = "sanity.parquet"  # beside a run's masks: its randomisation sanity check (one run per network)
STABILITY = "stability.parquet"  # beside the sanity check: LIME's agreement with itself over seeds
FEATURES = "features.npz"  # a development run's penultimate features and its fold model's CP-PAIN answers
ADAPT_CURVE = "curve.parquet"  # a cp_adapt run's learning curve: its subject's predictions after fewer subjects
ACTION_UNITS = "action_units.npz"  # the action-unit estimator's arrays and fingerprint (engine.models.action_units)
SERVED_ADAPTATION = "served"  # runs/<network>/cp_adapt/served/: its external model adapted on every CP-PAIN subject
ADAPTATION_RECORD = "adaptation.json"  # written last there: what the served adaptation was fitted on
ANSWER = "answer.json"  # the served answer's parameters, all fitted on development data (engine.evaluation.answer)
ANSWER_APPEARANCE = "answer_appearance.npz"  # beside it: the appearance check's PCAs (engine.evaluation.appearance)

# Experiment-level tables, by name. A new artifact is one entry here (and its writer and reader ask
# for it by name). ``heatmaps`` is written last of the explain step's tables: its presence means the
# heatmap set is complete.
TABLES = {
    "metrics": "metrics.parquet",  # one row per run and class, stamped with the predictions it came from
    "summary": "summary.parquet",  # per (network, scenario, class)
    "heatmaps": "heatmaps.parquet",
    "heatmap_differences": "heatmap_differences.parquet",
    "region_scores": "region_scores.parquet",
    "heatmap_similarity": "heatmap_similarity.parquet",
    "heatmap_clusters": "heatmap_clusters.parquet",
    "explain_timings": f"{EXPLANATIONS}/runs.parquet",
    "calibration": "calibration.parquet",  # per network: temperature, ECE before/after (written after reliability)
    "reliability": "reliability.parquet",  # per network, prediction set, raw/calibrated: the reliability bins
    "subjects": "subjects.parquet",
    "faithfulness": "faithfulness.parquet",  # per explained image and explainer: curves' AUCs, pain-region scores
    "faithfulness_summary": "faithfulness_summary.parquet",  # per (network, scenario, dataset, explainer, metric)
    "sanity_checks": "sanity_checks.parquet",  # per network and explainer: the randomisation verdict
    "lime_stability": "lime_stability.parquet",  # per network: LIME's rank correlation and top-5 overlap over seeds
    "answer_evaluation": "answer_evaluation.parquet",  # the served answer on CP-PAIN: metric, value, interval, n
    # Per network: external, + the person's baseline, cp_adapt, cp_adapt + baseline on CP-PAIN, with intervals
    # over subjects (engine.evaluation.remedies), and cp_adapt's learning curve against adaptation subjects.
    "remedies": "remedies.parquet",
    "adapt_curve": "adapt_curve.parquet",
    "action_units": "action_units.parquet",  # the AU estimator on UNBC, subject-wise: per AU and PSPI, with intervals
    "action_unit_frames": "action_unit_frames.parquet",  # per frame: UNBC out-of-fold, other PAIN-DB and CP-PAIN estimates
    "action_unit_raters": "action_unit_raters.parquet",  # CP-PAIN: the model as a third rater (Table 4 layout)
}
# The ratings step's files, by name (``summary`` is written last: its presence means complete).
RATINGS_FILES = {
    "icc": "icc.parquet",
    "headline": "headline.parquet",
    "table4": "table4.csv",
    "video_labels": "video_labels.parquet",
    "counts": "counts.parquet",
    "scores": "scores.parquet",
    "problems": "problems.csv",
    "model_agreement": "model_agreement.parquet",
    "model_agreement_summary": "model_agreement_summary.parquet",
    "answer_beside_raters": "answer_beside_raters.parquet",  # the served answer and each rater, pairwise
    "summary": "summary.json",
}


@dataclass(frozen=True, order=True)
class RunKey:
    """One training run of the grid: a network in a scenario, at a fold (or an external seed)."""

    model: str
    scenario: str
    fold: int

    def __str__(self) -> str:
        return f"{self.model}/{self.scenario}/{self.fold}"

    def __iter__(self):  # model, scenario, fold = key
        return iter((self.model, self.scenario, self.fold))


def stamp(*paths: str | os.PathLike) -> tuple:
    """(mtime_ns, size) of each path, (0, 0) when missing: changes whenever a file is rewritten."""
    out = []
    for path in paths:
        try:
            info = Path(path).stat()
            out.append((info.st_mtime_ns, info.st_size))
        except OSError:
            out.append((0, 0))
    return tuple(out)


def frame_digest(frame: pd.DataFrame) -> str:
    """A digest of a table's content (not of its file): equal frames give equal digests."""
    hashed = pd.util.hash_pandas_object(frame, index=False).to_numpy()
    return hashlib.sha256(hashed.tobytes() + ",".join(map(str, frame.columns)).encode()).hexdigest()[:16]


class ExperimentStore:
    """One experiment's artifacts, ``<root>/<experiment>/...`` (layout in ARCHITECTURE.md).

    Readers return ``None`` (or an empty frame / list) for what is not written yet, never raise for a
    missing file; a half-written file cannot exist under its final name (atomic writes).
    """

    def __init__(self, root: str | os.PathLike, experiment: str):
        self.root = Path(root) / experiment
        self.experiment = experiment

    @classmethod
    def open(cls, folder: str | os.PathLike) -> "ExperimentStore":
        """The store of an existing experiment folder (what the dashboard and the predictor are given)."""
        folder = Path(folder)
        return cls(folder.parent, folder.name)

    @classmethod
    def for_config(cls, config, out: str | os.PathLike | None = None) -> "ExperimentStore":
        """The store ``painlens run CONFIG [--out DIR]`` writes: ``DIR`` or the project's ``artifacts/``."""
        return cls(Path(out) if out else config.base_dir / "artifacts", config.name)

    @staticmethod
    def looks_like_experiment(folder: str | os.PathLike) -> bool:
        """Whether a folder holds an experiment (a manifest, samples, or runs of one still preparing)."""
        return any((Path(folder) / name).exists() for name in (MANIFEST, SAMPLES, RUNS))

    @classmethod
    def find(cls, location: str | os.PathLike) -> list[Path]:
        """Experiment folders at ``location``: itself when it holds one, else its sub-folders that do,
        newest manifest first."""
        location = Path(location)
        if not location.is_dir():
            return []
        if cls.looks_like_experiment(location):
            return [location]
        found = [p for p in location.iterdir() if p.is_dir() and cls.looks_like_experiment(p)]
        return sorted(found, key=lambda p: (-stamp(p / MANIFEST)[0][0], p.name))

    def exists(self) -> bool:
        return self.root.is_dir()

    # -- manifest and config ------------------------------------------------------------------------
    def manifest(self) -> dict:
        """The manifest (config, plan, datasets, versions...), ``{}`` while none is written."""
        try:
            manifest = read_json(self.root / MANIFEST)
        except (OSError, ValueError):
            return {}
        return manifest if isinstance(manifest, dict) else {}

    def write_manifest(self, manifest: dict) -> None:
        write_json(self.root / MANIFEST, manifest)

    def config(self):
        """The experiment's config as the typed ``ExperimentConfig``, rebuilt from the manifest and
        validated exactly like a TOML file (ConfigError with a sentence when it is not valid)."""
        from engine.config import config_from_dict
        from engine.errors import PainLensError

        raw = dict(self.manifest().get("config") or {})
        if not raw:
            raise PainLensError(f"{self.root} has no manifest with a config: run `painlens run CONFIG` first.")
        base_dir = raw.pop("base_dir", ".")
        return config_from_dict(raw, base_dir=Path(base_dir), source=f"{self.root.name}/{MANIFEST}")

    def plan(self) -> tuple[list[str], list[str]]:
        """(networks, scenarios) planned for this experiment, in the plan's order."""
        from engine.config import SCENARIO_NAMES

        manifest = self.manifest()
        plan, config = manifest.get("plan") or {}, manifest.get("config") or {}
        models = list(plan.get("models") or (config.get("training") or {}).get("models") or [])
        named = plan.get("scenarios") or (config.get("scenarios") or {}).get("names") or SCENARIO_NAMES
        return models, [s for s in SCENARIO_NAMES if s in named]

    # -- samples and experiment-level tables --------------------------------------------------------
    def samples(self) -> pd.DataFrame | None:
        return _read_table(self.root / SAMPLES)

    def write_samples(self, samples: pd.DataFrame) -> None:
        write_parquet(self.root / SAMPLES, samples)

    def table(self, name: str) -> pd.DataFrame | None:
        """An experiment-level table by name (see ``TABLES``), None when not written yet."""
        return _read_table(self._table_path(name))

    def write_table(self, name: str, frame: pd.DataFrame) -> None:
        path = self._table_path(name)
        (write_csv if path.suffix == ".csv" else write_parquet)(path, frame)

    def has_table(self, name: str) -> bool:
        return self._table_path(name).exists()

    def _table_path(self, name: str) -> Path:
        if name not in TABLES:
            raise KeyError(f"unknown store table {name!r}; known: {', '.join(TABLES)}")
        return self.root / TABLES[name]

    def version(self, *names: str) -> tuple:
        """A cheap stamp of experiment-level files by name (tables, "manifest", "samples",
        "heatmap_arrays"): changes whenever one of them is rewritten (for readers' caches)."""
        special = {"manifest": MANIFEST, "samples": SAMPLES, "heatmap_arrays": HEATMAP_ARRAYS}
        return stamp(*(self.root / (special.get(n) or TABLES[n]) for n in names))

    # -- runs -----------------------------------------------------------------------------------------
    def run_folder(self, key: RunKey) -> Path:
        """Where one run's files live. For writers that must hand a path to a library (Keras)."""
        return self.root / RUNS / key.model / key.scenario / str(key.fold)

    def finished_runs(self, scenario: str | None = None, model: str | None = None) -> list[RunKey]:
        """Every run with ``done.json`` (a run without it is never trusted), sorted."""
        keys = []
        for done in (self.root / RUNS).glob(f"{model or '*'}/{scenario or '*'}/*/{DONE}"):
            folder = done.parent
            if folder.name.isdigit():
                keys.append(RunKey(folder.parent.parent.name, folder.parent.name, int(folder.name)))
        return sorted(keys)

    def runs_version(self) -> tuple:
        """Stamp of every finished run: changes when a run finishes or is redone (readers' caches)."""
        return tuple((str(k), *stamp(self.run_folder(k) / DONE)) for k in self.finished_runs())

    def is_done(self, key: RunKey) -> bool:
        return (self.run_folder(key) / DONE).exists()

    def start_run(self, key: RunKey) -> None:
        """Before (re)training: the run is not finished until ``finish_run``; temp files of a killed
        write in the run's folder are removed (never read; only this run writes there)."""
        folder = self.run_folder(key)
        (folder / DONE).unlink(missing_ok=True)
        remove_temp_files(folder, recursive=False)

    def remove_stale_temp_files(self, written_before: float | None = None) -> int:
        """Remove the temp files that killed writes left anywhere in the experiment (its tables, runs,
        explanations, heatmaps, ratings); returns how many. Called when a command starts writing, before
        its training children or Ray tasks start: only files last written before ``written_before``
        (default: this call, the command's start) go, so a write that goes on after it keeps its file. The
        moment is the call's, not the process's start: a long-lived process (a notebook, the test suite,
        a server) that runs a command after another one was killed must still remove that one's files."""
        return remove_temp_files(self.root, written_before=time.time() if written_before is None else written_before)

    def finish_run(self, key: RunKey, record: dict) -> None:
        """Mark the run complete (written last). The record gains the digest of the predictions it
        finished with, which stamps every metric computed from them."""
        predictions = self.predictions(key)
        digest = frame_digest(predictions) if predictions is not None else ""
        write_json(self.run_folder(key) / DONE, {**record, "predictions_digest": digest})

    def run_record(self, key: RunKey) -> dict:
        """What ``done.json`` says (seconds, images, input size, weights, settings, predictions digest); {}
        if none."""
        try:
            return read_json(self.run_folder(key) / DONE)
        except (OSError, ValueError):
            return {}

    def write_predictions(self, key: RunKey, predictions: pd.DataFrame) -> None:
        write_parquet(self.run_folder(key) / PREDICTIONS, predictions)

    def predictions(self, key: RunKey) -> pd.DataFrame | None:
        return _read_table(self.run_folder(key) / PREDICTIONS)

    def finished_predictions(self, scenario: str | None = None) -> pd.DataFrame:
        """Predictions of every finished run (of one scenario), concatenated; empty when none."""
        frames = [p for p in (self.predictions(k) for k in self.finished_runs(scenario)) if p is not None]
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

    def write_history(self, key: RunKey, history: pd.DataFrame) -> None:
        write_csv(self.run_folder(key) / HISTORY, history)

    def history(self, key: RunKey) -> pd.DataFrame | None:
        return _read_table(self.run_folder(key) / HISTORY)

    def write_split(self, key: RunKey, split: dict) -> None:
        write_json(self.run_folder(key) / SPLIT, split)

    def split(self, key: RunKey) -> dict:
        try:
            return read_json(self.run_folder(key) / SPLIT)
        except (OSError, ValueError):
            return {}

    def write_adapt_curve(self, key: RunKey, curve: pd.DataFrame) -> None:
        """A cp_adapt run's learning curve (its subject's p(pain) after adapting on fewer subjects), before ``finish_run``."""
        write_parquet(self.run_folder(key) / ADAPT_CURVE, curve)

    def adapt_curve(self, key: RunKey) -> pd.DataFrame | None:
        return _read_table(self.run_folder(key) / ADAPT_CURVE)

    def kept_model_path(self, key: RunKey) -> Path:
        """The file a run's model is kept in (write it with ``atomic_path``)."""
        return self.run_folder(key) / KEPT_MODEL

    def kept_models(self, scenario: str | None = None) -> list[RunKey]:
        """Finished runs whose model is kept (for uploads: the external scenario's first seeds)."""
        return [k for k in self.finished_runs(scenario) if self.kept_model_path(k).exists()]

    # -- explanations -----------------------------------------------------------------------------------
    def masks_folder(self, key: RunKey) -> Path:
        return self.root / EXPLANATIONS / key.model / key.scenario / str(key.fold)

    def masks_done_path(self, key: RunKey) -> Path:
        """Written last by a run's LIME step: every chosen image is explained."""
        return self.masks_folder(key) / DONE

    def mask_part_path(self, key: RunKey, index: int) -> Path:
        return self.masks_folder(key) / MASK_PART.format(index=index)

    def mask_parts(self, key: RunKey) -> list[tuple[int, Path]]:
        """(index, path) of a run's mask parts, in order."""
        found = []
        for path in self.masks_folder(key).glob("part-*.npz"):
            match = MASK_PART_PATTERN.match(path.name)
            if match:
                found.append((int(match.group(1)), path))
        return sorted(found)

    def masks_record(self, key: RunKey) -> dict:
        try:
            return read_json(self.masks_done_path(key))
        except (OSError, ValueError):
            return {}

    def explained_runs(self) -> list[RunKey]:
        """Runs whose LIME masks are complete (their ``done.json`` written)."""
        keys = []
        for done in (self.root / EXPLANATIONS).glob(f"*/*/*/{DONE}"):
            folder = done.parent
            if folder.name.isdigit():
                keys.append(RunKey(folder.parent.parent.name, folder.parent.name, int(folder.name)))
        return sorted(keys)

    def masks_version(self, key: RunKey) -> tuple:
        return stamp(self.masks_done_path(key), *(path for _, path in self.mask_parts(key)))

    def write_gradcam(self, key: RunKey, **arrays) -> None:
        """A run's Grad-CAM maps (and their image ids, fingerprint), written before its masks finish."""
        _write_npz(self.masks_folder(key) / GRADCAM, arrays)

    def gradcam(self, key: RunKey) -> dict[str, np.ndarray] | None:
        return _read_npz(self.masks_folder(key) / GRADCAM)

    def write_sanity(self, key: RunKey, frame: pd.DataFrame) -> None:
        write_parquet(self.masks_folder(key) / SANITY, frame)

    def sanity(self, key: RunKey) -> pd.DataFrame | None:
        """A run's randomisation sanity check (only one run per network has one), None when absent."""
        return _read_table(self.masks_folder(key) / SANITY)

    def write_stability(self, key: RunKey, frame: pd.DataFrame) -> None:
        write_parquet(self.masks_folder(key) / STABILITY, frame)

    def stability(self, key: RunKey) -> pd.DataFrame | None:
        """A run's LIME stability over seeds (the sanity check's run), None when absent."""
        return _read_table(self.masks_folder(key) / STABILITY)

    # -- heatmaps -------------------------------------------------------------------------------------
    def write_heatmap_arrays(self, **arrays) -> None:
        _write_npz(self.root / HEATMAP_ARRAYS, arrays)

    def heatmap_arrays(self, names: tuple[str, ...] | None = None) -> dict[str, np.ndarray] | None:
        """The arrays of ``heatmaps.npz`` (all, or those in ``names``), None when absent or unreadable."""
        return _read_npz(self.root / HEATMAP_ARRAYS, names)

    # -- the served answer ------------------------------------------------------------------------------
    def write_features(self, key: RunKey, **arrays) -> None:
        """A development run's arrays (``engine.training.executor``): its training faces' and held-out faces'
        penultimate features, and its fold model's p(pain) and features on CP-PAIN; before ``finish_run``."""
        _write_npz(self.run_folder(key) / FEATURES, arrays)

    def features(self, key: RunKey) -> dict[str, np.ndarray] | None:
        return _read_npz(self.run_folder(key) / FEATURES)

    def served_adaptation_folder(self, model: str) -> Path:
        """Where a network's external model adapted on every CP-PAIN subject lives (``[evaluation]
        serve_cp_adapt``; not a run: ``finished_runs`` never lists it). Its model is ``KEPT_MODEL`` there."""
        return self.root / RUNS / model / "cp_adapt" / SERVED_ADAPTATION

    def served_adaptation_model_path(self, model: str) -> Path:
        return self.served_adaptation_folder(model) / KEPT_MODEL

    def write_served_adaptation(self, model: str, record: dict, **arrays) -> None:
        """The adaptation's arrays (the frozen features of its training faces), then its record, last (after
        its model, written with ``atomic_path`` to ``served_adaptation_model_path``)."""
        folder = self.served_adaptation_folder(model)
        _write_npz(folder / FEATURES, arrays)
        write_json(folder / ADAPTATION_RECORD, record)

    def served_adaptation(self, model: str) -> tuple[dict, dict[str, np.ndarray]] | None:
        """(record, arrays) of a network's served adaptation, None when it is not complete."""
        folder = self.served_adaptation_folder(model)
        try:
            record = read_json(folder / ADAPTATION_RECORD)
        except (OSError, ValueError):
            return None
        arrays = _read_npz(folder / FEATURES)
        if arrays is None or not (folder / KEPT_MODEL).exists():
            return None
        return record, arrays

    def served_adaptations_version(self) -> tuple:
        """Stamp of every network's served adaptation record (the answer refits when one is rewritten)."""
        return tuple((model, *stamp(self.served_adaptation_folder(model) / ADAPTATION_RECORD))
                     for model in sorted({k.model for k in self.finished_runs("cp_adapt")}))

    def write_answer(self, parameters: dict) -> None:
        write_json(self.root / ANSWER, parameters)

    def answer(self) -> dict | None:
        """The answer's parameters (``answer.json``), None while there are none (or they are unreadable)."""
        try:
            found = read_json(self.root / ANSWER)
        except (OSError, ValueError):
            return None
        return found if isinstance(found, dict) else None

    def answer_version(self) -> tuple:
        return stamp(self.root / ANSWER)

    def write_answer_appearance(self, arrays: dict[str, np.ndarray]) -> None:
        """The appearance check's arrays (per subject-wise fold: the PCA's mean and components); written before
        ``answer.json``, which says how they were fitted."""
        _write_npz(self.root / ANSWER_APPEARANCE, arrays)

    def answer_appearance(self) -> dict[str, np.ndarray] | None:
        return _read_npz(self.root / ANSWER_APPEARANCE)

    def write_action_units(self, arrays: dict[str, np.ndarray], fingerprint: str) -> None:
        """The fitted action-unit estimator (plain arrays, no pickle) and what it was fitted from; written last
        by the action-unit step."""
        _write_npz(self.root / ACTION_UNITS, {**arrays, "fingerprint": np.array(fingerprint)})

    def action_units(self) -> dict[str, np.ndarray] | None:
        """The estimator's arrays (``engine.models.action_units.ActionUnitModel.from_arrays``), None when absent."""
        return _read_npz(self.root / ACTION_UNITS)

    def action_units_fingerprint(self) -> str:
        found = _read_npz(self.root / ACTION_UNITS, ("fingerprint",))
        return str(found["fingerprint"]) if found and "fingerprint" in found else ""

    def action_units_version(self) -> tuple:
        return stamp(self.root / ACTION_UNITS)

    # -- ratings ----------------------------------------------------------------------------------------
    def write_ratings_file(self, name: str, content: pd.DataFrame | dict) -> None:
        """One file of the ratings step by name (see ``RATINGS_FILES``); write ``summary`` last."""
        path = self._ratings_path(name)
        if path.suffix == ".json":
            write_json(path, content)
        else:
            (write_csv if path.suffix == ".csv" else write_parquet)(path, content)

    def ratings_table(self, name: str) -> pd.DataFrame | None:
        return _read_table(self._ratings_path(name))

    def ratings_summary(self) -> dict | None:
        """The ratings step's summary (None until the step has finished)."""
        try:
            return read_json(self._ratings_path("summary"))
        except (OSError, ValueError):
            return None

    def ratings_version(self, *names: str) -> tuple:
        return stamp(*(self._ratings_path(n) for n in names))

    def _ratings_path(self, name: str) -> Path:
        if name not in RATINGS_FILES:
            raise KeyError(f"unknown ratings file {name!r}; known: {', '.join(RATINGS_FILES)}")
        return self.root / RATINGS / RATINGS_FILES[name]

    # -- faces --------------------------------------------------------------------------------------------
    def face_crop(self, cache_key: str) -> np.ndarray | None:
        """A preprocessed face crop (S, S, 3) uint8 from the face cache the experiment used, or None when
        that cache is not on this machine (the cache's own layout is ``engine.preprocess.cache``'s)."""
        from engine.errors import PainLensError
        from engine.preprocess.cache import read_crop

        if not isinstance(cache_key, str) or not cache_key:
            return None
        try:
            return read_crop(self.config().cache_dir(), cache_key)
        except PainLensError:  # no config, or the crop is not in this machine's cache
            return None


def _read_table(path: Path) -> pd.DataFrame | None:
    try:
        return pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
    except (OSError, ValueError):
        return None


def _write_npz(target: Path, arrays: dict[str, np.ndarray]) -> None:
    with atomic_path(target) as tmp:
        with open(tmp, "wb") as handle:
            np.savez_compressed(handle, **arrays)


def _read_npz(path: Path, names: tuple[str, ...] | None = None) -> dict[str, np.ndarray] | None:
    """The arrays of an ``.npz`` file (all, or those in ``names``), None when absent or unreadable."""
    try:
        with np.load(path, allow_pickle=False) as data:
            return {k: data[k] for k in data.files if names is None or k in names}
    except (OSError, ValueError, EOFError):
        return None
