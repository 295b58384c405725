"""The dashboard's readers: caching wrappers around the artifact store (``engine.artifacts``).

The dashboard never builds a path inside an experiment folder; it asks ``ExperimentStore``. Each
public loader takes the experiment folder, asks the store for a cheap *version* of what it reads
(modification time and size of the files behind it), and calls a ``st.cache_data`` function keyed on
(folder, version): a run finishing, or the engine rewriting a file, changes the version and so the next
page load reads the new content; unchanged content is never parsed twice. What is not written yet
gives ``None`` (or an empty frame), never an exception: the pages turn that into a sentence saying
which command writes it.

Only finished runs are read, and metrics are the store's current ones
(``engine.evaluation.results.current_results``): never older than the predictions they describe.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st

from engine.artifacts import ExperimentStore, RunKey
from engine.errors import PainLensError

SCENARIO_TITLES = {"image": "Image-wise (PAIN-DB)", "subject": "Subject-wise (PAIN-DB)",
                   "external": "External (CP-PAIN)"}


def store_of(root: Path) -> ExperimentStore:
    return ExperimentStore.open(root)


# --- the experiment -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Experiment:
    """One experiment folder, its manifest (an empty dict while none is written) and its typed config
    (None while there is no manifest, or when it is not a valid config)."""

    root: Path
    manifest: dict = field(default_factory=dict, compare=False, hash=False)
    config: object = field(default=None, compare=False, hash=False)  # engine.config.ExperimentConfig

    @property
    def store(self) -> ExperimentStore:
        return store_of(self.root)

    @property
    def name(self) -> str:
        return str(self.manifest.get("experiment") or self.root.name)

    @property
    def synthetic(self) -> bool:
        return bool(self.manifest.get("synthetic", False))

    @property
    def description(self) -> str:
        return self.config.experiment.description if self.config else ""

    @property
    def status(self) -> str:
        return str(self.manifest.get("status", "unknown"))

    @property
    def models(self) -> list[str]:
        """Planned networks in the order of the plan (the order of every chart)."""
        return self.store.plan()[0]

    @property
    def scenarios(self) -> list[str]:
        return self.store.plan()[1]

    @property
    def without_imagenet(self) -> bool:
        """The pretrained bases were trained from random weights (no ImageNet weights)."""
        return bool(self.config) and self.config.training.weights == "none"

    def runs_per_scenario(self, scenario: str) -> int:
        if not self.config:
            return 0
        if scenario == "cp_adapt":  # one run per CP-PAIN subject left out
            return int(((self.manifest.get("datasets") or {}).get("cppain") or {}).get("subjects") or 0)
        return self.config.scenarios.seeds if scenario == "external" else self.config.scenarios.folds

    def scenarios_of(self, model: str) -> list[str]:
        """The scenarios ``model`` runs in (a profile may keep a network to some: [scenarios] per_model)."""
        if not self.config:
            return self.scenarios
        return [s for s in self.scenarios if s in self.config.scenarios.for_model(model)]

    @property
    def restricted_models(self) -> dict[str, list[str]]:
        """Networks that run in only some of the experiment's scenarios, with those scenarios."""
        return {m: self.scenarios_of(m) for m in self.models if self.scenarios_of(m) != self.scenarios}

    @property
    def capped_models(self) -> dict[str, int]:
        """Networks trained on at most N batches per epoch ([training] steps_per_epoch_per_model), with N."""
        caps = self.config.training.steps_per_epoch_per_model if self.config else {}
        return {m: caps[m] for m in self.models if m in caps}

    @property
    def shortened_external_epochs(self) -> dict[str, float]:
        """Networks whose external runs trained fewer epochs than their others, with that share ([training]
        external_epoch_share)."""
        if self.config is None:
            return {}
        training = self.config.training
        return {m: training.external_epoch_share for m in self.models if "external" in self.scenarios_of(m)
                and training.epochs_for(m, "external") != training.epochs_for(m)}

    @property
    def unregularized_models(self) -> set[str]:
        """Networks trained without augmentation and dropout ([training] unregularized)."""
        names = self.config.training.unregularized if self.config else ()
        return {m for m in self.models if m in names}

    @property
    def planned_runs(self) -> int:
        return sum(self.runs_per_scenario(s) for m in self.models for s in self.scenarios_of(m))


def find_experiments(location: Path) -> list[Path]:
    """Experiment folders at ``location``: itself when it holds an experiment, else its sub-folders
    that do, newest first."""
    return ExperimentStore.find(location)


