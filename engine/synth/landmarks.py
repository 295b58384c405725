"""The face's 68 landmarks in face units, moved by identity traits and action units.

dlib's index order: 0-16 jaw, 17-21 and 22-26 brows, 27-35 nose, 36-41 and 42-47 eyes, 48-59 outer
lips, 60-67 inner lips. Left and right refer to the image. Points are (x, y, z) in face units (see
``engine.synth.projection``); z only matters for how the head turns.
"""

from __future__ import annotations

import math

import numpy as np

from engine.synth.action_units import intensities_per_side
from engine.synth.identity import Identity

Intensities = dict[str, float]


def face_landmarks3d(identity: Identity, au_intensities: Intensities) -> tuple[np.ndarray, dict[str, float]]:
    """The 68 landmarks in face units, shape (68, 3), plus the strengths of what shading draws.

    The strengths (furrows, wrinkles, folds, cheek raise, squeeze, teeth shown) are read by
    ``engine.synth.shading`` and ``engine.synth.face_parts``.
    """
    left, right = intensities_per_side(au_intensities, identity)
    mid = {name: 0.5 * (left[name] + right[name]) for name in left}
    points = np.zeros((68, 3), dtype=np.float64)
    _place_jaw(points, identity, mid)
    _place_brows(points, identity, left, right)
    nose_tip = 0.5 * identity.nose_length
    _place_nose(points, identity, mid, nose_tip)
    _place_eyes(points, identity, left, right)
    _place_mouth(points, identity, left, right, mid, mouth_y=nose_tip + 0.41)
    return points, _drawing_strengths(left, right, mid)


def _place_jaw(points: np.ndarray, identity: Identity, mid: Intensities) -> None:
    """A half ellipse from ear level to chin; AU26 drops the lower part."""
    for i in range(17):
        angle = math.pi * i / 16
        cos = -math.cos(angle)
        x = math.copysign(abs(cos) ** identity.jaw_power, cos) * identity.face_width
        y = identity.chin_length * math.sin(angle)
        drop = (0.032 * mid["AU26"]) * math.sin(angle) ** 3
        points[i] = (x, y + drop, 0.25 + 0.6 * math.sin(angle))


def _place_brows(points: np.ndarray, identity: Identity, left: Intensities, right: Intensities) -> None:
    """Arcs above the eyes; AU4 lowers them (inner ends most) and pulls them together."""
    for side, (indices, au) in ((-1, (range(17, 22), left)), (1, (range(26, 21, -1), right))):
        eye_x = side * identity.eye_spacing
        lower = 0.032 * au["AU4"] + 0.005 * au["AU9"]
        for k, i in enumerate(indices):  # k = 0 outer .. 4 inner
            along = k / 4
            x = eye_x + side * (0.36 - 0.64 * along) * identity.eye_size - side * 0.018 * au["AU4"] * along
            y = -0.2 - identity.brow_height - identity.brow_arch * math.sin(math.pi * (0.15 + 0.7 * along))
            y += 0.04 * (1 - along) + lower * (0.35 + 0.65 * along)
            points[i] = (x, y, 0.78 - 0.15 * abs(x))


def _place_nose(points: np.ndarray, identity: Identity, mid: Intensities, nose_tip: float) -> None:
    """Bridge and nostrils; AU9 raises and widens the wings."""
    for k, i in enumerate(range(27, 31)):
        points[i] = (0.0, -0.01 + nose_tip * k / 3, 0.9 + 0.35 * k / 3)
    nose_up = 0.012 * mid["AU9"] + 0.004 * mid["AU10"]
    nose_width = 0.2 * identity.nose_width * (1 + 0.03 * mid["AU9"])
    for k, i in enumerate(range(31, 36)):
        across = (k - 2) / 2
        points[i] = (across * nose_width, nose_tip + 0.11 + 0.07 * (1 - abs(across)) - nose_up, 1.0 + 0.15 * (1 - abs(across)))


def _place_eyes(points: np.ndarray, identity: Identity, left: Intensities, right: Intensities) -> None:
    """Six points each; AU6/AU7 narrow the opening from below and above, AU43 closes it."""
    for side, indices, au in ((-1, (36, 37, 38, 39, 40, 41), left), (1, (45, 44, 43, 42, 47, 46), right)):
        eye_x = side * identity.eye_spacing
        half = 0.185 * identity.eye_size
        up = 0.085 * identity.eye_open - 0.011 * au["AU7"] - 0.003 * au["AU6"] - 0.003 * au["AU4"]
        down = 0.058 * identity.eye_open - 0.008 * au["AU7"] - 0.008 * au["AU6"] - 0.002 * au["AU12"]
        up, down = max(up, 0.012), max(down, 0.008)
        closed = min(1.0, au["AU43"]) if au["AU43"] > 0 else 0.0
        shut_y = 0.6 * down
        top = -up + closed * (shut_y + up)
        bottom = down - closed * (down - shut_y) * 0.6
        bottom = max(bottom, top)
        outer, top_outer, top_inner, inner, bottom_inner, bottom_outer = indices
        points[outer] = (eye_x + side * half, 0.01, 0.7)
        points[top_outer] = (eye_x + side * half / 3, top, 0.78)
        points[top_inner] = (eye_x - side * half / 3, top, 0.78)
        points[inner] = (eye_x - side * half, 0.02, 0.76)
        points[bottom_inner] = (eye_x - side * half / 3, bottom, 0.78)
        points[bottom_outer] = (eye_x + side * half / 3, bottom, 0.78)


