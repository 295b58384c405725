"""Per-subject results: whom does a network fail on?

One row per (network, scenario, subject) of the finished runs: the subject's tested images, how many
show pain, accuracy, ROC-AUC where the subject has both classes, and the subject's expressiveness.
Images are pooled as in ``engine.evaluation.bootstrap`` (external: p(pain) averaged over seeds).

Expressiveness (of the subject's tested images labelled pain, so that it does not depend on how many
no-pain images were drawn): the mean PSPI (0-16) where the samples carry one (UNBC, real or synthetic);
for synthetic MIntPAIN, whose faces are drawn from the coded pain level, the mean coded level (0-4);
blank elsewhere (Delaware and CP-PAIN carry no intensity beyond the label; a real MIntPAIN level is
the stimulus, not the face).
"""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd

from engine.artifacts import ExperimentStore
from engine.evaluation.bootstrap import pooled_images
from engine.evaluation.freshness import DIGEST, GROUP, FinishedRuns, fresh_and_stale

VERSION = "subjects-v1"  # part of every stamp: a new version makes stored rows stale (bump on changes)
SUBJECT_COLUMNS = ["model", "scenario", "dataset", "subject", "images", "pain_images", "accuracy", "auc",
                   "expressiveness", "expressiveness_measure", DIGEST]
MEASURES = {"pspi": "mean PSPI of pain images (0-16)", "level": "mean coded pain level of pain images (0-4)"}


def subject_results(predictions: pd.DataFrame, samples: pd.DataFrame | None, synthetic: bool) -> pd.DataFrame:
    """``SUBJECT_COLUMNS`` but the stamp, for every (model, scenario) in ``predictions`` (vectorised:
    one grouped pass). ``samples``: the store's sample table (for PSPI and levels; None: blank)."""
    if predictions.empty:
        return pd.DataFrame(columns=SUBJECT_COLUMNS[:-1])
    pooled = pooled_images(predictions).merge(_expression(samples, synthetic), on="image_id", how="left")
    if "dataset" not in pooled:
        pooled["dataset"] = ""
    keys = ["model", "scenario", "subject"]
    pooled["correct"] = (pooled["predicted_label"] == pooled["true_label"]).astype(float)
    pooled["pain_expression"] = pooled["expression"].where(pooled["true_label"] == 1)
    pooled["pain_measure"] = pooled["measure"].where(pooled["pain_expression"].notna())
    table = pooled.groupby(keys, sort=True).agg(
        dataset=("dataset", "first"), images=("image_id", "size"), pain_images=("true_label", "sum"),
        accuracy=("correct", "mean"), expressiveness=("pain_expression", "mean"),
        expressiveness_measure=("pain_measure", "first")).reset_index()
    table["auc"] = _subject_auc(pooled, keys).to_numpy()
    table["expressiveness_measure"] = table["expressiveness_measure"].fillna("")
    return table[SUBJECT_COLUMNS[:-1]]


def _subject_auc(pooled: pd.DataFrame, keys: list[str]) -> pd.Series:
    """ROC-AUC per group from ranks (Mann-Whitney; ties share their mean rank): NaN for a group with one class."""
    ranks = pooled.groupby(keys, sort=True)["p_pain"].rank(method="average")
    positive = pooled["true_label"] == 1
    grouped = pd.DataFrame({"rank": ranks.where(positive, 0.0), "pos": positive.astype(float),
                            "neg": (~positive).astype(float)}).groupby([pooled[k] for k in keys], sort=True).sum()
    with np.errstate(invalid="ignore", divide="ignore"):
        auc = (grouped["rank"] - grouped["pos"] * (grouped["pos"] + 1) / 2) / (grouped["pos"] * grouped["neg"])
    return auc.where((grouped["pos"] > 0) & (grouped["neg"] > 0))


def _expression(samples: pd.DataFrame | None, synthetic: bool) -> pd.DataFrame:
    """Per image: the value and name of its expressiveness measure (NaN / "" when none)."""
    if samples is None or samples.empty:
        return pd.DataFrame({"image_id": pd.Series(dtype=str), "expression": pd.Series(dtype=float),
                             "measure": pd.Series(dtype=str)})
    frame = samples[["image_id"]].copy()
    pspi = samples["pspi"].astype(float) if "pspi" in samples else pd.Series(np.nan, index=samples.index)
    level = samples["intensity"].astype(float) if "intensity" in samples else pd.Series(np.nan, index=samples.index)
    use_level = samples["dataset"].eq("mintpain") & pspi.isna() & synthetic
    frame["expression"] = pspi.where(pspi.notna(), level.where(use_level))
    frame["measure"] = np.where(pspi.notna(), MEASURES["pspi"], np.where(use_level, MEASURES["level"], ""))
    return frame.drop_duplicates("image_id")


def refresh_subjects(store: ExperimentStore, runs: FinishedRuns | None = None) -> pd.DataFrame:
    """Bring ``subjects`` up to date with the finished runs and write it; returns it."""
    table = current_subjects(store, runs)
    store.write_table("subjects", table)
    return table


def current_subjects(store: ExperimentStore, runs: FinishedRuns | None = None) -> pd.DataFrame:
    """The per-subject table as the stored runs are now: stored rows of the (model, scenario) groups
    whose stamp matches their runs, the other groups computed (nothing is written)."""
    runs = runs or FinishedRuns(store)
    stamps = {g: hashlib.sha256(f"{VERSION},{d}".encode()).hexdigest()[:16] for g, d in runs.group_stamps().items()}
    fresh, stale = fresh_and_stale(store.table("subjects"), GROUP, stamps)
    computed = pd.DataFrame(columns=SUBJECT_COLUMNS)
    if stale:
        synthetic = bool(store.manifest().get("synthetic", False))
        computed = subject_results(runs.of_groups(stale), store.samples(), synthetic)
        computed[DIGEST] = [stamps[g] for g in zip(computed["model"], computed["scenario"])]
    parts = [f for f in (fresh, computed) if len(f)]
    table = pd.concat(parts, ignore_index=True) if parts else computed
    return table.sort_values(["model", "scenario", "subject"]).reset_index(drop=True)[SUBJECT_COLUMNS]
