"""UNBC-McMaster Shoulder Pain Expression Archive adapter.

Layout (see ``DATASETS.md``)::

    Images/<subject>/<sequence>/<sequence><NNN>.png
    Frame_Labels/PSPI/<subject>/<sequence>/<sequence><NNN>_facs.txt     one float
    Frame_Labels/FACS/<subject>/<sequence>/<sequence><NNN>_facs.txt     rows "AU INTENSITY ..."
    AAM_landmarks/<subject>/<sequence>/<sequence><NNN>_aam.txt          66 points, two floats a line

Subject folders are ``NNN-xxNNN`` or ``xxNNN``; the subject id is the stable ``xxNNN`` part, which also
joins image and label folders that use different variants. Frames with PSPI above the threshold are
labelled pain; ``intensity`` and ``pspi`` hold the PSPI. A frame whose PSPI file is missing gets its
PSPI from the FACS file (reported); with neither it is skipped. The AAM point order, (x, y) or (y, x),
is decided from the files themselves and recorded in the notes.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.datasets.scan import (
    relative_example,
    UnitResult,
    add_problem,
    find_child,
    image_files,
    image_size,
    keep_valid_images,
    merge_units,
    parallel_map,
    subdirs,
)
from engine.datasets.table import AU_COLUMNS, LABEL_NO_PAIN, LABEL_PAIN, ScanResult, empty_table, make_table
from engine.errors import NotADatasetError

DATASET = "unbc"
SUBJECT_RE = re.compile(r"^(?:(\d{3})-)?([a-z]{2,3}\d{3})$", re.IGNORECASE)
AAM_POINTS = 66
# AAM-66 index ranges (68-point scheme without the two inner mouth corners): brows and mouth.
_BROWS = slice(17, 27)
_MOUTH = slice(48, 66)
_ORIENTATION_SAMPLE = 300  # landmark files looked at to decide the point order

MESSAGES = {
    "pspi_from_facs": "Frames with no PSPI file got their PSPI computed from their FACS file.",
    "pspi_mismatch": "PSPI files that disagree with AU4 + max(AU6, AU7) + max(AU9, AU10) + AU43 from FACS (PSPI file kept).",
    "missing_facs": "Frames with no FACS file were kept without AU values.",
    "missing_landmarks": "Frames with no AAM landmark file were kept without landmarks.",
    "bad_landmark_file": "AAM landmark files without 66 points were ignored.",
}


@dataclass(frozen=True)
class _Trees:
    """Where the label trees of each subject are: {stable subject id: folder} per kind."""

    pspi: dict[str, Path]
    facs: dict[str, Path]
    aam: dict[str, Path]


def scan(root: Path, check_images: bool = True, pspi_threshold: float = 0.0, workers: int | None = None) -> ScanResult:
    """Read a UNBC tree into a ScanResult (see the module docstring for the rules)."""
    base = _find_base(root)
    result = ScanResult(DATASET, empty_table())
    images_dir = find_child(base, "Images")
    subjects, styles = _subject_folders(images_dir, result, base)
    trees = _label_trees(base, result)
    units = []
    for subject, folder in subjects:
        sequences = subdirs(folder)
        if not sequences:
            add_problem(result, "empty_folder", relative_example(folder, base), MESSAGES)
        units.extend((subject, seq, base, trees, check_images, pspi_threshold) for seq in sequences)
    rows = merge_units(result, parallel_map(_scan_sequence, units, workers), MESSAGES)
    _orient_landmarks(rows, result, check_images)
    result.table = make_table(rows)
    style = "<" + " | ".join(sorted(styles)) + ">" if styles else "<subject>"
    result.layout = f"Images/{style}/<sequence>/<sequence><NNN>.png" + (f" (below {base.name}/)" if base != root else "")
    return result


def _find_base(root: Path) -> Path:
    """The folder holding ``Images/`` (the root itself or one level down), or NotADatasetError."""
    candidates = [root] + subdirs(root)
    for folder in candidates:
        images = find_child(folder, "Images")
        if images is None or not images.is_dir():
            continue
        has_subjects = any(SUBJECT_RE.match(d.name) for d in subdirs(images))
        if has_subjects or find_child(folder, "Frame_Labels") is not None:
            return folder
    raise NotADatasetError(
        f"{root} does not look like UNBC-McMaster: it has no Images/ folder with subject folders such as "
        "042-ll042 (nor one level down); point the command at the folder that holds Images/ and Frame_Labels/."
    )


def _subject_folders(images_dir: Path, result: ScanResult, base: Path) -> tuple[list[tuple[str, Path]], set[str]]:
    """[(stable subject id, folder)] and the naming styles seen; odd names and duplicates are reported."""
    found: dict[str, Path] = {}
    styles: set[str] = set()
    folders = subdirs(images_dir)
    if not folders:
        add_problem(result, "empty_folder", relative_example(images_dir, base), MESSAGES)
    for folder in folders:
        match = SUBJECT_RE.match(folder.name)
        if not match:
            add_problem(result, "unknown_layout", relative_example(folder, base), MESSAGES)
            continue
        styles.add("NNN-xxNNN" if match.group(1) else "xxNNN")
        subject = match.group(2).lower()
        if subject in found:
            add_problem(result, "duplicate_id", relative_example(folder, base), MESSAGES)
            continue
        found[subject] = folder
    return list(found.items()), styles


def _label_trees(base: Path, result: ScanResult) -> _Trees:
    labels = find_child(base, "Frame_Labels")
    pspi = _subject_index(find_child(labels, "PSPI") if labels else None)
    facs = _subject_index(find_child(labels, "FACS") if labels else None)
    aam = _subject_index(find_child(base, "AAM_landmarks"))
    for name, index in (("Frame_Labels/PSPI", pspi), ("Frame_Labels/FACS", facs), ("AAM_landmarks", aam)):
        if not index:
            result.notes.append(f"{name} is missing or empty.")
    return _Trees(pspi, facs, aam)


def _subject_index(folder: Path | None) -> dict[str, Path]:
    if folder is None or not folder.is_dir():
        return {}
    index: dict[str, Path] = {}
    for sub in subdirs(folder):
        match = SUBJECT_RE.match(sub.name)
        if match:
            index.setdefault(match.group(2).lower(), sub)
    return index


def _listing(folder: Path | None) -> set[str]:
    if folder is None or not folder.is_dir():
        return set()
    return set(os.listdir(folder))


def _scan_sequence(unit: tuple) -> UnitResult:
    """All frames of one sequence: names, labels, AUs, landmarks, image checks."""
    subject, folder, base, trees, check_images, threshold = unit
    out = UnitResult()
    sequence = folder.name
    images, others = image_files(folder)
    for other in others + subdirs(folder):
        out.report("unknown_layout", relative_example(other, base))
    if not images:
        out.report("empty_folder", relative_example(folder, base))
        return out
    label_dirs = {
        kind: (tree[subject] / sequence) if subject in tree else None
        for kind, tree in (("pspi", trees.pspi), ("facs", trees.facs), ("aam", trees.aam))
    }
    listings = {kind: _listing(path) for kind, path in label_dirs.items()}
    frame_re = re.compile(rf"^{re.escape(sequence)}(\d+)$", re.IGNORECASE)
    seen: set[int] = set()
    candidates = []
    for path in images:
        example = relative_example(path, base)
        match = frame_re.match(path.stem)
        if not match:
            out.report("unknown_layout", example)
            continue
        frame = int(match.group(1))
        if frame in seen:
            out.report("duplicate_id", example)
            continue
        seen.add(frame)
        row = _frame_row(subject, sequence, frame, path, label_dirs, listings, threshold, out, base)
        if row is not None:
            candidates.append((row, path, example))
    if check_images:
        checked = keep_valid_images(out, candidates)
        out.rows = [dict(row, _size=check.size) for row, check in checked]
    else:
        out.rows = [row for row, _, _ in candidates]
    return out


def _frame_row(subject, sequence, frame, path, label_dirs, listings, threshold, out, base) -> dict | None:
    stem, example = path.stem, relative_example(path, base)
    label_name, aam_name = f"{stem}_facs.txt", f"{stem}_aam.txt"
    aus = None
    if label_name in listings["facs"]:
        aus = _read_facs(label_dirs["facs"] / label_name)
        if aus is None:
            out.report("bad_label_file", relative_example(label_dirs["facs"] / label_name, base))
    else:
        out.report("missing_facs", example)
    pspi = None
    if label_name in listings["pspi"]:
        pspi = _read_pspi(label_dirs["pspi"] / label_name)
        if pspi is None:
            out.report("bad_label_file", relative_example(label_dirs["pspi"] / label_name, base))
    if pspi is None and aus is not None:
        pspi = _pspi_from_aus(aus)
        out.report("pspi_from_facs", example)
    elif pspi is not None and aus is not None and abs(pspi - _pspi_from_aus(aus)) > 1e-6:
        out.report("pspi_mismatch", example)
    if pspi is None:
        out.report("missing_label", example)
        return None
    landmarks = None
    if aam_name in listings["aam"]:
        landmarks = _read_aam(label_dirs["aam"] / aam_name)
        if landmarks is None:
            out.report("bad_landmark_file", relative_example(label_dirs["aam"] / aam_name, base))
    else:
        out.report("missing_landmarks", example)
    row = {
        "image_id": f"{DATASET}/{subject}/{sequence}/{frame:05d}",
        "dataset": DATASET,
        "subject": subject,
        "sequence": sequence,
        "frame": frame,
        "path": str(path),
        "label": LABEL_PAIN if pspi > threshold else LABEL_NO_PAIN,
        "intensity": pspi,
        "pspi": pspi,
        "landmarks": landmarks,
        "landmark_format": "aam66" if landmarks is not None else "",
    }
    row.update(aus or {})
    return row


def _read_pspi(path: Path) -> float | None:
    try:
        value = float(path.read_text(encoding="ascii").split()[0])
    except (OSError, UnicodeDecodeError, ValueError, IndexError):
        return None
    return value if np.isfinite(value) and value >= 0 else None


def _read_facs(path: Path) -> dict[str, float] | None:
    """AU intensities of one frame; an empty file means coded with no AU active. None if unparseable."""
    aus = {column: 0.0 for column in AU_COLUMNS}
    try:
        for line in path.read_text(encoding="ascii").splitlines():
            parts = line.split()
            if not parts:
                continue
            au = int(round(float(parts[0])))
            value = float(parts[1]) if len(parts) > 1 else 1.0
            if au == 43:
                value = 1.0  # AU43 (eyes closed) is coded present/absent only
            if f"au{au}" in aus:
                aus[f"au{au}"] = value
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    return aus


def _pspi_from_aus(aus: dict[str, float]) -> float:
    return aus["au4"] + max(aus["au6"], aus["au7"]) + max(aus["au9"], aus["au10"]) + aus["au43"]


def _read_aam(path: Path) -> np.ndarray | None:
    try:
        values = np.array(path.read_text(encoding="ascii").split(), dtype=float)
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    if values.size != 2 * AAM_POINTS or not np.all(np.isfinite(values)):
        return None
    return values.reshape(AAM_POINTS, 2)


def _orient_landmarks(rows: list[dict], result: ScanResult, check_images: bool) -> None:
    """Decide (x, y) vs (y, x) from a spread sample of files, then store every set as flat [x0, y0, ...]."""
    with_points = [row for row in rows if row["landmarks"] is not None]
    if not with_points:
        return
    step = max(1, len(with_points) // _ORIENTATION_SAMPLE)
    votes = {"xy": 0, "yx": 0, "unclear": 0}
    for row in with_points[::step][:_ORIENTATION_SAMPLE]:
        size = row.get("_size") or (None if check_images else image_size(Path(row["path"])))
        votes[_orientation_vote(row["landmarks"], size)] += 1
    swap = votes["yx"] > votes["xy"]
    looked = sum(votes.values())
    result.notes.append(
        f"AAM landmarks read as {'(y, x)' if swap else '(x, y)'} per line: {max(votes['xy'], votes['yx'])} of "
        f"{looked} sampled files agree ({votes['unclear']} unclear), judged by points inside the image and "
        "brows above the mouth."
    )
    for row in with_points:
        points = row["landmarks"][:, ::-1] if swap else row["landmarks"]
        row["landmarks"] = [float(v) for v in points.reshape(-1)]


def _orientation_vote(points: np.ndarray, size: tuple[int, int] | None) -> str:
    """"xy" or "yx": the reading that keeps the points in the image and puts the brows above the mouth."""
    scores = {}
    for name, (x, y) in (("xy", (points[:, 0], points[:, 1])), ("yx", (points[:, 1], points[:, 0]))):
        inside = True
        if size is not None:
            width, height = size
            inside = bool(np.all((x >= -1) & (x <= width + 1) & (y >= -1) & (y <= height + 1)))
        # Upright face: the mouth lies well below the brows; in the wrong reading that gap is the
        # horizontal offset between them, close to zero.
        gap = float(np.mean(y[_MOUTH]) - np.mean(y[_BROWS]))
        spread = float(np.ptp(x[:17])) or 1.0  # jaw width, to make the gap scale-free
        scores[name] = (inside, gap / spread)
    (xy_in, xy_gap), (yx_in, yx_gap) = scores["xy"], scores["yx"]
    if xy_in != yx_in:
        return "xy" if xy_in else "yx"
    if abs(xy_gap - yx_gap) < 0.05:
        return "unclear"
    return "xy" if xy_gap > yx_gap else "yx"

