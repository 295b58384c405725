"""Scan a dataset folder: dispatch to the adapter, shared checks, and the human/JSON report.

Every adapter returns a :class:`~engine.datasets.table.ScanResult`: the sample table of the images
that can be used, and every problem met on the way (counted, with a few examples). A broken file is
reported and skipped; only a folder that is not the dataset at all raises
:class:`~engine.errors.NotADatasetError`.

Adapters split their tree into independent units (one sequence, one manifest chunk) and process them
with :func:`parallel_map`; each unit returns rows plus ``(problem kind, example)`` events, which are
merged in unit order so that the result does not depend on thread timing.
"""

from __future__ import annotations

import importlib
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Sequence, TypeVar

from PIL import Image, UnidentifiedImageError

from engine.config import DATASET_NAMES
from engine.datasets.table import CLASS_NAMES, ScanResult
from engine.errors import NotADatasetError, PainLensError

DATASET_TITLES = {"unbc": "UNBC-McMaster", "mintpain": "MIntPAIN", "delaware": "Delaware", "cppain": "CP-PAIN"}
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")

# Sentences for the problem kinds every adapter shares; adapters add their own kinds.
PROBLEM_MESSAGES = {
    "missing_label": "Images with no label file were skipped.",
    "unreadable_image": "Image files that cannot be decoded (empty, truncated or not an image) were skipped.",
    "black_frame": "Pure black frames were skipped.",
    "empty_folder": "Folders that should hold images hold none.",
    "unknown_layout": "Files or folders that fit no known layout variant were skipped.",
    "duplicate_id": "Images or sequences whose id was already taken were skipped (the first one was kept).",
    "bad_label_file": "Label files that cannot be parsed were ignored.",
    "missing_image": "Rows that name an image file that does not exist were skipped.",
    "unknown_label": "Images with a label outside the dataset's label set were skipped.",
}

# A pure black frame compresses to almost nothing; only images under this many bytes per pixel are
# decoded to look for one, so the black-frame check costs nothing on normal photos.
_BLACK_CHECK_BYTES_PER_PIXEL = 0.05
_BLACK_MAX_VALUE = 10  # JPEG noise can lift pure black to a few grey levels

T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True)
class ImageCheck:
    """Outcome of :func:`check_image`: ``status`` is "ok", "unreadable" or "black"; size is (w, h)."""

    status: str
    size: tuple[int, int] | None = None
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.status == "ok"


@dataclass
class UnitResult:
    """What one unit of an adapter's work found: sample rows and (problem kind, example) events."""

    rows: list[dict] = field(default_factory=list)
    events: list[tuple[str, str]] = field(default_factory=list)

    def report(self, kind: str, example: str) -> None:
        self.events.append((kind, example))


def check_image(path: Path) -> ImageCheck:
    """Cheap decodability check: header + structure (PNG chunk CRCs, JPEG end marker), size > 0.

    A full decode happens only when a JPEG lacks its end marker (truncated?) or the file is so small
    for its size that it may be a black frame.
    """
    try:
        file_size = os.path.getsize(path)
        with Image.open(path) as image:
            size = image.size
            fmt = image.format
            if size[0] <= 0 or size[1] <= 0:
                return ImageCheck("unreadable", None, "zero-sized image")
            if fmt == "PNG":
                image.verify()  # walks every chunk and checks CRCs: catches truncation and corruption
            elif fmt == "JPEG" and not _jpeg_has_end_marker(path):
                image.load()  # raises "image file is truncated" when data is missing
        if file_size < _BLACK_CHECK_BYTES_PER_PIXEL * size[0] * size[1] and _is_black(path):
            return ImageCheck("black", size)
        return ImageCheck("ok", size)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        return ImageCheck("unreadable", None, type(exc).__name__)


def _jpeg_has_end_marker(path: Path) -> bool:
    with open(path, "rb") as handle:
        handle.seek(max(0, os.path.getsize(path) - 64))
        return b"\xff\xd9" in handle.read()


def _is_black(path: Path) -> bool:
    with Image.open(path) as image:
        extrema = image.convert("RGB").getextrema()
    return max(high for _, high in extrema) <= _BLACK_MAX_VALUE


def image_size(path: Path) -> tuple[int, int] | None:
    """Width and height from the header only, or None when the file cannot be opened."""
    try:
        with Image.open(path) as image:
            return image.size
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        return None


def keep_valid_images(unit: UnitResult, candidates: list[tuple[dict, Path, str]]) -> list[tuple[dict, ImageCheck]]:
    """Check each (row, path, example) image; report unreadable and black ones, return the rest."""
    kept = []
    for row, path, example in candidates:
        check = check_image(path)
        if check.status == "unreadable":
            unit.report("unreadable_image", example)
        elif check.status == "black":
            unit.report("black_frame", example)
        else:
            kept.append((row, check))
    return kept


def check_in_chunks(
    candidates: list[tuple[dict, Path, str]], check_images: bool, workers: int | None = None, chunk: int = 64
) -> list[UnitResult]:
    """:func:`keep_valid_images` over a flat list on the thread pool; units keep the input order."""

    def run(part: list[tuple[dict, Path, str]]) -> UnitResult:
        unit = UnitResult()
        if check_images:
            unit.rows = [row for row, _ in keep_valid_images(unit, part)]
        else:
            unit.rows = [row for row, _, _ in part]
        return unit

    parts = [candidates[i : i + chunk] for i in range(0, len(candidates), chunk)]
    return parallel_map(run, parts, workers)


def default_workers() -> int:
    return max(1, min(8, os.cpu_count() or 1))


