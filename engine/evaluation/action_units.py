"""The action-unit step of ``painlens run``: fit the AU estimator on UNBC, evaluate it subject-wise, rate CP-PAIN.

    UNBC faces of the experiment (PAIN-DB's UNBC frames: their FACS codes, crops and landmarks)
      ──subject-wise folds──► out-of-fold AUs and PSPI per frame ──► per AU: ICC(3,1), MAE, occurrence F1;
                                                                    PSPI: ICC(3,1), MAE; intervals over subjects
      ──all frames──► the served estimator (``action_units.npz``, loaded by ``engine.predict``)
    CP-PAIN faces ──served estimator──► the model's FACS pain score per video ──► the model as a third rater
                                                                                  (``engine.ratings.model_rater``)
    PAIN-DB's other faces (Delaware, MintPAIN: people the estimator never saw) ──served estimator──► their PSPI,
      with UNBC's out-of-fold PSPI the development PSPI the served answer is fitted on (``answer_fit``)

CP-PAIN is the sealed test: nothing here is fitted on it. The step is cached like the grid: it is skipped
when its artifacts exist and their fingerprint (this step's settings, the features' version, the UNBC and
CP-PAIN faces, the ratings file) matches.

Intervals: bootstrap over subjects (``engine.evaluation.bootstrap``: a resample draws subjects with
replacement and takes all of each drawn subject's frames), percentile 95 %.
"""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pandas as pd

from engine.artifacts import ExperimentStore, frame_digest
from engine.evaluation.bootstrap import cluster_weights, percentile_interval
from engine.models.action_units import FEATURES_VERSION, PAIN_AUS, ActionUnitModel, features_many, occurred
from engine.ratings.model_rater import model_as_rater, with_facs_scores

TARGETS = (*PAIN_AUS, "PSPI")
EVALUATION_COLUMNS = ("target", "icc", "icc_low", "icc_high", "mae", "mae_low", "mae_high", "f1", "f1_low",
                      "f1_high", "present", "n_images", "n_subjects", "folds", "bootstrap_resamples", "method")
METHOD = ("Subject-wise folds over UNBC frames (no subject in both the fit and the test of a fold); ICC(3,1) "
          "(two-way mixed, consistency, single rater) of coded and estimated intensity; F1 of occurrence "
          "(coded intensity >= 1, estimate rounding to 1 or more); 95 % intervals by bootstrap over subjects.")


