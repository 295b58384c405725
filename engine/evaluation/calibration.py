"""Calibration: how far a network's p(pain) can be read as a probability, and temperature scaling.

Per network, from the store:

- the **subject-wise out-of-fold** predictions (scenario ``subject``: every PAIN-DB image predicted
  once, by the fold that did not train on its subject) and the **external** predictions (CP-PAIN;
  each image's p(pain) averaged over the seeds, as in ``engine.evaluation.bootstrap``);
- the expected calibration error (ECE) over ``BINS`` equal-width bins of p(pain): the share-weighted
  mean of |mean p(pain) - share of pain images| per bin, and the reliability table behind it;
- one temperature T, fitted by minimising the negative log-likelihood of
  ``sigmoid(logit(p) / T)`` on the subject-wise out-of-fold predictions **only**. The external
  predictions are a test set: they are scored before and after, never used to fit.

``apply_temperature`` turns a network's raw p(pain) (an upload, a batch) into its calibrated one.
"""

from __future__ import annotations

import hashlib
import math

import numpy as np
import pandas as pd
from scipy.special import expit

from engine.artifacts import ExperimentStore
from engine.evaluation.bootstrap import pooled_images
from engine.evaluation.freshness import DIGEST, FinishedRuns, fresh_and_stale

BINS = 10
CLIP = 1e-6  # p(pain) is clipped to [CLIP, 1 - CLIP] before its logit: a saturated 0 or 1 stays finite
LOG_T_RANGE = (-4.0, 4.0)  # temperatures from e^-4 to e^4 (0.018 to 55)
INTERCEPT_LIMIT = 20.0  # Platt's intercept on the logit: beyond it every p(pain) is 0 or 1 anyway (separable labels)
FIT_SCENARIO = "subject"
TEST_SCENARIO = "external"
VERSION = "calibration-v1"  # part of every stamp: a new version makes stored rows stale (bump on changes)
CALIBRATION_COLUMNS = ["model", "temperature", "oof_images", "ece_oof_before", "ece_oof_after", "nll_oof_before",
                       "nll_oof_after", "external_images", "ece_external_before", "ece_external_after", "note", DIGEST]
RELIABILITY_COLUMNS = ["model", "predictions", "calibrated", "bin", "bin_low", "bin_high", "images", "mean_p_pain",
                       "pain_share"]
PREDICTION_SETS = {FIT_SCENARIO: "subject-wise out-of-fold", TEST_SCENARIO: "external (CP-PAIN)"}


def logit(p: np.ndarray | float) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=float), CLIP, 1 - CLIP)
    return np.log(p) - np.log1p(-p)


def apply_temperature(p_pain: np.ndarray | float, temperature: float | None) -> np.ndarray | float:
    """Calibrated p(pain) = sigmoid(logit(p) / T). Without a temperature (None or NaN) p is returned
    unchanged (the caller says it is uncalibrated). Keeps scalars scalar."""
    if temperature is None or not math.isfinite(temperature):
        return p_pain
    out = 1.0 / (1.0 + np.exp(-logit(p_pain) / float(temperature)))
    return float(out) if np.ndim(p_pain) == 0 else out


def nll(p_pain: np.ndarray, labels: np.ndarray) -> float:
    """Mean negative log-likelihood (log loss) of binary ``labels`` under p(pain), clipped like ``logit``."""
    p = np.clip(np.asarray(p_pain, dtype=float), CLIP, 1 - CLIP)
    y = np.asarray(labels, dtype=float)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log1p(-p)))


def fit_temperature(p_pain: np.ndarray, labels: np.ndarray) -> float:
    """The T > 0 that minimises the NLL of ``sigmoid(logit(p) / T)`` against ``labels`` (bounded
    search over log T). NaN when the labels hold one class (nothing to fit)."""
    from scipy.optimize import minimize_scalar

    y = np.asarray(labels, dtype=float)
    if len(y) == 0 or len(np.unique(y)) < 2:
        return math.nan
    z = logit(p_pain)

    def loss(log_t: float) -> float:
        scaled = z / math.exp(log_t)  # NLL from logits directly: stable for large |z|
        return float(np.mean(np.logaddexp(0.0, scaled) - y * scaled))

    result = minimize_scalar(loss, bounds=LOG_T_RANGE, method="bounded", options={"xatol": 1e-6})
    return float(math.exp(result.x))


