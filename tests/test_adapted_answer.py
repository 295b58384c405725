"""[evaluation] serve_cp_adapt: off, the answer is PAIN-DB's fold models and CP-PAIN its sealed test; on, the
served models are the external ones adapted on every CP-PAIN subject, the answer is refitted on cp_adapt's
leave-one-subject-out runs, its CP-PAIN figures come from those runs and every sentence says they are leave one out.

Real stores holding simulated runs, as in ``test_answer`` (no training): the served adaptation is written as
``refresh_served_adaptation`` writes it (its Keras fine-tuning is measured on the demo, README).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from engine.artifacts import RunKey
from engine.config import config_from_dict
from engine.errors import ConfigError
from engine.evaluation import answer_evaluation
from engine.evaluation.adapted_answer import beside_note
from engine.evaluation.answer import AnswerBasis
from engine.evaluation.answer_evaluation import evaluate_answer, served_on_cppain, served_sentence
from engine.evaluation.answer_fit import refresh_answer
from engine.evaluation.calibration import apply_calibrator
from engine.evaluation.results import refresh_results
from engine.predict import served_models
from test_answer import SETTINGS, add_development_arrays, features_of
from test_evaluation_store import make_experiment, p_of, write_run

ON = dataclasses.replace(SETTINGS, serve_cp_adapt=True)


def with_cp_adapt(store) -> None:
    """Sharp's cp_adapt runs (one per CP-PAIN subject left out) and its adaptation on every CP-PAIN subject."""
    rng = np.random.default_rng(8)
    samples = store.samples()
    cppain = samples[samples["dataset"] == "cppain"].sort_values("image_id")
    for fold, subject in enumerate(sorted(cppain["subject"].unique())):
        left_out = cppain[cppain["subject"] == subject]
        write_run(store, RunKey("Sharp", "cp_adapt", fold), left_out, p_of("overconfident", left_out["label"].to_numpy(), rng))
    paindb = samples[samples["dataset"] != "cppain"]
    path = store.served_adaptation_model_path("Sharp")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"adapted")  # the fit reads no model; the Predictor loads it
    store.write_served_adaptation("Sharp", {"adapted_from": "Sharp/external/0", "seed": 11, "layers": 1},
                                  paindb=features_of(paindb["label"].to_numpy(), rng).astype(np.float16),
                                  cppain=features_of(cppain["label"].to_numpy(), rng).astype(np.float16),
                                  cppain_image_ids=cppain["image_id"].to_numpy().astype(str))


def test_the_switch_serves_the_cp_adapted_models_and_says_cp_pains_figures_are_leave_one_out(tmp_path, monkeypatch):
    monkeypatch.setattr(answer_evaluation, "RESAMPLES", 200)  # the wording and the faces, not the intervals, are tested
    store = make_experiment(tmp_path, {"Sharp": "overconfident", "Flat": "constant"},
                            scenarios=("image", "subject", "external"))
    add_development_arrays(store, ["Sharp", "Flat"])
    with_cp_adapt(store)
    refresh_results(store)

    off = refresh_answer(store, SETTINGS)  # the default: nothing of cp_adapt is read
    basis = AnswerBasis.from_store(store)
    assert not basis.adapted and off["scenario"] == "subject" and off["networks"]["Sharp"]["members"] == [0, 1]
    assert served_models(store, basis)["Sharp"][1] == [store.kept_model_path(RunKey("Sharp", "subject", f)) for f in (0, 1)]

    on = refresh_answer(store, ON)
    basis = AnswerBasis.from_store(store)
    assert basis.adapted and on["serve_cp_adapt"] and on["scenario"] == "cp_adapt" and on["used"] == ["Sharp"]
    assert on["networks"]["Sharp"]["members"] == [0] and on["networks"]["Sharp"]["loso_runs"] == list(range(8))
    assert on["networks"]["Sharp"]["oof_images"] == 32  # calibrated on CP-PAIN's leave-one-out faces, not PAIN-DB's
    assert "cp_adapt" in on["networks"]["Flat"]["reason"] and on["cppain_figures"] == "leave_one_subject_out"
    assert on["ood"]["images"] == 32 and "CP-PAIN" in on["baseline"]["cppain"]
    assert served_models(store, basis)["Sharp"] == ([RunKey("Sharp", "external", 0)], [store.served_adaptation_model_path("Sharp")])
    # The evaluation: each CP-PAIN face by the model adapted without its subject, calibrated as served.
    faces = served_on_cppain(store, basis).set_index("image_id")
    loso = store.finished_predictions("cp_adapt").set_index("image_id")["p_pain"].reindex(faces.index)
    calibrated = apply_calibrator(loso.to_numpy(), basis.networks["Sharp"].calibrator)
    assert faces["p_served"].to_numpy() == pytest.approx(np.asarray(calibrated))
    table = evaluate_answer(store, basis)
    assert table.set_index("metric").loc["prevalence", "n_subjects"] == 8
    sentence = served_sentence(table, on)
    assert "leave one subject out" in sentence and "leave-one-subject-out, not a sealed test" in sentence
    assert "never used to build it" not in sentence
    sealed = served_sentence(table, off)  # the same figures under the default's parameters
    assert "never used to build it" in sealed and "leave-one-subject-out" not in sealed
    assert "CP-PAIN is no sealed test" in on["rule"] and "NOT a sealed test" in on["test"]
    assert "leave-one-subject-out" in beside_note(on) and beside_note(off) == ""  # the answer beside the raters


def test_the_switch_needs_cp_adapt_on_the_softmax_layer():
    with pytest.raises(ConfigError, match="serve_cp_adapt"):
        config_from_dict({"evaluation": {"serve_cp_adapt": True}})
    config = config_from_dict({"evaluation": {"serve_cp_adapt": True}, "adapt": {"layers": 1},
                               "scenarios": {"names": ["subject", "external", "cp_adapt"]}})
    assert config.evaluation.serve_cp_adapt
