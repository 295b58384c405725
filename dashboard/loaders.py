"""Artifact readers behind ``st.cache_data``: each file is read once per change, never written.

Every public loader takes the experiment folder, computes a cheap *stamp* of the files it reads
(modification time and size), and calls a cached function keyed on (folder, stamp): a new run
finishing, or the engine rewriting a file, changes the stamp and so the next page load reads the new
content; an unchanged file is never parsed twice. Cached functions take the stamp as an ordinary
argument named ``version`` (Streamlit leaves parameters starting with "_" out of the cache key). A
missing file gives ``None`` (or an empty frame), never an exception: the pages turn that into a sentence saying which command writes it.

Only finished runs (``done.json`` present) are read, as the engine's own readers do.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st

SCENARIOS = ("image", "subject", "external")
SCENARIO_TITLES = {"image": "Image-wise (PAIN-DB)", "subject": "Subject-wise (PAIN-DB)",
                   "external": "External (CP-PAIN)"}
KEPT_MODEL = "model.keras"


def stamp(*paths: Path) -> tuple:
    """(mtime_ns, size) of each path, (0, 0) when missing: changes whenever a file is rewritten."""
    out = []
    for path in paths:
        try:
            info = Path(path).stat()
            out.append((info.st_mtime_ns, info.st_size))
        except OSError:
            out.append((0, 0))
    return tuple(out)


def _done_files(root: Path) -> list[Path]:
    return sorted((root / "runs").glob("*/*/*/done.json"))


def runs_stamp(root: Path) -> tuple:
    """Stamp of every finished run: changes when a run finishes or is redone."""
    return stamp(*_done_files(root))


# --- the experiment -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Experiment:
    """One experiment folder and its manifest (an empty dict while none is written)."""

    root: Path
    manifest: dict = field(default_factory=dict, compare=False, hash=False)

    @property
    def name(self) -> str:
        return str(self.manifest.get("experiment") or self.root.name)

    @property
    def synthetic(self) -> bool:
        return bool(self.manifest.get("synthetic", False))

    @property
    def config(self) -> dict:
        return self.manifest.get("config", {}) or {}

    @property
    def description(self) -> str:
        return str(self.config.get("experiment", {}).get("description", ""))

    @property
    def status(self) -> str:
        return str(self.manifest.get("status", "unknown"))

    @property
    def models(self) -> list[str]:
        """Planned networks in the order of the plan (the order of every chart)."""
        plan = self.manifest.get("plan", {}) or {}
        return list(plan.get("models") or self.config.get("training", {}).get("models") or [])

    @property
    def scenarios(self) -> list[str]:
        plan = self.manifest.get("plan", {}) or {}
        names = plan.get("scenarios") or self.config.get("scenarios", {}).get("names") or SCENARIOS
        return [s for s in SCENARIOS if s in names]

    def runs_per_scenario(self, scenario: str) -> int:
        section = self.config.get("scenarios", {})
        return int(section.get("seeds", 5) if scenario == "external" else section.get("folds", 5))

    @property
    def planned_runs(self) -> int:
        return len(self.models) * sum(self.runs_per_scenario(s) for s in self.scenarios)

    def cache_dir(self) -> Path | None:
        """The face cache the engine preprocessed into (crops for the image browser), if recorded."""
        pre = self.config.get("preprocess", {})
        if not pre.get("cache_dir"):
            return None
        path = Path(pre["cache_dir"])
        return path if path.is_absolute() else Path(self.config.get("base_dir", ".")) / path


def find_experiments(location: Path) -> list[Path]:
    """Experiment folders at ``location``: itself when it holds an experiment, else its sub-folders
    that do (a manifest, or runs/ of a run still preparing), newest first."""
    location = Path(location)
    if not location.is_dir():
        return []
    if _looks_like_experiment(location):
        return [location]
    found = [p for p in location.iterdir() if p.is_dir() and _looks_like_experiment(p)]
    return sorted(found, key=lambda p: (-stamp(p / "manifest.json")[0][0], p.name))


def _looks_like_experiment(folder: Path) -> bool:
    return any((folder / name).exists() for name in ("manifest.json", "samples.parquet", "runs"))


def load_experiment(root: Path) -> Experiment:
    root = Path(root)
    return Experiment(root, _manifest(str(root), stamp(root / "manifest.json")) or {})


@st.cache_data(show_spinner=False, max_entries=16)
def _manifest(root: str, version: tuple) -> dict | None:
    path = Path(root) / "manifest.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


# --- tables ---------------------------------------------------------------------------------------

def load_table(root: Path, relative: str) -> pd.DataFrame | None:
    """A parquet or CSV file of the experiment (``relative`` to its folder), or None when absent."""
    path = Path(root) / relative
    return _table(str(path), stamp(path))


@st.cache_data(show_spinner=False, max_entries=64)
def _table(path: str, version: tuple) -> pd.DataFrame | None:
    try:
        return pd.read_parquet(path) if path.endswith(".parquet") else pd.read_csv(path)
    except (OSError, ValueError):
        return None


def load_json(root: Path, relative: str) -> dict | None:
    path = Path(root) / relative
    return _json(str(path), stamp(path))


@st.cache_data(show_spinner=False, max_entries=32)
def _json(path: str, version: tuple) -> dict | None:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


# --- runs -----------------------------------------------------------------------------------------

def run_status(experiment: Experiment) -> pd.DataFrame:
    """One row per planned (model, scenario, fold) and per finished run found: model, scenario, fold,
    done, kept_model (a model.keras for uploads), seconds."""
    return _run_status(str(experiment.root), runs_stamp(experiment.root), tuple(experiment.models),
                       tuple((s, experiment.runs_per_scenario(s)) for s in experiment.scenarios))


@st.cache_data(show_spinner=False, max_entries=16)
def _run_status(root: str, version: tuple, models: tuple, scenarios: tuple) -> pd.DataFrame:
    rows = {(m, s, f): {"done": False, "kept_model": False, "seconds": np.nan}
            for m in models for s, n in scenarios for f in range(n)}
    for done in _done_files(Path(root)):
        folder = done.parent
        key = (folder.parent.parent.name, folder.parent.name, int(folder.name))
        try:
            seconds = float(json.loads(done.read_text(encoding="utf-8")).get("seconds", np.nan))
        except (OSError, ValueError):
            seconds = np.nan
        rows[key] = {"done": True, "kept_model": (folder / KEPT_MODEL).exists(), "seconds": seconds}
    frame = pd.DataFrame([{"model": k[0], "scenario": k[1], "fold": k[2], **v} for k, v in rows.items()],
                         columns=["model", "scenario", "fold", "done", "kept_model", "seconds"])
    # The plan's order of networks and scenarios (that of every chart); unplanned runs last.
    model_rank = {m: i for i, m in enumerate(models)}
    scenario_rank = {s: i for i, (s, _) in enumerate(scenarios)}
    frame = frame.assign(_m=frame["model"].map(model_rank).fillna(len(models)),
                         _s=frame["scenario"].map(scenario_rank).fillna(len(scenarios)))
    return frame.sort_values(["_m", "model", "_s", "fold"]).drop(columns=["_m", "_s"]).reset_index(drop=True)


def load_predictions(root: Path) -> pd.DataFrame:
    """Predictions of every finished run (model, scenario, fold, image_id, dataset, true_label, p_pain,
    predicted_label...), concatenated; empty when none has finished."""
    return _predictions(str(root), runs_stamp(root))


@st.cache_data(show_spinner=False, max_entries=8)
def _predictions(root: str, version: tuple) -> pd.DataFrame:
    frames = []
    for done in _done_files(Path(root)):
        try:
            frames.append(pd.read_parquet(done.parent / "predictions.parquet"))
        except (OSError, ValueError):
            continue  # a run being redone: its done.json is about to go
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def load_metrics(root: Path) -> pd.DataFrame:
    """Per (run, class) metrics: ``metrics.parquet`` when it covers every finished run, else the same
    computation (engine.training.metrics) on the finished runs' predictions, so the comparison is
    current while a grid is still training."""
    root = Path(root)
    return _metrics(str(root), runs_stamp(root), stamp(root / "metrics.parquet"))


@st.cache_data(show_spinner=False, max_entries=8)
def _metrics(root: str, runs_version: tuple, metrics_version: tuple) -> pd.DataFrame:
    finished = len(runs_version)
    stored = _table(str(Path(root) / "metrics.parquet"), metrics_version)
    if stored is not None and len(stored) and len(stored.groupby(["model", "scenario", "fold"])) >= finished:
        return stored
    predictions = _predictions(root, runs_version)
    if predictions.empty:
        return pd.DataFrame()
    from engine.evaluation.metrics import run_metrics

    return run_metrics(predictions)


def load_results(root: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(metrics, summary) of the same finished runs, even while more runs finish in between.

    summary: mean and standard deviation over folds / seeds per (model, scenario, class), the
    engine's ``summary.parquet`` when it is as current as the finished runs, else computed the
    engine's way (engine.training.metrics.summarize) from the metrics."""
    root = Path(root)
    runs, metrics_version = runs_stamp(root), stamp(root / "metrics.parquet")
    return (_metrics(str(root), runs, metrics_version),
            _summary(str(root), runs, metrics_version, stamp(root / "summary.parquet")))


