"""Cluttered indoor-like backgrounds, so that a face detector has to find the face among other shapes."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFilter


def render_background(canvas_size: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """A cluttered indoor-like scene (wall gradient, furniture-like boxes, shapes, lines), (H, W, 3) uint8.

    ``canvas_size`` is (width, height).
    """
    width, height = canvas_size
    base = rng.integers(60, 220, 3).astype(np.float32)
    tint = rng.uniform(-40, 40, 3).astype(np.float32)
    ramp = np.linspace(0, 1, height, dtype=np.float32)[:, None, None]
    img = np.broadcast_to(base + ramp * tint, (height, width, 3)).copy()
    pil = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(pil)
    for _ in range(int(rng.integers(8, 18))):
        _draw_clutter(draw, rng, width, height)
    pil = pil.filter(ImageFilter.GaussianBlur(1.2))
    out = np.asarray(pil, dtype=np.float32)
    out += rng.normal(0, 5, (height // 4 + 1, width // 4 + 1, 1)).repeat(4, 0).repeat(4, 1)[:height, :width]
    return np.clip(out, 0, 255).astype(np.uint8)


def _draw_clutter(draw: ImageDraw.ImageDraw, rng: np.random.Generator, width: int, height: int) -> None:
    """One random box, ellipse, line or polygon."""
    kind = rng.random()
    colour = tuple(int(channel) for channel in rng.integers(0, 256, 3))
    x0, y0 = rng.uniform(-0.1, 1.0) * width, rng.uniform(-0.1, 1.0) * height
    x1, y1 = x0 + rng.uniform(0.05, 0.45) * width, y0 + rng.uniform(0.05, 0.5) * height
    if kind < 0.45:
        draw.rectangle((x0, y0, x1, y1), fill=colour)
    elif kind < 0.6:
        draw.ellipse((x0, y0, x1, y1), fill=colour)
    elif kind < 0.85:
        draw.line((x0, y0, x1, y1 + rng.uniform(-0.3, 0.3) * height), fill=colour, width=int(rng.integers(2, 9)))
    else:
        corners = int(rng.integers(3, 7))
        draw.polygon([(x0 + rng.uniform(0, 0.3) * width, y0 + rng.uniform(0, 0.3) * height) for _ in range(corners)], fill=colour)
