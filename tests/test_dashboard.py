"""The dashboard's seven pages in Streamlit's AppTest: on a tiny real experiment, an empty artifact folder
and a half-finished one (runs still training). No page may raise; a missing artifact is a sentence
naming the command that writes it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("streamlit.testing.v1")
from streamlit.testing.v1 import AppTest  # noqa: E402

from dashboard_fixtures import encode, face_image, half_finished, tiny_experiment  # noqa: E402

APP = str(Path(__file__).resolve().parent.parent / "dashboard" / "app.py")
TIMEOUT = 240  # the first run imports TensorFlow on a 2-core machine
PAGES = {
    "overview.py": "Experiment: tiny",
    "comparison.py": "Model comparison",
    "per_class.py": "Per class",
    "heatmaps.py": "Heatmaps",
    "browse.py": "Images",
    "raters.py": "Raters",
    "upload.py": "Upload and predict",
}
CHART_PAGES = {"overview.py": 2, "comparison.py": 2, "per_class.py": 3, "heatmaps.py": 2, "browse.py": 1, "raters.py": 3}

pytestmark = pytest.mark.slow


@pytest.fixture(scope="session")
def experiment(tmp_path_factory) -> Path:
    return tiny_experiment(tmp_path_factory.getbasetemp() / "dashboard-experiment")


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
    assert count(at, "vega_lite_chart") >= CHART_PAGES.get(page, 0)
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


def test_comparison_table_marks_one_best_network_per_scenario(experiment):
    at = run_page(experiment.parent, "comparison.py")
    table = at.dataframe[0].value
    table = getattr(table, "data", table)  # a Styler carries the frame in .data
    assert set(table["scenario"]) == {"Image-wise", "Subject-wise", "External (CP-PAIN)"}
    assert table.groupby("scenario")["best F1"].sum().eq(1).all()
    assert table.groupby("scenario")["best accuracy"].sum().eq(1).all()


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
    assert "painlens run" in texts(at)


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
    if page == "heatmaps.py":
        assert "painlens explain" in text
    if page == "raters.py":
        assert "painlens run" in text


def test_upload_page_gives_every_network_and_the_mean_for_a_synthetic_face(experiment):
    at = run_page(experiment.parent, "upload.py")
    assert "research tool, not a medical device" in texts(at)
    at.file_uploader[0].upload("face.jpg", encode(face_image(5), "JPEG", quality=92), "image/jpeg")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error or "research tool" in at.error[0].value and len(at.error) == 1
    mean = [m for m in at.metric if m.label == "Mean p(pain) over networks"]
    assert mean and 0.0 <= float(mean[0].value) <= 1.0
    probabilities = at.dataframe[-1].value
    assert set(probabilities["network"]) == {"WeiNet", "SongNet"}
    assert count(at, "image") >= 3  # face found, cropped without background, landmarks


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
