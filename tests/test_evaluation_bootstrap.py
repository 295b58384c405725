"""The subject bootstrap: exact weighted AUC, intervals that cover a planted truth, and the verdict (Holm over
the networks of a scenario, no verdict on fewer than five subjects, the few-data mark)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm
from sklearn.metrics import roc_auc_score

from engine.evaluation.bootstrap import (LEVEL, MIN_IMAGES, MIN_SUBJECTS, BootstrapSettings, _auc_by_column,
                                        _auc_from_cluster_counts, bootstrap, cluster_weights, few_data,
                                        group_intervals, holm, percentile_interval, weighted_auc)


def test_weighted_auc_equals_sklearn_with_ties_and_weights():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 300)
    p = np.round(rng.random(300) * 0.6 + y * 0.3, 1)  # rounded: many ties
    weights = rng.integers(0, 4, 300).astype(float)
    assert weighted_auc(p, y, np.ones((1, 300)))[0] == pytest.approx(roc_auc_score(y, p), abs=1e-12)
    assert weighted_auc(p, y, weights[None])[0] == pytest.approx(roc_auc_score(y, p, sample_weight=weights), abs=1e-12)
    assert np.isnan(weighted_auc(p, y, (y == 1)[None].astype(float))[0])  # a resample without negatives


def test_the_quadratic_form_over_subjects_equals_weighting_every_image():
    rng = np.random.default_rng(1)
    subjects = rng.integers(0, 12, 200)
    y = rng.integers(0, 2, 200).astype(float)
    p = np.round(rng.random(200), 2)
    counts = cluster_weights(12, 300, rng)
    assert counts.sum(axis=1).tolist() == [12] * 300  # each resample draws as many subjects as there are
    by_subject = _auc_from_cluster_counts(p, y, subjects, counts)
    by_image = _auc_by_column(p, y, np.ascontiguousarray(counts.T)[subjects])
    assert np.allclose(by_subject, by_image, equal_nan=True)


def simulate(rng: np.random.Generator, subjects: int, per_class: int, informative_share: float, effect: float,
             subject_sd: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Scores of a network that sees pain only in some subjects. Subject s has an offset u_s ~ N(0,
    subject_sd) shared by all its images; for an informative subject (probability
    ``informative_share``) its pain images score ``effect`` higher; image noise N(0, 1)."""
    subject = np.repeat(np.arange(subjects), 2 * per_class)
    y = np.tile(np.r_[np.zeros(per_class), np.ones(per_class)], subjects)
    informative = rng.random(subjects) < informative_share
    offset = rng.normal(0, subject_sd, subjects)
    score = offset[subject] + effect * y * informative[subject] + rng.normal(0, 1, len(y))
    return score, y, subject


def test_subject_bootstrap_covers_the_true_auc_and_an_image_bootstrap_is_too_narrow():
    share, effect, subject_sd = 0.5, 3.0, 0.7
    # Population AUC: a pain image and a no-pain image of two independent subjects differ by
    # u_i - u_j + effect * I_i + e_i - e_j, a normal of variance 2 sd^2 + 2, shifted only when subject i
    # is informative.
    truth = share * norm.cdf(effect / np.sqrt(2 * subject_sd ** 2 + 2)) + (1 - share) * 0.5
    rng = np.random.default_rng(2026)
    covered = {"subject": 0, "image": 0}
    width = {"subject": [], "image": []}
    for _ in range(100):
        score, y, subject = simulate(rng, subjects=60, per_class=4, informative_share=share, effect=effect,
                                     subject_sd=subject_sd)
        correct = ((score > 0) == y).astype(float)
        for unit, clusters in (("subject", subject), ("image", np.arange(len(y)))):
            aucs, _ = bootstrap(score, y, correct, clusters, 200, rng)
            low, high = percentile_interval(aucs)
            covered[unit] += low <= truth <= high
            width[unit].append(high - low)
    assert covered["subject"] >= 90, covered
    assert covered["image"] < 88, covered  # frames of one person counted as independent evidence
    assert np.mean(width["image"]) < 0.8 * np.mean(width["subject"]), {k: np.mean(v) for k, v in width.items()}


# --- per (network, scenario) -------------------------------------------------------------------------

def run_predictions(model: str, scenario: str, folds: dict[int, tuple[np.ndarray, np.ndarray]], y: np.ndarray,
                    subjects: np.ndarray) -> pd.DataFrame:
    """Predictions in the runner's columns; ``folds``: fold -> (image positions, p(pain))."""
    frames = []
    for fold, (positions, p) in folds.items():
        frames.append(pd.DataFrame({
            "model": model, "scenario": scenario, "fold": fold, "image_id": [f"img{i:04d}" for i in positions],
            "subject": subjects[positions], "dataset": "unbc", "true_label": y[positions], "p_pain": p,
            "predicted_label": (p >= 0.5).astype(int)}))
    return pd.concat(frames, ignore_index=True)