def fit_platt(p_pain: np.ndarray, labels: np.ndarray, iterations: int = 50) -> tuple[float, float]:
    """Platt scaling on the logit: the (slope, intercept) that minimise the NLL of
    ``sigmoid(slope * logit(p) + intercept)``. Unlike a temperature (slope only) it can move every
    p(pain) up or down, as a different share of pain faces needs. (NaN, NaN) for one class.

    Newton's method on the two parameters (a logistic regression on one feature), with a tiny ridge so
    that perfectly separated labels stay finite; the slope is kept within the temperature's range."""
    y = np.asarray(labels, dtype=float)
    if len(y) == 0 or len(np.unique(y)) < 2:
        return math.nan, math.nan
    design = np.column_stack([logit(p_pain), np.ones(len(y))])
    params = np.array([1.0, 0.0])
    ridge = 1e-6 * len(y) * np.eye(2)
    for _ in range(iterations):
        q = expit(design @ params)
        gradient = design.T @ (q - y) + ridge @ params
        hessian = (design * (q * (1 - q))[:, None]).T @ design + ridge
        step = np.linalg.solve(hessian, gradient)
        params = params - step
        if np.max(np.abs(step)) < 1e-9:
            break
    slope = float(np.clip(params[0], math.exp(-LOG_T_RANGE[1]), math.exp(-LOG_T_RANGE[0])))
    return slope, float(np.clip(params[1], -INTERCEPT_LIMIT, INTERCEPT_LIMIT))


CALIBRATION_METHODS = ("temperature", "platt")


def fit_calibrator(method: str, p_pain: np.ndarray, labels: np.ndarray) -> dict:
    """A calibrator as plain JSON: {"method": "temperature", "temperature": T} or {"method": "platt", "slope",
    "intercept"}; ``apply_calibrator`` uses it. Its numbers are NaN when the labels hold one class."""
    if method == "temperature":
        return {"method": method, "temperature": fit_temperature(p_pain, labels)}
    slope, intercept = fit_platt(p_pain, labels)
    return {"method": "platt", "slope": slope, "intercept": intercept}


def apply_calibrator(p_pain: np.ndarray | float, calibrator: dict | None) -> np.ndarray | float:
    """p(pain) through ``fit_calibrator``'s result (unchanged without one, or with NaN parameters)."""
    if not calibrator:
        return p_pain
    if calibrator["method"] == "temperature":
        return apply_temperature(p_pain, calibrator["temperature"])
    slope, intercept = calibrator["slope"], calibrator["intercept"]
    if not (math.isfinite(slope) and math.isfinite(intercept)):
        return p_pain
    out = expit(slope * logit(p_pain) + intercept)
    return float(out) if np.ndim(p_pain) == 0 else out


def choose_calibrator(p_pain: np.ndarray, labels: np.ndarray, groups: np.ndarray, folds: int = 5) -> tuple[dict, dict]:
    """(the calibrator, the cross-validated log-loss of each method): temperature or Platt, whichever has the
    lower mean log-loss on held-out subjects (``groups``, GroupKFold with up to ``folds`` folds), refitted on
    all of them. Fewer than two subjects: temperature, without a cross-validated loss."""
    from sklearn.model_selection import GroupKFold

    p, y, groups = np.asarray(p_pain, dtype=float), np.asarray(labels, dtype=float), np.asarray(groups)
    n_folds = min(folds, len(np.unique(groups)))
    losses = {method: math.nan for method in CALIBRATION_METHODS}
    if n_folds >= 2:
        for method in CALIBRATION_METHODS:
            held_out = np.full(len(p), np.nan)
            for train, test in GroupKFold(n_splits=n_folds).split(p, y, groups):
                held_out[test] = apply_calibrator(p[test], fit_calibrator(method, p[train], y[train]))
            losses[method] = nll(held_out, y)
    finite = {m: v for m, v in losses.items() if math.isfinite(v)}
    method = min(finite, key=finite.get) if finite else "temperature"
    return fit_calibrator(method, p, y), losses


