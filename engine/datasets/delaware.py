"""Delaware Pain Database adapter.

The public copy does not say which photos show pain, so PainLens reads the labels from one of two
layouts (see ``DATASETS.md``), preferring the first when both are there:

1. a manifest CSV at the root (``manifest.csv``, or any CSV with the columns ``image,subject,label``):
   ``image`` relative to the CSV's folder, ``label`` ``pain`` or ``neutral`` (also ``no_pain``, 1/0);
2. ``pain/`` and ``neutral/`` folders (at the root or one level down). The subject is the sub-folder
   when photos sit in ``pain/<subject>/``; else the characterization CSV's subject column when it has
   one; else the file name up to its first ``_`` or ``-``. The rule used is recorded in the notes.

The characterization CSV (``...StimulusCharacterization...csv`` or any CSV with a ``Target`` column;
``Target`` = image file name without extension) is joined when present: AU columns it holds
(``AU04``, ``AU04_r``, ``OpenFace_AU04_r``...) fill the AU values. ``intensity`` is the label (0/1).
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

import numpy as np

from engine.datasets.scan import IMAGE_SUFFIXES, add_problem, relative_example, check_in_chunks, find_child, merge_units, subdirs
from engine.datasets.table import AU_COLUMNS, LABEL_NO_PAIN, LABEL_PAIN, ScanResult, empty_table, make_table
from engine.errors import NotADatasetError

DATASET = "delaware"
MANIFEST_COLUMNS = ("image", "subject", "label")
LABELS = {"pain": LABEL_PAIN, "1": LABEL_PAIN, "neutral": LABEL_NO_PAIN, "no_pain": LABEL_NO_PAIN, "0": LABEL_NO_PAIN}
CLASS_FOLDERS = {"pain": LABEL_PAIN, "neutral": LABEL_NO_PAIN}
_SUBJECT_COLUMNS = ("subject", "subject_id", "participant", "person")
_AU_RE = re.compile(r"(?:^|_)au0*(\d+)(?:_r)?$", re.IGNORECASE)

MESSAGES = {
    "bad_row": "Manifest rows with an empty image, subject or label were skipped.",
    "not_in_characterization": "Images with no row in the characterization CSV were kept without its values.",
    "empty_manifest": "The manifest lists no images.",
}


def scan(root: Path, check_images: bool = True, workers: int | None = None) -> ScanResult:
    """Read a Delaware tree into a ScanResult (see the module docstring for the rules)."""
    result = ScanResult(DATASET, empty_table())
    characterization = _find_characterization(root)
    manifest = _find_manifest(root, exclude=characterization)
    class_base = _find_class_folders(root)
    if manifest is None and class_base is None:
        raise NotADatasetError(
            f"{root} does not look like the Delaware Pain Database: it has neither a manifest CSV with the columns "
            "image,subject,label nor pain/ and neutral/ folders; write such a manifest (see the README) or sort the "
            "photos into pain/ and neutral/."
        )
    chars = _read_characterization(characterization, result) if characterization else {}
    if manifest is not None:
        candidates = _from_manifest(manifest, root, result)
        if not candidates and not result.problems:
            add_problem(result, "empty_manifest", manifest.name, MESSAGES)
        result.layout = f"manifest CSV ({manifest.name}: image,subject,label)"
        if class_base is not None:
            result.notes.append("pain/ and neutral/ folders are there too; the manifest was used.")
    else:
        candidates = _from_folders(class_base, root, chars, result)
        result.layout = "pain/ and neutral/ folders" + (f" (below {class_base.name}/)" if class_base != root else "")
    candidates = _drop_duplicates(candidates, result)
    rows = merge_units(result, check_in_chunks(candidates, check_images, workers), MESSAGES)
    if characterization:
        _join_characterization(rows, chars, root, result)
    result.table = make_table(rows)
    return result


def _csv_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() == ".csv" and not p.name.startswith("."))


def _header(path: Path) -> list[str]:
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            return [c.strip().lower() for c in next(csv.reader(handle), [])]
    except (OSError, UnicodeDecodeError, csv.Error):
        return []


def _find_manifest(root: Path, exclude: Path | None) -> Path | None:
    files = [p for p in _csv_files(root) if p != exclude]
    files.sort(key=lambda p: p.name.lower() != "manifest.csv")  # manifest.csv first
    return next((p for p in files if set(MANIFEST_COLUMNS) <= set(_header(p))), None)


def _find_characterization(root: Path) -> Path | None:
    for folder in [root] + subdirs(root):
        files = _csv_files(folder)
        named = [p for p in files if "characterization" in p.name.lower()]
        for path in named + files:
            if "target" in _header(path):
                return path
    return None


def _find_class_folders(root: Path) -> Path | None:
    for folder in [root] + subdirs(root):
        if all(find_child(folder, name) is not None and find_child(folder, name).is_dir() for name in CLASS_FOLDERS):
            return folder
    return None


def _row(subject: str, path: Path, label: int) -> dict:
    return {
        "image_id": f"{DATASET}/{subject}/{path.stem}",
        "dataset": DATASET,
        "subject": subject,
        "sequence": "",
        "frame": 0,
        "path": str(path),
        "label": label,
        "intensity": float(label),
    }


def _from_manifest(manifest: Path, root: Path, result: ScanResult) -> list[tuple[dict, Path, str]]:
    candidates: list[tuple[dict, Path, str]] = []
    try:
        _read_manifest(manifest, root, result, candidates)
    except (UnicodeDecodeError, csv.Error) as exc:
        add_problem(result, "bad_label_file", f"{manifest.name}: read up to the error ({type(exc).__name__})", MESSAGES)
    return candidates


def _read_manifest(manifest: Path, root: Path, result: ScanResult, candidates: list) -> None:
    with open(manifest, newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        reader.fieldnames = [name.strip().lower() for name in reader.fieldnames or []]
        for number, record in enumerate(reader, start=2):  # line numbers as a spreadsheet shows them
            where = f"{manifest.name} line {number}"
            image, subject, label = ((record.get(k) or "").strip() for k in MANIFEST_COLUMNS)
            if not image or not subject or not label:
                add_problem(result, "bad_row", where, MESSAGES)
                continue
            if label.lower() not in LABELS:
                add_problem(result, "unknown_label", f"{where}: {label}", MESSAGES)
                continue
            path = Path(image) if Path(image).is_absolute() else manifest.parent / image
            if not path.is_file():
                add_problem(result, "missing_image", f"{where}: {image}", MESSAGES)
                continue
            candidates.append((_row(subject, path, LABELS[label.lower()]), path, relative_example(path, root)))


def _from_folders(base: Path, root: Path, chars: dict[str, dict], result: ScanResult) -> list[tuple[dict, Path, str]]:
    candidates, rules = [], set()
    for name, label in CLASS_FOLDERS.items():
        folder = find_child(base, name)
        files = sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith("."))
        if not files:
            add_problem(result, "empty_folder", relative_example(folder, root), MESSAGES)
        for path in files:
            if path.suffix.lower() not in IMAGE_SUFFIXES or len(path.relative_to(folder).parts) > 2:
                add_problem(result, "unknown_layout", relative_example(path, root), MESSAGES)
                continue
            subject, rule = _folder_subject(path, folder, chars)
            rules.add(rule)
            candidates.append((_row(subject, path, label), path, relative_example(path, root)))
    if rules:
        result.notes.append("Subject taken from " + " and ".join(sorted(rules)) + ".")
    return candidates


def _folder_subject(path: Path, class_folder: Path, chars: dict[str, dict]) -> tuple[str, str]:
    if path.parent != class_folder:
        return path.parent.name, "the sub-folder of pain/ or neutral/"
    subject = chars.get(path.stem, {}).get("_subject")
    if subject:
        return subject, "the characterization CSV's subject column"
    return re.split(r"[_-]", path.stem, maxsplit=1)[0], "the file name up to its first _ or -"


def _drop_duplicates(candidates: list[tuple[dict, Path, str]], result: ScanResult) -> list[tuple[dict, Path, str]]:
    kept, ids, paths = [], set(), set()
    for row, path, example in candidates:
        if row["image_id"] in ids or path in paths:
            add_problem(result, "duplicate_id", example, MESSAGES)
            continue
        ids.add(row["image_id"])
        paths.add(path)
        kept.append((row, path, example))
    return kept


def _read_characterization(path: Path, result: ScanResult) -> dict[str, dict]:
    """{Target: {au column: value, "_subject": subject or absent}} from the characterization CSV."""
    out: dict[str, dict] = {}
    try:
        au_columns = _fill_characterization(path, out)
    except csv.Error as exc:
        add_problem(result, "bad_label_file", f"{path.name}: read up to the error ({type(exc).__name__})", MESSAGES)
        au_columns = {}
    result.notes.append(
        f"Characterization CSV {path.name}: {len(out)} rows"
        + (f", AU columns {', '.join(sorted(au_columns, key=AU_COLUMNS.index))}" if au_columns else ", no AU columns")
        + "."
    )
    return out


def _fill_characterization(path: Path, out: dict[str, dict]) -> dict[str, str]:
    with open(path, newline="", encoding="utf-8-sig", errors="replace") as handle:
        reader = csv.DictReader(handle)
        names = [n.strip() for n in reader.fieldnames or []]
        reader.fieldnames = names
        target = next(n for n in names if n.lower() == "target")
        subject = next((n for n in names if n.lower() in _SUBJECT_COLUMNS), None)
        au_columns = _au_columns(names)
        for record in reader:
            key = (record.get(target) or "").strip()
            if not key:
                continue
            values = {column: _float(record.get(name)) for column, name in au_columns.items()}
            if subject and (record.get(subject) or "").strip():
                values["_subject"] = record[subject].strip()
            out[key] = values
    return au_columns


def _au_columns(names: list[str]) -> dict[str, str]:
    """{our AU column: CSV column}; intensity columns (``_r``) win over plain ones."""
    found: dict[str, str] = {}
    for name in names:
        match = _AU_RE.search(name)
        column = f"au{int(match.group(1))}" if match else None
        if column in AU_COLUMNS and (column not in found or name.lower().endswith("_r")):
            found[column] = name
    return found


def _float(text: str | None) -> float:
    try:
        value = float(text)
    except (TypeError, ValueError):
        return np.nan
    return value


def _join_characterization(rows: list[dict], chars: dict[str, dict], root: Path, result: ScanResult) -> None:
    matched = 0
    for row in rows:
        stem = Path(row["path"]).stem
        values = chars.get(stem)
        if values is None:
            add_problem(result, "not_in_characterization", relative_example(Path(row["path"]), root), MESSAGES)
            continue
        matched += 1
        row.update({k: v for k, v in values.items() if not k.startswith("_")})
    result.notes.append(f"Characterization CSV joined on Target = file stem: {matched} of {len(rows)} images matched.")