def parallel_map(fn: Callable[[T], R], items: Sequence[T], workers: int | None = None) -> list[R]:
    """``[fn(x) for x in items]`` on a thread pool (image decoding and file I/O release the GIL)."""
    workers = workers or default_workers()
    if workers == 1 or len(items) <= 1:
        return [fn(item) for item in items]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(fn, items))


def relative_example(path: Path, root: Path) -> str:
    """``path`` relative to the dataset root, for problem examples (just the file name if outside it)."""
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.name


def add_problem(result: ScanResult, kind: str, example: str, messages: dict[str, str] | None = None) -> None:
    """Count one problem of ``kind`` (sentence from ``messages`` or the shared ones) with its example."""
    messages = {**PROBLEM_MESSAGES, **(messages or {})}
    result.problem(kind, messages.get(kind, kind.replace("_", " ").capitalize() + ".")).add(example)


def merge_units(result: ScanResult, units: Iterable[UnitResult], messages: dict[str, str] | None = None) -> list[dict]:
    """Fold unit events into ``result.problems`` (in unit order) and return all rows."""
    rows: list[dict] = []
    for unit in units:
        rows.extend(unit.rows)
        for kind, example in unit.events:
            add_problem(result, kind, example, messages)
    return rows


def image_files(folder: Path) -> tuple[list[Path], list[Path]]:
    """Split a folder's visible files into (images, others), sorted by name; hidden files are ignored."""
    images, others = [], []
    for entry in sorted(os.scandir(folder), key=lambda e: e.name):
        if entry.name.startswith(".") or not entry.is_file():
            continue
        (images if entry.name.lower().endswith(IMAGE_SUFFIXES) else others).append(Path(entry.path))
    return images, others


def subdirs(folder: Path) -> list[Path]:
    """Visible sub-folders, sorted by name."""
    entries = sorted(os.scandir(folder), key=lambda e: e.name)
    return [Path(e.path) for e in entries if e.is_dir() and not e.name.startswith(".")]


def find_child(folder: Path, name: str) -> Path | None:
    """The sub-folder (or file) of ``folder`` called ``name``, ignoring case; None when absent."""
    if not folder.is_dir():
        return None
    exact = folder / name
    if exact.exists():
        return exact
    for entry in os.scandir(folder):
        if entry.name.lower() == name.lower():
            return Path(entry.path)
    return None


# ----------------------------------------------------------------------------------------- dispatch


def scan_dataset(
    path: str | os.PathLike,
    dataset: str,
    check_images: bool = True,
    pspi_threshold: float = 0.0,
    workers: int | None = None,
) -> ScanResult:
    """Read a dataset's native tree into a :class:`ScanResult` (sample table + problems).

    ``check_images`` checks that every image decodes and skips black frames (cheap; off only for
    quick counts, which then include unreadable and black images).
    ``pspi_threshold``: UNBC frames with PSPI above it are labelled pain.
    Raises :class:`NotADatasetError` when ``path`` is missing or is not that dataset at all.
    """
    if dataset not in DATASET_NAMES:
        raise PainLensError(f"Unknown dataset '{dataset}': choose one of {', '.join(DATASET_NAMES)}.")
    root = Path(path).expanduser()
    if not root.is_dir():
        raise NotADatasetError(
            f"There is no folder at the path given for {DATASET_TITLES[dataset]}: check the path and run again."
        )
    module = importlib.import_module(f"engine.datasets.{dataset}")
    kwargs = {"check_images": check_images, "workers": workers}
    if dataset == "unbc":
        kwargs["pspi_threshold"] = pspi_threshold
    return module.scan(root.resolve(), **kwargs)


# ------------------------------------------------------------------------------------------ reports


def report_dict(result: ScanResult, seconds: float | None = None) -> dict:
    """``result.summary()`` plus images per native level (and the scan time when given)."""
    out = result.summary()
    levels = result.table["intensity"].dropna()
    out["images_per_level"] = {_level_key(v): int(n) for v, n in levels.value_counts().sort_index().items()}
    if seconds is not None:
        out["seconds"] = round(seconds, 3)
    return out


def _level_key(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def render_scan(result: ScanResult, console, seconds: float | None = None) -> None:
    """Print what a scan found with rich: counts, images per label and level, then every problem."""
    from rich.table import Table
    from rich.text import Text

    info = report_dict(result, seconds)
    head = Table(title=f"{DATASET_TITLES.get(result.dataset, result.dataset)} scan", show_header=False)
    head.add_column(style="bold")
    head.add_column()
    head.add_row("layout", Text(info["layout"] or "-"))
    for key in ("subjects", "sequences", "images"):
        head.add_row(key, str(info[key]))
    for name in CLASS_NAMES:
        head.add_row(f"images labelled {name}", str(info["images_per_label"][name]))
    if info["images_per_level"]:
        head.add_row("images per native level", ", ".join(f"{k}: {v}" for k, v in info["images_per_level"].items()))
    if seconds is not None:
        head.add_row("scan time", f"{seconds:.2f} s")
    console.print(head)
    for note in info["notes"]:
        console.print(f"note: {note}", highlight=False, markup=False)
    if not info["problems"]:
        console.print("No problems found.")
        return
    problems = Table(title="Problems (each was reported and skipped or handled as said)")
    for column in ("kind", "count", "what happened", "examples"):
        problems.add_column(column, overflow="fold")
    for problem in info["problems"]:
        examples = Text("\n".join(problem["examples"]))  # Text: file names are not rich markup
        problems.add_row(problem["kind"], str(problem["count"]), Text(problem["message"]), examples)
    console.print(problems)


def timed_scan(path: str | os.PathLike, dataset: str, **kwargs) -> tuple[ScanResult, float]:
    """:func:`scan_dataset` and the seconds it took."""
    start = time.perf_counter()
    result = scan_dataset(path, dataset, **kwargs)
    return result, time.perf_counter() - start