def run_action_units(config, store: ExperimentStore) -> list[str]:
    """Fit, evaluate and store the estimator, and the model-as-rater table; returns notes (sentences)."""
    section = config.action_units
    if not section.enabled:
        return []
    samples = store.samples()
    unbc = unbc_faces(samples)
    subjects = unbc["subject"].nunique() if len(unbc) else 0
    if subjects < 2:
        return [f"The action-unit estimator needs UNBC frames with FACS codes from at least 2 subjects (found "
                f"{subjects}): it was not trained, and answers carry no action units."]
    cppain = samples[(samples["dataset"] == "cppain") & (samples["status"] == "ok")] if samples is not None else None
    unseen = paindb_unseen_faces(samples)
    ratings_file = config.dataset_path("cppain") / "ratings.csv"
    fingerprint = _fingerprint(section, config, unbc, cppain, ratings_file, unseen)
    if store.action_units_fingerprint() == fingerprint and store.has_table("action_units"):
        return []  # the same faces, codes and settings: nothing to redo
    cache_dir = config.cache_dir()
    features, eyes = features_many(*face_inputs(unbc, cache_dir))
    truth = unbc[[f"au{name[2:]}" for name in PAIN_AUS]].to_numpy(dtype=float)
    truth = np.column_stack([truth, unbc["pspi"].to_numpy(dtype=float)])
    folds = min(section.folds, subjects)
    estimate, fold_of = out_of_fold(features, eyes, truth, unbc["subject"].to_numpy(), folds, config.experiment.seed)
    evaluation = evaluate(truth, estimate, unbc["subject"].to_numpy(), folds,
                          config.evaluation.bootstrap_resamples, config.experiment.seed)
    model = ActionUnitModel.fit(features, eyes, truth[:, :6])
    frames = pd.DataFrame({"image_id": unbc["image_id"].to_numpy(), "subject": unbc["subject"].to_numpy(),
                           "fold": fold_of, **{f"true_{t}": truth[:, i] for i, t in enumerate(TARGETS)},
                           **{t: estimate[:, i] for i, t in enumerate(TARGETS)}})
    cp_frames = pd.DataFrame(columns=["image_id", "subject", "label", *TARGETS])
    if cppain is not None and len(cppain):
        cp_estimate = model.predict(*features_many(*face_inputs(cppain, cache_dir)))
        cp_frames = pd.DataFrame({"image_id": cppain["image_id"].to_numpy(), "subject": cppain["subject"].to_numpy(),
                                  "label": cppain["label"].to_numpy(),
                                  **{t: cp_estimate[:, i] for i, t in enumerate(TARGETS)}})
    rater, notes = model_as_rater(cp_frames, ratings_file, config.ratings.headline_icc)
    cp_frames = with_facs_scores(cp_frames) if len(cp_frames) else cp_frames
    parts = [frames.assign(set="unbc_out_of_fold"), cp_frames.assign(set="cppain")]
    if len(unseen):  # the served estimator never saw these people: their estimates are held out as UNBC's are
        estimate = model.predict(*features_many(*face_inputs(unseen, cache_dir)))
        parts.append(pd.DataFrame({"image_id": unseen["image_id"].to_numpy(), "subject": unseen["subject"].to_numpy(),
                                   **{t: estimate[:, i] for i, t in enumerate(TARGETS)}}).assign(set="paindb_unseen"))
    store.write_table("action_unit_frames", pd.concat(parts, ignore_index=True))
    store.write_table("action_unit_raters", rater)
    store.write_table("action_units", evaluation)  # before the model: its presence and the model's fingerprint mark done
    store.write_action_units(model.to_arrays(), fingerprint)
    return notes


def unbc_faces(samples: pd.DataFrame | None) -> pd.DataFrame:
    """The experiment's UNBC faces with FACS codes (status ok, every pain AU and PSPI known)."""
    columns = [f"au{name[2:]}" for name in PAIN_AUS] + ["pspi"]
    if samples is None or not set(columns) <= set(samples.columns):
        return pd.DataFrame(columns=["image_id", "subject", *columns])
    rows = samples[(samples["dataset"] == "unbc") & (samples["status"] == "ok")]
    return rows.dropna(subset=columns).sort_values("image_id").reset_index(drop=True)


def paindb_unseen_faces(samples: pd.DataFrame | None) -> pd.DataFrame:
    """PAIN-DB's faces outside UNBC (status ok): people the estimator, fitted on UNBC only, never saw."""
    if samples is None or "dataset" not in samples:
        return pd.DataFrame(columns=["image_id", "subject", "cache_key"])
    rows = samples[~samples["dataset"].isin(["unbc", "cppain"]) & (samples["status"] == "ok")]
    return rows.sort_values("image_id").reset_index(drop=True)


def face_inputs(rows: pd.DataFrame, cache_dir) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The rows' face crops and their 68 landmarks (crop pixels), from the face cache the pain networks read."""
    from engine.errors import PainLensError
    from engine.preprocess import cache

    crops, points = [], []
    for key in rows["cache_key"]:
        meta = cache.read_meta(cache_dir, key, check_png=False)
        if meta is None or meta.get("landmarks") is None:
            raise PainLensError(f"The face cache in {cache_dir} lacks entry {str(key)[:12]}; run `painlens run` "
                                "again to rebuild it.")
        crops.append(cache.read_crop(cache_dir, key))
        points.append(np.asarray(meta["landmarks"], dtype=float))
    return crops, points