@st.cache_data(show_spinner=False, max_entries=8)
def _summary(root: str, runs_version: tuple, metrics_version: tuple, summary_version: tuple) -> pd.DataFrame:
    metrics = _metrics(root, runs_version, metrics_version)
    stored = _table(str(Path(root) / "summary.parquet"), summary_version)
    finished = int((metrics["class"] == "macro").sum()) if len(metrics) else 0
    if stored is not None and "runs" in stored and int(stored.loc[stored["class"] == "macro", "runs"].sum()) == finished > 0:
        return stored  # the engine's own summary covers every finished run
    if metrics.empty:
        return pd.DataFrame()
    from engine.evaluation.metrics import summarize

    return summarize(metrics)


def kept_models(root: Path) -> pd.DataFrame:
    """Trained networks kept for uploads: model, scenario, fold, path (one row per model.keras)."""
    rows = []
    for path in sorted(Path(root).glob(f"runs/*/*/*/{KEPT_MODEL}")):
        if (path.parent / "done.json").exists():
            rows.append({"model": path.parent.parent.parent.name, "scenario": path.parent.parent.name,
                         "fold": int(path.parent.name), "path": str(path)})
    return pd.DataFrame(rows, columns=["model", "scenario", "fold", "path"])


# --- explanations ---------------------------------------------------------------------------------

