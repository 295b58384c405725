"""Import and validate a clinician ratings file (CP-PAIN ``ratings.csv``).

Long format, one score per row: video, pain source, rater, scale, item, score. The CP-PAIN header is
``video_id,pain_source,rater,scale,item,score``; the short names ``video`` and ``source`` are accepted
too, in any order, with extra columns ignored. Comma, semicolon (what a European spreadsheet writes)
and tab delimiters are recognised, as are a UTF-8 byte-order mark and a decimal comma in scores.

Row numbers are the file's line numbers as a spreadsheet shows them: the header is row 1, the first
rating row 2. Every problem is a :class:`RowProblem` with that row number and one sentence; bad rows
are excluded and counted, good rows are kept. A file that is not a ratings file at all raises
:class:`engine.errors.NotADatasetError` (exit code 2).
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from engine.errors import NotADatasetError
from engine.ratings.forms import scale_label
from engine.scales import PAIN_SOURCES, SCALES

HEADER = "video_id,pain_source,rater,scale,item,score"
COLUMNS = ("video", "pain_source", "rater", "scale", "item", "score")  # canonical names in the clean frame
COLUMN_ALIASES: dict[str, tuple[str, ...]] = {
    "video": ("video_id", "video"),
    "pain_source": ("pain_source", "source"),
    "rater": ("rater", "rater_id"),
    "scale": ("scale",),
    "item": ("item",),
    "score": ("score",),
}
_SCALE_ALIASES = {"wong_baker": "wong_baker", "wongbaker": "wong_baker", "wong_baker_faces": "wong_baker",
                  "ncapc": "ncapc", "facs": "facs", "facs_pain": "facs"}
_SOURCE_ALIASES = {"injection": "injection", "intramuscular_injection": "injection", "im_injection": "injection",
                   "stretching": "stretching", "muscular_stretching": "stretching", "stretch": "stretching",
                   "other": "other", "others": "other", "other_sources": "other", "unknown": "other"}
UNSPECIFIED_SOURCE = "unspecified"


@dataclass(frozen=True)
class RowProblem:
    """One problem found in a ratings file."""

    row: int  # file row (header = 1); for a problem about a group of rows, its first row
    kind: str  # bad_row, missing_value, unknown_scale, unknown_item, non_numeric, out_of_range,
    #            duplicate, missing_item, single_rater, missing_rater, source_conflict, unknown_source
    message: str  # one sentence that starts with the row number and says what was done
    excluded: int = 0  # rows this problem removed from the analysis (0: reported only)


@dataclass
class RatingsLoad:
    """A validated ratings file: the clean long frame, the problems, the counts."""

    ratings: pd.DataFrame  # columns row (int), video, pain_source, rater, scale, item (str), score (float)
    problems: list[RowProblem] = field(default_factory=list)
    rows_read: int = 0  # rating rows in the file (blank lines not counted)
    delimiter: str = ","

    @property
    def rows_used(self) -> int:
        return len(self.ratings)

    @property
    def rows_excluded(self) -> int:
        return self.rows_read - self.rows_used

    @property
    def raters(self) -> tuple[str, ...]:
        return tuple(sorted(self.ratings["rater"].unique()))

    def problem_counts(self) -> dict[str, int]:
        counts: dict[str, int] = defaultdict(int)
        for problem in self.problems:
            counts[problem.kind] += 1
        return dict(counts)


def load_ratings(path: str | Path) -> RatingsLoad:
    """Read and validate a ratings CSV; raises NotADatasetError for a file that is not one.

    A CP-PAIN folder may be given instead of the file: its ``ratings.csv`` is read.
    """
    path = Path(path)
    if path.is_dir() and (path / "ratings.csv").is_file():
        path = path / "ratings.csv"
    text = _read_text(path)
    delimiter, records, problems = _parse_csv(text, path)
    if not records and not problems:
        raise NotADatasetError(f"{path} has a ratings header but no ratings; add one row per score and run again.")
    frame = pd.DataFrame(records, columns=["row", *COLUMNS])
    load = validate_ratings(frame, problems)
    load.rows_read += len(problems)  # rows refused while parsing were read too
    load.delimiter = delimiter
    return load


def _read_text(path: Path) -> str:
    if not path.is_file():
        raise NotADatasetError(f"No ratings file at {path}: give the path of a CSV file with the header {HEADER}.")
    data = path.read_bytes()
    if b"\x00" in data[:65536]:
        raise NotADatasetError(f"{path} is not a ratings file: it is binary, not text; give the CSV with the header {HEADER}.")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        try:  # spreadsheets on Windows often save CSV as cp1252
            return data.decode("cp1252")
        except UnicodeDecodeError:
            raise NotADatasetError(f"{path} is not a ratings file: it is not readable text; save it as UTF-8 CSV.") from None


def _match_columns(header: list[str]) -> dict[str, int]:
    """Canonical column -> index in the header, for the columns found."""
    names = [re.sub(r"[\s\-]+", "_", name.strip().lower()) for name in header]
    found = {}
    for column, aliases in COLUMN_ALIASES.items():
        for alias in aliases:
            if alias in names:
                found[column] = names.index(alias)
                break
    return found


def _parse_csv(text: str, path: Path) -> tuple[str, list[list], list[RowProblem]]:
    """Pick the delimiter whose header has every column; return (delimiter, records, problems)."""
    first = next((line for line in text.splitlines() if line.strip()), None)
    if first is None:
        raise NotADatasetError(f"{path} is empty: a ratings file is a CSV with the header {HEADER}.")
    fewest_missing: list[str] = list(COLUMN_ALIASES)
    for delimiter in (",", ";", "\t"):
        mapping = _match_columns(next(csv.reader([first], delimiter=delimiter)))
        missing = [column for column in COLUMN_ALIASES if column not in mapping]
        if not missing:
            break
        fewest_missing = min(fewest_missing, missing, key=len)
    else:
        names = ", ".join(COLUMN_ALIASES[column][0] for column in fewest_missing)
        raise NotADatasetError(f"{path} is not a ratings file: its header lacks the column(s) {names}; "
                               f"a ratings file is a CSV with the header {HEADER}.")
    width = len(next(csv.reader([first], delimiter=delimiter)))
    records, problems = [], []
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    seen_header = False
    try:
        for fields in reader:
            if not any(value.strip() for value in fields):
                continue
            if not seen_header:
                seen_header = True
                continue
            row = reader.line_num
            extra = [value for value in fields[width:] if value.strip()]
            if len(fields) < width or extra:
                problems.append(RowProblem(row, "bad_row", f"Row {row} has {len(fields)} fields where the header has "
                                           f"{width}; the row is excluded.", excluded=1))
                continue
            records.append([row, *(fields[mapping[column]] for column in COLUMNS)])
    except csv.Error as exc:
        raise NotADatasetError(f"{path} is not a readable CSV file near row {reader.line_num} ({exc}); "
                               f"save it again as CSV with the header {HEADER}.") from None
    return delimiter, records, problems


def validate_ratings(frame: pd.DataFrame, problems: list[RowProblem] | None = None) -> RatingsLoad:
    """Validate a long frame of raw text values (columns of COLUMNS, optional ``row``).

    Returns the clean frame and every problem, sorted by row. Without a ``row`` column, rows are
    numbered as in a file with a header (first data row = 2).
    """
    problems = list(problems or [])
    frame = frame.copy()
    if "row" not in frame:
        frame["row"] = range(2, len(frame) + 2)
    rows = []
    for record in frame[["row", *COLUMNS]].astype(str).itertuples(index=False):
        clean, problem = _check_row(int(record[0]), *(value.strip() for value in record[1:]))
        if problem is not None:
            problems.append(problem)
        else:
            rows.append(clean)
    rows = _resolve_sources(rows, problems)
    rows = _drop_duplicates(rows, problems)
    rows = _drop_incomplete_items(rows, problems)
    rows = _check_raters(rows, problems)
    clean = pd.DataFrame(rows, columns=["row", *COLUMNS]).astype(
        {"row": int, "video": str, "pain_source": str, "rater": str, "scale": str, "item": str, "score": float})
    clean = clean.sort_values("row", kind="stable").reset_index(drop=True)
    problems.sort(key=lambda problem: problem.row)
    return RatingsLoad(clean, problems, rows_read=len(frame))


def _check_row(row: int, video: str, source: str, rater: str, scale: str, item: str,
               score: str) -> tuple[dict | None, RowProblem | None]:
    """One row on its own: fields present, scale and item known, score a number in range."""
    for name, value in (("video id", video), ("rater", rater)):
        if not value:
            return None, RowProblem(row, "missing_value", f"Row {row}: the {name} is empty; the row is excluded.", 1)
    scale_key = _SCALE_ALIASES.get(re.sub(r"[\s\-]+", "_", scale.lower()))
    if scale_key is None:
        what = f"unknown scale '{scale}'" if scale else "the scale is empty"
        return None, RowProblem(row, "unknown_scale", f"Row {row}: {what}; the scales are wong_baker, ncapc and facs. "
                                "The row is excluded.", 1)
    item_key, problem = _check_item(row, scale_key, item)
    if problem is not None:
        return None, problem
    value, problem = _check_score(row, scale_key, item_key, score)
    if problem is not None:
        return None, problem
    return {"row": row, "video": video, "pain_source": source, "rater": rater, "scale": scale_key,
            "item": item_key, "score": value}, None


def _check_item(row: int, scale: str, item: str) -> tuple[str, RowProblem | None]:
    if scale == "wong_baker":
        if not item:
            return "", None
        return "", RowProblem(row, "unknown_item", f"Row {row}: Wong-Baker takes one score with an empty item, "
                              f"not '{item}'; the row is excluded.", 1)
    if scale == "facs":
        match = re.fullmatch(r"(?:au)?0*(\d+)", item.replace(" ", "").lower())
        key = f"AU{match.group(1)}" if match else item
    else:
        key = re.sub(r"[\s\-]+", "_", item.lower())
    items = SCALES[scale].items
    if key in items:
        return key, None
    what = f"'{item}' is not a {scale_label(scale)} item" if item else f"the {scale_label(scale)} item is empty"
    return "", RowProblem(row, "unknown_item", f"Row {row}: {what}; the items are {', '.join(items)}. "
                          "The row is excluded.", 1)


def _check_score(row: int, scale: str, item: str, score: str) -> tuple[float, RowProblem | None]:
    text = score.replace(",", ".") if ("," in score and "." not in score) else score  # decimal comma
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        what = "the score is empty" if not score else f"the score '{score}' is not a number"
        return 0.0, RowProblem(row, "non_numeric", f"Row {row}: {what}; the row is excluded.", 1)
    spec = SCALES[scale]
    if not spec.min_score <= value <= spec.max_score:
        name = f"{scale_label(scale)} {item}".strip()
        return 0.0, RowProblem(row, "out_of_range", f"Row {row}: the score {value:g} is outside "
                               f"{spec.min_score}-{spec.max_score} for {name}; the row is excluded.", 1)
    return value, None


def _resolve_sources(rows: list[dict], problems: list[RowProblem]) -> list[dict]:
    """One pain source per video: the first row's wins; unknown and conflicting ones are reported."""
    chosen: dict[str, tuple[str, int]] = {}
    reported: set[tuple[str, str]] = set()
    for record in rows:
        raw = record["pain_source"]
        source = _SOURCE_ALIASES.get(re.sub(r"[\s\-]+", "_", raw.lower()), raw.lower() or UNSPECIFIED_SOURCE)
        video, row = record["video"], record["row"]
        if video not in chosen:
            chosen[video] = (source, row)
            if source not in PAIN_SOURCES:
                what = f"pain source '{raw}' is not one of" if raw else "the pain source is empty; it should be one of"
                problems.append(RowProblem(row, "unknown_source", f"Row {row}: {what} {', '.join(PAIN_SOURCES)}; "
                                           f"video {video} is reported under '{source}'."))
        first, first_row = chosen[video]
        if source != first and (video, source) not in reported:
            reported.add((video, source))
            problems.append(RowProblem(row, "source_conflict", f"Row {row}: video {video} has pain source "
                                       f"'{raw}' here but '{first}' on row {first_row}; '{first}' is used."))
        record["pain_source"] = first
    return rows


