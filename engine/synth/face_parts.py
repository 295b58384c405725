"""The drawn parts of the face on the supersampled head patch: ears and skin, eyes, brows, nose, mouth, glasses.

Every function takes ``points``, the 68 landmarks in patch pixels, and ``unit``, the patch's pixels per face
unit; sizes below are in face units times ``unit``.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from engine.synth.identity import Identity
from engine.synth.projection import HeadPatch
from engine.synth.strokes import as_tuples, polyline, smooth_closed, smooth_open, tone

_EYES = ((36, 37, 38, 39, 40, 41), (42, 43, 44, 45, 46, 47))


def draw_ears_and_skin(draw: ImageDraw.ImageDraw, identity: Identity, patch: HeadPatch, outline_px: np.ndarray) -> None:
    """Two ears behind the head, then the head's skin inside ``outline_px`` (patch pixels)."""
    unit = patch.unit_px
    for side in (-1, 1):
        centre = patch.from_face(np.array([[side * identity.face_width * 1.0, 0.28, 0.1]]))[0]
        radius_x, radius_y = 0.15 * unit * identity.ear_size, 0.3 * unit * identity.ear_size
        draw.ellipse((centre[0] - radius_x, centre[1] - radius_y, centre[0] + radius_x, centre[1] + radius_y), fill=tone(identity.skin, 0.9))
    draw.polygon(as_tuples(outline_px), fill=tone(identity.skin, 1.0))


def draw_eyes(draw: ImageDraw.ImageDraw, layer: Image.Image, identity: Identity, points: np.ndarray, unit: float) -> None:
    """Sclera, iris and pupil inside the lids (when open), then the lash line and the lower lid."""
    lash = (*(int(0.35 * channel + 10) for channel in identity.hair_colour[:3]), 255)
    for indices in _EYES:
        eye = points[list(indices)]
        opening = np.mean(eye[[4, 5], 1]) - np.mean(eye[[1, 2], 1])
        outline = smooth_closed(eye, 5)
        if opening > 0.012 * unit:
            draw.polygon(as_tuples(outline), fill=(226, 222, 214, 255))
            _draw_iris(layer, identity, eye.mean(axis=0), outline, unit)
        upper_lid = smooth_open(eye[[0, 1, 2, 3]], 5)
        lower_lid = smooth_open(eye[[3, 4, 5, 0]], 5)
        polyline(draw, upper_lid, lash, int(0.045 * unit))
        polyline(draw, lower_lid, tone(identity.skin, 0.55), int(0.015 * unit))


def _draw_iris(layer: Image.Image, identity: Identity, centre: np.ndarray, opening: np.ndarray, unit: float) -> None:
    """Iris, pupil and a catch light, clipped to the eye ``opening``: drawn on a small local image with it as alpha."""
    radius = 0.085 * unit * identity.eye_size
    x0, y0 = int(opening[:, 0].min()) - 1, int(opening[:, 1].min()) - 1
    x1, y1 = int(opening[:, 0].max()) + 2, int(opening[:, 1].max()) + 2
    corner = np.array([x0, y0])
    mask = Image.new("L", (x1 - x0, y1 - y0), 0)
    ImageDraw.Draw(mask).polygon(as_tuples(opening - corner), fill=255)
    iris = Image.new("RGBA", mask.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(iris)
    x, y = centre - corner
    draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=(*identity.iris, 255))
    draw.ellipse((x - radius * 0.45, y - radius * 0.45, x + radius * 0.45, y + radius * 0.45), fill=(12, 10, 10, 255))
    draw.ellipse((x - radius * 0.5, y - radius * 0.7, x - radius * 0.2, y - radius * 0.4), fill=(240, 240, 240, 255))
    alpha = Image.fromarray(np.minimum(np.asarray(iris)[..., 3], np.asarray(mask)))
    iris.putalpha(alpha)
    layer.alpha_composite(iris, dest=(x0, y0))


