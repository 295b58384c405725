"""The seeded synthetic datasets: layouts, labels from AUs, identities, determinism, detectability."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import re
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine.errors import PainLensError
from engine.scales import FACS_ITEMS, NCAPC_ITEMS, pspi
from engine.synth import SIZES, Pose, generate, random_identity, render_background, render_face
from engine.synth.cppain import REST_AUS, cp_plan, on_top_of_rest, resting_pattern
from engine.synth.delaware import delaware_counts

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@pytest.fixture(scope="module")
def tiny(synthetic_tiny) -> tuple[Path, dict]:
    # The session's tiny data (tests/conftest.py: seed 0, two workers), generated once for every file that
    # reads it: the tests that read it are marked slow.
    return synthetic_tiny.root, synthetic_tiny.record


def _digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.slow
def test_same_seed_and_size_give_byte_identical_files_whatever_the_workers(tiny, tmp_path):
    out, _ = tiny  # written by two workers
    again = tmp_path / "again"
    generate(again, seed=0, size="tiny", workers=1)
    first, second = _digest(out), _digest(again)
    assert first.keys() == second.keys()
    assert first == second


@pytest.mark.slow
def test_the_four_trees_follow_the_layouts_of_datasets_md(tiny):
    out, record = tiny
    assert json.loads((out / "SYNTHETIC.json").read_text()) == record
    unbc = out / "unbc"
    frames = sorted((unbc / "Images").glob("*/*/*.png"))
    assert frames
    for frame in frames:
        subject, sequence = frame.parts[-3], frame.parts[-2]
        assert re.fullmatch(r"\d{3}-[a-z]{2}\d{3}", subject)
        assert re.fullmatch(r"[a-z]{2}\d{3}t[12][a-z]{2}(aff|unaff)", sequence)
        assert re.fullmatch(re.escape(sequence) + r"\d{3}", frame.stem)
        for folder, suffix in (("Frame_Labels/PSPI", "_facs.txt"), ("Frame_Labels/FACS", "_facs.txt"), ("AAM_landmarks", "_aam.txt")):
            assert (unbc / folder / subject / sequence / f"{frame.stem}{suffix}").is_file()
        for observer in ("AFF", "OPR", "SEN", "VAS"):
            assert (unbc / "Sequence_Labels" / observer / subject / f"{sequence}.txt").is_file()
    assert Image.open(frames[0]).size == (320, 240)

    sweep_re = re.compile(r"Sub(\d\d)_Trial(\d\d)_Sweep(\d\d)_Label([0-4])")
    rgb = sorted((out / "mintpain").glob("*/*/*/RGB/*.jpg"))
    assert len(rgb) == record["datasets"]["mintpain"]["images"]
    for image in rgb:
        subject_dir, trial_dir, sweep_dir = image.parts[-5], image.parts[-4], image.parts[-3]
        number = re.match(r"Sub(\d\d) \S+", subject_dir).group(1)
        assert trial_dir.startswith(f"Annotated_data_Sub{number}_Trial")
        assert sweep_re.fullmatch(sweep_dir).group(1) == number
        assert re.fullmatch(r"RGB-\d\d-\d\d-\d\d-\d{3}", image.stem)
    assert Image.open(rgb[0]).size == (640, 480)
    assert list((out / "mintpain").glob("*/*/*/D/*")) and list((out / "mintpain").glob("*/*/*/T/*"))

    delaware = out / "delaware"
    photos = sorted(delaware.glob("pain/*.jpg")) + sorted(delaware.glob("neutral/*.jpg"))
    assert len(photos) == record["datasets"]["delaware"]["images"]
    with open(delaware / "DelawarePainDatabase_StimulusCharacterization_forOSF.csv", newline="") as handle:
        targets = {row["Target"] for row in csv.DictReader(handle)}
    assert targets == {p.stem for p in photos}
    assert all(re.fullmatch(r"DPD\d{4}_\d\d", p.stem) for p in photos)  # names do not give the label away

    cp = out / "cppain"
    with open(cp / "manifest.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == ["image", "video_id", "subject", "frame", "label", "pain_source"]
    assert all((cp / "images" / r["image"]).is_file() for r in rows)
    with open(cp / "ratings.csv", newline="") as handle:
        assert next(csv.reader(handle)) == ["video_id", "pain_source", "rater", "scale", "item", "score"]


@pytest.mark.slow
def test_unbc_pspi_follows_the_coded_action_units_and_black_frames_are_counted(tiny):
    out, record = tiny
    unbc = out / "unbc"
    counts, black = defaultdict(int), 0
    for frame in sorted((unbc / "Images").glob("*/*/*.png")):
        subject, sequence = frame.parts[-3], frame.parts[-2]
        value = float((unbc / "Frame_Labels/PSPI" / subject / sequence / f"{frame.stem}_facs.txt").read_text())
        facs = (unbc / "Frame_Labels/FACS" / subject / sequence / f"{frame.stem}_facs.txt").read_text().split("\n")
        aus = {int(float(line.split()[0])): float(line.split()[1]) for line in facs if line.strip()}
        assert value == pspi(*(aus.get(n, 0.0) for n in (4, 6, 7, 9, 10, 43)))
        assert aus.get(43, 1.0) == 1.0  # AU43 is coded present/absent
        pixels = np.asarray(Image.open(frame))
        if pixels.max() == 0:
            black += 1
            assert value == 0 and not aus
            continue
        counts["pain" if value > 0 else "no_pain"] += 1
        aam = np.loadtxt(unbc / "AAM_landmarks" / subject / sequence / f"{frame.stem}_aam.txt")
        assert aam.shape == (66, 2)
        assert (aam[:, 0] > 0).all() and (aam[:, 0] < 320).all() and (aam[:, 1] > 0).all() and (aam[:, 1] < 240).all()
    data = record["datasets"]["unbc"]
    assert dict(counts) == data["labels"] and counts["pain"] > 0 and counts["no_pain"] > 0
    assert black == data["black_frames"] > 0


@pytest.mark.slow
def test_mintpain_and_delaware_labels_match_the_record(tiny):
    out, record = tiny
    levels = defaultdict(int)
    for image in (out / "mintpain").glob("*/*/*/RGB/*.jpg"):
        levels[image.parts[-3].rsplit("Label", 1)[1]] += 1
    assert dict(levels) == {k: v for k, v in record["datasets"]["mintpain"]["levels"].items() if v}
    data = record["datasets"]["delaware"]
    assert len(list((out / "delaware/pain").glob("*.jpg"))) == data["labels"]["pain"]
    assert len(list((out / "delaware/neutral").glob("*.jpg"))) == data["labels"]["no_pain"]


@pytest.mark.slow
def test_mintpain_made_up_names_stay_in_the_subject_folder_names(tiny):
    out, record = tiny
    folders = sorted(p.name for p in (out / "mintpain").iterdir())
    assert [f.split(" ", 1)[0] for f in folders] == [f"Sub{i + 1:02d}" for i in range(record["datasets"]["mintpain"]["subjects"])]
    names = [f.split(" ", 1)[1] for f in folders]
    assert names == record["datasets"]["mintpain"]["free_text_in_subject_folders"]
    assert all(re.fullmatch(r"[A-Z][a-z]+ [A-Z][a-z]+", name) for name in names)
    deeper = [p.name for p in (out / "mintpain").rglob("*") if p.parent != out / "mintpain"]
    for part in (part for name in names for part in name.split()):
        assert not any(part in name for name in deeper)


@pytest.mark.slow
def test_cp_ratings_cover_every_video_by_both_raters_on_all_three_scales(tiny):
    out, record = tiny
    with open(out / "cppain/ratings.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    data = record["datasets"]["cppain"]
    videos = {t["video_id"] for t in data["videos_truth"]}
    assert len(videos) == data["videos"] and {r["video_id"] for r in rows} == videos
    seen = defaultdict(set)
    for r in rows:
        score = int(r["score"])
        if r["scale"] == "wong_baker":
            assert r["item"] == "" and 0 <= score <= 10
        elif r["scale"] == "ncapc":
            assert r["item"] in NCAPC_ITEMS and 0 <= score <= 3
        else:
            assert r["scale"] == "facs" and r["item"] in FACS_ITEMS and 0 <= score <= 5
        seen[(r["video_id"], r["rater"])].add((r["scale"], r["item"]))
    expected = {("wong_baker", "")} | {("ncapc", i) for i in NCAPC_ITEMS} | {("facs", i) for i in FACS_ITEMS}
    assert set(seen) == {(v, r) for v in videos for r in ("rater_1", "rater_2")}
    assert all(items == expected for items in seen.values())


@pytest.mark.slow
def test_cp_manifest_labels_follow_the_facs_ratings(tiny):
    out, _ = tiny
    with open(out / "cppain/ratings.csv", newline="") as handle:
        facs = defaultdict(int)
        for r in csv.DictReader(handle):
            if r["scale"] == "facs":
                facs[r["video_id"]] += int(r["score"])
    with open(out / "cppain/manifest.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    frames = defaultdict(list)
    for r in rows:
        frames[r["video_id"]].append(r)
    for video, shots in frames.items():
        pain = [s for s in shots if s["label"] == "pain"]
        assert len(pain) <= 1
        if pain:
            assert facs[video] > 0  # "no pain" only when both raters score 0


def test_paper_size_has_the_papers_counts():
    spec = SIZES["paper"]
    counts = delaware_counts(spec)
    assert len(counts) == 240 and sum(neutral + pain for neutral, pain in counts) == 803 and min(min(c) for c in counts) >= 1
    plan = cp_plan(0, spec)
    assert len(plan) == 127 and len({v["subject"] for v in plan}) == 53
    assert sum(v["frames"] for v in plan) == 109
    assert spec.unbc_subjects == 25 and spec.mint_subjects == 20
    assert spec.unbc_sequences * spec.unbc_frames >= 40 and 2 * spec.mint_trials * spec.mint_sweeps * spec.mint_frames >= 40


@pytest.mark.slow
def test_cp_subjects_hold_a_seeded_resting_face_that_the_record_keeps_and_pain_adds_to(tiny):
    _, record = tiny
    patterns = record["datasets"]["cppain"]["resting_patterns"]
    assert sorted(patterns) == sorted(record["datasets"]["cppain"]["identities"])
    for subject, pattern in patterns.items():
        assert pattern == resting_pattern(0, subject)  # from the subject's seed alone (the data's seed is 0)
        assert 1 <= len(pattern) <= 2 and set(pattern) <= set(REST_AUS)
        assert all(1.0 <= value <= 2.2 for value in pattern.values())
    assert len({json.dumps(p, sort_keys=True) for p in patterns.values()}) > 1  # people rest differently
    assert on_top_of_rest({"AU4": 1.5}, {"AU4": 4.0, "AU6": 2.0}) == {"AU4": 5.0, "AU6": 2.0}


@pytest.mark.slow
def test_identity_is_stable_within_a_subject_and_differs_across_subjects(tiny):
    out, record = tiny
    identities = list(record["datasets"]["unbc"]["identities"].values())
    for a in range(len(identities)):
        for b in range(a + 1, len(identities)):
            differing = [k for k in identities[a] if identities[a][k] != identities[b][k]]
            assert len(differing) >= 10
    # In the pixels: the cheek colour varies less between frames of one subject than between subjects.
    unbc = out / "unbc"
    colours = defaultdict(list)
    for frame in sorted((unbc / "Images").glob("*/*/*.png")):
        pixels = np.asarray(Image.open(frame).convert("RGB"), dtype=float)
        if pixels.max() == 0:
            continue
        subject, sequence = frame.parts[-3], frame.parts[-2]
        aam = np.loadtxt(unbc / "AAM_landmarks" / subject / sequence / f"{frame.stem}_aam.txt")
        x, y = ((aam[2] + aam[29]) / 2).astype(int)
        colours[subject].append(np.median(pixels[y - 2 : y + 3, x - 2 : x + 3].reshape(-1, 3), axis=0))
    means = np.array([np.mean(c, axis=0) for c in colours.values()])
    within = np.mean([np.linalg.norm(np.array(c) - np.mean(c, axis=0), axis=1).mean() for c in colours.values()])
    between = np.mean([np.linalg.norm(a - b) for i, a in enumerate(means) for b in means[i + 1 :]])
    assert between > 2 * within


def _face_crop(image: np.ndarray, landmarks: np.ndarray, size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """A square grey crop around the landmarks at ``size`` pixels, and the landmarks in its coordinates."""
    x0, y0 = landmarks[:, 0].min(), landmarks[17:27, 1].min() - 10
    x1, y1 = landmarks[:, 0].max(), landmarks[:, 1].max()
    side = max(x1 - x0, y1 - y0)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    box = tuple(int(v) for v in (cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2))
    crop = np.asarray(Image.fromarray(image).crop(box).convert("L").resize((size, size), Image.BILINEAR), dtype=float)
    return crop, (landmarks - [box[0], box[1]]) * size / (box[2] - box[0])


@pytest.mark.parametrize("au,value,points", [("AU4", 5.0, range(17, 48)), ("AU7", 5.0, range(36, 48)), ("AU43", 1.0, range(36, 48)), ("AU10", 5.0, range(48, 68))])
def test_an_action_unit_visibly_changes_its_face_region_at_model_input_size(au, value, points):
    rng = np.random.default_rng(3)
    identity = random_identity(rng)
    background = render_background((320, 240), np.random.default_rng(4))
    pose = Pose(yaw=5.0, scale=0.21)
    rest = render_face(identity, {}, pose, (320, 240), np.random.default_rng(5), background, light=(0.3, -0.5))
    moved = render_face(identity, {au: value}, pose, (320, 240), np.random.default_rng(5), background, light=(0.3, -0.5))
    (a, where), (b, _) = _face_crop(rest.image, rest.landmarks), _face_crop(moved.image, rest.landmarks)
    group = where[list(points)]
    rows = slice(int(group[:, 1].min()) - 2, int(group[:, 1].max()) + 3)
    cols = slice(int(group[:, 0].min()) - 2, int(group[:, 0].max()) + 3)
    region = np.abs(a - b)[rows, cols].mean()
    elsewhere = np.abs(rest.image.astype(float) - moved.image.astype(float))[:, :40].mean()  # the left edge: background
    assert region > 5.0, f"{au} changes its region by only {region:.1f} grey levels at 64 px"
    assert elsewhere == 0.0


def test_a_bad_size_or_a_foreign_folder_is_refused_with_a_sentence(tmp_path):
    with pytest.raises(PainLensError, match="tiny, demo or paper"):
        generate(tmp_path / "x", 0, "huge")
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    with pytest.raises(PainLensError, match="not synthetic"):
        generate(tmp_path / "busy", 0, "tiny")


@pytest.mark.slow
def test_mtcnn_finds_the_face_in_at_least_95_percent_of_tiny_images(tiny):
    from mtcnn import MTCNN

    out, _ = tiny
    detector = MTCNN()
    files = sorted((out / "unbc/Images").glob("*/*/*.png"))[3::4]
    files += sorted((out / "mintpain").glob("*/*/*/RGB/*.jpg"))[::3]
    files += sorted((out / "delaware").glob("*/*.jpg"))[::2]
    files += sorted((out / "cppain/images").glob("*.jpg"))
    found, checked = 0, 0
    for path in files:
        image = np.asarray(Image.open(path).convert("RGB"))
        if image.max() == 0:
            continue
        checked += 1
        found += any(face["confidence"] >= 0.9 for face in detector.detect_faces(image))
    assert checked >= 40
    assert found / checked >= 0.95, f"MTCNN found {found} of {checked} faces"
