"""Dataset adapters on small trees written here (plain PIL images), intact and deliberately broken.

The tree builders are imported by ``test_paindb.py`` too.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
from PIL import Image

from painlens.cli import main
from engine.datasets.scan import check_image, report_dict, scan_dataset
from engine.errors import NotADatasetError

PRIVATE_TEXT = "Jane Q Doe"  # stands for a participant's name in a MIntPAIN subject folder


# ------------------------------------------------------------------------------------ tree builders


def write_image(path: Path, seed: int = 0, size: tuple[int, int] = (64, 48), black: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    pixels = np.zeros((size[1], size[0], 3), np.uint8) if black else rng.integers(30, 220, (size[1], size[0], 3), np.uint8)
    Image.fromarray(pixels).save(path)


def aam_points(size: tuple[int, int] = (64, 48)) -> np.ndarray:
    """66 (x, y) points laid out like a face (jaw, brows, nose, eyes, mouth) inside a w x h image."""
    w, h = size
    t = np.linspace(0, np.pi, 17)
    jaw = np.stack([w / 2 - 0.35 * w * np.cos(t), 0.3 * h + 0.6 * h * np.sin(t) ** 0.8], 1)
    brows = np.stack([np.linspace(0.25 * w, 0.75 * w, 10), np.full(10, 0.25 * h)], 1)
    nose = np.stack([np.full(9, w / 2), np.linspace(0.35 * h, 0.6 * h, 9)], 1)
    eyes = np.stack([np.r_[np.linspace(0.28, 0.42, 6), np.linspace(0.58, 0.72, 6)] * w, np.full(12, 0.33 * h)], 1)
    mouth = np.stack([np.linspace(0.35 * w, 0.65 * w, 18), np.full(18, 0.75 * h)], 1)
    return np.concatenate([jaw, brows, nose, eyes, mouth])


def write_unbc(
    root: Path,
    sequences: dict[str, dict[str, list[float]]],
    order: str = "xy",
    size: tuple[int, int] = (64, 48),
    label_subject_folders: dict[str, str] | None = None,
) -> None:
    """{subject folder: {sequence: [PSPI per frame]}}; FACS files agree with PSPI (AU4 = PSPI, capped)."""
    points = aam_points(size)
    for subject, seqs in sequences.items():
        label_subject = (label_subject_folders or {}).get(subject, subject)
        for sequence, values in seqs.items():
            for number, pspi in enumerate(values, start=1):
                stem = f"{sequence}{number:03d}"
                write_image(root / "Images" / subject / sequence / f"{stem}.png", seed=number, size=size)
                pspi_file = root / "Frame_Labels" / "PSPI" / label_subject / sequence / f"{stem}_facs.txt"
                pspi_file.parent.mkdir(parents=True, exist_ok=True)
                pspi_file.write_text(f"{pspi:.7e}\n")
                facs = root / "Frame_Labels" / "FACS" / label_subject / sequence / f"{stem}_facs.txt"
                facs.parent.mkdir(parents=True, exist_ok=True)
                au4 = min(pspi, 5.0)
                rest = pspi - au4  # AU6 carries what AU4 cannot
                lines = [f"{4:.7e} {au4:.7e} 0 0"] if au4 else []
                lines += [f"{6:.7e} {rest:.7e} 0 0"] if rest else []
                lines += [f"{12:.7e} {2:.7e} 0 0"]  # a distractor AU that PSPI ignores
                facs.write_text("\n".join(lines) + "\n")
                aam = root / "AAM_landmarks" / label_subject / sequence / f"{stem}_aam.txt"
                aam.parent.mkdir(parents=True, exist_ok=True)
                ordered = points if order == "xy" else points[:, ::-1]
                aam.write_text("\n".join(f"{a:.4f} {b:.4f}" for a, b in ordered) + "\n")


def write_mintpain(
    root: Path, subjects: dict[int, list[tuple[int, int, int, int]]], parent: str = "", rgb: str = "rgb"
) -> None:
    """{subject number: [(trial, sweep, label, frames)]}; subject folders carry private free text."""
    base = root / parent if parent else root
    for number, sweeps in subjects.items():
        subject = base / f"Sub{number:02d} {PRIVATE_TEXT}"
        for trial, sweep, label, frames in sweeps:
            trial_dir = subject / f"Annotated_data_Sub{number:02d}_Trial{trial:02d}"
            sweep_dir = trial_dir / f"Sub{number:02d}_Trial{trial:02d}_Sweep{sweep:02d}_Label{label}"
            for i in range(frames):
                # Times chosen so that name order differs from time order (9 s sorts after 10 s by name).
                seconds = [10, 9, 11, 12, 13, 14, 15, 16][i % 8] + 10 * (i // 8)
                write_image(sweep_dir / rgb / f"RGB-10-20-{seconds:02d}-500.jpg", seed=i)
            (sweep_dir / "D").mkdir(parents=True, exist_ok=True)
            (sweep_dir / "D" / "D-10-20-10-500.png").write_bytes(b"depth")


def write_delaware_manifest(root: Path, photos: list[tuple[str, str, str]], characterization: bool = False) -> None:
    """[(file name, subject, label)] in images/ with manifest.csv; optional characterization CSV."""
    for i, (name, _, _) in enumerate(photos):
        write_image(root / "images" / name, seed=i)
    with open(root / "manifest.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["image", "subject", "label"])
        writer.writerows([(f"images/{name}", subject, label) for name, subject, label in photos])
    if characterization:
        with open(root / "DelawarePainDatabase_StimulusCharacterization_forOSF.csv", "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["Target", "OpenFace_PainIndex", "AU04_r", "AU06_r"])
            for i, (name, _, _) in enumerate(photos[:-1]):  # the last photo has no row
                writer.writerow([Path(name).stem, 1.5, 1.0 + i, 0.5])


def write_cppain(root: Path, videos: int = 3, subjects: int = 2) -> None:
    rows = []
    for v in range(videos):
        for label, frame in (("pain", 40), ("no_pain", 5)):
            name = f"v{v:02d}_{label}.png"
            write_image(root / "images" / name, seed=v * 2 + frame)
            rows.append((name, f"vid{v:02d}", f"cp{v % subjects:02d}", frame, label, "injection"))
    with open(root / "manifest.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["image", "video_id", "subject", "frame", "label", "pain_source"])
        writer.writerows(rows)
    (root / "ratings.csv").write_text("video_id,pain_source,rater,scale,item,score\nvid00,injection,r1,wong_baker,,4\n")


def truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def write_folder_of_something_else(root: Path) -> None:
    (root / "notes").mkdir(parents=True)
    (root / "notes" / "shopping.txt").write_text("milk\n")
    write_image(root / "holiday" / "beach.jpg")
    (root / "data.csv").write_text("a,b\n1,2\n")


def problem_counts(result) -> dict[str, int]:
    return {kind: problem.count for kind, problem in result.problems.items()}


@dataclass
class CliRun:
    returncode: int
    stdout: str
    stderr: str


def run_cli(*args: str) -> CliRun:
    """``painlens ARGS`` in this process, through the same ``main()`` that turns errors into exit codes."""
    out, err = io.StringIO(), io.StringIO()
    code = 0
    with mock.patch.object(sys, "argv", ["painlens", *args]), redirect_stdout(out), redirect_stderr(err):
        try:
            main()
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return CliRun(code, out.getvalue(), err.getvalue())


# ---------------------------------------------------------------------------------- image checks


def test_check_image_reports_truncated_png_zero_byte_jpeg_and_black_frames(tmp_path):
    write_image(tmp_path / "ok.png")
    write_image(tmp_path / "ok.jpg")
    write_image(tmp_path / "cut.png")
    truncate(tmp_path / "cut.png")
    write_image(tmp_path / "cut.jpg")
    truncate(tmp_path / "cut.jpg")
    (tmp_path / "zero.jpg").write_bytes(b"")
    (tmp_path / "text.png").write_text("not an image")
    write_image(tmp_path / "black.png", black=True)
    status = {p.name: check_image(p).status for p in sorted(tmp_path.iterdir())}
    assert status == {
        "black.png": "black",
        "cut.jpg": "unreadable",
        "cut.png": "unreadable",
        "ok.jpg": "ok",
        "ok.png": "ok",
        "text.png": "unreadable",
        "zero.jpg": "unreadable",
    }
    assert check_image(tmp_path / "ok.png").size == (64, 48)


# ---------------------------------------------------------------------------------------- UNBC


def test_unbc_counts_labels_aus_and_landmarks(tmp_path):
    write_unbc(tmp_path, {"042-ll042": {"ll042t1aaaff": [0, 0, 3, 7.0], "ll042t2bbunaff": [0, 1]}, "043-jh043": {"jh043t1aaaff": [2, 0]}})
    result = scan_dataset(tmp_path, "unbc")
    info = report_dict(result)
    assert (info["subjects"], info["sequences"], info["images"]) == (2, 3, 8)
    assert info["images_per_label"] == {"no_pain": 4, "pain": 4}
    assert info["problems"] == []
    table = result.table.set_index("image_id")
    row = table.loc["unbc/ll042/ll042t1aaaff/00004"]
    assert (row["subject"], row["frame"], row["label"], row["pspi"]) == ("ll042", 4, 1, 7.0)
    assert (row["au4"], row["au6"], row["au12"], row["au43"]) == (5.0, 2.0, 2.0, 0.0)
    assert row["landmark_format"] == "aam66" and len(row["landmarks"]) == 132
    assert result.layout.startswith("Images/<NNN-xxNNN>/")
    assert scan_dataset(tmp_path, "unbc", check_images=False).table.drop(columns="landmarks").equals(
        result.table.drop(columns="landmarks")
    )


def test_unbc_pspi_threshold_moves_the_pain_label(tmp_path):
    write_unbc(tmp_path, {"042-ll042": {"ll042t1aaaff": [0, 1, 2, 3]}})
    assert scan_dataset(tmp_path, "unbc", pspi_threshold=1.5).table["label"].tolist() == [0, 0, 1, 1]


@pytest.mark.parametrize("order", ["xy", "yx"])
def test_unbc_detects_aam_point_order_and_stores_xy(tmp_path, order):
    write_unbc(tmp_path, {"042-ll042": {"ll042t1aaaff": [0, 1, 2]}}, order=order, size=(64, 64))
    result = scan_dataset(tmp_path, "unbc")
    expected = aam_points((64, 64)).reshape(-1)
    for landmarks in result.table["landmarks"]:
        np.testing.assert_allclose(landmarks, expected, atol=1e-3)
    assert any(("(y, x)" if order == "yx" else "(x, y)") in note for note in result.notes)


def test_unbc_accepts_short_subject_folders_and_joins_labels_across_variants(tmp_path):
    write_unbc(tmp_path, {"ll042": {"ll042t1aaaff": [0, 2]}}, label_subject_folders={"ll042": "042-ll042"})
    result = scan_dataset(tmp_path, "unbc")
    assert len(result.table) == 2 and not result.problems
    assert result.layout.startswith("Images/<xxNNN>/")


def test_unbc_broken_tree_reports_every_problem_and_keeps_going(tmp_path):
    write_unbc(tmp_path, {"042-ll042": {"ll042t1aaaff": [0, 0, 0, 4, 5, 6]}, "ll042": {"ll042t2aaaff": [1]}})
    seq = tmp_path / "Images" / "042-ll042" / "ll042t1aaaff"
    write_image(seq / "ll042t1aaaff001.png", black=True)  # a black first frame
    truncate(seq / "ll042t1aaaff002.png")
    (tmp_path / "Frame_Labels" / "PSPI" / "042-ll042" / "ll042t1aaaff" / "ll042t1aaaff004_facs.txt").unlink()
    (tmp_path / "Frame_Labels" / "FACS" / "042-ll042" / "ll042t1aaaff" / "ll042t1aaaff004_facs.txt").unlink()
    (tmp_path / "Frame_Labels" / "PSPI" / "042-ll042" / "ll042t1aaaff" / "ll042t1aaaff005_facs.txt").unlink()
    (seq / "ll042t1aaaff006.png").write_bytes(b"")
    (seq / "readme.txt").write_text("?")
    (tmp_path / "Images" / "042-ll042" / "ll042t9empty").mkdir()
    (tmp_path / "Images" / "misc").mkdir()
    result = scan_dataset(tmp_path, "unbc")
    assert problem_counts(result) == {
        "duplicate_id": 1,  # Images/ll042 is the same subject as Images/042-ll042
        "unknown_layout": 2,  # Images/misc and readme.txt
        "empty_folder": 1,  # ll042t9empty
        "black_frame": 1,
        "unreadable_image": 2,  # truncated PNG, zero-byte PNG
        "missing_facs": 1,  # frame 4 (which then has no label at all)
        "missing_label": 1,  # frame 4
        "pspi_from_facs": 1,  # frame 5
    }
    assert result.table["frame"].tolist() == [3, 5]  # frame 5 kept with PSPI from FACS
    assert result.problems["black_frame"].examples == ["Images/042-ll042/ll042t1aaaff/ll042t1aaaff001.png"]


def test_unbc_empty_images_folder_is_reported(tmp_path):
    (tmp_path / "Images").mkdir()
    (tmp_path / "Frame_Labels").mkdir()
    result = scan_dataset(tmp_path, "unbc")
    assert len(result.table) == 0 and result.problems["empty_folder"].examples == ["Images"]


def test_unbc_folder_of_something_else_is_not_a_dataset(tmp_path):
    write_folder_of_something_else(tmp_path)
    with pytest.raises(NotADatasetError, match="does not look like UNBC"):
        scan_dataset(tmp_path, "unbc")


# ------------------------------------------------------------------------------------- MIntPAIN


def test_mintpain_counts_sequences_per_subject_trial_sweep_label(tmp_path):
    # Sweep 1 appears as a level-0 and a level-3 segment: two sequences.
    write_mintpain(tmp_path, {1: [(1, 1, 0, 3), (1, 1, 3, 4), (2, 5, 4, 2)], 12: [(1, 2, 0, 2)]})
    result = scan_dataset(tmp_path, "mintpain")
    info = report_dict(result)
    assert (info["subjects"], info["sequences"], info["images"]) == (2, 4, 11)
    assert info["images_per_label"] == {"no_pain": 5, "pain": 6}
    assert info["images_per_level"] == {"0": 5, "3": 4, "4": 2}
    assert sorted(result.table["subject"].unique()) == ["Sub01", "Sub12"]
    assert info["problems"] == []


def test_mintpain_orders_frames_by_time_in_the_file_name(tmp_path):
    write_mintpain(tmp_path, {1: [(1, 1, 2, 3)]})
    table = scan_dataset(tmp_path, "mintpain").table
    names = [Path(p).name for p in table.sort_values("frame")["path"]]
    assert names == ["RGB-10-20-09-500.jpg", "RGB-10-20-10-500.jpg", "RGB-10-20-11-500.jpg"]


def test_mintpain_finds_subjects_below_a_part_folder_with_upper_case_rgb(tmp_path):
    write_mintpain(tmp_path, {3: [(1, 1, 0, 2)]}, parent="Annotated_data_part1", rgb="RGB")
    result = scan_dataset(tmp_path, "mintpain")
    assert len(result.table) == 2 and not result.problems
    assert any("RGB" in note for note in result.notes)


def test_mintpain_broken_tree_reports_problems_without_the_private_folder_text(tmp_path):
    write_mintpain(tmp_path, {1: [(1, 1, 0, 3), (1, 2, 2, 2), (1, 3, 7, 1)], 2: []})
    (tmp_path / f"Sub02 {PRIVATE_TEXT}").mkdir()
    sweep = tmp_path / f"Sub01 {PRIVATE_TEXT}" / "Annotated_data_Sub01_Trial01"
    (sweep / "Sub01_Trial01_Sweep01_Label0" / "rgb" / "RGB-10-20-10-500.jpg").write_bytes(b"")
    truncate(sweep / "Sub01_Trial01_Sweep01_Label0" / "rgb" / "RGB-10-20-09-500.jpg")
    (sweep / "Sub01_Trial01_Sweep01_Label0" / "rgb" / "snapshot.jpg").write_bytes(b"x")
    (sweep / "Sub01_Trial01_Sweep04_Label1" / "D").mkdir(parents=True)  # no rgb/ folder
    copy = tmp_path / "copy" / f"Sub01 {PRIVATE_TEXT}" / "Annotated_data_Sub01_Trial01" / "Sub01_Trial01_Sweep02_LABEL2" / "rgb"
    write_image(copy / "RGB-10-20-10-500.jpg")  # a second copy of an existing sequence
    result = scan_dataset(tmp_path, "mintpain")
    counts = problem_counts(result)
    assert counts == {
        "unknown_label": 1,
        "duplicate_id": 1,
        "empty_folder": 1,
        "unknown_layout": 1,
        "missing_rgb": 1,
        "unreadable_image": 2,
    }
    assert len(result.table) == 3  # one good frame of sweep 1, two of sweep 2
    text = json.dumps(report_dict(result)) + result.table.drop(columns="path").to_json()
    assert "Jane" not in text and "Doe" not in text
    assert set(result.table["subject"]) == {"Sub01"}
    assert all(i.startswith("mintpain/Sub01/") for i in result.table["image_id"])
    assert "Sub02" in result.problems["empty_folder"].examples
    assert result.problems["unknown_layout"].examples == [
        "Sub01/Annotated_data_Sub01_Trial01/Sub01_Trial01_Sweep01_Label0/rgb/[other]"
    ]


def test_mintpain_cli_output_never_holds_the_private_folder_text(tmp_path):
    write_mintpain(tmp_path, {1: [(1, 1, 0, 2)]})
    (tmp_path / f"Sub01 {PRIVATE_TEXT}" / "Annotated_data_Sub01_Trial01" / "Sub01_Trial01_Sweep01_Label0" / "rgb" / "x.txt").write_text("")
    for args in ([], ["--json"]):
        done = run_cli("scan", str(tmp_path), "--dataset", "mintpain", *args)
        assert done.returncode == 0, done.stderr
        assert "Sub01" in done.stdout and "Jane" not in done.stdout + done.stderr


def test_mintpain_folder_of_something_else_is_not_a_dataset(tmp_path):
    write_folder_of_something_else(tmp_path)
    with pytest.raises(NotADatasetError, match="does not look like MIntPAIN"):
        scan_dataset(tmp_path, "mintpain")


# -------------------------------------------------------------------------------------- Delaware


def test_delaware_reads_the_manifest_and_joins_the_characterization_csv(tmp_path):
    photos = [("p1_pain.jpg", "p1", "pain"), ("p1_neutral.jpg", "p1", "neutral"), ("p2_pain.jpg", "p2", "pain")]
    write_delaware_manifest(tmp_path, photos, characterization=True)
    result = scan_dataset(tmp_path, "delaware")
    info = report_dict(result)
    assert (info["subjects"], info["sequences"], info["images"]) == (2, 0, 3)
    assert info["images_per_label"] == {"no_pain": 1, "pain": 2}
    assert result.layout.startswith("manifest CSV")
    table = result.table.set_index("image_id")
    assert table.loc["delaware/p1/p1_neutral", "au4"] == 2.0 and table.loc["delaware/p1/p1_neutral", "au6"] == 0.5
    assert np.isnan(table.loc["delaware/p2/p2_pain", "au4"])
    assert problem_counts(result) == {"not_in_characterization": 1}


def test_delaware_reads_pain_and_neutral_folders(tmp_path):
    for label in ("pain", "neutral"):
        for subject in ("s01", "s02"):
            write_image(tmp_path / label / f"{subject}_{label}.png")
    write_image(tmp_path / "pain" / "s03" / "photo.png")  # subject from a sub-folder
    result = scan_dataset(tmp_path, "delaware")
    assert result.layout == "pain/ and neutral/ folders"
    assert sorted(result.table["subject"].unique()) == ["s01", "s02", "s03"]
    assert result.table["label"].sum() == 3 and len(result.table) == 5


def test_delaware_broken_tree_reports_missing_and_unreadable_files(tmp_path):
    photos = [("a.jpg", "p1", "pain"), ("b.jpg", "p1", "neutral"), ("c.jpg", "p2", "pain"), ("d.jpg", "p2", "angry")]
    write_delaware_manifest(tmp_path, photos)
    (tmp_path / "images" / "a.jpg").write_bytes(b"")
    (tmp_path / "images" / "c.jpg").unlink()
    with open(tmp_path / "manifest.csv", "a") as handle:
        handle.write("images/b.jpg,p1,neutral\n,p3,pain\n")
    result = scan_dataset(tmp_path, "delaware")
    assert problem_counts(result) == {"unknown_label": 1, "missing_image": 1, "bad_row": 1, "duplicate_id": 1, "unreadable_image": 1}
    assert result.table["image_id"].tolist() == ["delaware/p1/b"]


def test_delaware_folder_of_something_else_is_not_a_dataset(tmp_path):
    write_folder_of_something_else(tmp_path)
    with pytest.raises(NotADatasetError, match="does not look like the Delaware"):
        scan_dataset(tmp_path, "delaware")


# --------------------------------------------------------------------------------------- CP-PAIN


def test_cppain_reads_manifest_videos_and_notes_ratings(tmp_path):
    write_cppain(tmp_path, videos=3)
    result = scan_dataset(tmp_path, "cppain")
    info = report_dict(result)
    assert (info["subjects"], info["sequences"], info["images"]) == (2, 3, 6)
    assert info["images_per_label"] == {"no_pain": 3, "pain": 3}
    assert not result.problems
    assert any("1 rating rows" in note for note in result.notes)


def test_cppain_broken_rows_are_reported_one_by_one(tmp_path):
    write_cppain(tmp_path, videos=3)
    truncate(tmp_path / "images" / "v00_pain.png")
    with open(tmp_path / "manifest.csv", "a") as handle:
        handle.write("v01_pain.png,vid01,cp01,40,pain,injection\n")  # duplicate id
        handle.write("v09.png,vid09,cp01,1,pain,injection\n")  # missing file
        handle.write("v01_pain.png,vid01,cp01,x,pain,injection\n")  # frame not a number
        handle.write("v02_pain.png,vid02,cp00,41,maybe,other\n")
        handle.write("v02_pain.png,vid02,cp00,42,pain,dentist\n")
    write_image(tmp_path / "images" / "extra.png")
    result = scan_dataset(tmp_path, "cppain")
    assert problem_counts(result) == {
        "duplicate_id": 1,
        "missing_image": 1,
        "bad_row": 1,
        "unknown_label": 1,
        "unknown_pain_source": 1,
        "unreadable_image": 1,
        "unlisted_image": 1,
    }
    assert "3 videos: 1 with one frame, 1 with no pain frame." in result.notes  # vid00 kept only its no_pain frame
    assert result.problems["missing_image"].examples == ["manifest.csv line 9: v09.png"]


def test_cppain_empty_manifest_is_reported(tmp_path):
    (tmp_path / "manifest.csv").write_text("image,video_id,subject,frame,label,pain_source\n")
    result = scan_dataset(tmp_path, "cppain")
    assert len(result.table) == 0 and problem_counts(result) == {"empty_manifest": 1}


def test_cppain_folder_of_something_else_is_not_a_dataset(tmp_path):
    write_folder_of_something_else(tmp_path)
    with pytest.raises(NotADatasetError, match="does not look like CP-PAIN"):
        scan_dataset(tmp_path, "cppain")


# ------------------------------------------------------------------------------------------- CLI


def test_scan_cli_prints_json_summary(tmp_path):
    write_cppain(tmp_path, videos=2)
    done = run_cli("scan", str(tmp_path), "--dataset", "cppain", "--json")
    assert done.returncode == 0, done.stderr
    info = json.loads(done.stdout)
    assert (info["subjects"], info["images"], info["images_per_label"]["pain"]) == (2, 4, 2)


def test_scan_cli_prints_tables_and_problems(tmp_path):
    write_cppain(tmp_path, videos=2)
    (tmp_path / "images" / "v00_pain.png").write_bytes(b"")
    done = run_cli("scan", str(tmp_path), "--dataset", "cppain")
    assert done.returncode == 0, done.stderr
    assert "unreadable_image" in done.stdout and "images/v00_pain.png" in done.stdout


def test_scan_cli_exits_2_with_one_sentence_for_a_folder_of_something_else(tmp_path):
    write_folder_of_something_else(tmp_path)
    for dataset in ("unbc", "mintpain", "delaware", "cppain"):
        done = run_cli("scan", str(tmp_path), "--dataset", dataset)
        assert done.returncode == 2, (dataset, done.stdout, done.stderr)
        said = " ".join(done.stderr.split())  # rich wraps long lines
        assert "Traceback" not in said and "does not look like" in said and said.count(": ") <= 3


def test_scan_cli_exits_2_for_a_missing_folder(tmp_path):
    done = run_cli("scan", str(tmp_path / "nowhere"), "--dataset", "unbc")
    assert done.returncode == 2 and "no folder" in " ".join(done.stderr.split())
