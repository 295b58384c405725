"""Skin shading of the drawn head: rounded-head lighting, eye sockets, nose shadows, folds and wrinkles.

Action units show here as much as in the geometry: AU4 furrows, AU9 nose wrinkles, AU6 crow's feet and
raised cheeks, AU10 deeper nasolabial folds, AU7/AU43 darker squeezed sockets (strengths from
``engine.synth.landmarks``). The shading is smooth, so it is computed at the output resolution (half the
supersampled patch) and enlarged: 4x less work.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from engine.synth.identity import Identity
from engine.synth.projection import SUPERSAMPLE
from engine.synth.strokes import as_tuples, line_width, mottle, smooth_open

_LOW = 1 / SUPERSAMPLE  # shading resolution relative to the patch
_EYES_AND_BROWS = ((range(36, 42), range(17, 22)), (range(42, 48), range(22, 27)))


def random_light(rng: np.random.Generator) -> tuple[float, float]:
    """The (x, y) direction of the key light: from either side, always from above."""
    return (float(rng.uniform(-0.6, 0.6)), float(rng.uniform(-0.7, -0.2)))


def shade_head(layer: Image.Image, identity: Identity, landmarks_px: np.ndarray, outline_px: np.ndarray,
               strengths: dict[str, float], unit_px: float, light: tuple[float, float]) -> None:
    """Darken and lighten the skin of the RGBA ``layer`` in place.

    ``landmarks_px`` (68, 2) and ``outline_px`` (head outline) are in the layer's pixels, ``unit_px`` its
    pixels per face unit. Only the head's bounding box is read, shaded and pasted back.
    """
    ellipse = _head_ellipse(outline_px)
    x0, y0, x1, y1 = _shading_box(layer.size, ellipse)
    crop = np.asarray(layer.crop((x0, y0, x1, y1)), dtype=np.float32)
    low_size = (max(1, round((x1 - x0) * _LOW)), max(1, round((y1 - y0) * _LOW)))
    origin = np.array([x0, y0], dtype=np.float64)
    low_landmarks = (landmarks_px - origin) * _LOW
    low_unit = unit_px * _LOW
    shade = _lambert_shade((x0, y0), low_size, ellipse, light)
    shadows = np.maximum(_as_weights(_socket_shadows(low_landmarks, low_unit, strengths, low_size)),
                         _as_weights(_crease_shadows(low_landmarks, low_unit, strengths, low_size, light)))
    highlights = _as_weights(_highlights(low_landmarks, low_unit, strengths, low_size, light))
    wrinkles = _as_weights(_wrinkles(low_landmarks, low_unit, strengths, low_size))
    texture = mottle(identity.texture_seed, low_size[::-1])[..., None]
    factor = shade[..., None] * texture * (1 - 0.5 * shadows) * (1 + 0.18 * highlights) * (1 - 0.45 * wrinkles)
    if identity.beard > 0:
        factor = factor * (1 - 0.18 * _as_weights(_stubble(low_landmarks, low_unit, identity.beard, low_size)))
    head = Image.new("L", low_size, 0)
    ImageDraw.Draw(head).polygon(as_tuples((outline_px - origin) * _LOW), fill=255)
    factor = 1 + _as_weights(head) * (factor - 1)  # only the skin inside the outline changes
    big = Image.fromarray(np.ascontiguousarray(factor[..., 0], dtype=np.float32), "F").resize((x1 - x0, y1 - y0), Image.BILINEAR)
    region = crop[..., :3]
    region *= np.asarray(big, dtype=np.float32)[..., None]
    crop[..., :3] = np.clip(region, 0, 255)
    layer.paste(Image.fromarray(crop.astype(np.uint8), "RGBA"), (x0, y0))


def _as_weights(mask: Image.Image) -> np.ndarray:
    """A grey mask as (h, w, 1) float32 weights in [0, 1]."""
    return np.asarray(mask, dtype=np.float32)[..., None] / 255


def _head_ellipse(outline_px: np.ndarray) -> tuple:
    """Centre (x, y) and radii (x, y) of the ellipsoid the head is lit as."""
    centre_x, centre_y = outline_px[:, 0].mean(), (outline_px[:, 1].min() + outline_px[:, 1].max()) / 2
    radius_x = (outline_px[:, 0].max() - outline_px[:, 0].min()) / 2 * 1.05
    radius_y = (outline_px[:, 1].max() - outline_px[:, 1].min()) / 2 * 1.05
    return centre_x, centre_y, radius_x, radius_y


def _shading_box(layer_size: tuple[int, int], ellipse: tuple) -> tuple[int, int, int, int]:
    """x0, y0, x1, y1 of the part of the layer the shading covers (the ellipse, more below for the chin)."""
    width, height = layer_size
    centre_x, centre_y, radius_x, radius_y = ellipse
    x0, x1 = int(max(0, centre_x - radius_x * 1.3)), int(min(width, centre_x + radius_x * 1.3))
    y0, y1 = int(max(0, centre_y - radius_y * 1.2)), int(min(height, centre_y + radius_y * 1.7))
    return x0, y0, x1, y1


def _lambert_shade(origin: tuple[int, int], low_size: tuple[int, int], ellipse: tuple, light: tuple[float, float]) -> np.ndarray:
    """Diffuse lighting of the head ellipsoid, (h, w) at shading resolution, from 0.5 (turned away) to 1.05."""
    x0, y0 = origin
    low_width, low_height = low_size
    centre_x, centre_y, radius_x, radius_y = ellipse
    yy, xx = np.mgrid[0:low_height, 0:low_width].astype(np.float32)
    yy, xx = y0 + (yy + 0.5) / _LOW, x0 + (xx + 0.5) / _LOW
    normal_x = (xx - centre_x) / radius_x
    normal_y = (yy - centre_y) / radius_y
    normal_z = np.sqrt(np.clip(1 - normal_x**2 - normal_y**2, 0.02, 1))
    light_x, light_y = light
    light_z = math.sqrt(max(0.05, 1 - light_x * light_x - light_y * light_y))
    lambert = np.clip(normal_x * light_x + normal_y * light_y + normal_z * light_z, 0, 1)
    return 0.5 + 0.55 * lambert


def _socket_shadows(points: np.ndarray, unit: float, strengths: dict[str, float], size: tuple[int, int]) -> Image.Image:
    """Broad, soft shadows: eye sockets (darker when squeezed), under the brows, below the lower lip."""
    mask = Image.new("L", size, 0)
    draw = ImageDraw.Draw(mask)
    for eye, brow in _EYES_AND_BROWS:
        eye_points, brow_points = points[list(eye)], points[list(brow)]
        left = min(eye_points[:, 0].min(), brow_points[:, 0].min())
        right = max(eye_points[:, 0].max(), brow_points[:, 0].max())
        top, bottom = brow_points[:, 1].mean(), eye_points[:, 1].max() + 0.1 * unit
        draw.ellipse((left - 0.02 * unit, top, right + 0.02 * unit, bottom), fill=int(min(255, 130 + 300 * strengths["squeeze"])))
        draw.line(as_tuples(brow_points + [0, 0.06 * unit]), fill=90, width=line_width(0.07 * unit))
    draw.ellipse((points[58, 0], points[57, 1], points[56, 0], points[57, 1] + 0.14 * unit), fill=80)
    return mask.filter(ImageFilter.GaussianBlur(0.07 * unit))


def _nose_shadow_side(light: tuple[float, float]) -> int:
    """The nose shadow falls away from the light: +1 to the image right, -1 to the left."""
    return 1 if light[0] < 0 else -1


def _crease_shadows(points: np.ndarray, unit: float, strengths: dict[str, float], size: tuple[int, int],
                    light: tuple[float, float]) -> Image.Image:
    """Narrow shadows: eyelid creases, the sides of the nose, nostrils, nose wings, nasolabial folds."""
    mask = Image.new("L", size, 0)
    draw = ImageDraw.Draw(mask)
    for eye, _ in _EYES_AND_BROWS:
        crease = points[list(eye)][[0, 1, 2, 3]] - [0, 0.035 * unit]
        draw.line(as_tuples(smooth_open(crease, 4)), fill=170, width=line_width(0.03 * unit))
    side = _nose_shadow_side(light)
    bridge = points[27:31]
    draw.line(as_tuples(bridge + [side * 0.075 * unit, 0]), fill=150, width=line_width(0.06 * unit))
    draw.line(as_tuples(bridge[1:] - [side * 0.075 * unit, 0]), fill=70, width=line_width(0.04 * unit))
    draw.ellipse((points[31, 0] - 0.04 * unit, points[33, 1] - 0.01 * unit, points[35, 0] + 0.04 * unit, points[33, 1] + 0.07 * unit),
                 fill=170)
    for wing in (31, 35):  # the nose wings cast a shadow on the cheek
        draw.ellipse((points[wing, 0] - 0.05 * unit, points[wing, 1] - 0.1 * unit, points[wing, 0] + 0.05 * unit,
                      points[wing, 1] + 0.03 * unit), fill=160)
    for wing, corner, outward, key in ((31, 48, -1, "nasolabial_left"), (35, 54, 1, "nasolabial_right")):
        start = points[wing] + [outward * 0.06 * unit, 0]
        end = points[corner] + [outward * 0.06 * unit, 0.02 * unit]
        middle = (start + end) / 2 + [outward * 0.06 * unit, 0]
        draw.line(as_tuples(smooth_open(np.array([start, middle, end]), 4)), fill=int(min(255, 600 * strengths[key])),
                  width=line_width(0.035 * unit))
    return mask.filter(ImageFilter.GaussianBlur(0.022 * unit))


def _highlights(points: np.ndarray, unit: float, strengths: dict[str, float], size: tuple[int, int],
                light: tuple[float, float]) -> Image.Image:
    """The lit side of the nose bridge, the cheeks (higher and brighter when raised) and the forehead."""
    mask = Image.new("L", size, 0)
    draw = ImageDraw.Draw(mask)
    bridge = points[27:31]
    draw.line(as_tuples(bridge[1:] - [_nose_shadow_side(light) * 0.02 * unit, 0]), fill=120, width=line_width(0.05 * unit))
    for cheek in (points[[1, 2, 31, 40]].mean(0), points[[15, 14, 35, 47]].mean(0)):
        cheek_y = cheek[1] - strengths["cheek_raise"] * unit
        draw.ellipse((cheek[0] - 0.18 * unit, cheek_y - 0.1 * unit, cheek[0] + 0.18 * unit, cheek_y + 0.1 * unit),
                     fill=60 + int(400 * strengths["cheek_raise"]))
    root = points[27]
    draw.ellipse((root[0] - 0.35 * unit, root[1] - 0.9 * unit, root[0] + 0.35 * unit, root[1] - 0.45 * unit), fill=50)
    return mask.filter(ImageFilter.GaussianBlur(0.08 * unit))


def _wrinkles(points: np.ndarray, unit: float, strengths: dict[str, float], size: tuple[int, int]) -> Image.Image:
    """Crisp lines: vertical furrows between the brows (AU4), across the nose root (AU9), crow's feet (AU6)."""
    mask = Image.new("L", size, 0)
    draw = ImageDraw.Draw(mask)
    width = line_width(0.025 * unit)
    if strengths["furrow"] > 0.01:
        for dx in (-0.05, 0.05):
            x = (points[21, 0] + points[22, 0]) / 2 + dx * unit
            y = (points[21, 1] + points[22, 1]) / 2
            draw.line((x, y - 0.14 * unit, x + dx * 0.4 * unit, y + 0.06 * unit), fill=int(min(255, 500 * strengths["furrow"])), width=width)
    if strengths["nose_wrinkle"] > 0.01:
        for k in range(3):
            y = points[27, 1] + (0.06 + 0.07 * k) * unit
            draw.line((points[27, 0] - 0.09 * unit, y, points[27, 0] + 0.09 * unit, y - 0.01 * unit),
                      fill=int(min(255, 500 * strengths["nose_wrinkle"])), width=width)
    for corner, key, outward in ((36, "crows_left", -1), (45, "crows_right", 1)):
        if strengths[key] > 0.01:
            for dy in (-0.05, 0.0, 0.05):
                eye_corner = points[corner]
                draw.line((eye_corner[0] + outward * 0.05 * unit, eye_corner[1] + dy * unit, eye_corner[0] + outward * 0.15 * unit,
                           eye_corner[1] + dy * 1.8 * unit), fill=int(min(255, 500 * strengths[key])), width=width)
    return mask


def _stubble(points: np.ndarray, unit: float, darkness: float, size: tuple[int, int]) -> Image.Image:
    """The beard area (jaw to below the lips), as dark as ``darkness`` (0-1), blurred."""
    mask = Image.new("L", size, 0)
    chin_band = np.concatenate([points[3:14], points[[54, 55, 56, 57, 58, 59, 48]] + [0, 0.05 * unit]])
    ImageDraw.Draw(mask).polygon(as_tuples(chin_band), fill=int(255 * darkness))
    return mask.filter(ImageFilter.GaussianBlur(0.1 * unit))
