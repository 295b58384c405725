"""Evaluation through the store: summary intervals and stamps, calibration, per-subject table (the answer:
tests/test_answer.py).

Experiments here are real stores holding simulated predictions (no training): what the runner writes.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

import engine.evaluation.results as results
from engine.artifacts import ExperimentStore, RunKey
from engine.evaluation.bootstrap import LEVEL
from engine.evaluation.calibration import apply_temperature, current_calibration, ece, fit_temperature
from engine.evaluation.results import current_results, refresh_results
from engine.evaluation.subjects import MEASURES, current_subjects

RNG_SEED = 11


def samples_table() -> pd.DataFrame:
    """PAIN-DB: 4 UNBC subjects (PSPI), 4 MIntPAIN (levels), 8 Delaware, 10 images each; CP-PAIN: 8
    subjects, 4 images each. Labels alternate, so every subject has both classes."""
    rows = []
    for dataset, prefix, count in (("unbc", "U", 4), ("mintpain", "Sub", 4), ("delaware", "D", 8), ("cppain", "CP", 8)):
        for s in range(count):
            subject = f"{prefix}{s:02d}"
            for k in range(4 if dataset == "cppain" else 10):
                label = k % 2
                rows.append({"image_id": f"{dataset}/{subject}/seq/{k:05d}", "dataset": dataset, "subject": subject,
                             "label": label, "pspi": float(label * (s + 1)) if dataset == "unbc" else math.nan,
                             "intensity": float(label * (1 + s % 4)) if dataset == "mintpain" else float(label)})
    return pd.DataFrame(rows)


def p_of(kind: str, y: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    if kind == "constant":
        return np.full(len(y), 0.46)
    if kind == "overconfident":  # x = (2y - 1) + N(0, 1) has log-odds 2x; the network says 3 times that
        return 1 / (1 + np.exp(-3 * 2 * ((2 * y - 1) + rng.normal(0, 1, len(y)))))
    return rng.random(len(y))  # "noise"


def write_run(store: ExperimentStore, key: RunKey, tested: pd.DataFrame, p: np.ndarray) -> None:
    predictions = pd.DataFrame({
        "model": key.model, "scenario": key.scenario, "fold": key.fold, "seed": key.fold,
        "image_id": tested["image_id"].to_numpy(), "subject": tested["subject"].to_numpy(),
        "dataset": tested["dataset"].to_numpy(), "true_label": tested["label"].to_numpy(dtype=int),
        "p_pain": p, "predicted_label": (p >= 0.5).astype(int)})
    store.start_run(key)
    store.write_predictions(key, predictions)
    store.finish_run(key, {"seconds": 1.0})


def images_of(samples: pd.DataFrame, scenario: str, fold: int) -> pd.DataFrame:
    paindb = samples[samples["dataset"] != "cppain"]
    if scenario == "external":
        return samples[samples["dataset"] == "cppain"]
    if scenario == "image":
        return paindb.iloc[fold::2]
    subjects = sorted(paindb["subject"].unique())
    return paindb[paindb["subject"].isin(subjects[fold::2])]


def make_experiment(root, networks: dict[str, str], scenarios=("image", "subject", "external"),
                    synthetic: bool = True, name: str = "exp") -> ExperimentStore:
    store = ExperimentStore(root, name)
    samples = samples_table()
    store.write_samples(samples)
    store.write_manifest({"experiment": name, "synthetic": synthetic})
    rng = np.random.default_rng(RNG_SEED)
    for model, kind in networks.items():
        for scenario in scenarios:
            for fold in range(2):
                tested = images_of(samples, scenario, fold)
                write_run(store, RunKey(model, scenario, fold), tested, p_of(kind, tested["label"].to_numpy(), rng))
    return store


@pytest.fixture(scope="module")
def experiment(tmp_path_factory):
    store = make_experiment(tmp_path_factory.mktemp("eval"), {"Sharp": "overconfident", "Flat": "constant"})
    refresh_results(store)
    return store


# --- summary ---------------------------------------------------------------------------------------------

def test_summary_has_intervals_and_a_network_with_one_class_never_learned(experiment):
    summary = experiment.table("summary")
    for column in ("auc", "auc_low", "auc_high", "accuracy_low", "accuracy_high", "learned", "learned_reason"):
        assert column in summary
    macro = summary[summary["class"] == "macro"].set_index(["model", "scenario"])
    assert macro.loc[("Sharp", "subject"), "learned"] and macro.loc[("Sharp", "external"), "learned"]
    flat = macro.loc["Flat"]
    assert not flat["learned"].any()
    assert set(flat["learned_reason"]) == {"predicts one class (no pain for every image)"}
    external = experiment.finished_predictions("external")
    sharp = external[external["model"] == "Sharp"].groupby("image_id").agg(y=("true_label", "first"),
                                                                           p=("p_pain", "mean"))
    assert macro.loc[("Sharp", "external"), "auc"] == pytest.approx(roc_auc_score(sharp["y"], sharp["p"]))
    assert macro.loc[("Sharp", "external"), "pooling"] == "p(pain) of each image averaged over 2 seeds"


def test_a_redone_run_makes_its_group_stale_and_only_that_group_is_bootstrapped_again(tmp_path, monkeypatch):
    store = make_experiment(tmp_path, {"Sharp": "overconfident", "Noise": "noise"}, scenarios=("image", "external"))
    refresh_results(store)
    before = store.table("summary").set_index(["model", "scenario", "class"])
    key = RunKey("Noise", "image", 1)
    redone = store.predictions(key)
    write_run(store, key, redone.rename(columns={"true_label": "label"}), 1 - redone["p_pain"].to_numpy())
    groups = []
    real = results.group_intervals
    monkeypatch.setattr(results, "group_intervals",
                        lambda p, s: groups.extend(sorted(set(zip(p["model"], p["scenario"])))) or real(p, s))
    _, summary = current_results(store)  # readers see the redone run before any refresh
    assert groups == [("Noise", "image")]
    now = summary.set_index(["model", "scenario", "class"])
    assert now.loc[("Noise", "image", "macro"), "auc"] != before.loc[("Noise", "image", "macro"), "auc"]
    pd.testing.assert_frame_equal(now.drop(index="Noise", level=0), before.drop(index="Noise", level=0))
    refresh_results(store)
    stored = store.table("summary").set_index(["model", "scenario", "class"])
    assert stored.loc[("Noise", "image", "macro"), "auc"] == now.loc[("Noise", "image", "macro"), "auc"]


def test_a_network_is_judged_again_with_every_network_of_its_scenario_when_another_run_finishes(tmp_path, monkeypatch):
    """Holm over a scenario: a weak network learned alone; nine networks without a signal finish beside it
    and it no longer counts, without its own (unchanged, fresh) group being bootstrapped again."""
    store = make_experiment(tmp_path, {}, scenarios=())
    samples = samples_table()
    paindb = samples[samples["dataset"] != "cppain"]
    ranked_right = sorted(paindb["subject"].unique())[:13]  # pain above no pain in 13 of 16 subjects

    def write(model: str, subjects: list[str]) -> None:
        for fold in range(2):
            tested = images_of(samples, "subject", fold)
            p = np.where(tested["subject"].isin(subjects).to_numpy() == (tested["label"] == 1), 0.55, 0.45)
            write_run(store, RunKey(model, "subject", fold), tested, p)

    write("Weak", ranked_right)
    refresh_results(store)
    alone = store.table("summary").set_index("model").loc["Weak"].iloc[0]
    assert alone["learned"] and alone["auc_p_holm"] == alone["auc_p"]
    assert alone["auc_p"] < LEVEL < 10 * alone["auc_p"]  # passes alone, not 10 times over
    for k in range(9):  # pain above no pain in half the subjects: AUC 0.5 in every resample
        write(f"Blind{k}", sorted(paindb["subject"].unique())[::2])
    groups = []
    real = results.group_intervals
    monkeypatch.setattr(results, "group_intervals",
                        lambda p, s: groups.extend(sorted(set(p["model"]))) or real(p, s))
    _, summary = current_results(store)
    assert "Weak" not in groups and len(groups) == 9  # only the new groups were bootstrapped
    weak = summary.set_index("model").loc["Weak"].iloc[0]
    assert weak["auc_p"] == alone["auc_p"] and weak["auc_p_holm"] == pytest.approx(10 * alone["auc_p"])
    assert not weak["learned"]
    assert weak["learned_reason"] == "AUC above 0.5 alone, not after Holm's correction over 10 networks"
    refresh_results(store)
    stored = store.table("summary").set_index("model").loc["Weak"].iloc[0]
    assert not stored["learned"] and stored["auc_p_holm"] == weak["auc_p_holm"]


# --- calibration -----------------------------------------------------------------------------------------

def test_temperature_undoes_overconfidence_and_ece_does_not_get_worse(experiment):
    calibration, reliability = current_calibration(experiment)
    sharp = calibration.set_index("model").loc["Sharp"]
    assert 2.0 < sharp["temperature"] < 4.5  # the planted factor is 3
    assert sharp["ece_oof_after"] <= sharp["ece_oof_before"] and sharp["nll_oof_after"] < sharp["nll_oof_before"]
    assert sharp["oof_images"] == 160 and sharp["external_images"] == 32
    bins = reliability[(reliability["model"] == "Sharp")]
    assert set(bins["predictions"]) == {"subject-wise out-of-fold", "external (CP-PAIN)"}
    assert bins.groupby(["predictions", "calibrated"])["images"].sum().tolist() == [32, 32, 160, 160]
    assert len(bins) == 4 * 10
    flat = calibration.set_index("model").loc["Flat"]
    assert flat["note"].startswith("The temperature is at its upper bound") and flat["temperature"] > 50


def test_the_external_predictions_never_reach_the_fitted_temperature(tmp_path):
    one = make_experiment(tmp_path, {"Sharp": "overconfident"}, scenarios=("subject", "external"), name="one")
    other = make_experiment(tmp_path, {"Sharp": "overconfident"}, scenarios=("subject", "external"), name="other")
    for fold in range(2):  # other: the same subject-wise runs, the external predictions turned upside down
        key = RunKey("Sharp", "external", fold)
        flipped = other.predictions(key)
        write_run(other, key, flipped.rename(columns={"true_label": "label"}), 1 - flipped["p_pain"].to_numpy())
    a, b = (current_calibration(store)[0].iloc[0] for store in (one, other))
    assert a["temperature"] == b["temperature"]
    assert a["ece_external_before"] != b["ece_external_before"]


def test_fit_and_apply_temperature():
    rng = np.random.default_rng(0)
    calibrated = rng.uniform(0.02, 0.98, 4000)
    y = (rng.random(4000) < calibrated).astype(int)  # calibrated by construction
    overconfident = apply_temperature(calibrated, 1 / 2.5)  # logits times 2.5
    assert fit_temperature(overconfident, y) == pytest.approx(2.5, rel=0.1)
    assert ece(apply_temperature(overconfident, 2.5), y) < ece(overconfident, y)
    assert apply_temperature(0.5, 3.0) == pytest.approx(0.5) and apply_temperature(0.9, math.nan) == 0.9
    assert apply_temperature(1.0, 2.0) < 1.0  # clipped before the logit: finite
    assert math.isnan(fit_temperature(np.array([0.2, 0.7]), np.array([1, 1])))


# --- per subject -------------------------------------------------------------------------------------------

def test_per_subject_results_with_expressiveness(experiment):
    table = current_subjects(experiment)
    assert len(table) == 2 * (16 + 16 + 8)  # networks x (image + subject scenario PAIN-DB subjects + CP-PAIN)
    row = table[(table["model"] == "Sharp") & (table["scenario"] == "subject") & (table["subject"] == "U02")].iloc[0]
    assert (row["images"], row["pain_images"], row["dataset"]) == (10, 5, "unbc")
    assert row["expressiveness"] == 3.0 and row["expressiveness_measure"] == MEASURES["pspi"]
    predictions = experiment.finished_predictions("subject")
    mine = predictions[(predictions["model"] == "Sharp") & (predictions["subject"] == "U02")]
    assert row["auc"] == pytest.approx(roc_auc_score(mine["true_label"], mine["p_pain"]))
    assert row["accuracy"] == pytest.approx(np.mean(mine["predicted_label"] == mine["true_label"]))
    levels = table[(table["subject"] == "Sub03") & (table["model"] == "Sharp")]
    assert set(levels["expressiveness"]) == {4.0} and set(levels["expressiveness_measure"]) == {MEASURES["level"]}
    blank = table[table["dataset"].isin(["delaware", "cppain"])]
    assert blank["expressiveness"].isna().all() and set(blank["expressiveness_measure"]) == {""}


def test_real_mintpain_levels_are_not_called_expressiveness(tmp_path):
    store = make_experiment(tmp_path, {"Sharp": "overconfident"}, scenarios=("subject",), synthetic=False)
    table = current_subjects(store)
    assert table.loc[table["dataset"] == "mintpain", "expressiveness"].isna().all()
    assert table.loc[table["dataset"] == "unbc", "expressiveness"].notna().all()


def test_the_number_of_resamples_is_a_config_setting_and_changing_it_renews_the_intervals(tmp_path):
    store = make_experiment(tmp_path, {"Sharp": "overconfident"}, scenarios=("external",))
    manifest = store.manifest()
    store.write_manifest({**manifest, "config": {"experiment": {"seed": 5}, "evaluation": {"bootstrap_resamples": 200}}})
    refresh_results(store)
    assert set(store.table("summary")["bootstrap_resamples"]) == {200}
    store.write_manifest({**manifest, "config": {"experiment": {"seed": 5}, "evaluation": {"bootstrap_resamples": 300}}})
    assert set(current_results(store)[1]["bootstrap_resamples"]) == {300}
