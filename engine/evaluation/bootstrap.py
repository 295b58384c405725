"""Did a network learn? ROC-AUC and accuracy per (network, scenario) with bootstrap intervals over subjects.

Frames of one person are not independent, so the unit that is resampled is the **subject**: a
resample draws as many subjects as there are, with replacement, and takes all images of each drawn
subject (as often as it was drawn). Resampling images instead treats 20 near-identical frames as 20
pieces of evidence and gives intervals that are too narrow (``tests/test_evaluation_bootstrap.py``
shows both on simulated data).

Pooling. In the image-wise and subject-wise scenarios every image is tested by exactly one fold, so the
folds' predictions are pooled into one set. In the external scenario every seed predicts the same
CP-PAIN images: each image's p(pain) is first averaged over the seeds (its label is then mean p >= 0.5)
and the spread over seeds (standard deviation of the per-seed AUC and accuracy) is kept beside it.

``learned``: the network does not give every image one class, its test set holds at least
``MIN_SUBJECTS`` subjects, and its AUC is above 0.5 at the one-sided level ``LEVEL`` after Holm's
correction over the networks of its scenario. The p-value of "AUC <= 0.5" comes from the same subject
resamples as the interval, (1 + resamples with AUC <= 0.5) / (1 + resamples), so for one network the rule
is today's "95 % interval above 0.5" (a one-sided 2.5 % test). With ten networks per scenario and no
signal anywhere, the uncorrected rule calls some network learned about one time in three; Holm's
step-down keeps that below ``LEVEL`` per scenario. Holm needs every network of a scenario together:
``group_intervals`` computes each group's own numbers (``auc_p``) and ``scenario_verdicts`` the
verdicts, run again by ``engine.evaluation.results`` whenever any network of the scenario changes.

Few data: a statistic computed on fewer than ``MIN_IMAGES`` images or ``MIN_SUBJECTS`` subjects is
marked as based on few data wherever it is shown: ``sample_size`` writes its n with that mark.

The bootstrap is vectorised, no Python loop over resamples: a (resamples x subjects) matrix of draw
counts, and each resample's AUC from weighted ranks (ties count one half, as in
``sklearn.metrics.roc_auc_score``), computed as a quadratic form over subjects (resamples x subjects^2)
or, when there are about as many clusters as images, by weighting every image. Intervals are
percentile intervals; resamples that lack a class (AUC undefined) are left out of them.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np
import pandas as pd

CONFIDENCE = 0.95
LEVEL = (1 - CONFIDENCE) / 2  # one-sided level of "AUC > 0.5": the 95 % interval's lower tail
MIN_SUBJECTS = 5  # fewer test subjects: no verdict, and every statistic on them is marked as few data
MIN_IMAGES = 30  # fewer images: a statistic is marked as few data
LEARNED_RULE = (f"A network learned in a scenario when its ROC AUC is above 0.5 at the one-sided {LEVEL * 100:g} % level "
                f"(bootstrap over subjects; alone, that is its {CONFIDENCE * 100:g} % interval above 0.5) after Holm's "
                f"correction over the networks of that scenario, it was tested on at least {MIN_SUBJECTS} subjects, "
                "and it does not give every image one class.")
FEW_DATA_NOTE = f"few data: fewer than {MIN_IMAGES} images or {MIN_SUBJECTS} subjects"  # the mark's footnote
INTERVAL_COLUMNS = ["n_images", "n_subjects", "runs_per_image", "predicted_pain", "auc", "auc_low", "auc_high",
                    "auc_p", "auc_p_holm", "accuracy", "accuracy_low", "accuracy_high", "auc_seed_std",
                    "accuracy_seed_std", "learned", "learned_reason", "pooling", "bootstrap_resamples"]


@dataclass(frozen=True)
class BootstrapSettings:
    """How intervals are drawn: ``resamples`` subject resamples, seeded by ``seed`` (and the group)."""

    resamples: int = 2000
    seed: int = 0
    confidence: float = CONFIDENCE

    def tag(self) -> str:
        """A short text that changes whenever the intervals would (part of the summary's stamp; the
        version changes with the summary's columns or method, so older summaries are recomputed)."""
        return f"bootstrap-v2:{self.resamples}:{self.seed}:{self.confidence}"


# --- the vectorised core -------------------------------------------------------------------------------

def cluster_weights(n_clusters: int, resamples: int, rng: np.random.Generator) -> np.ndarray:
    """(resamples, n_clusters) counts: how often each cluster (subject) is drawn in each resample."""
    draws = rng.integers(0, n_clusters, size=(resamples, n_clusters))
    offsets = (np.arange(resamples) * n_clusters)[:, None]
    counts = np.bincount((draws + offsets).ravel(), minlength=resamples * n_clusters)
    return counts.reshape(resamples, n_clusters).astype(np.float64)


def weighted_auc(scores: np.ndarray, labels: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """ROC-AUC of ``scores`` against 0/1 ``labels`` under each row of image ``weights`` (R, n).

    An image of weight w counts as w copies of it. Ties count one half. NaN for a row whose weighted
    set lacks a class. With all weights 1 this equals ``roc_auc_score``.
    """
    weights = np.atleast_2d(np.asarray(weights, dtype=float))
    return _auc_by_column(scores, labels, np.ascontiguousarray(weights.T))


def _auc_by_column(scores: np.ndarray, labels: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """``weighted_auc`` with weights laid out (n, R): images along rows, so that the sums over tied
    images and the running sums below each score run over contiguous rows (5x faster than columns)."""
    scores, labels = np.asarray(scores, dtype=float), np.asarray(labels, dtype=float)
    order = np.argsort(scores, kind="stable")
    sorted_scores, y, w = scores[order], labels[order][:, None], weights[order]
    pos, neg = w * y, w * (1.0 - y)
    if len(scores) > 1 and np.any(sorted_scores[1:] == sorted_scores[:-1]):  # one group per tied score
        starts = np.flatnonzero(np.r_[True, sorted_scores[1:] != sorted_scores[:-1]])
        pos, neg = np.add.reduceat(pos, starts, axis=0), np.add.reduceat(neg, starts, axis=0)
    below = np.cumsum(neg, axis=0) - neg  # negative weight strictly below each score
    pairs = pos.sum(axis=0) * neg.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(pairs > 0, (pos * (below + 0.5 * neg)).sum(axis=0) / pairs, np.nan)


def bootstrap(scores: np.ndarray, labels: np.ndarray, correct: np.ndarray, clusters: np.ndarray,
              resamples: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(AUC, accuracy) of each of ``resamples`` cluster resamples; ``clusters`` names each image's
    unit (subject ids for the right bootstrap; ``np.arange(n)`` resamples images)."""
    labels = np.asarray(labels, dtype=float)
    _, index = np.unique(np.asarray(clusters), return_inverse=True)
    counts = cluster_weights(int(index.max()) + 1, resamples, rng)
    if counts.shape[1] ** 2 <= 32 * len(index):  # few clusters (subjects): a small quadratic form
        auc = _auc_from_cluster_counts(np.asarray(scores, dtype=float), labels, index, counts)
    else:  # about one cluster per image: weight every image
        auc = _auc_by_column(scores, labels, np.ascontiguousarray(counts.T)[index])
    per_cluster_correct = np.bincount(index, weights=np.asarray(correct, dtype=float))
    per_cluster_images = np.bincount(index).astype(float)
    accuracy = (counts @ per_cluster_correct) / (counts @ per_cluster_images)
    return auc, accuracy


def _auc_from_cluster_counts(scores: np.ndarray, labels: np.ndarray, index: np.ndarray,
                             counts: np.ndarray) -> np.ndarray:
    """Weighted AUC for cluster draw ``counts`` (R, S) as a quadratic form: with ``pairs[s, t]`` = the
    (positive of cluster s, negative of cluster t) pairs ranked right (ties one half), a resample that
    draws cluster s c_s times ranks c^T pairs c pairs right. Costs R S^2, not R n."""
    n_clusters = counts.shape[1]
    _, tie = np.unique(scores, return_inverse=True)
    neg = np.zeros((n_clusters, int(tie.max()) + 1))
    np.add.at(neg, (index, tie), 1.0 - labels)
    below = np.cumsum(neg, axis=1) - 0.5 * neg  # per cluster: negatives under each score, ties one half
    positive = labels == 1
    pairs = np.zeros((n_clusters, n_clusters))
    np.add.at(pairs, index[positive], below[:, tie[positive]].T)
    right = np.einsum("rs,rs->r", counts @ pairs, counts)
    n_pos = counts @ np.bincount(index, weights=labels, minlength=n_clusters)
    n_neg = counts @ np.bincount(index, weights=1.0 - labels, minlength=n_clusters)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n_pos * n_neg > 0, right / (n_pos * n_neg), np.nan)


def p_not_above_half(auc_samples: np.ndarray) -> float:
    """One-sided bootstrap p-value of "AUC <= 0.5": (1 + resamples at or below 0.5) / (1 + resamples),
    over the resamples whose AUC is defined (NaN when none is). The +1 keeps it above zero."""
    finite = auc_samples[np.isfinite(auc_samples)]
    if not len(finite):
        return np.nan
    return float((1 + np.count_nonzero(finite <= 0.5)) / (1 + len(finite)))


def holm(p_values: np.ndarray) -> np.ndarray:
    """Holm's step-down adjusted p-values of one family (NaN stays NaN and is not counted in the family):
    the k-th smallest of m is multiplied by m - k + 1, then made non-decreasing in that order, capped at 1."""
    p = np.asarray(p_values, dtype=float)
    adjusted = np.full(p.shape, np.nan)
    tested = np.flatnonzero(np.isfinite(p))
    order = tested[np.argsort(p[tested], kind="stable")]
    m = len(order)
    adjusted[order] = np.minimum(1.0, np.maximum.accumulate(p[order] * (m - np.arange(m))))
    return adjusted


def few_data(n_images, n_subjects):
    """True where a statistic rests on fewer than ``MIN_IMAGES`` images or ``MIN_SUBJECTS`` subjects
    (scalars or arrays; a missing count counts as few)."""
    images = np.asarray(n_images, dtype=float)
    subjects = np.asarray(n_subjects, dtype=float)
    few = ~(images >= MIN_IMAGES) | ~(subjects >= MIN_SUBJECTS)
    return bool(few) if few.ndim == 0 else few


def sample_size(n_images, n_subjects) -> str:
    """A statistic's n as every page and the report show it: "479 images, 51 subjects", with " (few
    data)" when ``few_data`` (explained by ``FEW_DATA_NOTE``); "" when the counts are not known."""
    if n_images is None or n_subjects is None or not (np.isfinite(n_images) and np.isfinite(n_subjects)):
        return ""
    images, subjects = int(n_images), int(n_subjects)
    text = f"{images} image{'s' if images != 1 else ''}, {subjects} subject{'s' if subjects != 1 else ''}"
    return f"{text} (few data)" if few_data(images, subjects) else text


def percentile_interval(values: np.ndarray, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Percentile interval of the finite values (NaN, NaN when none is)."""
    finite = values[np.isfinite(values)]
    if not len(finite):
        return np.nan, np.nan
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(finite, [tail, 100 - tail])
    return float(low), float(high)


# --- per (network, scenario) -----------------------------------------------------------------------------

def pooled_images(predictions: pd.DataFrame) -> pd.DataFrame:
    """One row per tested image (per model and scenario, when those columns are there): subject, true
    label (and dataset when given), p(pain) averaged over the runs that tested it (one in image/subject
    scenarios, every seed in the external one), its label (mean p >= 0.5) and how many runs it was
    averaged over (``runs``), sorted by model, scenario and image id."""
    keys = [c for c in ("model", "scenario") if c in predictions] + ["image_id"]
    codes = predictions.groupby(keys, sort=True).ngroup().to_numpy()
    runs = np.bincount(codes)
    first = np.unique(codes, return_index=True)[1]  # each image's first row, in key order
    carried = [c for c in (*keys, "subject", "dataset", "true_label") if c in predictions]
    pooled = predictions[carried].iloc[first].reset_index(drop=True)
    pooled["p_pain"] = np.bincount(codes, weights=predictions["p_pain"].to_numpy(dtype=float)) / runs
    pooled["runs"] = runs
    pooled["predicted_label"] = (pooled["p_pain"] >= 0.5).astype(int)
    return pooled


def group_seed(settings: BootstrapSettings, model: str, scenario: str) -> np.random.Generator:
    """Each group its own stream, so a group's interval does not depend on which other groups exist."""
    return np.random.default_rng([settings.seed, zlib.crc32(f"{model}/{scenario}".encode())])


def group_intervals(predictions: pd.DataFrame, settings: BootstrapSettings = BootstrapSettings()) -> pd.DataFrame:
    """Per (model, scenario) of ``predictions`` (the runner's columns, every finished run): the
    ``INTERVAL_COLUMNS``, with the verdicts of ``scenario_verdicts`` over the networks given here (a
    caller that holds more networks of a scenario judges them all together again). Returns an empty
    frame with those columns when there are no predictions."""
    rows = []
    for (model, scenario), group in predictions.groupby(["model", "scenario"], sort=True):
        rows.append({"model": model, "scenario": scenario, **_one_group(group, settings, model, scenario)})
    return scenario_verdicts(pd.DataFrame(rows, columns=["model", "scenario", *INTERVAL_COLUMNS]))


def auc_and_accuracy(p: np.ndarray, y: np.ndarray, correct: np.ndarray, subjects: np.ndarray,
                     settings: BootstrapSettings, model: str, group: str) -> dict:
    """ROC AUC and accuracy of pooled images with their percentile intervals over subjects (``auc_samples``:
    the AUC's resamples, for a test against 0.5; NaN AUC where one class is missing)."""
    both_classes = len(np.unique(y)) == 2
    auc = float(weighted_auc(p, y, np.ones((1, len(y))))[0]) if both_classes else np.nan
    auc_samples, accuracy_samples = bootstrap(p, y, correct, subjects, settings.resamples,
                                              group_seed(settings, model, group))
    auc_low, auc_high = percentile_interval(auc_samples, settings.confidence) if both_classes else (np.nan, np.nan)
    accuracy_low, accuracy_high = percentile_interval(accuracy_samples, settings.confidence)
    return {"auc": auc, "auc_low": auc_low, "auc_high": auc_high, "accuracy": float(correct.mean()),
            "accuracy_low": accuracy_low, "accuracy_high": accuracy_high, "auc_samples": auc_samples,
            "both_classes": both_classes}


def _one_group(group: pd.DataFrame, settings: BootstrapSettings, model: str, scenario: str) -> dict:
    pooled = pooled_images(group)
    y = pooled["true_label"].to_numpy(dtype=int)
    p = pooled["p_pain"].to_numpy(dtype=float)
    predicted = pooled["predicted_label"].to_numpy(dtype=int)
    correct = (predicted == y).astype(float)
    found = auc_and_accuracy(p, y, correct, pooled["subject"].astype(str).to_numpy(), settings, model, scenario)
    auc, auc_low, auc_high, auc_samples, both_classes = (found[k] for k in ("auc", "auc_low", "auc_high",
                                                                              "auc_samples", "both_classes"))
    accuracy_low, accuracy_high = found["accuracy_low"], found["accuracy_high"]
    runs_per_image = int(pooled["runs"].max())
    seed_auc, seed_accuracy = _per_run_spread(group) if runs_per_image > 1 else (np.nan, np.nan)
    return {"n_images": int(len(pooled)), "n_subjects": int(pooled["subject"].nunique()),
            "runs_per_image": runs_per_image, "predicted_pain": int(predicted.sum()), "auc": auc, "auc_low": auc_low,
            "auc_high": auc_high, "auc_p": p_not_above_half(auc_samples) if both_classes else np.nan,
            "auc_p_holm": np.nan, "accuracy": float(correct.mean()), "accuracy_low": accuracy_low,
            "accuracy_high": accuracy_high, "auc_seed_std": seed_auc, "accuracy_seed_std": seed_accuracy,
            "learned": False, "learned_reason": "", "pooling": _pooling_text(group, runs_per_image),
            "bootstrap_resamples": int(settings.resamples)}


def _per_run_spread(group: pd.DataFrame) -> tuple[float, float]:
    """Standard deviation over runs (seeds) of each run's own AUC and accuracy."""
    aucs, accuracies = [], []
    for _, run in group.groupby("fold", sort=True):
        y = run["true_label"].to_numpy(dtype=int)
        p = run["p_pain"].to_numpy(dtype=float)
        aucs.append(weighted_auc(p, y, np.ones((1, len(y))))[0] if len(np.unique(y)) == 2 else np.nan)
        accuracies.append(float((run["predicted_label"].to_numpy(dtype=int) == y).mean()))
    aucs = np.asarray(aucs, dtype=float)
    auc_std = float(np.std(aucs[np.isfinite(aucs)], ddof=1)) if np.isfinite(aucs).sum() > 1 else np.nan
    return auc_std, float(np.std(accuracies, ddof=1))


def _pooling_text(group: pd.DataFrame, runs_per_image: int) -> str:
    runs = group["fold"].nunique()
    if runs_per_image > 1:
        return f"p(pain) of each image averaged over {runs_per_image} seeds"
    return f"{runs} fold{'s' if runs != 1 else ''} pooled, each image tested once"


def one_class_reason(predicted: np.ndarray) -> str:
    """"predicts one class (...)" when every image gets the same predicted class, else ""."""
    predicted = np.asarray(predicted, dtype=int)
    return _one_class_text(int(predicted.sum()), len(predicted))


def _one_class_text(predicted_pain: int, images: int) -> str:
    if images == 0 or 0 < predicted_pain < images:
        return ""
    return f"predicts one class ({'pain' if predicted_pain == images else 'no pain'} for every image)"


def scenario_verdicts(groups: pd.DataFrame) -> pd.DataFrame:
    """``groups`` (rows with ``INTERVAL_COLUMNS``, any number per (model, scenario), e.g. one per class)
    with ``auc_p_holm``, ``learned`` and ``learned_reason`` set: Holm's correction over the networks of
    each scenario. A network is in its scenario's family when it can be judged (a defined p-value and at
    least ``MIN_SUBJECTS`` subjects). Depends only on the rows' own columns, so it can be run again."""
    if groups.empty:
        return groups
    out = groups.copy()
    networks = out.drop_duplicates(["model", "scenario"])
    judged = networks["auc_p"].astype(float).where(networks["n_subjects"] >= MIN_SUBJECTS)
    adjusted = pd.Series(np.nan, index=networks.index)
    for _, family in judged.groupby(networks["scenario"]):
        adjusted[family.index] = holm(family.to_numpy())
    family_size = judged.notna().groupby(networks["scenario"]).transform("sum")
    verdicts = {(row.model, row.scenario): (adjusted[i], *learned_verdict(row, adjusted[i], int(family_size[i])))
                for i, row in zip(networks.index, networks.itertuples(index=False))}
    keys = list(zip(out["model"], out["scenario"]))
    out["auc_p_holm"] = [verdicts[k][0] for k in keys]
    out["learned"] = [verdicts[k][1] for k in keys]
    out["learned_reason"] = [verdicts[k][2] for k in keys]
    return out


def learned_verdict(group, auc_p_holm: float, family: int) -> tuple[bool, str]:
    """(learned, reason in a few words) of one (network, scenario) row (``INTERVAL_COLUMNS``) whose
    Holm-adjusted p over a family of ``family`` networks is ``auc_p_holm``. Never learned when every
    image gets one class or with fewer than ``MIN_SUBJECTS`` subjects."""
    if not group.n_images > 0:  # NaN too: a group without pooled predictions
        return False, "no predictions"
    if one_class := _one_class_text(int(group.predicted_pain), int(group.n_images)):
        return False, one_class
    if not np.isfinite(group.auc):
        return False, "test set has one class: AUC undefined"
    if group.n_subjects < MIN_SUBJECTS:
        return False, f"too few subjects to judge ({group.n_subjects}, fewer than {MIN_SUBJECTS})"
    if not np.isfinite(group.auc_p):
        return False, "AUC interval undefined"
    if auc_p_holm < LEVEL:
        return True, ("AUC interval above 0.5" if family == 1 else
                      f"AUC above 0.5 after Holm's correction over {family} networks")
    if group.auc_high < 0.5:
        return False, "AUC interval below 0.5 (worse than chance)"
    if group.auc_p < LEVEL:
        return False, f"AUC above 0.5 alone, not after Holm's correction over {family} networks"
    if group.auc_low > 0.5:  # the percentile interval's edge and the p-value's +1 disagree by a resample
        return False, f"AUC not above 0.5 at the one-sided {LEVEL * 100:g} % level"
    return False, "AUC interval includes 0.5"