def out_of_fold(features: np.ndarray, eyes: np.ndarray, truth: np.ndarray, subjects: np.ndarray, folds: int,
                seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(N, 7) estimates of each frame by the estimator fitted without its subject's fold, and each frame's fold."""
    from sklearn.model_selection import GroupKFold

    estimate = np.zeros((len(truth), len(TARGETS)))
    fold_of = np.zeros(len(truth), dtype=int)
    splitter = GroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    for fold, (train, test) in enumerate(splitter.split(features, groups=subjects)):
        model = ActionUnitModel.fit(features[train], eyes[train], truth[train, :6])
        estimate[test] = model.predict(features[test], eyes[test])
        fold_of[test] = fold
    return estimate, fold_of


def evaluate(truth: np.ndarray, estimate: np.ndarray, subjects: np.ndarray, folds: int, resamples: int,
             seed: int) -> pd.DataFrame:
    """EVALUATION_COLUMNS per target (the six AUs, then PSPI): point estimates over all frames, intervals
    over subject resamples."""
    codes, index = np.unique(subjects, return_inverse=True)
    rng = np.random.default_rng([seed, 28])
    weights = np.vstack([np.ones(len(codes)), cluster_weights(len(codes), resamples, rng)])[:, index]  # row 0: all
    rows = []
    for i, target in enumerate(TARGETS):
        a, b = truth[:, i], estimate[:, i]
        icc, mae = weighted_icc3(a, b, weights), weights @ np.abs(a - b) / weights.sum(axis=1)
        f1 = weighted_f1(a >= 1, occurred(b), weights) if target != "PSPI" else np.full(len(weights), np.nan)
        row = {"target": target, "present": int((a >= 1).sum()), "n_images": len(a), "n_subjects": len(codes),
               "folds": folds, "bootstrap_resamples": resamples, "method": METHOD}
        for name, values in (("icc", icc), ("mae", mae), ("f1", f1)):
            row[name] = float(values[0])
            row[f"{name}_low"], row[f"{name}_high"] = percentile_interval(values[1:])
        rows.append(row)
    return pd.DataFrame(rows, columns=list(EVALUATION_COLUMNS))


def weighted_icc3(a: np.ndarray, b: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """ICC(3,1) of two raters (columns a, b) over frames counted ``weights`` times, one value per row of
    ``weights`` (R, N). With k = 2 raters, ICC(3,1) = (SSR - SSE) / (SSR + SSE), SSR the between-frames and
    SSE the residual sum of squares (the n - 1 of both mean squares cancel). NaN when undefined."""
    n = weights.sum(axis=1)
    rows = (a + b) / 2
    grand = weights @ rows / n
    ssr = 2 * (weights @ rows**2 - 2 * grand * (weights @ rows) + grand**2 * n)
    half_diff = (a - b) / 2
    shift = (weights @ a / n) - grand  # column a's mean minus the grand mean
    sse = 2 * (weights @ half_diff**2 - 2 * shift * (weights @ half_diff) + shift**2 * n)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(ssr + sse > 0, (ssr - sse) / (ssr + sse), np.nan)


def weighted_f1(present: np.ndarray, found: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """F1 of occurrence per row of ``weights``: 2 TP / (2 TP + FP + FN); NaN where no frame shows or is said
    to show the AU."""
    tp, fp, fn = (weights @ (present & found), weights @ (~present & found), weights @ (present & ~found))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(2 * tp + fp + fn > 0, 2 * tp / (2 * tp + fp + fn), np.nan)


def _fingerprint(section, config, unbc: pd.DataFrame, cppain: pd.DataFrame | None, ratings_file,
                 unseen: pd.DataFrame) -> str:
    """What the step's artifacts depend on: a change in any of these refits and re-evaluates."""
    import dataclasses

    columns = ["image_id", "subject", "cache_key", *(f"au{n[2:]}" for n in PAIN_AUS), "pspi"]
    parts = {"version": FEATURES_VERSION, "section": dataclasses.asdict(section),
             "seed": config.experiment.seed, "resamples": config.evaluation.bootstrap_resamples,
             "headline": config.ratings.headline_icc, "unbc": frame_digest(unbc[columns].reset_index(drop=True)),
             "cppain": frame_digest(cppain[["image_id", "cache_key", "label"]].reset_index(drop=True))
             if cppain is not None and len(cppain) else "",
             "paindb_unseen": frame_digest(unseen[["image_id", "cache_key"]].reset_index(drop=True)) if len(unseen) else "",
             "ratings": hashlib.sha256(ratings_file.read_bytes()).hexdigest() if ratings_file.is_file() else ""}
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:20]
