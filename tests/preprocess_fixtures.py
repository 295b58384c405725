"""Synthetic images for the face-preprocessing tests (a helper module, not a test file).

``tiny_table`` runs the project's synthetic generator at its ``tiny`` size and reads a few images back
through the dataset adapters, as a real run would: UNBC frames carry their AAM landmarks in image
pixels, Delaware and MIntPAIN photos carry none. A blank image (no face) and a broken file are added.
``write_faces`` renders a few faces directly with the generator's face renderer, for tests that need
only faces and no dataset layout.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from engine.datasets.scan import scan_dataset
from engine.synth import Pose, generate, random_identity, render_face


def tiny_table(folder: Path, unbc_frames: int = 3, seed: int = 0, synthetic: Path | None = None) -> pd.DataFrame:
    """A small sample table from the generator's tiny data plus a blank image and a broken file (in ``folder``).
    ``synthetic``: that data, already generated with ``seed`` (the session's ``synthetic_tiny``); else it is
    generated into ``folder``."""
    if synthetic is None:
        synthetic = folder / "synthetic"
        generate(synthetic, seed, "tiny")
    unbc = scan_dataset(synthetic / "unbc", "unbc", check_images=True).table  # skips black frames
    unbc = unbc[unbc["landmark_format"] == "aam66"]
    picks = np.linspace(0, len(unbc) - 1, unbc_frames).round().astype(int)  # spread over subjects
    parts = [unbc.iloc[picks]]
    for name in ("delaware", "mintpain"):
        parts.append(scan_dataset(synthetic / name, name, check_images=True).table.iloc[:1])
    table = pd.concat(parts, ignore_index=True)[["image_id", "dataset", "path", "landmarks", "landmark_format"]]
    return pd.concat([table, _no_face_rows(folder)], ignore_index=True)


def _no_face_rows(folder: Path) -> pd.DataFrame:
    blank = folder / "blank.png"
    Image.fromarray(np.full((240, 320, 3), 200, dtype=np.uint8)).save(blank)
    broken = folder / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    return pd.DataFrame(
        [
            {"image_id": "test/blank", "dataset": "test", "path": str(blank), "landmarks": None, "landmark_format": ""},
            {"image_id": "test/broken", "dataset": "test", "path": str(broken), "landmarks": None, "landmark_format": ""},
        ]
    )


def write_faces(folder: Path, n: int, seed: int = 0) -> list[tuple[Path, np.ndarray]]:
    """``n`` synthetic frontal faces (224x224 PNG): (path, (68, 2) true landmarks in image pixels)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        face = render_face(random_identity(rng), {"AU4": float(i % 3)}, Pose(scale=0.19), (224, 224), rng)
        path = folder / f"face{i}.png"
        Image.fromarray(face.image).save(path)
        out.append((path, face.landmarks.astype(np.float64)))
    return out


def faces_table(folder: Path, n: int, seed: int = 0) -> pd.DataFrame:
    """A sample table of ``write_faces`` faces, their true landmarks in dlib's 68-point order."""
    rows = [
        {"image_id": f"faces/{path.stem}", "path": str(path), "landmarks": points.ravel().tolist(), "landmark_format": "dlib68"}
        for path, points in write_faces(folder, n, seed)
    ]
    return pd.DataFrame(rows)
