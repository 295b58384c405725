"""How the generator writes: image encoders, the datasets' number format, JSON and CSV, label tallies."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
from PIL import Image

JPEG_QUALITY = 90


def save_png(image: np.ndarray, path: Path) -> None:
    Image.fromarray(image).save(path, format="PNG", compress_level=6)


def save_jpeg(image: np.ndarray, path: Path) -> None:
    Image.fromarray(image).save(path, format="JPEG", quality=JPEG_QUALITY, subsampling=2, optimize=False)


def scientific(value: float) -> str:
    """UNBC's text files hold numbers like ``3.0000000e+00``."""
    return f"{value:.7e}"


def write_json(path: Path, data: dict) -> None:
    """Indented, sorted keys, written to a temporary name and renamed."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    tmp.replace(path)


def write_csv(path: Path, columns: list[str], rows: list[dict]) -> None:
    """A CSV with a header row and Unix line ends."""
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def label_counts(subject_results: list[dict]) -> dict[str, int]:
    """Images per binary label over the subjects' results (each has ``no_pain`` and ``pain`` counts)."""
    return {"no_pain": sum(result["no_pain"] for result in subject_results), "pain": sum(result["pain"] for result in subject_results)}