def _drop_duplicates(rows: list[dict], problems: list[RowProblem]) -> list[dict]:
    """Keep the first score of each (video, rater, scale, item); report every later one."""
    first: dict[tuple, dict] = {}
    kept = []
    for record in rows:
        key = (record["video"], record["rater"], record["scale"], record["item"])
        if key in first:
            earlier = first[key]
            same = "the same score" if earlier["score"] == record["score"] else f"{earlier['score']:g} there"
            what = f"{scale_label(record['scale'])} {record['item']}".strip()
            problems.append(RowProblem(record["row"], "duplicate", f"Row {record['row']}: duplicate of row "
                                       f"{earlier['row']} (rater {record['rater']}, {what}, video {record['video']}; "
                                       f"{same}); only row {earlier['row']} is kept.", 1))
            continue
        first[key] = record
        kept.append(record)
    return kept


def _more(rows: list[int]) -> str:
    if len(rows) == 1:
        return f"Row {rows[0]}"
    return f"Row {rows[0]} and {len(rows) - 1} more row{'s' if len(rows) > 2 else ''}"


def _these(rows: list[int]) -> str:
    return "this row is excluded" if len(rows) == 1 else f"these {len(rows)} rows are excluded"


def _drop_incomplete_items(rows: list[dict], problems: list[RowProblem]) -> list[dict]:
    """A multi-item scale needs every item from a rater for a video; otherwise its score cannot exist."""
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for record in rows:
        groups[(record["video"], record["rater"], record["scale"])].append(record)
    dropped: set[int] = set()
    for (video, rater, scale), group in groups.items():
        missing = [item for item in SCALES[scale].items if item not in {r["item"] for r in group}]
        if not missing:
            continue
        rownums = sorted(r["row"] for r in group)
        dropped.update(id(r) for r in group)
        label = scale_label(scale)
        problems.append(RowProblem(rownums[0], "missing_item", f"{_more(rownums)}: rater {rater}'s {label} "
                                   f"ratings of video {video} lack a usable score for the item(s) {', '.join(missing)}; the "
                                   f"{label} score needs all {len(SCALES[scale].items)} items, so {_these(rownums)}.",
                                   len(rownums)))
    return [record for record in rows if id(record) not in dropped]


