"""``painlens report``: the stakeholder report (model card, figures, provenance) as HTML or PDF, on experiments
written through the store with made-up predictions (``dashboard_fixtures.evaluated_experiment``): one where a
network learned, one where none did (then there is no single answer for a face, and the report says why)."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from dashboard.report import build_report
from dashboard_fixtures import evaluated_experiment
from painlens import cli

WHEN = "2026-12-02"


@pytest.fixture(scope="module")
def learned(tmp_path_factory) -> Path:
    return evaluated_experiment(tmp_path_factory.mktemp("learned"), learned=True, kept=("WeiNet",))


@pytest.fixture(scope="module")
def none_learned(tmp_path_factory) -> Path:
    return evaluated_experiment(tmp_path_factory.mktemp("none-learned"), learned=False, kept=("WeiNet",))


@pytest.fixture
def report(monkeypatch, capsys):
    """Run `painlens report ROOT --out OUT` as the command line does: (exit code, stdout and stderr)."""
    def run(root: Path, out: Path) -> tuple[int, str]:
        monkeypatch.setattr(sys, "argv", ["painlens", "report", str(root), "--out", str(out)])
        with pytest.raises(SystemExit) as info:
            cli.main()
        printed = capsys.readouterr()
        return info.value.code or 0, " ".join((printed.out + printed.err).split())

    return run


@pytest.mark.slow  # renders every figure (vl-convert)
def test_the_report_greys_what_did_not_learn_and_carries_the_model_card_and_its_provenance(learned):
    import engine

    html = build_report(learned, when=WHEN)
    assert "About these networks" in html and "SongNet</b>: did not learn in any scenario" in html
    assert "pretrained base trained from random weights" in html and "runs only in" in html
    for title in ("Intended use", "Data", "Preprocessing and training actually used", "Networks and which learned",
                  "Metrics per scenario, with 95 % intervals", "Calibration of each network", "One answer for a face", "Heatmaps (where the networks look)", "Limitations"):
        assert f">{title}</h3>" in html, title
    assert "WeiNet: used, learned on PAIN-DB&#x27;s subject-wise held-out faces" in html.replace("'", "&#x27;")
    assert "The answer as served, evaluated on CP-PAIN" in html and "calibration_intercept" in html
    assert "class='not-learned'" in html and "SongNet (did not learn)" in html  # tables and figures
    assert "the face-hull fallback" in html and "no ImageNet weights" in html
    # SongNet's external runs trained 2 of its 4 epochs: the model card's table and the notes say so.
    assert "external runs trained half of its epochs" in html and "epochs (external)" in html
    assert f"PainLens {engine.__version__}" in html and f"Generated {WHEN}" in html
    assert "&quot;bootstrap_resamples&quot;: 200" in html  # the config, as the manifest holds it
    assert re.findall(r"""(?:src|href)=["'](?!data:|#)([^"']+)""", html) == []


@pytest.mark.slow  # renders every figure twice and a PDF
def test_painlens_report_writes_a_pdf_and_an_html_file_that_give_no_answer_when_no_network_learned(none_learned, tmp_path,
                                                                                                     report):
    code, output = report(none_learned, tmp_path / "report.pdf")
    assert code == 0 and "written to" in output, output
    pdf = (tmp_path / "report.pdf").read_bytes()
    assert pdf.startswith(b"%PDF-") and pdf.rstrip().endswith(b"%%EOF") and len(pdf) > 20_000
    code, output = report(none_learned, tmp_path / "report.html")
    assert code == 0, output
    html = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert "WeiNet: not used, did not learn on PAIN-DB&#x27;s subject-wise held-out faces" in html.replace("'", "&#x27;")
    assert ": used," not in html and "did not learn in any scenario" in html


@pytest.mark.parametrize("name,sentence", [("report.docx", "name the file with .html or .pdf"),
                                           ("report", "name the file with .html or .pdf")])
def test_painlens_report_refuses_a_file_it_cannot_write_with_a_sentence(tmp_path, report, name, sentence):
    from engine.artifacts import ExperimentStore

    store = ExperimentStore(tmp_path, "begun")
    store.write_manifest({"experiment": "begun", "synthetic": True, "status": "training"})
    code, output = report(store.root, tmp_path / name)
    assert code == 1 and sentence in output
    assert "Traceback" not in output and not (tmp_path / name).exists()


def test_painlens_report_says_so_when_the_folder_is_not_an_experiment(tmp_path, report):
    code, output = report(tmp_path / "nowhere", tmp_path / "report.html")
    assert code == 1 and "is not an experiment folder" in output
    assert not (tmp_path / "report.html").exists()


def test_loading_the_pdf_writer_leaves_uploads_strict_about_truncated_images():
    # WeasyPrint sets Pillow's process-wide LOAD_TRUNCATED_IMAGES when imported; the dashboard loads it in
    # the same process as the upload page, where a truncated photo must still be refused.
    from dashboard.report import pdf_missing
    from dashboard_fixtures import encode, face_image
    from engine.errors import BadImageError
    from engine.preprocess.decode import decode

    assert pdf_missing() == ""  # WeasyPrint really loaded (the test would prove nothing otherwise)
    data = encode(face_image(0), "JPEG")
    with pytest.raises(BadImageError, match="truncated|corrupt"):
        decode(data[: len(data) // 2])


def test_every_report_table_fits_the_page_width_in_the_pdf():
    """The demo's networks table (10 columns of phrases) ran off the A4 page and lost its right-hand columns:
    laid out by WeasyPrint with the report's CSS, no cell of a table that wide may reach past the page's right
    margin, and numbers are right-aligned, words left."""
    import pandas as pd
    from weasyprint import HTML
    from weasyprint.formatting_structure import boxes

    from dashboard.report import CSS, _table

    phrase = "did not learn: predicts one class (no pain for every image)"
    networks = pd.DataFrame({
        "network": [f"ResNet101V{k}" for k in range(12)], "kind": "pretrained base, trained from random weights here",
        "input px": 32, "epochs": 8, "epochs (external)": 4, "batches per epoch": "all", "augmentation and dropout": "off",
        "Image-wise": phrase, "Subject-wise": phrase, "External (CP-PAIN)": phrase, "n": "24 images, 7 subjects (few data)"})
    text = f"<html><head><style>{CSS}</style></head><body>{_table(networks)}</body></html>"
    assert "<td class='number'>32</td>" in text and "<td>off</td>" in text

    def walk(box):
        yield box
        for child in getattr(box, "children", None) or []:
            yield from walk(child)

    document = HTML(string=text).render()
    cells = 0
    for page in document.pages:
        edge = page._page_box.content_box_x() + page._page_box.width
        for box in walk(page._page_box):
            if isinstance(box, boxes.TableCellBox):
                cells += 1
                assert box.position_x + box.margin_width() <= edge + 0.5, "a table cell runs past the page edge"
    assert cells >= 13 * 11  # every cell was laid out (a header repeated on a second page counts again)
    assert len(document.pages) <= 2  # the wide table keeps its rows a few lines high
