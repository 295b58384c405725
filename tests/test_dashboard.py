"""The dashboard's pages in Streamlit's AppTest: on a tiny real experiment, an empty artifact folder and a
half-finished one (runs still training), and on experiments written through the store with made-up
predictions (``evaluated_experiment``: one network learned, or none). No page may raise; a missing artifact
is a sentence naming the command that writes it; a network that did not learn is marked on every page
that shows it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("streamlit.testing.v1")
from streamlit.testing.v1 import AppTest  # noqa: E402

from dashboard import tables, widgets  # noqa: E402
from dashboard_fixtures import encode, evaluated_experiment, face_image, half_finished  # noqa: E402

APP = str(Path(__file__).resolve().parent.parent / "dashboard" / "app.py")
TIMEOUT = 240  # the first run imports TensorFlow on a 2-core machine
PAGES = {
    "overview.py": "Experiment: tiny",
    "model_card.py": "Model card: tiny",
    "comparison.py": "Model comparison",
    "per_class.py": "Per class",
    "calibration.py": "Calibration",
    "subjects.py": "Per subject",
    "heatmaps.py": "Heatmaps",
    "faithfulness.py": "Faithfulness",
    "browse.py": "Images",
    "raters.py": "Raters",
    "action_units.py": "Action units",
    "upload.py": "Upload and predict",
}
CHART_PAGES = {"overview.py": 2, "comparison.py": 2, "per_class.py": 3, "calibration.py": 2, "subjects.py": 2,
               "heatmaps.py": 2, "faithfulness.py": 4, "browse.py": 1, "raters.py": 3,
               "action_units.py": 2}
# Pages that show the networks of an experiment without heatmaps or ratings (made-up predictions).
NETWORK_PAGES = ("overview.py", "model_card.py", "comparison.py", "per_class.py", "calibration.py", "subjects.py",
                 "browse.py")

pytestmark = pytest.mark.slow


@pytest.fixture(scope="session")
def experiment(tiny_experiment_dir) -> Path:
    return tiny_experiment_dir


@pytest.fixture(scope="module")
def learned(tmp_path_factory) -> Path:
    """WeiNet learned; SongNet (one class), VGG16 (random weights) and SilNet (two scenarios) did not."""
    return evaluated_experiment(tmp_path_factory.mktemp("learned"), learned=True, kept=("WeiNet", "SongNet"))


@pytest.fixture(scope="module")
def none_learned(tmp_path_factory) -> Path:
    return evaluated_experiment(tmp_path_factory.mktemp("none-learned"), learned=False, kept=("WeiNet", "SongNet"))


def run_page(location: Path, page: str | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.session_state["artifacts_location"] = str(location)
    at.run()
    if page:
        at.switch_page(f"views/{page}")
        at.run()
    return at


def texts(at: AppTest) -> str:
    parts = []
    for kind in ("title", "header", "markdown", "caption", "info", "warning", "error", "success"):
        parts.extend(str(e.value) for e in getattr(at, kind))
    return "\n".join(parts)


def count(at: AppTest, kind: str) -> int:
    total = 0

    def walk(node) -> None:
        nonlocal total
        total += getattr(node, "type", None) == kind
        children = getattr(node, "children", {})
        for child in (children.values() if isinstance(children, dict) else children):
            walk(child)

    walk(at._tree)
    return total


@pytest.mark.parametrize("page", list(PAGES))
def test_every_page_renders_its_content_on_a_finished_experiment(experiment, page):
    at = run_page(experiment.parent, page)
    assert not at.exception, [e.value for e in at.exception]
    assert any(t.value.startswith(PAGES[page]) for t in at.title)
    text = texts(at)
    assert "Synthetic demo data" in text  # labelled on every page
    assert str(experiment.parent) not in text + "".join(str(c.value) for c in at.code)  # no server path shown
    assert count(at, "vega_lite_chart") >= CHART_PAGES.get(page, 0)
    if page == "model_card.py":  # the card names the LIME baseline that made the heatmaps, and what it means
        assert "hidden superpixels showed" in text and "not where pain is drawn" in text
    if page == "upload.py":
        assert len(at.file_uploader) == 1 and len(at.camera_input) == 0  # the camera only once its toggle is on
        assert len(at.toggle) == 1
    else:
        assert count(at, "download_button") >= 2  # the page's own exports and the report


def test_overview_shows_table2_and_every_run_finished(experiment):
    at = run_page(experiment.parent)
    table2 = at.dataframe[0].value
    assert list(table2["Dataset"])[-1] == "CP-PAIN (external test)"
    assert "Total (PAIN-DB)" in set(table2["Dataset"])
    status = [m for m in at.metric if m.label == "Runs finished"][0]
    assert status.value == "12 / 12"  # 2 networks x (2 image + 2 subject + 2 external) runs


def test_comparison_table_marks_at_most_one_best_network_per_scenario_among_those_that_learned(experiment):
    at = run_page(experiment.parent, "comparison.py")
    table = at.dataframe[0].value
    table = getattr(table, "data", table)  # a Styler carries the frame in .data
    assert set(table["scenario"]) == {"Image-wise", "Subject-wise", "External (CP-PAIN)"}
    assert table.groupby("scenario")["best AUC"].sum().le(1).all()
    assert not (table["best AUC"] & ~table["learned"]).any()
    assert (table["AUC low"] <= table["ROC AUC"]).all() and (table["ROC AUC"] <= table["AUC high"]).all()
    assert "bootstrap over subjects" in texts(at) and "averaged over the" in texts(at)


def test_raters_page_shows_table4_with_intervals_and_categories(experiment):
    at = run_page(experiment.parent, "raters.py")
    table4 = at.dataframe[0].value
    assert list(table4.columns)[:2] == ["Source of pain", "Wong-Baker"]
    assert {"All", "Videos rated no pain", "Videos rated pain"} <= set(table4["Source of pain"])
    cells = " ".join(table4.iloc[:, 1:].astype(str).to_numpy().ravel())
    assert "[" in cells and any(c in cells for c in ("excellent", "fair/good", "low"))


@pytest.mark.parametrize("page", list(PAGES))
def test_an_empty_artifact_folder_says_what_to_run(tmp_path, page):
    at = run_page(tmp_path, page)
    assert not at.exception
    assert "painlens run" in texts(at) and str(tmp_path) not in texts(at)  # the folder's name, not the server's path


@pytest.mark.parametrize("page", list(PAGES))
def test_a_half_finished_experiment_shows_what_exists_and_names_the_missing_step(experiment, tmp_path, page):
    folder = half_finished(experiment, tmp_path / "artifacts" / "tiny")
    at = run_page(folder.parent, page)
    assert not at.exception, [e.value for e in at.exception]
    text = texts(at)
    if page == "overview.py":
        assert [m for m in at.metric if m.label == "Runs finished"][0].value == "3 / 12"
        assert "still training" in text
    if page == "comparison.py":
        assert "3 of 12 planned runs" in text and count(at, "vega_lite_chart") == 2
    if page in ("heatmaps.py", "faithfulness.py"):
        assert "painlens explain" in text
    if page == "raters.py":
        assert "painlens run" in text


def upload_face(root: Path) -> AppTest:
    at = run_page(root.parent, "upload.py")
    assert "research tool, not a medical device" in texts(at)
    at.file_uploader[0].upload("face.jpg", encode(face_image(5), "JPEG", quality=92), "image/jpeg")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error or "research tool" in at.error[0].value and len(at.error) == 1
    return at


def test_upload_page_gives_every_network_raw_and_calibrated_for_a_synthetic_face(experiment):
    at = upload_face(experiment)
    probabilities = at.dataframe[-1].value
    assert set(probabilities["network"]) == {"WeiNet", "SongNet"}
    assert {"p(pain) raw", "p(pain) calibrated", "held-out AUC", "AUC low", "AUC high"} <= set(probabilities.columns)
    headline = [m for m in at.metric if m.label == widgets.ANSWER_LABEL]
    assert len(headline) == 1  # a number only when a network learned and the answer was not withheld
    assert headline[0].value == "no number" or probabilities["in the answer"].any()
    assert "The rule:" in texts(at)
    assert count(at, "image") >= 3  # face found, cropped without background, landmarks


def test_upload_page_gives_no_headline_number_when_no_network_learned(none_learned):
    at = upload_face(none_learned)
    assert [m.value for m in at.metric] == ["no number"]
    assert any(w.value.startswith("No single answer: no network learned on PAIN-DB's subject-wise held-out faces")
               for w in at.warning)
    assert "The rule:** Mean calibrated p(pain) of the networks that learned" in texts(at)
    table = at.dataframe[-1].value
    assert not table["in the answer"].any() and set(table["network"]) == {"WeiNet", "SongNet"}
    # Judged as the answer judges them: on PAIN-DB's subject-wise held-out faces.
    assert "**WeiNet, SongNet**: did not learn in Subject-wise: predicts one class (no pain for every image)" in texts(at)


def test_upload_page_leads_with_the_served_answer_and_withholds_it_for_a_face_unlike_the_training_faces(learned):
    # The fixture's fold models were "trained" on noise images (made-up samples have no pictures), so a real
    # face is unlike every training face: the page says so instead of giving a number.
    at = upload_face(learned)
    table = at.dataframe[-1].value.set_index("network")  # the per-network table, one click away
    # Only the network the answer uses runs by default; the page says the other was not run and offers it.
    assert table.index.tolist() == ["WeiNet"] and table["in the answer"].all()
    assert "1 network not in the answer was not run" in str(at.get("vega_lite_chart")[0].proto.spec)
    headline = [m for m in at.metric if m.label == widgets.ANSWER_LABEL]
    assert [m.value for m in headline] == ["no number"]
    assert any(w.value.startswith("No number: this face is unlike the faces the networks were trained on")
               for w in at.warning)
    assert "On CP-PAIN (the test, never used to build it) this answer" in texts(at)
    assert "Unlike the training faces:" in texts(at)
    switch = [t for t in at.toggle if t.key == "upload-all-networks"]
    assert len(switch) == 1 and "Also run the network the answer does not use (SongNet)" in switch[0].label
    switch[0].set_value(True).run()
    everything = at.dataframe[-1].value.set_index("network")
    assert everything["in the answer"].tolist() == [True, False]  # WeiNet learned, SongNet did not
    assert everything.loc["WeiNet", "p(pain) raw"] == pytest.approx(table.loc["WeiNet", "p(pain) raw"])


@pytest.mark.parametrize("page", NETWORK_PAGES)
def test_networks_that_did_not_learn_are_marked_on_every_page_that_shows_them(learned, page):
    at = run_page(learned.parent, page)
    assert not at.exception, [e.value for e in at.exception]
    text = texts(at)
    assert "**SongNet**: did not learn in any scenario: predicts one class" in text
    assert ("**VGG16**: did not learn in any scenario: AUC interval includes 0.5; pretrained base trained from random "
            "weights") in text
    assert "**SilNet**: did not learn in any scenario" in text and "runs only in Subject-wise, External (CP-PAIN)" in text
    assert "**WeiNet**" not in text  # it learned, and is a scratch network run everywhere


@pytest.mark.parametrize("page", ["heatmaps.py", "raters.py", "upload.py"])
def test_the_tiny_experiments_networks_that_did_not_learn_are_marked_there_too(experiment, page):
    from engine.artifacts import ExperimentStore
    from engine.evaluation.results import current_results

    verdicts = tables.network_verdicts(current_results(ExperimentStore.open(experiment))[1])
    # The upload page greys by the verdict its answer uses (subject-wise held-out faces), the others by CP-PAIN's.
    scenario = "subject" if page == "upload.py" else "external"
    failed = verdicts[(verdicts["scenario"] == scenario) & ~verdicts["learned"]]
    at = run_page(experiment.parent, page)
    if page == "upload.py":
        at.file_uploader[0].upload("face.jpg", encode(face_image(5), "JPEG", quality=92), "image/jpeg")
        at.run()
    text = texts(at)
    for model in failed["model"]:
        assert f"**{model}**: did not learn in" in text, model
    if page == "heatmaps.py" and len(failed):
        assert "explains a network that did not learn" in text


def test_one_click_on_a_subject_opens_their_images(learned):
    at = run_page(learned.parent, "subjects.py")
    table = at.dataframe[0].value
    assert table["accuracy"].is_monotonic_increasing  # whom it fails on, first
    assert [b for b in at.get("download_button") if b.proto.label == "CSV"]
    # What a click on a row does (AppTest cannot click a dataframe row): the Images page opens on them.
    subject = table.iloc[0]
    at.session_state[widgets.BROWSE_FOCUS_KEY] = {"dataset": subject["dataset"], "scenario": "external",
                                                  "subject": subject["subject"]}
    at.switch_page("views/browse.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.selectbox(key="img-subject").value == subject["subject"]
    assert f"/{subject['subject']}/" in " ".join(c.value for c in at.caption)


@pytest.mark.parametrize("name,content,sentence", [
    ("notes.jpg", b"these are notes, not a photo", "not an image"),
    ("empty.png", b"", "empty"),
])
def test_upload_page_answers_a_bad_file_with_a_sentence(experiment, name, content, sentence):
    at = run_page(experiment.parent, "upload.py")
    at.file_uploader[0].upload(name, content, "image/jpeg")
    at.run()
    assert not at.exception
    errors = " ".join(e.value for e in at.error)
    assert sentence in errors and "Traceback" not in errors


def test_upload_page_explains_the_chosen_network_with_lime(experiment):
    at = run_page(experiment.parent, "upload.py")
    at.file_uploader[0].upload("face.png", encode(face_image(6), "PNG"), "image/png")
    at.run()
    at.button(key="explain").click()
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert count(at, "image") >= 4


def test_manifest_of_the_fixture_is_marked_synthetic(experiment):
    manifest = json.loads((experiment / "manifest.json").read_text())
    assert manifest["synthetic"] is True and manifest["status"] == "finished"


def test_faithfulness_page_gives_each_network_its_scorecard_and_sanity_verdict(experiment):
    at = run_page(experiment.parent, "faithfulness.py")
    assert not at.exception, [e.value for e in at.exception]
    table = at.dataframe[-1].value
    assert {"WeiNet", "SongNet"} <= set(table["network"]) and set(table["scenario"]) == {"image", "subject", "external"}
    # LIME and Grad-CAM on one footing, both fills, the sanity verdict with its n, LIME's stability.
    assert {"insertion_gain", "insertion_gain_own", "deletion beats random", "deletion_own beats random",
            "sanity check", "LIME over seeds", "pointing_hit_pain"} <= set(table.columns)
    assert set(table["explainer"]) == {"LIME", "Grad-CAM"}
    checked = table[table["scenario"] == "external"]
    assert checked["sanity check"].str.contains("n = ").all()
    assert checked.loc[checked["explainer"] == "LIME", "LIME over seeds"].str.contains("seeds").all()
    at.radio(key="faith-scenario").set_value("subject").run()
    at.radio(key="faith-explainer").set_value("gradcam").run()
    assert not at.exception and count(at, "vega_lite_chart") >= 4


def test_heatmaps_switch_to_gradcam_and_their_difference_with_pain_region_outlines(experiment):
    at = run_page(experiment.parent, "heatmaps.py")
    at.toggle(key="hm-outlines").set_value(True).run()
    for explainer in ("gradcam", "difference"):
        at.radio(key="hm-explainer").set_value(explainer).run()
        assert not at.exception, [e.value for e in at.exception]
    captions = texts(at)
    assert "pointing" in captions and "Shown: LIME − Grad-CAM" in captions and "Outlined: brow lowerer" in captions
    assert "LIME baseline: hidden superpixels showed the image's mean colour" in captions
