"""Pure image composition for heatmaps and explanations: NumPy arrays in, uint8 RGB arrays / PNG bytes out.

Colour maps are colour-vision-deficiency safe: viridis for weights and heatmaps in [0, 1], and a
blue-white-orange map for signed differences in [-1, 1] (blue: PAIN-DB drew more weight, orange:
CP-PAIN did). Matplotlib's colour tables are used as lookup tables only.
"""

from __future__ import annotations

import io
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw, ImageFont


@lru_cache(maxsize=4)
def _lut(name: str) -> np.ndarray:
    """(256, 3) uint8 lookup table of a matplotlib colour map."""
    from matplotlib import colormaps

    return (colormaps[name](np.linspace(0, 1, 256))[:, :3] * 255).round().astype(np.uint8)


def colourize(values: np.ndarray, cmap: str = "viridis", low: float = 0.0, high: float = 1.0) -> np.ndarray:
    """(H, W) floats -> (H, W, 3) uint8 through ``cmap``; NaN becomes light grey."""
    values = np.asarray(values, dtype=np.float64)
    scaled = np.clip((values - low) / (high - low if high > low else 1.0), 0, 1)
    index = np.nan_to_num(scaled * 255, nan=0).round().astype(np.uint8)
    out = _lut(cmap)[index]
    out[~np.isfinite(values)] = 230
    return out


def difference_image(diff: np.ndarray) -> np.ndarray:
    """(H, W) values in [-1, 1] -> RGB; blue negative, white zero, orange positive (PuOr reversed)."""
    return colourize(diff, "PuOr_r", -1.0, 1.0)


def overlay(face: np.ndarray, heat: np.ndarray, opacity: float, cmap: str = "viridis") -> np.ndarray:
    """The face (H, W, 3) uint8 with a [0, 1] heatmap (h, w) blended on top at ``opacity`` in [0, 1]."""
    face = np.asarray(face, dtype=np.uint8)
    heat = resize(np.nan_to_num(np.asarray(heat, dtype=np.float32)), face.shape[0])
    colour = colourize(heat, cmap).astype(np.float32)
    blended = (1 - opacity) * face.astype(np.float32) + opacity * colour
    return np.clip(blended, 0, 255).round().astype(np.uint8)


def resize(image: np.ndarray, side: int, nearest: bool = False) -> np.ndarray:
    """Square-resize an (h, w) float or (h, w, 3) uint8 image to (side, side)."""
    if image.shape[0] == side and image.shape[1] == side:
        return image
    resample = Image.Resampling.NEAREST if nearest else Image.Resampling.BILINEAR
    if image.dtype == np.uint8:
        return np.asarray(Image.fromarray(image).resize((side, side), resample))
    return np.asarray(Image.fromarray(image.astype(np.float32), mode="F").resize((side, side), resample))


def lime_mask(weights: np.ndarray, segments: np.ndarray) -> np.ndarray:
    """(S, S) float32 in [0, 1]: positive LIME weights painted on their superpixels, scaled to the max."""
    mask = np.maximum(np.asarray(weights, dtype=np.float32), 0)[segments]
    top = float(mask.max())
    return mask / top if top > 0 else mask


def scale_bar(height: int, cmap: str = "viridis", low: str = "low", high: str = "high", width: int = 360) -> np.ndarray:
    """A horizontal colour bar with end labels, (height, width, 3) uint8, for exported figure grids."""
    bar = colourize(np.tile(np.linspace(0, 1, width), (height // 2, 1)), cmap)
    canvas = Image.new("RGB", (width, height), "white")
    canvas.paste(Image.fromarray(bar), (0, 0))
    draw = ImageDraw.Draw(canvas)
    font = _font(max(12, height // 3))
    draw.text((2, height // 2 + 1), low, fill="black", font=font)
    draw.text((width - 2, height // 2 + 1), high, fill="black", font=font, anchor="ra")
    return np.asarray(canvas)


def labelled_grid(tiles: list[np.ndarray], labels: list[str], columns: int, tile: int = 192, title: str = "") -> np.ndarray:
    """Tiles (RGB uint8) resized to ``tile`` px in a grid, each with its label above, under a title that
    wraps onto as many lines as the grid's width needs."""
    rows = max(1, -(-len(tiles) // columns))
    font, title_font = _font(max(13, tile // 13)), _font(max(16, tile // 10))
    pad, label_h = 8, tile // 8
    width = max(columns * (tile + pad) + pad, 480)
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    lines = _wrap(title, title_font, width - 2 * pad, measure) if title else []
    line_h = int(title_font.size * 1.3) if lines else 0
    title_h = line_h * len(lines) + (pad if lines else 0)
    height = title_h + rows * (tile + label_h + pad) + pad
    canvas = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(canvas)
    for i, line in enumerate(lines):
        draw.text((pad, pad // 2 + i * line_h), line, fill="black", font=title_font)
    for i, (image, label) in enumerate(zip(tiles, labels)):
        r, c = divmod(i, columns)
        x = pad + c * (tile + pad)
        y = title_h + pad + r * (tile + label_h + pad)
        draw.text((x, y), _fit(label, font, tile, measure), fill="black", font=font)
        canvas.paste(Image.fromarray(resize(np.asarray(image, dtype=np.uint8), tile)), (x, y + label_h))
    return np.asarray(canvas)


def _wrap(text: str, font, width: int, draw: ImageDraw.ImageDraw) -> list[str]:
    lines, current = [], ""
    for word in text.split(" "):
        candidate = f"{current} {word}".strip()
        if current and draw.textlength(candidate, font=font) > width:
            lines.append(current)
            current = word
        else:
            current = candidate
    return lines + ([current] if current else [])


def _fit(text: str, font, width: int, draw: ImageDraw.ImageDraw) -> str:
    """``text`` shortened with an ellipsis until it fits ``width`` px."""
    while text and draw.textlength(text, font=font) > width:
        text = text[:-2] + "…" if len(text) > 2 else ""
    return text


def landmarks_image(face: np.ndarray, points: np.ndarray, radius: int = 2) -> np.ndarray:
    """The face with its (68, 2) landmarks drawn as orange dots with a dark edge (visible on any skin)."""
    image = Image.fromarray(np.asarray(face, dtype=np.uint8)).copy()
    draw = ImageDraw.Draw(image)
    r = max(radius, face.shape[0] // 110)
    for x, y in np.asarray(points, dtype=float):
        draw.ellipse((x - r, y - r, x + r, y + r), fill="#E69F00", outline="#000000")
    return np.asarray(image)


def box_image(rgb: np.ndarray, boxes: list[tuple[float, float, float, float]], chosen: int = 0) -> np.ndarray:
    """The photo with face boxes: the chosen one thick orange, the others thin blue."""
    image = Image.fromarray(np.asarray(rgb, dtype=np.uint8)).copy()
    draw = ImageDraw.Draw(image)
    width = max(2, max(image.size) // 200)
    for i, (x1, y1, x2, y2) in enumerate(boxes):
        draw.rectangle((x1, y1, x2, y2), outline="#E69F00" if i == chosen else "#56B4E9",
                       width=width * 2 if i == chosen else width)
    return np.asarray(image)


def png_bytes(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.asarray(image, dtype=np.uint8)).save(buffer, format="PNG", optimize=False)
    return buffer.getvalue()


@lru_cache(maxsize=8)
def _font(size: int):
    try:
        return ImageFont.truetype("DejaVuSans.ttf", size)
    except OSError:
        return ImageFont.load_default(size)