def _check_raters(rows: list[dict], problems: list[RowProblem]) -> list[dict]:
    """Agreement needs two raters per video and scale: one-rater videos go; partial ones are reported."""
    groups: dict[tuple, list[dict]] = defaultdict(list)
    raters_of_scale: dict[str, set[str]] = defaultdict(set)
    for record in rows:
        groups[(record["video"], record["scale"])].append(record)
        raters_of_scale[record["scale"]].add(record["rater"])
    dropped: set[int] = set()
    for (video, scale), group in groups.items():
        raters = sorted({r["rater"] for r in group})
        rownums = sorted(r["row"] for r in group)
        label = scale_label(scale)
        if len(raters) == 1:
            dropped.update(id(r) for r in group)
            problems.append(RowProblem(rownums[0], "single_rater", f"{_more(rownums)}: video {video} has {label} "
                                       f"ratings from one rater only ({raters[0]}); agreement needs two or more "
                                       f"raters, so {_these(rownums)}.", len(rownums)))
        elif len(raters) < len(raters_of_scale[scale]):
            absent = sorted(raters_of_scale[scale] - set(raters))
            problems.append(RowProblem(rownums[0], "missing_rater", f"{_more(rownums)}: video {video} has {label} "
                                       f"ratings from {len(raters)} of the {len(raters_of_scale[scale])} raters "
                                       f"(missing {', '.join(absent)}); it counts for the pain/no-pain labels but is "
                                       "left out of the ICC, which needs every rater's score."))
    return [record for record in rows if id(record) not in dropped]
