"""The dashboard's pure parts without a browser or a trained network: loaders over an artifact folder
written with the engine's own writers, chart and table builders, image composition, exports, report."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from dashboard import charts, export, images, loaders, tables
from dashboard.report import build_report
from engine.artifacts import ExperimentStore, RunKey
from engine.evaluation.metrics import run_metrics

from dashboard_fixtures import EVALUATED_MODELS, evaluated_experiment

MODELS = ["WeiNet", "SongNet", "VGG16"]


def fake_predictions(model: str, scenario: str, fold: int, n: int = 40, skill: float = 0.3) -> pd.DataFrame:
    """A run's predictions with the runner's columns; ``skill`` moves p(pain) towards the truth."""
    rng = np.random.default_rng(abs(hash((model, scenario, fold))) % 2**32)
    truth = np.arange(n) % 2
    p = np.clip(rng.uniform(0, 1, n) * (1 - skill) + truth * skill, 0, 1)
    dataset = "cppain" if scenario == "external" else "unbc"
    return pd.DataFrame({"model": model, "scenario": scenario, "fold": fold, "seed": fold,
                         "image_id": [f"{dataset}/S{i % 5}/seq/{i}" for i in range(n)],
                         "subject": [f"S{i % 5}" for i in range(n)], "dataset": dataset, "true_label": truth,
                         "p_pain": p, "predicted_label": (p >= 0.5).astype(int)})


def write_store(root: Path, finished: int | None = None, synthetic: bool = True) -> Path:
    """An experiment folder with a manifest and ``finished`` runs (all when None), via engine writers."""
    store = ExperimentStore(root, "unit")
    runs = [(m, s, f) for m in MODELS for s in ("image", "subject", "external") for f in range(2)]
    for model, scenario, fold in runs[:finished]:
        key = RunKey(model, scenario, fold)
        store.write_predictions(key, fake_predictions(model, scenario, fold, skill=0.1 + 0.2 * MODELS.index(model)))
        store.finish_run(key, {"seconds": 1.5})
    store.write_manifest({"experiment": "unit", "synthetic": synthetic, "status": "training",
                                "plan": {"models": MODELS, "scenarios": ["image", "subject", "external"]},
                                "config": {"scenarios": {"folds": 2, "seeds": 2}, "experiment": {"description": "d"}}})
    return store.root


def test_roc_points_give_the_same_auc_as_scikit_learn():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200)
    scores = np.round(rng.uniform(0, 1, 200) + 0.3 * y, 2)  # rounded: many ties
    points = charts.roc_points(y, scores)
    assert points["auc"].iloc[0] == pytest.approx(roc_auc_score(y, scores))
    assert points["fpr"].iloc[0] == 0 and points["tpr"].iloc[-1] == 1
    assert charts.roc_points(np.ones(5), np.linspace(0, 1, 5)).empty  # one class: no curve


def test_run_status_counts_finished_and_planned_runs(tmp_path):
    root = write_store(tmp_path, finished=5)
    status = loaders.run_status(loaders.load_experiment(root))
    assert len(status) == 18 and int(status["done"].sum()) == 5


def test_metrics_are_recomputed_from_predictions_while_the_stored_metrics_are_stale(tmp_path):
    from engine.evaluation.results import refresh_results

    root = write_store(tmp_path, finished=4)
    store = ExperimentStore.open(root)
    assert loaders.load_metrics(root).groupby(["model", "scenario", "fold"]).ngroups == 4
    refresh_results(store)
    stale = store.table("metrics")
    for model, scenario, fold in [("SongNet", "image", 0)]:
        key = RunKey(model, scenario, fold)
        store.write_predictions(key, fake_predictions(model, scenario, fold))
        store.finish_run(key, {"seconds": 1.0})
    assert loaders.load_metrics(root).groupby(["model", "scenario", "fold"]).ngroups == 5  # a new run shows
    # A run redone with other predictions while the stored table still holds its old metrics:
    key = RunKey("WeiNet", "image", 0)
    redone = fake_predictions("WeiNet", "image", 0, skill=0.9)
    store.write_predictions(key, redone)
    store.finish_run(key, {"seconds": 1.0})
    store.write_table("metrics", stale)  # e.g. killed between the run and the refresh
    shown = loaders.load_metrics(root)
    row = shown[(shown["model"] == "WeiNet") & (shown["scenario"] == "image") & (shown["fold"] == 0)]
    expected = run_metrics(redone)
    assert row["accuracy"].iloc[0] == pytest.approx(expected["accuracy"].iloc[0])
    assert row["accuracy"].iloc[0] != pytest.approx(stale.query("model == 'WeiNet' and scenario == 'image' and fold == 0")["accuracy"].iloc[0])


def test_experiments_are_found_in_a_folder_of_experiments_or_given_directly(tmp_path):
    root = write_store(tmp_path / "artifacts")
    (tmp_path / "artifacts" / "README.md").write_text("not an experiment")
    assert loaders.find_experiments(tmp_path / "artifacts") == [root]
    assert loaders.find_experiments(root) == [root]
    assert loaders.find_experiments(tmp_path / "nowhere") == []


def test_a_missing_or_unreadable_file_reads_as_none(tmp_path):
    store = ExperimentStore(tmp_path, "unit")
    assert loaders.load_table(store.root, "metrics") is None
    store.write_table("subjects", pd.DataFrame({"x": [1]}))
    path = next(store.root.rglob("*.parquet"))
    path.write_bytes(b"PAR1 not really")
    assert loaders.load_table(store.root, "subjects") is None
    assert loaders.load_heatmaps(store.root) is None


def test_figure4_highlights_the_best_network_that_learned_and_draws_the_subject_intervals(tmp_path):
    root = evaluated_experiment(tmp_path)  # made-up predictions through the store, summary by the engine
    metrics, summary = loaders.load_results(root)
    rows = summary[summary["class"] == "macro"]
    best = charts.best_models(rows, "auc")
    assert set(best["model"]) == {"WeiNet"}  # the only network that learned, in each scenario
    spec = charts.metric_by_network(rows, metrics[metrics["class"] == "macro"], "auc", list(EVALUATED_MODELS), "AUC",
                                    "sub", tables.network_verdicts(summary)).to_dict()
    assert spec["autosize"]["type"] == "pad" and len(spec["hconcat"]) == 3  # one panel per scenario
    external = spec["hconcat"][2]
    bars, rule = external["layer"][0], external["layer"][2]
    assert rule["encoding"]["y"]["field"] == "low" and rule["encoding"]["y2"]["field"] == "high"
    shown = pd.DataFrame(spec["datasets"][bars["data"]["name"]])
    assert shown.set_index("model").loc["WeiNet", ["low", "high"]].tolist() == pytest.approx(
        rows.query("model == 'WeiNet' and scenario == 'external'")[["auc_low", "auc_high"]].iloc[0].tolist())
    assert bars["encoding"]["color"]["condition"]["test"] == "datum.learned"  # grey unless it learned
    assert set(shown.loc[~shown["learned"], "model"]) == {"SongNet", "VGG16", "SilNet"}
    assert "SongNet (did not learn)" in set(shown["network"])
    assert any("did not learn" in line for line in spec["title"]["subtitle"])
    table = tables.comparison(summary, list(EVALUATED_MODELS))
    assert table.groupby("scenario")["best AUC"].sum().eq(1).all()
    assert list(table["network"][:3]) == ["WeiNet", "SongNet", "VGG16"]  # the plan's order within each scenario
    assert table.loc[table["network"] == "SongNet", "why"].str.contains("one class").all()


def test_every_chart_builder_gives_a_valid_vega_lite_spec(tmp_path):
    root = write_store(tmp_path)
    metrics = loaders.load_metrics(root)
    predictions = loaders.load_predictions(root)
    experiment = loaders.load_experiment(root)
    regions = pd.DataFrame({"model": ["WeiNet"] * 2, "region": ["eyes", "mouth"], "aus": ["AU6", ""],
                            "share": [0.6, 0.4], "area_share": [0.3, 0.7], "ratio": [2.0, 0.57]})
    similarity = pd.DataFrame({"model_a": ["A", "A", "B", "B"], "model_b": ["A", "B", "A", "B"], "correlation": [1, .3, .3, 1]})
    headline = pd.DataFrame({"scale_label": ["FACS"] * 2, "source_label": ["Other", "All"], "icc": [0.8, 0.6],
                             "ci_low": [0.5, 0.3], "ci_high": [0.9, 0.8], "category": ["excellent", "fair/good"], "n_videos": [9, 20]})
    verdicts = pd.DataFrame({"model": ["VGG16", "A"], "scenario": ["external", "external"], "learned": [False, False],
                             "reason": ["predicts one class (no pain for every image)"] * 2})
    calibration, reliability = loaders.load_calibration(root)
    subjects = loaders.load_subjects(root)
    built = [
        charts.dataset_counts(pd.DataFrame({"dataset": ["A", "A"], "class": ["pain", "no pain"], "images": [3, 4]})),
        charts.run_progress(loaders.run_status(experiment)),
        charts.class_metrics(metrics[metrics["scenario"] == "external"], MODELS, "t", verdicts=verdicts),
        charts.confusion_matrix(predictions[predictions["model"] == "VGG16"], "t"),
        charts.roc_curves(predictions, MODELS, "t", verdicts=verdicts),
        charts.region_grid(regions, MODELS, "t", verdicts=verdicts),
        charts.similarity_matrix(similarity, ["A", "B"], {"A": True}, "t", verdicts=verdicts),
        charts.icc_intervals(headline, "t"),
        charts.probabilities(pd.DataFrame({"model": MODELS, "p_pain": [0.2, 0.6, 0.9], "low": [0.1, np.nan, 0.8],
                                           "high": [0.3, np.nan, 0.95]}), "t", verdicts=verdicts),
        charts.ece_by_network(calibration, MODELS, "t", verdicts=verdicts),
        charts.reliability_diagram(reliability[reliability["model"] == "VGG16"], "t", verdicts=verdicts),
        charts.subject_accuracy(subjects[subjects["model"] == "VGG16"], "t"),
        charts.accuracy_vs_expressiveness(subjects[subjects["model"] == "VGG16"], "t"),
    ]
    for chart in built:
        spec = chart.to_dict()  # validates against the Vega-Lite schema
        assert spec["config"]["axis"]["labelFontSize"] >= 14  # projector-sized type


def test_charts_export_to_png_and_svg_and_tables_to_csv(tmp_path):
    chart = charts.dataset_counts(pd.DataFrame({"dataset": ["A", "B"], "class": ["pain", "no pain"], "images": [3, 4]}),
                                  subtitle="experiment unit")
    assert export.chart_png(chart)[:8] == b"\x89PNG\r\n\x1a\n"
    svg = export.chart_svg(chart)
    assert svg.lstrip().startswith("<svg") and "Images per dataset" in svg
    assert export.table_csv(pd.DataFrame({"a": [1], "b": ["x"]})) == b"a,b\n1,x\n"


def test_table2_counts_paindb_and_keeps_cppain_apart():
    samples = pd.DataFrame({
        "dataset": ["unbc"] * 4 + ["delaware"] * 2 + ["cppain"] * 3,
        "role": ["paindb"] * 6 + ["cppain"] * 3,
        "subject": ["a", "a", "b", "b", "c", "d", "p", "p", "q"],
        "label": [0, 1, 0, 1, 0, 1, 0, 1, 1], "intensity": [0, 2, 0, 5, 0, 1, 0, 1, 1],
        "status": ["ok", "ok", "ok", "no_face", "ok", "ok", "ok", "ok", "ok"],
    })
    table = tables.table2(samples).set_index("Dataset")
    assert table.loc["Total (PAIN-DB)", "Images"] == 6 and table.loc["Total (PAIN-DB)", "Faces found"] == 5
    assert table.loc["CP-PAIN (external test)", "Pain"] == 2 and table.loc["Total (PAIN-DB)", "Levels"] == ""
    assert list(table.index) == ["Delaware", "UNBC-McMaster", "Total (PAIN-DB)", "CP-PAIN (external test)"]


def test_heatmap_overlay_and_grid_images():
    face = np.full((64, 64, 3), 120, np.uint8)
    heat = np.zeros((32, 32), np.float32)
    heat[8:16, 8:16] = 1.0
    assert np.array_equal(images.overlay(face, heat, 0.0), face)
    full = images.overlay(face, heat, 1.0)
    assert full.shape == (64, 64, 3) and not np.array_equal(full[20, 20], full[50, 50])
    diff = images.difference_image(np.array([[-1.0, 0.0, 1.0]]))
    assert diff[0, 1].min() > 200  # zero difference is near white
    grid = images.labelled_grid([face] * 3, ["a", "b", "c"], columns=2, tile=100, title="a long title " * 12)
    assert grid.shape[1] >= 2 * 100 and grid.dtype == np.uint8
    assert images.lime_mask(np.array([-1.0, 2.0]), np.array([[0, 1]])).tolist() == [[0.0, 1.0]]


def test_report_is_one_self_contained_html_file(tmp_path):
    root = write_store(tmp_path)
    html = build_report(root)
    assert html.startswith("<!DOCTYPE html>") and "Synthetic demo data" in html and "not a medical device" in html
    assert "<svg" in html and "Figure 4" in html
    external = re.findall(r"""(?:src|href)=["'](?!data:|#)([^"']+)""", html)
    assert external == []  # nothing loaded from elsewhere
    assert "painlens explain" in html  # missing heatmaps: says what writes them


def test_real_experiments_are_not_labelled_synthetic(tmp_path):
    root = write_store(tmp_path, synthetic=False)
    assert "Synthetic demo data" not in build_report(root)
    manifest = json.loads((root / "manifest.json").read_text())
    assert manifest["synthetic"] is False


def test_the_server_command_keeps_the_safety_defaults(tmp_path):
    from dashboard.serve import command

    argv = command(tmp_path, port=8600)
    assert argv[1] == "-c" and argv[3] == "run" and argv[4].endswith("app.py")
    flags = dict(zip(argv[5:argv.index("--"):2], argv[6:argv.index("--"):2]))
    assert flags["--server.address"] == "127.0.0.1"
    assert flags["--browser.gatherUsageStats"] == "false"
    assert flags["--server.headless"] == "true"
    assert int(flags["--server.maxUploadSize"]) <= 25
    assert flags["--client.showErrorDetails"] == "none"  # no tracebacks in the browser
    assert argv[argv.index("--") + 1:] == ["--artifacts", str(tmp_path.resolve())]


def test_streamlit_no_longer_clears_the_keras_session_after_a_script_run():
    # Streamlit clears Keras after every run; the upload page's networks must stay compiled (an
    # upload's answer grew from 0.5 s to over 6 s). clear_session resets layer-name counters,
    # which makes the difference visible without a server.
    import keras
    from streamlit.runtime.scriptrunner import script_runner

    from dashboard.predictor import keep_keras_session

    original = script_runner._clean_problem_modules
    try:
        if not getattr(original, "keeps_keras", False):
            keras.layers.Dense(1, name=None)
            original()  # Streamlit's own: clears the session, so names start again
            assert keras.layers.Dense(1).name == "dense"
        assert keep_keras_session() is True
        keras.layers.Dense(1)
        script_runner._clean_problem_modules()
        assert keras.layers.Dense(1).name != "dense"
        assert keep_keras_session() is True  # idempotent
    finally:
        script_runner._clean_problem_modules = original


def test_long_lived_objects_are_hidden_from_the_collection_after_every_script_run():
    # Streamlit collects garbage after every script run; with TensorFlow and the kept networks loaded that
    # scanned ~900,000 objects for a second, and the page's last messages waited for it.
    import gc

    from dashboard.predictor import freeze_long_lived_objects

    kept = [[i] for i in range(1000)]  # objects that live on (as modules and networks do)
    try:
        freeze_long_lived_objects()
        assert gc.get_freeze_count() > len(kept) and len(gc.get_objects()) < len(kept)
        garbage = [[]]
        garbage[0].append(garbage)  # a cycle made after the freeze is still collected
        del garbage
        assert gc.collect() >= 1
    finally:
        gc.unfreeze()


def test_network_notes_say_why_a_network_is_greyed_and_which_bases_had_no_imagenet_weights():
    verdicts = pd.DataFrame({
        "model": ["WeiNet"] * 3 + ["SongNet"] * 3 + ["VGG16"] * 3 + ["SilNet"] * 2,
        "scenario": ["image", "subject", "external"] * 3 + ["subject", "external"],
        "learned": [True, True, True, False, False, False, False, False, False, False, True],
        "reason": ["AUC interval above 0.5"] * 3 + ["predicts one class (no pain for every image)"] * 3
                  + ["AUC interval includes 0.5"] * 3 + ["AUC interval below 0.5 (worse than chance)", "AUC interval above 0.5"]})
    notes = tables.network_notes(verdicts, ["WeiNet", "SongNet", "VGG16", "SilNet"], None, {"VGG16"},
                                 {"SilNet": ["subject", "external"]}).set_index("model")
    assert "WeiNet" not in notes.index  # learned everywhere, nothing to say
    assert notes.loc["SongNet", "notes"] == ["did not learn in any scenario: predicts one class (no pain for every image)"]
    assert notes.loc["VGG16", "notes"][1] == "pretrained base trained from random weights here (no ImageNet weights)"
    assert notes.loc["SilNet", "notes"] == ["did not learn in Subject-wise: AUC interval below 0.5 (worse than chance)",
                                            "runs only in Subject-wise, External (CP-PAIN) ([scenarios] per_model)"]
    assert bool(notes.loc["SongNet", "greyed"]) and not bool(notes.loc["SilNet", "greyed"])
    mixed = verdicts[verdicts["model"] == "SongNet"].assign(model="Mixed")
    mixed.loc[mixed["scenario"] == "image", "reason"] = "AUC interval includes 0.5"
    assert tables.network_notes(mixed, ["Mixed"]).iloc[0]["notes"] == [
        "did not learn in any scenario: Image-wise: AUC interval includes 0.5; Subject-wise, External (CP-PAIN): predicts "
        "one class (no pain for every image)"]
    external = tables.network_notes(verdicts, ["SilNet"], ["external"], set(), {})
    assert external.empty  # SilNet learned in the one scenario a page shows
    capped = tables.network_notes(verdicts, ["VGG16"], None, set(), {}, {"VGG16": 4}).iloc[0]["notes"]
    assert capped[-1] == "trained on 4 batches per epoch only ([training] steps_per_epoch_per_model)"
    plain = tables.network_notes(verdicts, ["WeiNet"], None, set(), {}, {}, {"WeiNet"}).iloc[0]["notes"]
    assert plain == ["trained without augmentation or dropout ([training] unregularized)"]
    halved = tables.network_notes(verdicts, ["WeiNet"], None, set(), {}, {}, set(), {"WeiNet": 0.5}).iloc[0]["notes"]
    assert halved == ["external runs trained half of its epochs, on all of PAIN-DB ([training] external_epoch_share)"]
    assert tables.network_notes(verdicts, ["WeiNet"], None, set(), {}, {}, set(), {"WeiNet": 0.25}).iloc[0]["notes"][0] \
        .startswith("external runs trained 25 % of its epochs")
    assert tables.network_notes(verdicts, ["WeiNet"], ["image"], set(), {}, {}, set(), {"WeiNet": 0.5}).empty  # not shown
    twins = tables.network_notes(verdicts.replace({"VGG16": "ResNet50"}).pipe(
        lambda v: pd.concat([v, verdicts[verdicts["model"] == "SongNet"].assign(model="AlexNet")])),
        ["SongNet", "AlexNet"], None, set(), {})
    assert tables.grouped_notes(twins) == [(["SongNet", "AlexNet"], list(notes.loc["SongNet", "notes"]))]


def test_a_greyed_chart_marks_only_the_networks_known_not_to_have_learned():
    frame = pd.DataFrame({"model": ["WeiNet", "SongNet", "NewNet"], "p_pain": [0.9, 0.4, 0.5]})
    verdicts = pd.DataFrame({"model": ["WeiNet", "SongNet"], "scenario": ["external"] * 2, "learned": [True, False],
                             "reason": ["AUC interval above 0.5", "predicts one class (pain for every image)"]})
    marked = charts.with_verdicts(frame, verdicts).set_index("model")
    assert marked["learned"].tolist() == [True, False, True]  # nothing known about NewNet: not greyed
    assert marked.loc["SongNet", "network"] == "SongNet (did not learn)"
    assert marked.loc["SongNet", "learning"] == "did not learn: predicts one class (pain for every image)"
    spec = charts.probabilities(frame.assign(low=np.nan, high=np.nan), "t", "", verdicts).to_dict()
    dots = spec["layer"][2]["encoding"]["color"]
    assert dots["condition"]["test"] == "datum.learned" and dots["value"] == charts.NOT_LEARNED_COLOUR
    assert charts.GREY_NOTE in spec["title"]["subtitle"]
    plain = charts.probabilities(frame.assign(low=np.nan, high=np.nan), "t").to_dict()
    assert charts.GREY_NOTE not in plain["title"].get("subtitle", [])


def test_the_answer_table_gives_raw_and_calibrated_p_and_the_held_out_auc_interval():
    from engine.evaluation.answer import AnswerBasis, one_answer

    parameters = {"used": ["WeiNet"], "ood": {"threshold": 2.0, "neighbours": 1}, "conformal": {"q_pain": 0.5, "q_no_pain": 0.5},
                  "networks": {"WeiNet": {"used": True, "reason": "learned", "auc": 0.8, "auc_low": 0.7, "auc_high": 0.9,
                                          "calibration": {"method": "temperature", "temperature": 2.0},
                                          "ood_scale": 1.0, "members": [0, 1]},
                               "SongNet": {"used": False, "reason": "predicts one class (no pain for every image)",
                                           "auc": 0.5, "auc_low": 0.4, "auc_high": 0.6, "members": []}}}
    basis = AnswerBasis.from_parameters(parameters, {"WeiNet": [np.eye(2), np.eye(2)]})
    probabilities = pd.DataFrame({"model": ["WeiNet", "SongNet"], "p_pain": [0.9, 0.3], "low": [0.85, 0.2],
                                  "high": [0.95, 0.4], "seeds": [2, 2], "input_size": [32, 32],
                                  "p_members": [(0.85, 0.95), None], "ood": [0.5, np.nan]})
    answer = one_answer(probabilities, basis)
    table = tables.answer_table(probabilities, answer.networks).set_index("network")
    assert table.loc["WeiNet", "p(pain) raw"] == 0.9 and table.loc["WeiNet", "p(pain) calibrated"] < 0.9  # T = 2 softens
    assert table.loc["WeiNet", ["AUC low", "AUC high"]].tolist() == [0.7, 0.9]
    assert table["in the answer"].tolist() == [True, False] and answer.p_pain == pytest.approx(table.loc["WeiNet", "p(pain) calibrated"])


def test_every_statistic_shows_its_n_and_few_data_is_marked_with_one_helper():
    """n beside the comparison's numbers, the ECE's prediction sets and Figure 4's panels; "(few data)" under
    30 images or 5 subjects, from the engine's one helper."""
    from engine.evaluation.bootstrap import FEW_DATA_NOTE, sample_size

    summary = pd.DataFrame({
        "model": ["WeiNet", "WeiNet", "SongNet", "SongNet"], "scenario": ["subject", "external"] * 2, "class": "macro",
        "n_images": [479, 24, 479, 24], "n_subjects": [51, 7, 51, 7], "auc": [0.9, 0.8, 0.6, 0.5],
        "auc_low": [0.85, 0.6, 0.5, 0.3], "auc_high": [0.95, 0.95, 0.7, 0.7], "auc_p": [0.001, 0.01, 0.04, 0.5],
        "auc_p_holm": [0.002, 0.02, 0.04, 0.5], "accuracy": 0.7, "accuracy_low": 0.6, "accuracy_high": 0.8,
        "auc_seed_std": np.nan, "learned": [True, True, False, False], "learned_reason": "", "pooling": "",
        "f1_mean": 0.7, "f1_std": 0.1, "runs": 2})
    assert sample_size(479, 51) == "479 images, 51 subjects" and sample_size(24, 7) == "24 images, 7 subjects (few data)"
    assert sample_size(40, 4).endswith("(few data)") and FEW_DATA_NOTE == "few data: fewer than 30 images or 5 subjects"
    table = tables.comparison(summary, ["WeiNet", "SongNet"]).set_index(["network", "scenario"])
    assert table.loc[("WeiNet", "External (CP-PAIN)"), "n"] == "24 images, 7 subjects (few data)"
    assert table.loc[("WeiNet", "Subject-wise"), "n"] == "479 images, 51 subjects"
    assert table.loc[("WeiNet", "External (CP-PAIN)"), "p, Holm"] == 0.02
    assert tables.scenario_sizes(summary, "external") == {"WeiNet": "24 images, 7 subjects (few data)",
                                                          "SongNet": "24 images, 7 subjects (few data)"}
    per_run = summary[["model", "scenario"]].assign(fold=0, roc_auc=0.7)
    spec = charts.metric_by_network(summary, per_run, "auc", ["WeiNet", "SongNet"], "AUC").to_dict()
    titles = [panel["title"] for panel in spec["hconcat"]]
    assert titles == [["Subject-wise", "479 images, 51 subjects"], ["External (CP-PAIN)", "24 images, 7 subjects (few data)"]]