HEATMAP_ARRAYS = ("heatmaps", "stretched", "faces", "differences", "regions", "region_names", "template_landmarks")


@dataclass
class Heatmaps:
    """The experiment's global heatmaps: ``groups`` (heatmaps.parquet) indexes the arrays."""

    groups: pd.DataFrame
    arrays: dict[str, np.ndarray]
    differences: pd.DataFrame
    regions: pd.DataFrame
    similarity: pd.DataFrame
    clusters: pd.DataFrame


def load_heatmaps(root: Path) -> Heatmaps | None:
    """None until ``heatmaps.parquet`` (written last by the explain step) exists."""
    root = Path(root)
    names = ("heatmaps.parquet", "heatmaps.npz", "heatmap_differences.parquet", "region_scores.parquet",
             "heatmap_similarity.parquet", "heatmap_clusters.parquet")
    return _heatmaps(str(root), stamp(*(root / n for n in names)))


@st.cache_data(show_spinner=False, max_entries=4)
def _heatmaps(root: str, version: tuple) -> Heatmaps | None:
    base = Path(root)
    groups = _table(str(base / "heatmaps.parquet"), version[:1])
    if groups is None:
        return None
    try:
        with np.load(base / "heatmaps.npz", allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files if k in HEATMAP_ARRAYS}
    except (OSError, ValueError):
        return None

    def frame(name: str) -> pd.DataFrame:
        table = _table(str(base / name), stamp(base / name))
        return table if table is not None else pd.DataFrame()

    return Heatmaps(groups, arrays, frame("heatmap_differences.parquet"), frame("region_scores.parquet"),
                    frame("heatmap_similarity.parquet"), frame("heatmap_clusters.parquet"))


def explained_runs(root: Path) -> list[tuple[str, str, int]]:
    """(model, scenario, fold) of every run whose LIME masks are complete."""
    out = []
    for done in sorted(Path(root).glob("explanations/*/*/*/done.json")):
        folder = done.parent
        out.append((folder.parent.parent.name, folder.parent.name, int(folder.name)))
    return out


def load_masks(root: Path, model: str, scenario: str, fold: int):
    """One run's LIME masks (engine.explain.mask_store.RunMasks), or None when not explained."""
    folder = Path(root) / "explanations" / model / scenario / str(fold)
    parts = sorted(folder.glob("part-*.npz"))
    return _masks(str(folder), stamp(folder / "done.json", *parts))


@st.cache_data(show_spinner=False, max_entries=32)
def _masks(folder: str, version: tuple):
    from engine.explain.mask_store import load_run_masks

    if not (Path(folder) / "done.json").exists():
        return None
    try:
        return load_run_masks(Path(folder))
    except (OSError, ValueError, KeyError):
        return None


# --- faces ----------------------------------------------------------------------------------------

def load_face(experiment: Experiment, cache_key: str) -> np.ndarray | None:
    """A test image's preprocessed face crop (S, S, 3) uint8 from the engine's face cache, or None
    when that cache is not on this machine."""
    folder = experiment.cache_dir()
    if folder is None or not isinstance(cache_key, str) or not cache_key:
        return None
    path = folder / cache_key[:2] / f"{cache_key}.png"
    return _face(str(path), stamp(path))


@st.cache_data(show_spinner=False, max_entries=256)
def _face(path: str, version: tuple) -> np.ndarray | None:
    from PIL import Image

    try:
        with Image.open(path) as image:
            return np.asarray(image.convert("RGB"))
    except (OSError, ValueError):
        return None
