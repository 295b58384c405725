"""MIntPAIN adapter (RGB modality only).

Layout (see ``DATASETS.md``)::

    Sub<NN> <free text>/Annotated_data_Sub<NN>_Trial<TT>/Sub<NN>_Trial<TT>_Sweep<SS>_Label<L>/{rgb|RGB}/RGB-HH-MM-SS-MS.jpg

The sweep folders are found wherever they sit below the root (some copies add
``Annotated_data_part1/``). A sequence is keyed on (subject, trial, sweep, label): the same sweep
number appears once as a level-0 segment and once as a stimulus segment. Frames are ordered by the
time in their file name and numbered from 0 in that order (before image checks, so ids are stable).
Label > 0 is pain; ``intensity`` is the level 0-4.

Privacy: the text after ``Sub<NN>`` in a subject folder name may be a participant's name. Only the
``SubNN`` token reaches ``image_id``, ``subject``, ``sequence``, problem examples (see
:func:`safe_relpath`), notes and errors. The ``path`` column holds the real path, for reading the
image in memory: never write or log it.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from engine.datasets.scan import (
    UnitResult,
    add_problem,
    image_files,
    keep_valid_images,
    merge_units,
    parallel_map,
    subdirs,
)
from engine.datasets.table import LABEL_NO_PAIN, LABEL_PAIN, ScanResult, empty_table, make_table
from engine.errors import NotADatasetError

DATASET = "mintpain"
LEVELS = range(0, 5)
LAYOUT = "Sub<NN> <text>/Annotated_data_Sub<NN>_Trial<TT>/Sub<NN>_Trial<TT>_Sweep<SS>_Label<L>/rgb/RGB-HH-MM-SS-MS.jpg"
MAX_DEPTH = 6  # sweep folders deeper than this below the root are not looked for
SWEEP_RE = re.compile(r"^sub(\d+)_trial(\d+)_sweep(\d+)_label(\d+)$", re.IGNORECASE)
TRIAL_RE = re.compile(r"^annotated_data_sub(\d+)_trial(\d+)$", re.IGNORECASE)
# A subject folder: "Sub<NN>" then nothing, or anything that does not continue the number or start
# a trial/sweep name. Whatever follows the number is never shown.
SUBJECT_RE = re.compile(r"^sub(\d+)(?!\d)(?!_trial)", re.IGNORECASE)
FRAME_RE = re.compile(r"^rgb-(\d+)-(\d+)-(\d+)-(\d+)\.(?:jpe?g|png)$", re.IGNORECASE)
_SAFE_NAME_RES = (
    SWEEP_RE,
    TRIAL_RE,
    FRAME_RE,
    re.compile(r"^annotated_data(?:_part\d+)?$", re.IGNORECASE),
    re.compile(r"^(?:rgb|d|t|depth|thermal)$", re.IGNORECASE),
)

MESSAGES = {
    "missing_rgb": "Sweep folders with no rgb/ folder were skipped.",
    "inconsistent_ids": "Sweep folders whose Sub number differs from their subject folder's (the sweep's own was used).",
}


def safe_relpath(path: Path, root: Path) -> str:
    """Dataset-relative path for reports: subject folders become ``SubNN``, unknown names ``[other]``."""
    try:
        parts = path.relative_to(root).parts
    except ValueError:
        parts = (path.name,)
    return "/".join(_safe_name(part) for part in parts)


def _safe_name(name: str) -> str:
    if any(regex.match(name) for regex in _SAFE_NAME_RES):
        return name
    subject = SUBJECT_RE.match(name)
    if subject:
        return _subject_id(subject.group(1))
    return "[other]"


def _subject_id(digits: str) -> str:
    return f"Sub{int(digits):02d}"


def scan(root: Path, check_images: bool = True, workers: int | None = None) -> ScanResult:
    """Read a MIntPAIN tree into a ScanResult (see the module docstring for the rules)."""
    result = ScanResult(DATASET, empty_table())
    sweeps, subject_folders = _find_sweeps(root)
    if not sweeps and not subject_folders:
        raise NotADatasetError(
            "The folder given does not look like MIntPAIN: no Sub<NN> subject folders or "
            "Sub<NN>_Trial<TT>_Sweep<SS>_Label<L> folders were found in it; point the command at the MIntPAIN root."
        )
    units = _sequence_units(sweeps, subject_folders, root, result, check_images)
    rows = merge_units(result, parallel_map(_scan_sweep, units, workers), MESSAGES)
    result.table = make_table(rows)
    depths = sorted({len(path.relative_to(root).parts) for path in subject_folders})
    result.layout = LAYOUT
    if depths and depths != [1]:
        result.notes.append(f"Subject folders found {' and '.join(str(d - 1) for d in depths)} folder(s) below the root.")
    modality = sorted({unit[1].name for unit in units if unit[1] is not None})
    if modality:
        result.notes.append(f"RGB folder named {' and '.join(modality)}.")
    return result


def _find_sweeps(root: Path) -> tuple[list[Path], set[Path]]:
    """All sweep folders (sorted) and the subject folders seen, down to MAX_DEPTH below the root."""
    sweeps: list[Path] = []
    subjects: set[Path] = set()
    for dirpath, dirnames, _ in os.walk(root):
        depth = len(Path(dirpath).relative_to(root).parts)
        keep = []
        for name in sorted(dirnames):
            if name.startswith("."):
                continue
            path = Path(dirpath) / name
            if SWEEP_RE.match(name):
                sweeps.append(path)  # not descended into: modality folders are read per sweep
            else:
                if SUBJECT_RE.match(name):
                    subjects.add(path)
                keep.append(name)
        dirnames[:] = keep if depth + 1 < MAX_DEPTH else []
    return sorted(sweeps), subjects


def _sequence_units(sweeps, subject_folders, root, result, check_images) -> list[tuple]:
    """One unit per distinct (subject, trial, sweep, label); duplicates, odd levels, empty subjects reported."""
    seen: set[tuple[int, int, int, int]] = set()
    used_subjects: set[Path] = set()
    units = []
    for sweep in sweeps:
        example = safe_relpath(sweep, root)
        subject, trial, number, level = (int(v) for v in SWEEP_RE.match(sweep.name).groups())
        owner = next((p for p in sweep.parents if p in subject_folders), None)
        if owner is not None:
            used_subjects.add(owner)
            if int(SUBJECT_RE.match(owner.name).group(1)) != subject:
                add_problem(result, "inconsistent_ids", example, MESSAGES)
        if level not in LEVELS:
            add_problem(result, "unknown_label", example, MESSAGES)
            continue
        key = (subject, trial, number, level)
        if key in seen:
            add_problem(result, "duplicate_id", example, MESSAGES)
            continue
        seen.add(key)
        rgb = next((d for d in subdirs(sweep) if d.name.lower() == "rgb"), None)
        units.append((key, rgb, sweep, root, check_images))
    for folder in subject_folders:
        # A subject folder holding no sweep (and not just an ancestor of one) is empty for our purpose.
        if folder not in used_subjects and not any(u[2].is_relative_to(folder) for u in units):
            add_problem(result, "empty_folder", safe_relpath(folder, root), MESSAGES)
    return units


def _scan_sweep(unit: tuple) -> UnitResult:
    """All RGB frames of one sweep, ordered by the time in their names."""
    (subject, trial, number, level), rgb, sweep, root, check_images = unit
    out = UnitResult()
    if rgb is None:
        out.report("missing_rgb", safe_relpath(sweep, root))
        return out
    images, others = image_files(rgb)
    for other in others + subdirs(rgb):
        out.report("unknown_layout", safe_relpath(other, root))
    timed = []
    for path in images:
        match = FRAME_RE.match(path.name)
        if not match:
            out.report("unknown_layout", safe_relpath(path, root))
            continue
        hours, minutes, seconds, millis = (int(v) for v in match.groups())
        timed.append((((hours * 60 + minutes) * 60 + seconds) * 1000 + millis, path.name, path))
    if not timed:
        out.report("empty_folder", safe_relpath(rgb, root))
        return out
    timed.sort()
    subject_id = _subject_id(str(subject))
    sequence = f"Trial{trial:02d}_Sweep{number:02d}_Label{level}"
    candidates, last_time = [], None
    for stamp, _, path in timed:
        example = safe_relpath(path, root)
        if stamp == last_time:
            out.report("duplicate_id", example)
            continue
        last_time = stamp
        frame = len(candidates)  # position in time order, before image checks, so ids stay stable
        row = {
            "image_id": f"{DATASET}/{subject_id}/{sequence}/{frame:05d}",
            "dataset": DATASET,
            "subject": subject_id,
            "sequence": sequence,
            "frame": frame,
            "path": str(path),
            "label": LABEL_PAIN if level > 0 else LABEL_NO_PAIN,
            "intensity": float(level),
        }
        candidates.append((row, path, example))
    if check_images:
        out.rows = [row for row, _ in keep_valid_images(out, candidates)]
    else:
        out.rows = [row for row, _, _ in candidates]
    return out
