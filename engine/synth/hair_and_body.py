"""Hair (front, on the head patch; long hair behind, on the scene), neck, torso and collar."""

from __future__ import annotations

import math

import numpy as np
from PIL import ImageDraw

from engine.synth.identity import Identity
from engine.synth.projection import HeadPatch, Projector
from engine.synth.strokes import as_tuples, line_width, smooth_open, tone

_TORSO = [(-0.5, 1.9), (-1.5, 2.15), (-2.3, 2.5), (-2.75, 3.4), (-2.9, 8), (2.9, 8), (2.75, 3.4), (2.3, 2.5), (1.5, 2.15), (0.5, 1.9)]
_NECK = [(-0.52, 0.9), (0.52, 0.9), (0.5, 2.05), (0.25, 2.3), (-0.25, 2.3), (-0.5, 2.05)]


def draw_body(draw: ImageDraw.ImageDraw, identity: Identity, projector: Projector, points3d: np.ndarray) -> None:
    """Long hair, torso, collar, neck and the chin's shadow, at the output resolution (behind the head).

    ``points3d`` are the face's 68 landmarks in face units; the chin's shadow follows the jaw.
    """
    unit, skin = projector.pixels_per_unit, identity.skin
    if identity.hair_style in ("long", "curly"):
        _draw_hair_behind(draw, identity, projector)
    drop = identity.chin_length - 1.65  # a longer chin moves the neck and torso down
    torso = np.array(_TORSO)
    torso[:, 1] += drop
    draw.polygon(as_tuples(projector.body(torso)), fill=identity.shirt)
    collar = np.array([(-0.45, 1.95), (0.0, 2.45), (0.45, 1.95)]) + [0, drop]
    draw.line(as_tuples(projector.body(collar)), fill=tone(identity.shirt, 0.6)[:3], width=line_width(0.06 * unit))
    neck = np.array(_NECK)
    neck[:, 1] += drop
    draw.polygon(as_tuples(projector.body(neck)), fill=tone(skin, 0.82)[:3])
    chin_shadow = points3d[3:14].copy()
    chin_shadow[:, 1] += 0.22
    draw.polygon(as_tuples(projector.head(chin_shadow)), fill=tone(skin, 0.68)[:3])


def _draw_hair_behind(draw: ImageDraw.ImageDraw, identity: Identity, projector: Projector) -> None:
    """Long hair down to the shoulders, curly hair to the jaw, seen around the head."""
    back = np.array([(math.cos(angle) * 1.2, -identity.forehead * 1.08 * math.sin(angle)) for angle in np.linspace(0, math.pi, 15)])
    low = 2.4 if identity.hair_style == "long" else 0.9
    back = np.concatenate([[(1.22, low)], back, [(-1.22, low)]])
    draw.polygon(as_tuples(projector.head(back)), fill=identity.hair_colour)


def draw_hair_front(draw: ImageDraw.ImageDraw, identity: Identity, patch: HeadPatch) -> None:
    """The hair over the forehead and crown (style-dependent), with a hairline shadow and strands."""
    if identity.hair_style == "bald":
        _draw_bald_fringe(draw, identity, patch)
        return
    style, width = identity.hair_style, identity.face_width
    forehead = identity.forehead
    cap = [(math.cos(angle) * 1.07 * width, -forehead * 1.1 * math.sin(angle) ** 0.85, 0.2) for angle in np.linspace(0.05, math.pi - 0.05, 17)]
    hairline_y = -0.66 - 0.1 * (style == "buzz") - max(0.0, identity.brow_height)
    part = {"side_part": 0.3, "curly": 0.0}.get(style, 0.1)  # how far the hairline rises on the left
    hairline = []
    for across in np.linspace(-1, 1, 13):
        x = across * 1.0 * width
        y = _hairline_height(hairline_y, across) + part * max(0.0, -across) * 0.4
        hairline.append((x, y, 0.6))
    # The cap runs right to left over the top; then down the left temple, along the hairline, up the right.
    shape = np.array(cap + [(-1.04 * width, -0.05, 0.2)] + hairline + [(1.04 * width, -0.05, 0.2)])
    alpha = 210 if style == "buzz" else 255  # a buzz cut lets the scalp show through
    shadow = np.array(hairline) + [0, 0.05, 0]  # the hair casts a soft line of shadow on the forehead
    draw.line(as_tuples(patch.from_face(shadow)), fill=tone(identity.skin, 0.72), width=line_width(0.07 * patch.unit_px), joint="curve")
    draw.polygon(as_tuples(patch.from_face(shape)), fill=tone(identity.hair_colour, 1.0, alpha))
    _draw_strands(draw, identity, patch, hairline_y, alpha)
    if style == "curly":
        _draw_curls(draw, identity, patch)


def _hairline_height(hairline_y: float, across: float) -> float:
    """The hairline's y (face units) at ``across`` (-1 left temple .. 1 right temple): highest mid-forehead."""
    return hairline_y - 0.18 * (1 - across * across) + 0.3 * across**6


def _draw_bald_fringe(draw: ImageDraw.ImageDraw, identity: Identity, patch: HeadPatch) -> None:
    """A fringe of hair around the sides and back only."""
    for side in (-1, 1):
        band = np.array([(side * 1.02, -0.55, 0.2), (side * 1.06, -0.1, 0.2), (side * 0.97, 0.05, 0.2), (side * 0.93, -0.5, 0.2)])
        draw.polygon(as_tuples(patch.from_face(band)), fill=tone(identity.hair_colour, 1.0))


def _draw_strands(draw: ImageDraw.ImageDraw, identity: Identity, patch: HeadPatch, hairline_y: float, alpha: int) -> None:
    """Darker and lighter curves from the crown to the hairline give the hair texture (the same in every frame)."""
    rng = np.random.default_rng(identity.texture_seed + 1)
    for _ in range(26):
        across = rng.uniform(-0.95, 0.95)
        crown = (across * 0.4, -identity.forehead * 1.02, 0.2)
        end = (across * identity.face_width * 0.98, _hairline_height(hairline_y, across) - 0.02, 0.6)
        middle = ((crown[0] + end[0]) / 2 * 1.25, (crown[1] + end[1]) / 2 - 0.05, 0.4)
        curve = smooth_open(patch.from_face(np.array([crown, middle, end])), 4)
        draw.line(as_tuples(curve), fill=tone(identity.hair_colour, float(rng.choice([0.8, 1.2])), alpha),
                  width=line_width(0.015 * patch.unit_px))


def _draw_curls(draw: ImageDraw.ImageDraw, identity: Identity, patch: HeadPatch) -> None:
    """Round curls on the crown, never over the temples."""
    rng = np.random.default_rng(identity.texture_seed)
    for _ in range(40):
        angle = rng.uniform(0.4, math.pi - 0.4)
        reach = rng.uniform(0.95, 1.08)
        centre = patch.from_face(np.array([[math.cos(angle) * 1.05 * reach, -identity.forehead * reach * math.sin(angle), 0.2]]))[0]
        radius = 0.09 * patch.unit_px
        draw.ellipse((centre[0] - radius, centre[1] - radius, centre[0] + radius, centre[1] + radius),
                     fill=tone(identity.hair_colour, rng.uniform(0.8, 1.2)))
