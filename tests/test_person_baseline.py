"""The person's baseline and cp_adapt: the rule is fitted on development data only, judges a face against the
same person's calm frames of other sequences, and the comparison on CP-PAIN has intervals over subjects.

Stores are real stores holding simulated runs (``test_evaluation_store``), no training.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from engine.answers import Frame, PhotoAnswer, VideoAnswer, compare_with_baseline
from engine.artifacts import ExperimentStore, RunKey
from engine.config import config_from_dict
from engine.errors import ConfigError
from engine.evaluation.baseline import calm_reference, fit_baseline_rule, lead, logit, sigmoid, with_baseline
from engine.evaluation.remedies import AU_MODEL, VARIANTS, refresh_remedies
from engine.person_baseline import PersonBaseline
from engine.training.scenarios import make_splits
from test_evaluation_store import images_of, samples_table, write_run


def test_a_faces_reference_is_its_subjects_calm_frames_of_other_sequences_only():
    subjects = ["a", "a", "a", "a", "b", "b"]
    sequences = ["s1", "s1", "s2", "s3", "t1", "t1"]
    labels = [0, 1, 0, 1, 0, 1]
    z = [1.0, 5.0, 3.0, 9.0, 2.0, 7.0]
    reference, count = calm_reference(subjects, sequences, labels, z)
    # a/s1: the calm frame of s2 (3.0); a/s2: that of s1 (1.0); a/s3: both (2.0); b has one sequence: none.
    assert reference[:4].tolist() == [3.0, 3.0, 1.0, 2.0] and count.tolist() == [1, 1, 1, 2, 0, 0]
    assert np.isnan(reference[4:]).all()


def people_with_resting_offsets(rng: np.random.Generator, subjects: int, offset_sd: float) -> pd.DataFrame:
    """Faces of ``subjects`` people, 3 sequences each with a calm and a pain frame; each person's logits carry
    their own offset (an atypical resting face), pain adds 2."""
    rows = []
    for s in range(subjects):
        offset = rng.normal(0, offset_sd)
        for q in range(3):
            for label in (0, 1):
                rows.append({"subject": f"P{s}", "sequence": f"P{s}/{q}", "label": label,
                             "z": offset + 2 * label + rng.normal(0, 0.5)})
    return pd.DataFrame(rows)


def test_the_change_from_the_calm_face_ranks_pain_better_when_people_rest_differently():
    rng = np.random.default_rng(0)
    development = people_with_resting_offsets(rng, 20, offset_sd=0.3)
    rule = fit_baseline_rule(sigmoid(development["z"]), development["label"], development["subject"],
                             development["sequence"])
    assert rule["slope"] > 0 and rule["images"] == len(development) and rule["subjects"] == 20
    assert 0 < rule["rest_threshold"] < 1
    test = people_with_resting_offsets(rng, 20, offset_sd=3.0)  # CP-like: resting faces far apart
    reference, _ = calm_reference(test["subject"], test["sequence"], test["label"], test["z"])
    from sklearn.metrics import roc_auc_score

    p = sigmoid(test["z"].to_numpy())
    adjusted = with_baseline(p, reference, rule)
    assert roc_auc_score(test["label"], adjusted) > roc_auc_score(test["label"], p) + 0.1


def test_the_change_leads_only_when_the_calm_face_already_reads_as_pain():
    rule = {"rest_threshold": 0.4, "lead_quantile": 0.9, "slope": 1.0, "intercept": 0.0}
    assert lead(0.8, rule)[0] == "change" and "resting face" in lead(0.8, rule)[1]
    assert lead(0.2, rule)[0] == "absolute"


def test_the_answer_record_reports_both_numbers_and_which_leads():
    rule = {"slope": 1.5, "intercept": -0.2, "rest_threshold": 0.4, "lead_quantile": 0.9, "images": 100, "subjects": 10}
    record = compare_with_baseline(PhotoAnswer(path="face.png", p_pain=0.7), PersonBaseline(0.75, 1, "image"), rule)
    b = record.baseline
    assert b.p_absolute == 0.7 and b.p_baseline == 0.75 and b.leads_with == "change"
    assert b.p_change == pytest.approx(float(sigmoid(1.5 * (logit(0.7) - logit(0.75)) - 0.2)), abs=1e-4)
    assert "CP-PAIN never read" in b.rule and record.to_json()["baseline"]["leads_with"] == "change"
    withheld = compare_with_baseline(PhotoAnswer(path="x.png", p_pain=None, abstained=True),
                                     PersonBaseline(0.2, 1, "image"), rule)
    assert withheld.baseline.p_change is None and "withheld" in withheld.baseline.why
    with_aus = compare_with_baseline(PhotoAnswer(p_pain=0.7, aus={"AU4": 3.0, "AU10": 2.0, "PSPI": 5.0}),
                                     PersonBaseline(0.5, 1, "image", aus={"AU4": 2.0, "AU10": 2.0, "PSPI": 4.0}), rule)
    assert with_aus.baseline.aus_change == {"AU4": 1.0, "AU10": 0.0, "PSPI": 1.0}  # what moved, not the resting brow
    unfitted = compare_with_baseline(PhotoAnswer(p_pain=0.3), PersonBaseline(0.2, 1, "image"), {"slope": None})
    assert unfitted.baseline.p_change is None and unfitted.baseline.leads_with == "absolute"
    assert unfitted.baseline.aus_change is None  # no estimator: no AU comparison


def test_a_clip_is_compared_with_the_calm_face_frame_by_frame():
    rule = {"slope": 1.5, "intercept": -0.2, "rest_threshold": 0.4, "lead_quantile": 0.9, "images": 100, "subjects": 10}
    frames = [Frame(t=0.0, p_pain=0.6, face=True), Frame(t=0.5, p_pain=None, face=False),
              Frame(t=1.0, p_pain=0.8, face=True)]
    clip = compare_with_baseline(VideoAnswer(path="clip.mp4", p_pain=0.7, frames=frames, aus={"PSPI": 6.0}),
                                 PersonBaseline(0.75, 3, "video", aus={"PSPI": 4.0}), rule)
    b = clip.baseline
    expected = np.mean([float(sigmoid(1.5 * (logit(p) - logit(0.75)) - 0.2)) for p in (0.6, 0.8)])  # the answered frames
    assert b.p_absolute == 0.7 and b.p_change == pytest.approx(expected, abs=1e-4) and b.leads_with == "change"
    assert b.rule.startswith("Each answered frame") and b.baseline_frames == 3 and b.aus_change == {"PSPI": 2.0}
    assert clip.to_json()["baseline"]["p_change"] == b.p_change
    withheld = compare_with_baseline(VideoAnswer(p_pain=None, frames=frames[1:2]), PersonBaseline(0.2, 1, "image"), rule)
    assert withheld.baseline.p_change is None and "clip's number is withheld" in withheld.baseline.why


def test_cp_adapt_leaves_one_cp_subject_out_and_needs_the_external_models():
    samples = samples_table()
    paindb, cppain = samples[samples["dataset"] != "cppain"], samples[samples["dataset"] == "cppain"]
    splits = make_splits("cp_adapt", paindb, cppain, folds=2, seeds=2, seed=3)
    subjects = cppain["subject"].to_numpy()
    assert len(splits) == 8 and all(s.train_set == "cppain" and s.test_set == "cppain" for s in splits)
    for split in splits:
        assert set(subjects[split.test]) == {sorted(set(subjects))[split.fold]}
        assert not set(subjects[split.test]) & set(subjects[split.train])
        assert len(split.train) + len(split.test) == len(cppain)
    with pytest.raises(ConfigError, match="external"):
        config_from_dict({"training": {"models": ["WeiNet"]},
                          "scenarios": {"names": ["cp_adapt"], "per_model": {}}})


def test_the_comparison_has_four_variants_with_intervals_over_cp_subjects(tmp_path):
    store = ExperimentStore(tmp_path, "remedies")
    samples = samples_table()
    samples["sequence"] = samples["image_id"].str.rsplit("/", n=1).str[-1].astype(int).floordiv(2).astype(str)
    store.write_samples(samples)
    store.write_manifest({"experiment": "remedies", "synthetic": True, "plan": {"models": ["Net"]}})
    rng = np.random.default_rng(1)
    offsets = {s: rng.normal(0, 3) for s in samples["subject"].unique()}  # every person's own resting face
    for scenario, folds in (("subject", 2), ("external", 2), ("cp_adapt", 8)):
        for fold in range(folds):
            if scenario == "cp_adapt":
                cp = samples[samples["dataset"] == "cppain"]
                tested = cp[cp["subject"] == sorted(cp["subject"].unique())[fold]]
            else:
                tested = images_of(samples, scenario, fold)
            shift = 0.0 if scenario != "external" else 1.0  # the external model reads every CP face as more painful
            y = tested["label"].to_numpy()
            z = tested["subject"].map(offsets).to_numpy() * (scenario != "subject") + 3 * y - 1.5 + shift
            write_run(store, RunKey("Net", scenario, fold), tested, sigmoid(z + rng.normal(0, 0.3, len(y))))
            if scenario == "cp_adapt":
                store.write_adapt_curve(RunKey("Net", scenario, fold), pd.DataFrame(
                    {"n_subjects": [2] * len(tested) + [7] * len(tested), "image_id": list(tested["image_id"]) * 2,
                     "p_pain": np.r_[np.full(len(tested), 0.5), sigmoid(z)]}))
    # The AU estimator's PSPI: coded on UNBC (development), each CP-PAIN person's resting face adds to it.
    frames = samples[samples["dataset"].isin(["unbc", "cppain"])].assign(
        set=lambda f: np.where(f["dataset"] == "unbc", "unbc_out_of_fold", "cppain"),
        true_PSPI=lambda f: 2.0 * f["label"], PSPI=lambda f: 2.0 * f["label"] + rng.normal(0, 0.4, len(f))
        + np.where(f["dataset"] == "cppain", f["subject"].map(offsets), 0.0))
    store.write_table("action_unit_frames", frames[["image_id", "subject", "set", "label", "true_PSPI", "PSPI"]])
    remedies, curve = refresh_remedies(store)
    pspi = remedies[remedies["model"] == AU_MODEL].set_index("variant")
    assert list(pspi.index) == ["external", "external + baseline"] and (pspi["n_subjects"] == 8).all()
    assert pspi.loc["external + baseline", "auc"] > pspi.loc["external", "auc"]
    remedies = remedies[remedies["model"] == "Net"]
    table = remedies.set_index("variant")
    assert list(table.index) == list(VARIANTS)
    assert (table["n_subjects"] == 8).all() and (table["n_images"] == 32).all()
    assert (table["auc_low"] <= table["auc"]).all() and (table["auc"] <= table["auc_high"]).all()
    assert (table["accuracy_low"] <= table["accuracy_high"]).all()
    assert table.loc["external + baseline", "auc"] > table.loc["external", "auc"]
    assert table.loc["external + baseline", "with_reference"] == 32
    assert curve["n_subjects"].tolist() == [2, 7] and (curve["test_subjects"] == 8).all()
    assert curve.set_index("n_subjects").loc[7, "auc"] > 0.5
    assert store.table("remedies") is not None and store.table("adapt_curve") is not None
    from dashboard import charts, tables

    shown = tables.remedies(remedies, ["Net"])
    assert shown["variant"].tolist() == list(VARIANTS) and shown["n"].iloc[0] == "32 images, 8 subjects"
    assert shown["faces with a calm reference"].isna().tolist() == [True, False, True, False]
    for metric in ("auc", "accuracy"):
        spec = charts.remedies(remedies, metric, ["Net"], "t", "s").to_dict()
        assert spec["facet"]["column"]["field"] == "model"
    assert charts.adapt_curve(curve, "accuracy", "t").to_dict()["layer"][1]["mark"]["type"] == "line"


def test_predict_with_a_missing_baseline_file_says_so_and_cannot_run(tmp_path):
    from typer.testing import CliRunner

    from painlens.cli import app

    photo = tmp_path / "face.png"
    photo.write_bytes(b"\x89PNG not really")
    for option in ("--reference", "--baseline"):  # --baseline: the option's earlier name
        done = CliRunner().invoke(app, ["predict", str(photo), "--artifacts", str(tmp_path), option,
                                        str(tmp_path / "calm.jpg")])
        # painlens.cli.main prints the sentence and exits with the error's status (2: the command cannot run)
        assert getattr(done.exception, "exit_code", None) == 2 and "No calm reference file at" in str(done.exception)


def test_the_softmax_layer_is_fine_tuned_with_adams_steps_and_learns():
    from types import SimpleNamespace

    from engine.training.adapt import fit_softmax

    rng = np.random.default_rng(4)
    x = rng.normal(size=(40, 5))
    y = (x[:, 0] > 0).astype(int)
    start = [np.zeros((5, 2)), np.zeros(2)]
    (kernel, bias), _ = fit_softmax(start, x, y, SimpleNamespace(epochs=1, learning_rate=0.01), batch_size=40, seed=0)
    gradient = x.T @ (0.5 - np.eye(2)[y]) / 40  # d(mean cross-entropy)/d(kernel) at zero weights
    # Adam's first step moves every weight by the rate, against its gradient's sign
    assert np.allclose(kernel, -0.01 * np.sign(gradient), atol=1e-5)
    _, history = fit_softmax(start, x, y, SimpleNamespace(epochs=30, learning_rate=0.05), batch_size=8, seed=0)
    assert history[-1]["loss"] < history[0]["loss"] and history[-1]["accuracy"] >= 0.9


# --- the answer served with the person's calm reference (engine.evaluation.reference_answer) ---------------

@pytest.fixture(scope="module")
def reference_rule() -> dict:
    """The answer with a calm reference, fitted on simulated development faces whose people rest differently."""
    from engine.evaluation.answer_fit import _class_thresholds
    from engine.evaluation.reference_answer import fit_reference_answer

    development = people_with_resting_offsets(np.random.default_rng(2), 24, offset_sd=2.0)
    n = len(development)
    return fit_reference_answer(sigmoid(development["z"]), development["label"], development["subject"],
                                development["sequence"], np.full(n, np.nan), np.ones(n, dtype=bool), False, 0.9,
                                _class_thresholds)


def test_the_answer_with_a_calm_reference_is_chosen_and_thresholded_on_development_faces(reference_rule):
    rule = reference_rule
    assert rule["used"] and "change" in rule["inputs"] and rule["images"] == 144 and rule["subjects"] == 24
    assert "pspi_change" not in rule["cv_logloss"]  # no PSPI in the answer: only the logit candidates
    assert rule["cv_logloss"][rule["rule_name"]] <= min(v for v in rule["cv_logloss"].values())
    assert rule["cv_logloss"][rule["rule_name"]] < rule["cv_logloss"]["absolute"]  # the calm face helps here
    assert {"q_pain", "q_no_pain", "development_answered"} <= set(rule["conformal"]) and rule["conformal"]["level"] == 0.9


def test_a_calm_reference_makes_the_record_the_answer_with_it_and_keeps_the_face_alones_beside(reference_rule):
    from engine.evaluation.answer import prediction_sets
    from engine.evaluation.reference_answer import reference_p

    rule = {"slope": 1.5, "intercept": -0.2, "rest_threshold": 0.4, "lead_quantile": 0.9, "images": 100, "subjects": 10,
            "answer": reference_rule}
    calm = PersonBaseline(0.9, 1, "image")  # an atypical resting face: reads as pain on its own
    uncertain = PhotoAnswer(p_pain=None, abstained=True, abstain_reason="Uncertain: ...", ood_score=0.5, used=[])
    uncertain._served = (0.9, 0.85, 0.95)  # as calm as the calm face: no change
    record = compare_with_baseline(uncertain, calm, rule)
    expected = float(reference_p(0.9, np.nan, 0.9, np.nan, rule["answer"]))
    assert record.answer_kind == "with_reference" and expected < 0.5 and record.p_pain == pytest.approx(expected, abs=1e-4)
    assert not record.abstained and record.prediction_set == ["no pain"] and "calm reference" in record.rule
    b = record.baseline
    assert b.p_absolute is None and b.absolute_abstain_reason == "Uncertain: ..." and b.p_change == record.p_pain
    assert b.leads_with == "change" and record.to_json()["answer_kind"] == "with_reference"
    unlike = PhotoAnswer(p_pain=None, abstained=True, abstain_reason="No number: unlike", ood_score=1.4)
    unlike._served = (0.1, 0.1, 0.1)
    assert compare_with_baseline(unlike, calm, rule).abstain_reason == "No number: unlike"  # the same OOD check
    assert compare_with_baseline(PhotoAnswer(p_pain=0.3), calm, {"slope": None}).answer_kind == "absolute"
    frames = [Frame(t=0.0, p_pain=None, face=True, abstained=True, ood_score=0.5), Frame(t=0.5, p_pain=None, face=False),
              Frame(t=1.0, p_pain=0.99, face=True, ood_score=0.5)]
    frames[0]._served, frames[2]._served = 0.9, 0.99
    clip = compare_with_baseline(VideoAnswer(p_pain=0.99, frames=frames, answered_frames=1), calm, rule)
    each = reference_p(np.array([0.9, 0.99]), np.nan, 0.9, np.nan, rule["answer"])
    pain, no_pain = prediction_sets(each, rule["answer"]["conformal"])
    answered = [f.p_pain for f in clip.frames if f.p_pain is not None]
    assert clip.answer_kind == "with_reference" and answered == pytest.approx(list(each[pain != no_pain]), abs=1e-4)
    assert clip.answered_frames == len(answered) and (clip.p_pain is None) == (not answered)
