"""Drawing primitives shared by the face parts: colour tones, smooth curves, line widths, skin texture."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw


def tone(colour, factor: float, alpha: int = 255) -> tuple[int, int, int, int]:
    """``colour`` (RGB) times ``factor``, clipped, as RGBA."""
    return (*(int(np.clip(channel * factor, 0, 255)) for channel in colour), alpha)


def mottle(seed: int, shape: tuple[int, int]) -> np.ndarray:
    """Identity-stable low-frequency skin variation, resized to ``shape`` (h, w); values around 1."""
    grid = np.random.default_rng(seed).normal(0, 1, (12, 12)).astype(np.float32)
    img = Image.fromarray(((grid * 0.5 + 2) * 50).clip(0, 255).astype(np.uint8)).resize(shape[::-1], Image.BILINEAR)
    return 1 + (np.asarray(img, dtype=np.float32) / 50 - 2) * 0.06


def polyline(draw: ImageDraw.ImageDraw, points: np.ndarray, fill, width: int) -> None:
    draw.line([tuple(point) for point in points], fill=fill, width=max(1, width), joint="curve")


def _catmull_rom(p0: np.ndarray, p1: np.ndarray, p2: np.ndarray, p3: np.ndarray, per_segment: int) -> np.ndarray:
    """``per_segment`` points per segment of the Catmull-Rom spline through p1 -> p2 (arrays (m, 2)); (m * n, 2)."""
    t = np.linspace(0, 1, per_segment, endpoint=False)[None, :, None]
    t2, t3 = t * t, t * t * t
    p0, p1, p2, p3 = (control[:, None, :] for control in (p0, p1, p2, p3))
    out = 0.5 * (2 * p1 + (p2 - p0) * t + (2 * p0 - 5 * p1 + 4 * p2 - p3) * t2 + (3 * p1 - p0 - 3 * p2 + p3) * t3)
    return out.reshape(-1, 2)


def smooth_closed(points: np.ndarray, per_segment: int = 6) -> np.ndarray:
    """Catmull-Rom through a closed polygon: smoother outlines for lips and eyes."""
    points = np.asarray(points, dtype=np.float64)
    return _catmull_rom(np.roll(points, 1, 0), points, np.roll(points, -1, 0), np.roll(points, -2, 0), per_segment)


def smooth_open(points: np.ndarray, per_segment: int = 6) -> np.ndarray:
    """Catmull-Rom through an open polyline, ending on its last point."""
    points = np.asarray(points, dtype=np.float64)
    extended = np.concatenate([points[:1], points, points[-1:]])
    curve = _catmull_rom(extended[:-3], extended[1:-2], extended[2:-1], extended[3:], per_segment)
    return np.concatenate([curve, points[-1:]])


def line_width(width: float) -> int:
    """A line width in whole pixels, at least 1."""
    return max(1, int(round(width)))


def as_tuples(points: np.ndarray) -> list[tuple[float, float]]:
    """(n, 2) points as the list of tuples PIL draws."""
    return [(float(x), float(y)) for x, y in points]