@pytest.fixture(scope="module")
def images():
    rng = np.random.default_rng(5)
    subjects = np.repeat([f"S{k:02d}" for k in range(20)], 10)
    y = np.tile([0, 1], 100)
    return rng, y, subjects


def test_pooled_folds_external_seed_mean_and_verdicts(images):
    rng, y, subjects = images
    n = len(y)
    good = 1 / (1 + np.exp(-(3 * (y - 0.5) + rng.normal(0, 1, n))))
    folds = {0: (np.arange(0, n, 2), good[0::2]), 1: (np.arange(1, n, 2), good[1::2])}
    seeds = [rng.random(n), rng.random(n)]
    # Blind: p(pain) depends on the subject only, and every subject has as many pain as no-pain images:
    # AUC 0.5 in every resample.
    blind = np.repeat(rng.uniform(0.3, 0.7, 20), 10)
    predictions = pd.concat([
        run_predictions("Good", "image", folds, y, subjects),
        run_predictions("Constant", "image", {0: (np.arange(n), np.full(n, 0.47))}, y, subjects),
        run_predictions("Seeds", "external", {0: (np.arange(n), seeds[0]), 1: (np.arange(n), seeds[1])}, y, subjects),
        run_predictions("Blind", "subject", {0: (np.arange(n), blind)}, y, subjects),
    ], ignore_index=True)
    out = group_intervals(predictions, BootstrapSettings(resamples=500, seed=1)).set_index("model")
    good_row, constant, seeded, blind_row = out.loc["Good"], out.loc["Constant"], out.loc["Seeds"], out.loc["Blind"]
    assert good_row["auc"] == pytest.approx(roc_auc_score(y, good)) and good_row["n_images"] == n
    assert good_row["learned"] and good_row["auc_low"] > 0.5 and good_row["pooling"].startswith("2 folds pooled")
    assert good_row["accuracy_low"] < good_row["accuracy"] < good_row["accuracy_high"]
    assert not constant["learned"] and constant["learned_reason"].startswith("predicts one class (no pain")
    mean_p = (seeds[0] + seeds[1]) / 2  # external: each image's p(pain) averaged over the seeds first
    assert seeded["auc"] == pytest.approx(roc_auc_score(y, mean_p)) and seeded["runs_per_image"] == 2
    assert seeded["accuracy"] == pytest.approx(np.mean((mean_p >= 0.5) == y))
    assert seeded["auc_seed_std"] == pytest.approx(np.std([roc_auc_score(y, p) for p in seeds], ddof=1))
    assert seeded["learned"] == (seeded["auc_low"] > 0.5)
    assert seeded["pooling"] == "p(pain) of each image averaged over 2 seeds"
    assert (blind_row["auc_low"], blind_row["auc_high"]) == (0.5, 0.5)
    assert not blind_row["learned"] and blind_row["learned_reason"] == "AUC interval includes 0.5"


def test_intervals_are_seeded_per_group_and_do_not_depend_on_other_groups(images):
    rng, y, subjects = images
    p = rng.random(len(y)) * 0.5 + y * 0.3
    one = run_predictions("A", "subject", {0: (np.arange(len(y)), p)}, y, subjects)
    other = run_predictions("B", "subject", {0: (np.arange(len(y)), rng.random(len(y)))}, y, subjects)
    settings = BootstrapSettings(resamples=400, seed=3)
    alone = group_intervals(one, settings).iloc[0]
    together = group_intervals(pd.concat([other, one]), settings).set_index("model").loc["A"]
    assert (alone["auc_low"], alone["auc_high"]) == (together["auc_low"], together["auc_high"])
    reseeded = group_intervals(one, BootstrapSettings(resamples=400, seed=4)).iloc[0]
    assert (reseeded["auc_low"], reseeded["auc_high"]) != (alone["auc_low"], alone["auc_high"])


# --- Holm over the networks of a scenario, too few subjects, few data ----------------------------------

def test_holm_adjusts_step_down_and_keeps_the_order_of_the_raw_p_values():
    raw = np.array([0.01, 0.04, 0.03, 0.005, np.nan])
    # sorted 0.005, 0.01, 0.03, 0.04 times 4, 3, 2, 1: 0.02, 0.03, 0.06, 0.04 -> made non-decreasing: 0.06
    assert holm(raw)[:4] == pytest.approx([0.03, 0.06, 0.06, 0.02]) and np.isnan(holm(raw)[4])
    rng = np.random.default_rng(7)
    for _ in range(50):
        p = rng.random(rng.integers(1, 12)) ** 3
        adjusted, order = holm(p), np.argsort(p)
        assert np.all(np.diff(adjusted[order]) >= 0)  # monotone in the raw p-values
        assert np.all(adjusted >= p) and np.all(adjusted <= 1)
    assert holm(np.array([0.2]))[0] == 0.2  # one network: its own p


