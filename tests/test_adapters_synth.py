"""`painlens synth` trees through the adapters: the scans find exactly what the generator says it wrote.

``tiny`` is rendered once for the module. ``paper`` takes minutes to render, so its check is on counts
only: the generator's planned sizes (``synth.SIZES["paper"]``) laid out as a sample table, through the
real PAIN-DB sampling, must give the paper's Table 2.
"""

from __future__ import annotations

import json

import pandas as pd
import pytest
from test_adapters import run_cli

from engine import synth
from engine.datasets.paindb import assemble_paindb, scan_root, table2
from engine.datasets.scan import report_dict, scan_dataset
from engine.datasets.table import ScanResult, make_table

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tiny(synthetic_tiny):
    out, record = synthetic_tiny.root, synthetic_tiny.record  # tests/conftest.py: generated once per session
    assert json.loads((out / synth.RECORD_NAME).read_text()) == json.loads(json.dumps(record))
    return out, record["datasets"]


def summary(out, dataset):
    result = scan_dataset(out / dataset, dataset)
    return result, report_dict(result)


def test_tiny_unbc_scan_matches_the_generator(tiny):
    out, expected = tiny
    want = expected["unbc"]
    result, got = summary(out, "unbc")
    assert (got["subjects"], got["sequences"]) == (want["subjects"], want["sequences"])
    assert got["images"] == want["images"] - want["black_frames"]  # the record counts black frames as images
    assert got["images_per_label"] == want["labels"]
    assert {p["kind"]: p["count"] for p in got["problems"]} == ({"black_frame": want["black_frames"]} if want["black_frames"] else {})
    per_subject = result.table.groupby(["subject", "label"]).size().unstack(fill_value=0)
    for subject, counts in want["per_subject"].items():
        assert (per_subject.loc[subject, 0], per_subject.loc[subject, 1]) == (counts["no_pain"], counts["pain"])
    assert any("read as (x, y)" in note for note in got["notes"])  # the generator writes (x, y)


def test_tiny_mintpain_scan_matches_the_generator_and_hides_the_names(tiny):
    out, expected = tiny
    want = expected["mintpain"]
    result, got = summary(out, "mintpain")
    assert (got["subjects"], got["sequences"], got["images"]) == (want["subjects"], want["segments"], want["images"])
    assert got["images_per_label"] == want["labels"]
    assert got["images_per_level"] == {level: n for level, n in want["levels"].items() if n}
    assert got["problems"] == []
    shown = json.dumps(got) + result.table.drop(columns="path").to_json()
    shown += run_cli("scan", str(out / "mintpain"), "--dataset", "mintpain").stdout
    for name in want["free_text_in_subject_folders"]:
        for word in name.split():
            assert word not in shown


def test_tiny_delaware_scan_matches_the_generator(tiny):
    out, expected = tiny
    want = expected["delaware"]
    _, got = summary(out, "delaware")
    assert (got["subjects"], got["sequences"], got["images"]) == (want["subjects"], 0, want["images"])
    assert got["images_per_label"] == want["labels"]
    assert got["problems"] == []


def test_tiny_cppain_scan_matches_the_generator(tiny):
    out, expected = tiny
    want = expected["cppain"]
    _, got = summary(out, "cppain")
    assert (got["sequences"], got["images"]) == (want["usable_videos"], want["images"])
    assert got["images_per_label"] == want["labels"]
    # The record counts every subject with a video; only those with a usable one reach the manifest.
    assert 0 < got["subjects"] <= want["subjects"]
    assert got["problems"] == []
    # One usable video gives a single frame when the image count is odd.
    assert f"{want['usable_videos']} videos: {want['images'] % 2} with one frame" in " ".join(got["notes"])


def test_tiny_paindb_takes_k_frames_per_subject_and_class(tiny):
    out, expected = tiny
    k = 5
    paindb = assemble_paindb(scan_root(out), frames_per_class=k, seed=0)
    rows = table2(paindb).set_index("Dataset")
    unbc = sum(min(k, c["no_pain"]) + min(k, c["pain"]) for c in expected["unbc"]["per_subject"].values())
    mint = sum(min(k, c["no_pain"]) + min(k, c["pain"]) for c in expected["mintpain"]["per_subject"].values())
    assert rows.loc["UNBC-McMaster", "Images"] == unbc
    assert rows.loc["MIntPAIN", "Images"] == mint
    assert rows.loc["Delaware", "Images"] == expected["delaware"]["images"]
    assert rows.loc["Total (PAIN-DB)", "Users"] == sum(expected[d]["subjects"] for d in ("unbc", "mintpain", "delaware"))


def planned_paper_table() -> pd.DataFrame:
    """A sample table with the generator's paper-size plan: one row per frame, no image files.

    Per-subject pain frames follow the plan: the low-pain UNBC subjects have exactly the planned few;
    every other subject has plenty (a third of its frames here; the sampling only needs >= 20).
    """
    spec = synth.SIZES["paper"]
    rows = []

    def add(dataset, subject, sequence, frame, label, intensity):
        rows.append({"image_id": f"{dataset}/{subject}/{sequence}/{frame:05d}", "dataset": dataset, "subject": subject,
                     "sequence": sequence, "frame": frame, "path": "", "label": label, "intensity": intensity})

    per_unbc = spec.unbc_sequences * spec.unbc_frames
    low = dict(enumerate(spec.unbc_low_pain))
    for s in range(spec.unbc_subjects):
        pain = low.get(s, per_unbc // 3)
        for i in range(per_unbc):
            is_pain = i < pain
            add("unbc", f"s{s:02d}", f"seq{i // spec.unbc_frames}", i % spec.unbc_frames, int(is_pain), float(1 + i % 6) if is_pain else 0.0)
    for s in range(spec.mint_subjects):
        for t in range(spec.mint_trials):
            for w in range(spec.mint_sweeps):
                for level in (0, 1 + (s + t + w) % 4):
                    for i in range(spec.mint_frames):
                        add("mintpain", f"Sub{s + 1:02d}", f"Trial{t + 1:02d}_Sweep{w + 1:02d}_Label{level}", i, int(level > 0), float(level))
    base, extra = divmod(spec.delaware_images, spec.delaware_subjects)
    for s in range(spec.delaware_subjects):
        for i in range(base + (s < extra)):
            add("delaware", f"DPD{s:04d}", "", i, i % 2, float(i % 2))
    return make_table(rows)


def test_paper_plan_gives_the_papers_table2():
    table = planned_paper_table()
    scans = {name: ScanResult(name, table[table["dataset"] == name].reset_index(drop=True)) for name in ("unbc", "mintpain", "delaware")}
    rows = table2(assemble_paindb(scans, frames_per_class=20, seed=0)).set_index("Dataset")
    assert rows.loc["MIntPAIN", ["Users", "Images", "Levels"]].tolist() == [20, 800, 5]
    assert rows.loc["Delaware", ["Users", "Images", "Levels"]].tolist() == [240, 803, 2]
    assert rows.loc["UNBC-McMaster", ["Users", "Images", "Levels"]].tolist() == [25, 980, 5]
    assert rows.loc["Total (PAIN-DB)", ["Users", "Images"]].tolist() == [285, 2583]
