"""The face cache: one entry per (image content, preprocessing parameters, dataset landmarks).

Layout: ``<cache_dir>/<key[:2]>/<key>.png`` (the crop, only for faces) and ``<key>.json`` (what was
found). Both are written atomically, the PNG first and the JSON last with the PNG's SHA-256 inside,
so the JSON marks a complete entry. An entry whose JSON is missing, unparsable, of another format,
for another key, or whose PNG is missing or does not match its hash is treated as absent and
recomputed: nothing half-written or corrupted is ever trusted.

Statuses: ``ok`` (a face), ``no_face`` (none at the confidence asked), ``unreadable`` (not an image).
"""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from engine.files import write_bytes, write_json
from engine.errors import PainLensError
from engine.preprocess.detect import CropBox, FaceBox
from engine.preprocess.pipeline import FaceResult, NoFace

FORMAT = 1
STATUSES = ("ok", "no_face", "unreadable")


def landmarks_digest(points: np.ndarray | None, landmark_format: str) -> str:
    """Digest of a row's dataset landmarks ("" when it has none): they are stored in the entry, so they key it."""
    if points is None:
        return ""
    data = np.ascontiguousarray(points, dtype="<f8").tobytes() + landmark_format.encode()
    return hashlib.sha256(data).hexdigest()[:16]


def cache_key(image_sha256: str, params_tag: str, landmarks_tag: str = "") -> str:
    """The entry key: a hex digest of the image's content hash, the parameters' tag and the landmarks' digest."""
    return hashlib.sha256(f"{image_sha256}|{params_tag}|{landmarks_tag}".encode()).hexdigest()


def entry_paths(cache_dir: str | Path, key: str) -> tuple[Path, Path]:
    folder = Path(cache_dir) / key[:2]
    return folder / f"{key}.png", folder / f"{key}.json"


def write_entry(cache_dir: str | Path, key: str, result: FaceResult | NoFace | None, extra: dict[str, Any]) -> None:
    """Store one result (None: the file was not an image). ``extra`` is kept in the JSON as is."""
    png_path, json_path = entry_paths(cache_dir, key)
    meta: dict[str, Any] = {"format": FORMAT, "key": key, **extra}
    if isinstance(result, FaceResult):
        buffer = io.BytesIO()
        Image.fromarray(result.crop).save(buffer, format="PNG")
        png = buffer.getvalue()
        write_bytes(png_path, png)
        meta.update(_face_meta(result), status="ok", png_sha256=hashlib.sha256(png).hexdigest())
    elif isinstance(result, NoFace):
        meta.update(status="no_face", face_confidence=result.confidence)
    else:
        meta.update(status="unreadable")
    write_json(json_path, meta)


def _face_meta(result: FaceResult) -> dict[str, Any]:
    face = result.face
    return {
        "face_box": [face.x1, face.y1, face.x2, face.y2],
        "face_confidence": face.confidence,
        "crop_box": [result.crop_box.left, result.crop_box.top, result.crop_box.side],
        "crop_size": int(result.crop.shape[0]),
        "background_method": result.background_method,
        "landmarks": result.landmarks.tolist(),
        "dataset_landmarks": None if result.dataset_landmarks is None else result.dataset_landmarks.tolist(),
        "dataset_landmark_format": result.dataset_landmark_format,
    }


def read_meta(cache_dir: str | Path, key: str, check_png: bool = True) -> dict[str, Any] | None:
    """The entry's metadata when the entry is complete and intact, else None (recompute it)."""
    png_path, json_path = entry_paths(cache_dir, key)
    try:
        meta = json.loads(json_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT or meta.get("key") != key:
        return None
    if meta.get("status") not in STATUSES:
        return None
    if meta["status"] == "ok" and check_png:
        try:
            png = png_path.read_bytes()
        except OSError:
            return None
        if hashlib.sha256(png).hexdigest() != meta.get("png_sha256"):
            return None
    return meta


def read_crop(cache_dir: str | Path, key: str) -> np.ndarray:
    """The stored crop, (S, S, 3) uint8; a missing or damaged file is an error that says to rerun."""
    png_path, _ = entry_paths(cache_dir, key)
    try:
        with Image.open(png_path) as image:
            return np.asarray(image.convert("RGB"))
    except (OSError, ValueError):
        raise PainLensError(
            f"The face cache in {cache_dir} lacks or has a damaged crop for entry {key[:12]}; "
            "run `painlens preprocess` again to rebuild it."
        ) from None


def load_entry(cache_dir: str | Path, key: str) -> FaceResult | NoFace | None:
    """The entry as the objects ``preprocess_image`` returns (None: the file was not an image).

    Raises PainLensError when the entry is missing or damaged."""
    meta = read_meta(cache_dir, key)
    if meta is None:
        raise PainLensError(
            f"The face cache in {cache_dir} has no intact entry {key[:12]}; run `painlens preprocess` again to rebuild it."
        )
    if meta["status"] == "no_face":
        return NoFace(confidence=float(meta["face_confidence"]))
    if meta["status"] == "unreadable":
        return None
    dataset_points = meta["dataset_landmarks"]
    return FaceResult(
        crop=read_crop(cache_dir, key),
        face=FaceBox(*meta["face_box"], confidence=meta["face_confidence"]),
        crop_box=CropBox(*meta["crop_box"]),
        background_method=meta["background_method"],
        landmarks=np.asarray(meta["landmarks"], dtype=np.float64),
        dataset_landmarks=None if dataset_points is None else np.asarray(dataset_points, dtype=np.float64),
        dataset_landmark_format=meta["dataset_landmark_format"],
    )