def subject_signal(model: str, scenario: str, good_subjects: int, y: np.ndarray, subjects: np.ndarray) -> pd.DataFrame:
    """A network that ranks pain above no pain (0.55 against 0.45) in the first ``good_subjects`` of the
    subjects and the other way round in the rest: its AUC is the share of good subjects' pairs."""
    good = np.isin(subjects, sorted(set(subjects))[:good_subjects])
    p = np.where(good == (y == 1), 0.55, 0.45)
    return run_predictions(model, scenario, {0: (np.arange(len(y)), p)}, y, subjects)


def test_holm_over_a_scenario_withholds_a_verdict_the_uncorrected_rule_gives(images):
    _, y, subjects = images
    settings = BootstrapSettings(resamples=500, seed=1)
    weak = subject_signal("Weak", "subject", 15, y, subjects)  # 15 of 20 subjects: AUC 0.75, p about 0.014
    alone = group_intervals(weak, settings).iloc[0]
    assert alone["auc_low"] > 0.5 and alone["auc_p"] < LEVEL < 2 * alone["auc_p"]
    assert alone["learned"] and alone["learned_reason"] == "AUC interval above 0.5"
    # A second network without a signal in the same scenario: Holm doubles the smallest p.
    blind = subject_signal("Blind", "subject", 10, y, subjects)  # AUC 0.5 in every resample: p = 1
    both = group_intervals(pd.concat([weak, blind]), settings).set_index("model")
    assert both.loc["Weak", "auc_p"] == alone["auc_p"]  # its own resamples are untouched
    assert both.loc["Weak", "auc_p_holm"] == pytest.approx(2 * alone["auc_p"])
    assert not both.loc["Weak", "learned"]
    assert both.loc["Weak", "learned_reason"] == "AUC above 0.5 alone, not after Holm's correction over 2 networks"
    # Another scenario is another family: the blind network there changes nothing.
    elsewhere = group_intervals(pd.concat([weak, subject_signal("Blind", "image", 10, y, subjects)]), settings)
    assert elsewhere.set_index(["model", "scenario"]).loc[("Weak", "subject"), "learned"]
    # Step-down, not Bonferroni: beside a strong network the weak one keeps its verdict (p x 1, not x 2).
    strong = subject_signal("Strong", "subject", 20, y, subjects)
    pair = group_intervals(pd.concat([weak, strong]), settings).set_index("model")
    assert pair.loc["Weak", "auc_p_holm"] == pytest.approx(alone["auc_p"]) and pair["learned"].all()
    assert pair.loc["Weak", "learned_reason"] == "AUC above 0.5 after Holm's correction over 2 networks"


def test_fewer_than_five_subjects_are_too_few_to_judge(images):
    _, y, subjects = images
    settings = BootstrapSettings(resamples=300, seed=2)
    perfect = np.where(y == 1, 0.9, 0.1)
    for count in (1, MIN_SUBJECTS - 1):
        kept = np.isin(subjects, sorted(set(subjects))[:count])
        few = run_predictions("Sure", "external", {0: (np.flatnonzero(kept), perfect[kept])}, y, subjects)
        row = group_intervals(few, settings).iloc[0]
        assert (row["auc_low"], row["auc_high"]) == (1.0, 1.0) and row["auc_p"] < LEVEL  # passed the old rule
        assert row["n_subjects"] == count and not row["learned"] and np.isnan(row["auc_p_holm"])
        assert row["learned_reason"] == f"too few subjects to judge ({count}, fewer than {MIN_SUBJECTS})"
    kept = np.isin(subjects, sorted(set(subjects))[:MIN_SUBJECTS])
    enough = run_predictions("Sure", "external", {0: (np.flatnonzero(kept), perfect[kept])}, y, subjects)
    assert group_intervals(enough, settings).iloc[0]["learned"]


def test_few_data_is_fewer_than_30_images_or_5_subjects():
    assert (MIN_IMAGES, MIN_SUBJECTS) == (30, 5)
    assert not few_data(30, 5) and few_data(29, 50) and few_data(500, 4) and few_data(24, 7)
    assert few_data(np.nan, 10)  # an unknown count is not a reason to trust a number
    assert few_data(pd.Series([479, 24, 40]), pd.Series([51, 7, 4])).tolist() == [False, True, True]
