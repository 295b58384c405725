"""CP-PAIN adapter (this project's own format, see ``DATASETS.md``)::

    images/<file>.png|jpg
    manifest.csv      image,video_id,subject,frame,label,pain_source
    ratings.csv       video_id,pain_source,rater,scale,item,score     (read by engine.ratings, only noted here)

``image`` is relative to the root or to ``images/``. ``label`` is ``pain`` or ``no_pain``; the video is
the sequence. ``intensity`` is the label (0/1). Rows that cannot be used are reported one by one.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from pathlib import Path

from engine.datasets.scan import IMAGE_SUFFIXES, add_problem, relative_example, check_in_chunks, find_child, merge_units
from engine.datasets.table import LABEL_NO_PAIN, LABEL_PAIN, ScanResult, empty_table, make_table
from engine.errors import NotADatasetError

DATASET = "cppain"
REQUIRED_COLUMNS = ("image", "video_id", "subject", "frame", "label")
LABELS = {"pain": LABEL_PAIN, "no_pain": LABEL_NO_PAIN}
PAIN_SOURCES = ("injection", "stretching", "other")

MESSAGES = {
    "bad_row": "Manifest rows with an empty field or a frame that is not a whole number were skipped.",
    "unknown_pain_source": "Rows whose pain_source is not injection, stretching or other (kept).",
    "unlisted_image": "Images in images/ that the manifest does not name were not used.",
    "empty_manifest": "The manifest lists no images.",
}


def scan(root: Path, check_images: bool = True, workers: int | None = None) -> ScanResult:
    """Read a CP-PAIN tree into a ScanResult (see the module docstring for the rules)."""
    manifest = find_child(root, "manifest.csv")
    columns = _header(manifest) if manifest is not None and manifest.is_file() else []
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    if missing:
        what = f"its manifest.csv lacks the columns {', '.join(missing)}" if columns else "it has no readable manifest.csv"
        raise NotADatasetError(
            f"{root} does not look like CP-PAIN: {what}; CP-PAIN needs manifest.csv with the columns "
            "image,video_id,subject,frame,label,pain_source and an images/ folder."
        )
    result = ScanResult(DATASET, empty_table(), layout="images/ + manifest.csv (+ ratings.csv)")
    if "pain_source" not in columns:
        result.notes.append("manifest.csv has no pain_source column.")
    candidates = _read_manifest(manifest, root, result)
    if not candidates and not result.problems:
        add_problem(result, "empty_manifest", "manifest.csv", MESSAGES)
    rows = merge_units(result, check_in_chunks(candidates, check_images, workers), MESSAGES)
    _note_videos(rows, result)
    _check_unlisted(root, candidates, result)
    _note_ratings(root, result)
    result.table = make_table(rows)
    return result


def _header(path: Path) -> list[str]:
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            return [c.strip().lower() for c in next(csv.reader(handle), [])]
    except (OSError, UnicodeDecodeError, csv.Error):
        return []


def _resolve(image: str, root: Path) -> Path | None:
    path = Path(image)
    if path.is_absolute():
        return path if path.is_file() else None
    for candidate in (root / path, root / "images" / path):
        if candidate.is_file():
            return candidate
    return None


def _read_manifest(manifest: Path, root: Path, result: ScanResult) -> list[tuple[dict, Path, str]]:
    candidates: list[tuple[dict, Path, str]] = []
    ids: set[str] = set()
    try:
        with open(manifest, newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            reader.fieldnames = [name.strip().lower() for name in reader.fieldnames or []]
            for number, record in enumerate(reader, start=2):
                candidate = _candidate(record, f"manifest.csv line {number}", root, result)
                if candidate is None:
                    continue
                if candidate[0]["image_id"] in ids:
                    add_problem(result, "duplicate_id", f"manifest.csv line {number}", MESSAGES)
                    continue
                ids.add(candidate[0]["image_id"])
                candidates.append(candidate)
    except (UnicodeDecodeError, csv.Error) as exc:
        add_problem(result, "bad_label_file", f"manifest.csv: read up to the error ({type(exc).__name__})", MESSAGES)
    return candidates


def _candidate(record: dict, where: str, root: Path, result: ScanResult) -> tuple[dict, Path, str] | None:
    values = {k: (record.get(k) or "").strip() for k in (*REQUIRED_COLUMNS, "pain_source")}
    try:
        frame = int(values["frame"])
    except ValueError:
        frame = None
    if frame is None or not all(values[k] for k in REQUIRED_COLUMNS):
        add_problem(result, "bad_row", where, MESSAGES)
        return None
    label = values["label"].lower()
    if label not in LABELS:
        add_problem(result, "unknown_label", f"{where}: {values['label']}", MESSAGES)
        return None
    path = _resolve(values["image"], root)
    if path is None:
        add_problem(result, "missing_image", f"{where}: {values['image']}", MESSAGES)
        return None
    if values["pain_source"] and values["pain_source"].lower() not in PAIN_SOURCES:
        add_problem(result, "unknown_pain_source", f"{where}: {values['pain_source']}", MESSAGES)
    subject, video = values["subject"], values["video_id"]
    row = {
        "image_id": f"{DATASET}/{subject}/{video}/{frame:05d}",
        "dataset": DATASET,
        "subject": subject,
        "sequence": video,
        "frame": frame,
        "path": str(path),
        "label": LABELS[label],
        "intensity": float(LABELS[label]),
    }
    return row, path, relative_example(path, root)


def _note_videos(rows: list[dict], result: ScanResult) -> None:
    """Say how frames spread over videos: a single frame (odd image count) or no pain frame (both
    raters scored 0) is allowed by the format, so this is a note, not a problem."""
    labels: dict[str, list[int]] = defaultdict(list)
    for row in rows:
        labels[row["sequence"]].append(row["label"])
    single = sum(1 for found in labels.values() if len(found) == 1)
    no_pain = sum(1 for found in labels.values() if LABEL_PAIN not in found)
    result.notes.append(
        f"{len(labels)} videos: {single} with one frame, {no_pain} with no pain frame."
    )


def _check_unlisted(root: Path, candidates: list[tuple[dict, Path, str]], result: ScanResult) -> None:
    images = find_child(root, "images")
    if images is None or not images.is_dir():
        result.notes.append("There is no images/ folder; image paths were taken from the manifest as given.")
        return
    listed = {path.resolve() for _, path, _ in candidates}
    for path in sorted(images.rglob("*")):
        if path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES and path.resolve() not in listed:
            add_problem(result, "unlisted_image", relative_example(path, root), MESSAGES)


def _note_ratings(root: Path, result: ScanResult) -> None:
    ratings = find_child(root, "ratings.csv")
    if ratings is None or not ratings.is_file():
        result.notes.append("There is no ratings.csv: rater agreement cannot be computed for this copy.")
        return
    try:
        with open(ratings, newline="", encoding="utf-8-sig") as handle:
            count = max(0, sum(1 for _ in csv.reader(handle)) - 1)
    except (OSError, UnicodeDecodeError, csv.Error):
        result.notes.append("ratings.csv is there but cannot be read as CSV.")
        return
    result.notes.append(f"ratings.csv holds {count} rating rows (checked by `painlens ratings`).")