def load_experiment(root: Path) -> Experiment:
    root = Path(root)
    manifest, config = _experiment(str(root), store_of(root).version("manifest"))
    return Experiment(root, manifest, config)


@st.cache_data(show_spinner=False, max_entries=16)
def _experiment(root: str, version: tuple) -> tuple[dict, object]:
    store = store_of(Path(root))
    manifest = store.manifest()
    try:
        config = store.config() if manifest else None
    except PainLensError:
        config = None  # a manifest of another version: the pages still show what they can
    return manifest, config


# --- tables ---------------------------------------------------------------------------------------

def load_samples(root: Path) -> pd.DataFrame | None:
    """The sample table: every image with its dataset, subject, label and preprocessing status."""
    store = store_of(root)
    return _samples(str(root), store.version("samples"))


@st.cache_data(show_spinner=False, max_entries=8)
def _samples(root: str, version: tuple) -> pd.DataFrame | None:
    return store_of(Path(root)).samples()


def load_table(root: Path, name: str) -> pd.DataFrame | None:
    """An experiment-level table by its store name (``engine.artifacts.TABLES``), None when absent."""
    return _table(str(root), name, store_of(root).version(name))


@st.cache_data(show_spinner=False, max_entries=64)
def _table(root: str, name: str, version: tuple) -> pd.DataFrame | None:
    return store_of(Path(root)).table(name)


def load_answer(root: Path) -> dict | None:
    """The served answer's parameters (``answer.json``), None before they are fitted."""
    return _answer(str(root), store_of(root).answer_version())


@st.cache_data(show_spinner=False, max_entries=8)
def _answer(root: str, version: tuple) -> dict | None:
    return store_of(Path(root)).answer()


def load_ratings_table(root: Path, name: str) -> pd.DataFrame | None:
    """A table of the ratings step by name (``engine.artifacts.RATINGS_FILES``), None when absent."""
    return _ratings_table(str(root), name, store_of(root).ratings_version(name))


@st.cache_data(show_spinner=False, max_entries=32)
def _ratings_table(root: str, name: str, version: tuple) -> pd.DataFrame | None:
    return store_of(Path(root)).ratings_table(name)


def load_ratings_summary(root: Path) -> dict | None:
    """The ratings step's summary, None until that step has finished."""
    return _ratings_summary(str(root), store_of(root).ratings_version("summary"))


@st.cache_data(show_spinner=False, max_entries=8)
def _ratings_summary(root: str, version: tuple) -> dict | None:
    return store_of(Path(root)).ratings_summary()


# --- runs -----------------------------------------------------------------------------------------

def runs_version(root: Path) -> tuple:
    """Changes when a run finishes or is redone."""
    return store_of(root).runs_version()


def run_status(experiment: Experiment) -> pd.DataFrame:
    """One row per planned (model, scenario, fold) and per finished run found: model, scenario, fold,
    done, kept_model (a model kept for uploads), seconds."""
    plan = tuple((m, s, experiment.runs_per_scenario(s)) for m in experiment.models for s in experiment.scenarios_of(m))
    return _run_status(str(experiment.root), runs_version(experiment.root), tuple(experiment.models),
                       tuple(experiment.scenarios), plan)


@st.cache_data(show_spinner=False, max_entries=16)
def _run_status(root: str, version: tuple, models: tuple, scenario_order: tuple, plan: tuple) -> pd.DataFrame:
    store = store_of(Path(root))
    rows = {(m, s, f): {"done": False, "kept_model": False, "seconds": np.nan} for m, s, n in plan for f in range(n)}
    for key in store.finished_runs():
        seconds = store.run_record(key).get("seconds", np.nan)
        rows[(key.model, key.scenario, key.fold)] = {"done": True, "kept_model": store.kept_model_path(key).exists(),
                                                     "seconds": float(seconds)}
    frame = pd.DataFrame([{"model": k[0], "scenario": k[1], "fold": k[2], **v} for k, v in rows.items()],
                         columns=["model", "scenario", "fold", "done", "kept_model", "seconds"])
    # The plan's order of networks and scenarios (that of every chart); unplanned runs last.
    model_rank = {m: i for i, m in enumerate(models)}
    scenario_rank = {s: i for i, s in enumerate(scenario_order)}
    frame = frame.assign(_m=frame["model"].map(model_rank).fillna(len(models)),
                         _s=frame["scenario"].map(scenario_rank).fillna(len(scenario_order)))
    return frame.sort_values(["_m", "model", "_s", "fold"]).drop(columns=["_m", "_s"]).reset_index(drop=True)