def reliability(p_pain: np.ndarray, labels: np.ndarray, bins: int = BINS) -> pd.DataFrame:
    """One row per bin of p(pain) (equal width; p = 1 falls in the last): bin, bin_low, bin_high,
    images, mean_p_pain and pain_share (NaN in an empty bin)."""
    p = np.asarray(p_pain, dtype=float)
    y = np.asarray(labels, dtype=float)
    index = np.clip((p * bins).astype(int), 0, bins - 1)
    images = np.bincount(index, minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_p = np.bincount(index, weights=p, minlength=bins) / images
        pain = np.bincount(index, weights=y, minlength=bins) / images
    edges = np.linspace(0, 1, bins + 1)
    return pd.DataFrame({"bin": np.arange(bins), "bin_low": edges[:-1], "bin_high": edges[1:], "images": images,
                         "mean_p_pain": mean_p, "pain_share": pain})


def ece(p_pain: np.ndarray, labels: np.ndarray, bins: int = BINS) -> float:
    """Expected calibration error over ``bins`` equal-width bins of p(pain) (``reliability``'s bins, without its
    table: the answer's evaluation computes it for a thousand resamples); NaN without images."""
    p, y = np.asarray(p_pain, dtype=float), np.asarray(labels, dtype=float)
    index = np.clip((p * bins).astype(int), 0, bins - 1)
    images = np.bincount(index, minlength=bins)
    filled = images > 0
    if not filled.any():
        return math.nan
    mean_p = np.bincount(index, weights=p, minlength=bins)[filled] / images[filled]
    pain = np.bincount(index, weights=y, minlength=bins)[filled] / images[filled]
    return float((np.abs(mean_p - pain) * images[filled]).sum() / images[filled].sum())


# --- per network, from the store ----------------------------------------------------------------------

def calibration_tables(predictions: pd.DataFrame, bins: int = BINS) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(calibration, reliability) of every network in ``predictions`` (finished runs, any scenario;
    only ``subject`` and ``external`` are used). Calibration: ``CALIBRATION_COLUMNS`` but the stamp;
    reliability: ``RELIABILITY_COLUMNS``, raw and calibrated, per prediction set."""
    rows, tables = [], []
    if predictions.empty:
        return pd.DataFrame(columns=CALIBRATION_COLUMNS[:-1]), pd.DataFrame(columns=RELIABILITY_COLUMNS)
    for model, own in predictions.groupby("model", sort=True):
        sets = {s: pooled_images(g) for s, g in own.groupby("scenario") if s in PREDICTION_SETS}
        row, reliabilities = _network(model, sets, bins)
        rows.append(row)
        tables.extend(reliabilities)
    reliability_table = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame(columns=RELIABILITY_COLUMNS)
    return pd.DataFrame(rows, columns=CALIBRATION_COLUMNS[:-1]), reliability_table[RELIABILITY_COLUMNS]


def _network(model: str, sets: dict[str, pd.DataFrame], bins: int) -> tuple[dict, list[pd.DataFrame]]:
    """One network's calibration row and reliability tables; the temperature sees only ``sets[FIT_SCENARIO]``."""
    fit = sets.get(FIT_SCENARIO)
    temperature, note = math.nan, ""
    if fit is None:
        note = "No subject-wise predictions: not calibrated (p(pain) shown as is)."
    else:
        temperature = fit_temperature(fit["p_pain"].to_numpy(), fit["true_label"].to_numpy())
        if not math.isfinite(temperature):
            note = "The subject-wise predictions hold one class: not calibrated (p(pain) shown as is)."
        elif math.log(temperature) > LOG_T_RANGE[1] - 1e-3:  # the likelihood wants p(pain) flat: no signal
            note = ("The temperature is at its upper bound: p(pain) ranks the subject-wise images hardly better "
                    "than chance (or worse), so calibrated values sit near 0.5.")
    row = {"model": model, "temperature": temperature, "note": note}
    reliabilities = []
    for scenario, prefix in ((FIT_SCENARIO, "oof"), (TEST_SCENARIO, "external")):
        pooled = sets.get(scenario)
        p = pooled["p_pain"].to_numpy(dtype=float) if pooled is not None else np.array([])
        y = pooled["true_label"].to_numpy(dtype=float) if pooled is not None else np.array([])
        after = apply_temperature(p, temperature)
        row[f"{prefix}_images"] = int(len(p))
        row[f"ece_{prefix}_before"], row[f"ece_{prefix}_after"] = ece(p, y, bins), ece(after, y, bins)
        if prefix == "oof":
            row["nll_oof_before"], row["nll_oof_after"] = (nll(p, y), nll(after, y)) if len(p) else (math.nan, math.nan)
        for calibrated, values in ((False, p), (True, after)):
            if len(values):
                reliabilities.append(reliability(values, y, bins).assign(
                    model=model, predictions=PREDICTION_SETS[scenario], calibrated=calibrated))
    return row, reliabilities


def _model_stamps(runs: FinishedRuns) -> dict[tuple[str], str]:
    """Per network (a 1-tuple key): a digest of its subject-wise and external groups' stamps."""
    stamps = runs.group_stamps()
    models = sorted({k.model for k in runs.keys if k.scenario in PREDICTION_SETS})
    return {(m,): hashlib.sha256(",".join([VERSION, *(stamps.get((m, s), "") for s in PREDICTION_SETS)]).encode())
            .hexdigest()[:16] for m in models}


def refresh_calibration(store: ExperimentStore, runs: FinishedRuns | None = None) -> pd.DataFrame:
    """Bring ``calibration`` (stamped per network) and ``reliability`` up to date with the finished
    runs (``runs``: a shared ``FinishedRuns``) and write them, reliability first. Returns the calibration."""
    calibration, reliability_table = current_calibration(store, runs)
    store.write_table("reliability", reliability_table)
    store.write_table("calibration", calibration)
    return calibration


def current_calibration(store: ExperimentStore,
                        runs: FinishedRuns | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(calibration, reliability) as the stored runs are now: stored rows of the networks whose stamp
    matches their current runs, the other networks computed (nothing is written)."""
    runs = runs or FinishedRuns(store)
    stamps = _model_stamps(runs)
    stored_reliability = store.table("reliability")  # written first: without it, recompute every network
    fresh, stale = fresh_and_stale(store.table("calibration") if stored_reliability is not None else None,
                                   ["model"], stamps)
    keys = [k for k in runs.keys if (k.model,) in stale and k.scenario in PREDICTION_SETS]
    computed, computed_reliability = calibration_tables(runs.predictions(keys))
    computed[DIGEST] = [stamps[(m,)] for m in computed["model"]]
    kept = stored_reliability[stored_reliability["model"].isin(set(fresh["model"]))] if len(fresh) else None
    calibration = _stack(fresh, computed).sort_values("model", kind="stable")
    reliability_table = _stack(kept, computed_reliability).sort_values(["model", "predictions", "calibrated", "bin"])
    return calibration.reset_index(drop=True)[CALIBRATION_COLUMNS], reliability_table.reset_index(drop=True)


def _stack(*frames: pd.DataFrame | None) -> pd.DataFrame:
    """Concatenate the non-empty frames (the last one, empty, when all are)."""
    full = [f for f in frames if f is not None and len(f)]
    return pd.concat(full, ignore_index=True) if full else frames[-1]