def draw_brows(draw: ImageDraw.ImageDraw, identity: Identity, points: np.ndarray, unit: float) -> None:
    """Each brow as a band along its five points, thicker at the inner end."""
    colour = (*(int(0.55 * channel + 8) for channel in identity.hair_colour[:3]), 255)  # darker than grey or fair hair
    for indices in (range(17, 22), range(22, 27)):
        brow = smooth_open(points[list(indices)], 5)
        count = len(brow)
        normals = np.gradient(brow, axis=0)[:, ::-1] * [1, -1]
        normals /= np.linalg.norm(normals, axis=1, keepdims=True) + 1e-6
        towards_inner = np.arange(count) / (count - 1) if indices[0] == 17 else 1 - np.arange(count) / (count - 1)
        thickness = identity.brow_thickness * unit * (0.55 + 0.45 * towards_inner)
        upper = brow + normals * thickness[:, None] / 2
        lower = brow - normals * thickness[:, None] / 2
        draw.polygon(as_tuples(np.concatenate([upper, lower[::-1]])), fill=colour)


def draw_nose(draw: ImageDraw.ImageDraw, identity: Identity, points: np.ndarray, unit: float) -> None:
    """Nostrils and the creases of the nose wings (the bridge is shading, see ``engine.synth.shading``)."""
    dark = tone(identity.skin, 0.35)
    for k in (32, 34):
        nostril = points[k]
        radius_x, radius_y = 0.045 * unit * identity.nose_width, 0.025 * unit
        draw.ellipse((nostril[0] - radius_x, nostril[1] - radius_y, nostril[0] + radius_x, nostril[1] + radius_y), fill=dark)
    wing = tone(identity.skin, 0.7)
    polyline(draw, smooth_open(points[[31, 32]] + [[-0.03 * unit, -0.05 * unit], [0, 0]], 4), wing, int(0.02 * unit))
    polyline(draw, smooth_open(points[[35, 34]] + [[0.03 * unit, -0.05 * unit], [0, 0]], 4), wing, int(0.02 * unit))


def draw_mouth(draw: ImageDraw.ImageDraw, identity: Identity, points: np.ndarray, unit: float, teeth_shown: float) -> None:
    """Lips, the dark opening and the teeth when the mouth is open, and the line between the lips.

    ``teeth_shown`` (0-1, the ``teeth`` strength of ``engine.synth.landmarks``): teeth are drawn above 0.2.
    """
    outer = smooth_closed(points[48:60], 4)
    draw.polygon(as_tuples(outer), fill=(*identity.lip_colour, 255))
    inner = points[60:68]
    opening = np.mean(inner[[5, 6, 7], 1] - inner[[3, 2, 1], 1])
    if opening > 0.01 * unit:
        draw.polygon(as_tuples(smooth_closed(inner, 4)), fill=(45, 18, 20, 255))
        if teeth_shown > 0.2:
            top = inner[[0, 1, 2, 3, 4]]
            teeth = np.concatenate([top, top[::-1] + [0, min(opening * 0.45, 0.06 * unit)]])
            draw.polygon(as_tuples(teeth), fill=(196, 190, 174, 255))
    polyline(draw, smooth_open(points[[60, 61, 62, 63, 64]], 4), (60, 25, 28, 255), int(0.022 * unit))
    # Upper lip darker than lower: a shadow band.
    upper = np.concatenate([points[48:55], points[[64, 63, 62, 61, 60]]])
    draw.polygon(as_tuples(smooth_closed(upper, 3)), fill=tone(identity.lip_colour, 0.82))


def draw_glasses(draw: ImageDraw.ImageDraw, identity: Identity, points: np.ndarray, unit: float) -> None:
    """Two rounded rectangular frames and a bridge."""
    colour = (*identity.glasses_colour, 255)
    width = max(2, int(0.03 * unit))
    lenses = []
    for indices in _EYES:
        centre = points[list(indices)].mean(axis=0) + [0, 0.01 * unit]
        radius_x, radius_y = 0.26 * unit * identity.eye_size, 0.17 * unit
        draw.rounded_rectangle((centre[0] - radius_x, centre[1] - radius_y, centre[0] + radius_x, centre[1] + radius_y),
                               radius=int(0.08 * unit), outline=colour, width=width)
        lenses.append((centre, radius_x))
    (left, left_radius), (right, right_radius) = lenses
    draw.line((left[0] + left_radius, left[1] - 0.05 * unit, right[0] - right_radius, right[1] - 0.05 * unit), fill=colour, width=width)