def load_predictions(root: Path) -> pd.DataFrame:
    """Predictions of every finished run (model, scenario, fold, image_id, dataset, true_label, p_pain,
    predicted_label...), concatenated; empty when none has finished."""
    return _predictions(str(root), runs_version(root))


@st.cache_data(show_spinner=False, max_entries=8)
def _predictions(root: str, version: tuple) -> pd.DataFrame:
    return store_of(Path(root)).finished_predictions()


def load_results(root: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(metrics, summary) of the finished runs as their predictions are now: per (run, class), and per
    (model, scenario, class) over folds / seeds. A run redone since the engine last wrote the metrics
    is computed afresh, so no stale metric is ever shown."""
    store = store_of(root)
    return _results(str(root), store.runs_version(), store.version("metrics", "summary"))


@st.cache_data(show_spinner=False, max_entries=8)
def _results(root: str, runs: tuple, tables: tuple) -> tuple[pd.DataFrame, pd.DataFrame]:
    from engine.evaluation.results import current_results

    return current_results(store_of(Path(root)))


def load_metrics(root: Path) -> pd.DataFrame:
    return load_results(root)[0]


def kept_models(root: Path) -> pd.DataFrame:
    """Trained networks kept for uploads: model, scenario, fold, path (one row per kept model)."""
    store = store_of(root)
    rows = [{"model": k.model, "scenario": k.scenario, "fold": k.fold, "path": str(store.kept_model_path(k))}
            for k in store.kept_models()]
    return pd.DataFrame(rows, columns=["model", "scenario", "fold", "path"])


# --- explanations ---------------------------------------------------------------------------------

HEATMAP_ARRAYS = ("heatmaps", "stretched", "faces", "differences", "regions", "region_names", "template_landmarks")
HEATMAP_TABLES = ("heatmaps", "heatmap_differences", "region_scores", "heatmap_similarity", "heatmap_clusters")


@dataclass
class Heatmaps:
    """The experiment's global heatmaps: ``groups`` (the heatmaps table) indexes the arrays."""

    groups: pd.DataFrame
    arrays: dict[str, np.ndarray]
    differences: pd.DataFrame
    regions: pd.DataFrame
    similarity: pd.DataFrame
    clusters: pd.DataFrame


def load_heatmaps(root: Path) -> Heatmaps | None:
    """None until the explain step has written its heatmaps (the group table comes last)."""
    return _heatmaps(str(root), store_of(root).version(*HEATMAP_TABLES, "heatmap_arrays"))


@st.cache_data(show_spinner=False, max_entries=4)
def _heatmaps(root: str, version: tuple) -> Heatmaps | None:
    store = store_of(Path(root))
    groups = store.table("heatmaps")
    arrays = store.heatmap_arrays(HEATMAP_ARRAYS) if groups is not None else None
    if groups is None or arrays is None:
        return None

    def frame(name: str) -> pd.DataFrame:
        table = store.table(name)
        return table if table is not None else pd.DataFrame()

    return Heatmaps(groups, arrays, *(frame(name) for name in HEATMAP_TABLES[1:]))


def explained_runs(root: Path) -> list[RunKey]:
    """Every run whose LIME masks are complete."""
    return store_of(root).explained_runs()


def load_masks(root: Path, model: str, scenario: str, fold: int):
    """One run's LIME masks (engine.explain.mask_store.RunMasks), or None when not explained."""
    key = RunKey(model, scenario, int(fold))
    return _masks(str(root), key, store_of(root).masks_version(key))


@st.cache_data(show_spinner=False, max_entries=32)
def _masks(root: str, key: RunKey, version: tuple):
    from engine.explain.mask_store import load_run_masks

    try:
        return load_run_masks(store_of(Path(root)), key)
    except (OSError, ValueError, KeyError):
        return None


# --- faces ----------------------------------------------------------------------------------------

def load_face(experiment: Experiment, cache_key: str) -> np.ndarray | None:
    """A test image's preprocessed face crop (S, S, 3) uint8 from the engine's face cache, or None
    when that cache is not on this machine."""
    if not isinstance(cache_key, str) or not cache_key:
        return None
    return _face(str(experiment.root), cache_key)


@st.cache_data(show_spinner=False, max_entries=256)
def _face(root: str, cache_key: str) -> np.ndarray | None:
    return store_of(Path(root)).face_crop(cache_key)


# --- evaluation: calibration and per-subject results --------------------------------------------

def load_calibration(root: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(calibration, reliability) as the finished runs are now: per network the temperature fitted on
    its subject-wise out-of-fold predictions and the ECE before / after, and the reliability bins
    (``engine.evaluation.calibration``; a network whose runs changed since the engine wrote them is
    computed afresh)."""
    store = store_of(root)
    return _calibration(str(root), store.runs_version(), store.version("calibration", "reliability"))


@st.cache_data(show_spinner=False, max_entries=8)
def _calibration(root: str, runs: tuple, tables: tuple) -> tuple[pd.DataFrame, pd.DataFrame]:
    from engine.evaluation.calibration import current_calibration

    return current_calibration(store_of(Path(root)))


def load_subjects(root: Path) -> pd.DataFrame:
    """Per (network, scenario, subject): images, accuracy, AUC, expressiveness (``engine.evaluation.subjects``),
    as the finished runs are now."""
    store = store_of(root)
    return _subjects(str(root), store.runs_version(), store.version("subjects", "samples", "manifest"))


@st.cache_data(show_spinner=False, max_entries=8)
def _subjects(root: str, runs: tuple, tables: tuple) -> pd.DataFrame:
    from engine.evaluation.subjects import current_subjects

    return current_subjects(store_of(Path(root)))


# --- the faithfulness scorecard (engine/explain/scorecard.py) --------------------------------------

SCORECARD_TABLES = ("faithfulness", "faithfulness_summary", "sanity_checks", "explain_timings", "lime_stability")
EXPLAINER_ARRAYS = ("gradcam_stretched", "gradcam_heatmaps", "pain_regions", "pain_region_names")


@dataclass
class Scorecard:
    """Per explained image and explainer (``images``), its summary with intervals over subjects
    (``summary``), and the sanity check's verdicts per network and explainer (``sanity``)."""

    images: pd.DataFrame
    summary: pd.DataFrame
    sanity: pd.DataFrame
    unscored: pd.DataFrame = field(default_factory=pd.DataFrame)  # model, scenario, runs, of_runs, reason
    stability: pd.DataFrame = field(default_factory=pd.DataFrame)  # per network: LIME over seeds (``unstable``)


def load_scorecard(root: Path) -> Scorecard | None:
    """None until the explain step has written the scorecard."""
    return _scorecard(str(root), store_of(root).version(*SCORECARD_TABLES))


@st.cache_data(show_spinner=False, max_entries=4)
def _scorecard(root: str, version: tuple) -> Scorecard | None:
    store = store_of(Path(root))
    summary = store.table("faithfulness_summary")
    if summary is None:
        return None
    images, sanity, stability = store.table("faithfulness"), store.table("sanity_checks"), store.table("lime_stability")
    return Scorecard(images if images is not None else pd.DataFrame(), summary,
                     sanity if sanity is not None else pd.DataFrame(), unscored_runs(store.table("explain_timings")),
                     stability if stability is not None else pd.DataFrame())


def unscored_runs(timings: pd.DataFrame | None) -> pd.DataFrame:
    """Per (network, scenario) with runs the scorecard skipped (their network gave every test image one
    class): how many of its explained runs, and why."""
    columns = ["model", "scenario", "runs", "of_runs", "reason"]
    if timings is None or timings.empty or "scorecard_skipped" not in timings:
        return pd.DataFrame(columns=columns)
    skipped = timings["scorecard_skipped"].fillna("").astype(str)
    counts = timings.assign(skipped=skipped.ne("")).groupby(["model", "scenario"], sort=True).agg(
        runs=("skipped", "sum"), of_runs=("skipped", "size"))
    reasons = timings[skipped.ne("")].assign(reason=skipped[skipped.ne("")]).groupby(["model", "scenario"])["reason"].agg(
        lambda r: "; ".join(sorted(set(r))))
    table = counts[counts["runs"] > 0].join(reasons).reset_index()
    return table[columns]


def load_explainer_maps(root: Path) -> dict[str, np.ndarray]:
    """Grad-CAM's stretched and mean heatmaps (aligned with the heatmap groups) and the pain-region map of the
    template; {} for heatmaps written before the scorecard existed."""
    return _explainer_maps(str(root), store_of(root).version("heatmaps", "heatmap_arrays"))


@st.cache_data(show_spinner=False, max_entries=4)
def _explainer_maps(root: str, version: tuple) -> dict[str, np.ndarray]:
    return store_of(Path(root)).heatmap_arrays(EXPLAINER_ARRAYS) or {}