def _lip_gap(mid: Intensities) -> float:
    """How far the lips part (face units): AU25, AU26, and a little AU10."""
    return 0.014 * mid["AU25"] + 0.04 * mid["AU26"] + 0.006 * mid["AU10"]


def _place_mouth(points: np.ndarray, identity: Identity, left: Intensities, right: Intensities, mid: Intensities,
                 mouth_y: float) -> None:
    """Outer lips 48-59, inner 60-67; AU10 lifts the upper lip, AU12/AU20 move the corners, AU25/AU26 open it."""
    half_width = 0.38 * identity.mouth_width
    gap = _lip_gap(mid)
    lift = 0.016 * mid["AU10"] + 0.006 * mid["AU9"]
    corner = {}
    for side, au in ((-1, left), (1, right)):
        corner_x = side * (half_width + 0.02 * au["AU12"] + 0.025 * au["AU20"])
        corner_y = mouth_y - 0.025 * au["AU12"] + 0.006 * au["AU20"] - 0.004 * au["AU10"]
        corner[side] = (corner_x, corner_y)
    points[48] = (*corner[-1], 0.8)
    points[54] = (*corner[1], 0.8)
    _place_outer_lips(points, identity, left, right, corner, mouth_y, gap, lift)
    points[60] = (corner[-1][0] * 0.88, corner[-1][1], 0.8)
    points[64] = (corner[1][0] * 0.88, corner[1][1], 0.8)
    for i, across in ((61, -0.3), (62, 0.0), (63, 0.3)):
        points[i] = (across * half_width, mouth_y - 0.1 * gap - lift * 0.8, 0.9)
    for i, across in ((65, 0.3), (66, 0.0), (67, -0.3)):
        points[i] = (across * half_width, mouth_y + 0.9 * gap, 0.9)


def _place_outer_lips(points: np.ndarray, identity: Identity, left: Intensities, right: Intensities,
                      corner: dict[int, tuple[float, float]], mouth_y: float, gap: float, lift: float) -> None:
    """Upper lip 49-53 and lower lip 55-59 between the corners; a smile curves the lower lip."""
    upper_thickness, lower_thickness = 0.07 * identity.lip_thickness, 0.095 * identity.lip_thickness
    upper_x = (-0.6, -0.25, 0.0, 0.25, 0.6)
    upper_h = (0.8, 1.0, 0.82, 1.0, 0.8)
    for k, i in enumerate(range(49, 54)):
        side = -1 if upper_x[k] < 0 else 1
        corner_y = corner[side][1] if upper_x[k] else 0.5 * (corner[-1][1] + corner[1][1])
        base = 0.5 * (mouth_y + corner_y)
        points[i] = (upper_x[k] * abs(corner[side][0]), base - upper_thickness * upper_h[k] - lift - gap * 0.2,
                     0.95 - 0.1 * abs(upper_x[k]))
    lower_x = (0.6, 0.25, 0.0, -0.25, -0.6)
    lower_h = (0.75, 0.95, 1.0, 0.95, 0.75)
    for k, i in enumerate(range(55, 60)):
        side = -1 if lower_x[k] < 0 else 1
        smile = 0.012 * (left["AU12"] + right["AU12"]) * (1 - abs(lower_x[k]))
        points[i] = (lower_x[k] * abs(corner[side][0]), mouth_y + gap + lower_thickness * lower_h[k] + smile * 0.3,
                     0.92 - 0.1 * abs(lower_x[k]))


def _drawing_strengths(left: Intensities, right: Intensities, mid: Intensities) -> dict[str, float]:
    """How dark furrows, wrinkles and folds are drawn, how far cheeks rise, whether teeth show."""
    return {
        "furrow": 0.14 * mid["AU4"],
        "nose_wrinkle": 0.12 * mid["AU9"],
        "crows_left": 0.06 * left["AU6"],
        "crows_right": 0.06 * right["AU6"],
        "nasolabial_left": 0.1 + 0.05 * left["AU10"] + 0.04 * left["AU12"] + 0.03 * left["AU6"] + 0.03 * left["AU9"],
        "nasolabial_right": 0.1 + 0.05 * right["AU10"] + 0.04 * right["AU12"] + 0.03 * right["AU6"] + 0.03 * right["AU9"],
        "cheek_raise": 0.025 * mid["AU6"] + 0.015 * mid["AU12"],
        "squeeze": 0.04 * (mid["AU7"] + mid["AU43"] * (mid["AU43"] > 0)) + 0.025 * mid["AU4"],
        "teeth": min(1.0, _lip_gap(mid) / 0.02),
    }


def head_outline(identity: Identity, jaw: np.ndarray, n_points: int = 21) -> np.ndarray:
    """The jaw points followed by the forehead arc from the jaw's right end over the top (face units, z column)."""
    width = identity.face_width
    arc = []
    for k in range(1, n_points):
        angle = math.pi * k / n_points
        arc.append((math.cos(angle) * width * 1.01, -identity.forehead * math.sin(angle) ** 0.85 + 0.02 * (1 - math.sin(angle)), 0.25))
    return np.concatenate([jaw, np.array(arc)], axis=0)
