"""Synthetic faces driven by FACS action units, drawn with NumPy and PIL only (no downloads, no real people).

A face is built from 68 landmarks in dlib's index convention, placed in *face units*: x to the image
right, y down, z toward the camera; the origin is between the eyes on the eye line and one unit is half
the face width. Identity traits move the landmarks once per subject, action units move them per frame,
and a pose (yaw, pitch, roll, scale, position) projects them into the image. The drawing adds what a
face detector trained on photographs relies on: shading of a rounded head, eye sockets and a nose
shadow, dark eyes and brows, lips, hair, ears, a neck and a torso, on a cluttered background.

Action units and what they draw (intensity 0-5; AU43 0/1 for "eyes closed", larger values squeeze):
pain  AU4 brows lowered and drawn together with vertical furrows; AU6 cheeks raised, lower lids pushed
      up, crow's feet; AU7 lids tightened; AU9 nose wrinkled, wings raised; AU10 upper lip raised,
      teeth shown, deeper nasolabial folds; AU43 eyes closed.
other AU12 lip corners pulled up (smile); AU20 lips stretched; AU25 lips part; AU26 jaw drop.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

PAIN_AUS = ("AU4", "AU6", "AU7", "AU9", "AU10", "AU43")
OTHER_AUS = ("AU12", "AU20", "AU25", "AU26")
ALL_AUS = PAIN_AUS + OTHER_AUS
# How strongly one intensity unit of a pain AU shows (geometry and wrinkles), capped at the look of
# intensity 5. At 1 a PSPI-1 frame at 32-48 px is nearly indistinguishable from a neutral one, and
# scratch networks trained for a few epochs on the demo's few hundred faces stay at chance level.
# The labels (from the coded intensities) are unchanged by it.
PAIN_VISUAL_GAIN = 2.0

# Anchor colours (RGB) that skin tones are interpolated between, light to dark.
_SKIN_RAMP = np.array(
    [(244, 212, 186), (228, 186, 152), (206, 156, 118), (170, 118, 84), (124, 84, 58), (88, 58, 42)], dtype=np.float32
)
_HAIR_COLOURS = {
    "black": (28, 24, 22),
    "dark_brown": (58, 40, 28),
    "brown": (104, 72, 46),
    "blonde": (186, 152, 98),
    "red": (146, 72, 38),
    "grey": (150, 148, 144),
}
_HAIR_STYLES = ("short", "long", "bald", "buzz", "curly", "side_part")
_HAIR_STYLE_P = (0.25, 0.22, 0.06, 0.12, 0.15, 0.2)
_IRIS_COLOURS = ((70, 44, 28), (40, 28, 20), (74, 98, 120), (84, 104, 70), (110, 84, 50))
_SUPERSAMPLE = 2


@dataclass(frozen=True)
class Identity:
    """Stable traits of one synthetic person (drawn once per subject from a seeded RNG)."""

    face_width: float  # relative head width (1 = average)
    chin_length: float  # eye line to chin, in face units (about 1.65)
    forehead: float  # eye line to top of head, in face units
    jaw_power: float  # < 1 square jaw, > 1 pointed
    skin: tuple[int, int, int]
    hair_colour: tuple[int, int, int]
    hair_style: str
    eye_spacing: float  # eye centre distance from the midline, face units
    eye_size: float  # relative eye width
    eye_open: float  # relative eye opening at rest
    iris: tuple[int, int, int]
    brow_thickness: float  # face units
    brow_height: float  # offset of the brows above the default, face units
    brow_arch: float
    nose_length: float  # relative
    nose_width: float  # relative
    mouth_width: float  # relative
    lip_thickness: float  # relative
    lip_colour: tuple[int, int, int]
    ear_size: float
    glasses: bool
    glasses_colour: tuple[int, int, int]
    beard: float  # 0 none .. 1 full stubble darkness
    shirt: tuple[int, int, int]
    texture_seed: int  # seeds the skin mottling, so it is the same in every frame
    # CP-like traits: expression asymmetry (0 symmetric .. 0.8 one side much weaker) and mouth open at rest.
    asymmetry: float = 0.0
    rest_mouth_open: float = 0.0

    def as_dict(self) -> dict:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.__dict__.items()}


@dataclass(frozen=True)
class Pose:
    """Head pose and placement. Angles in degrees; scale = face half-width / canvas height; cx, cy in [0, 1]."""

    yaw: float = 0.0
    pitch: float = 0.0
    roll: float = 0.0
    scale: float = 0.2
    cx: float = 0.5
    cy: float = 0.42


@dataclass(frozen=True)
class Occluder:
    """A hand-like blob over part of the face: centre in face units, size in face units."""

    x: float
    y: float
    size: float
    angle: float


@dataclass
class RenderedFace:
    image: np.ndarray  # (H, W, 3) uint8 RGB
    landmarks: np.ndarray  # (68, 2) float32, (x, y) pixels, dlib 68-point order
    box: tuple[float, float, float, float]  # face box x0, y0, x1, y1 in pixels (brows to chin, jaw to jaw)


def random_identity(rng: np.random.Generator, cp_like: bool = False) -> Identity:
    """Draw one person's traits. ``cp_like`` adds asymmetry and an open mouth at rest (CP population)."""
    tone = rng.uniform(0, len(_SKIN_RAMP) - 1.001)
    low = int(tone)
    skin = _SKIN_RAMP[low] * (1 - (tone - low)) + _SKIN_RAMP[low + 1] * (tone - low)
    skin = np.clip(skin * rng.uniform(0.95, 1.05, 3), 0, 255)
    hair_name = str(rng.choice(list(_HAIR_COLOURS)))
    hair = np.array(_HAIR_COLOURS[hair_name], dtype=np.float32)
    luma = np.array([0.299, 0.587, 0.114], dtype=np.float32)
    if float(skin @ luma) < 130 and hair_name in ("blonde", "red", "brown"):  # keep hair plausible on dark skin
        hair = np.array(_HAIR_COLOURS["black"], dtype=np.float32)
    lip = np.clip(skin * np.array([0.86, 0.62, 0.62]) + np.array([18, 0, 4]), 0, 255)
    return Identity(
        face_width=float(rng.uniform(0.9, 1.1)),
        chin_length=float(rng.uniform(1.5, 1.8)),
        forehead=float(rng.uniform(1.15, 1.4)),
        jaw_power=float(rng.uniform(0.75, 1.25)),
        skin=tuple(int(c) for c in skin),
        hair_colour=tuple(int(c) for c in hair),
        hair_style=str(rng.choice(_HAIR_STYLES, p=_HAIR_STYLE_P)),
        eye_spacing=float(rng.uniform(0.39, 0.49)),
        eye_size=float(rng.uniform(0.88, 1.12)),
        eye_open=float(rng.uniform(0.85, 1.15)),
        iris=tuple(int(c) for c in _IRIS_COLOURS[int(rng.integers(len(_IRIS_COLOURS)))]),
        brow_thickness=float(rng.uniform(0.045, 0.085)),
        brow_height=float(rng.uniform(-0.03, 0.05)),
        brow_arch=float(rng.uniform(0.04, 0.12)),
        nose_length=float(rng.uniform(0.9, 1.12)),
        nose_width=float(rng.uniform(0.85, 1.2)),
        mouth_width=float(rng.uniform(0.85, 1.15)),
        lip_thickness=float(rng.uniform(0.75, 1.25)),
        lip_colour=tuple(int(c) for c in lip),
        ear_size=float(rng.uniform(0.85, 1.15)),
        glasses=bool(rng.random() < 0.2),
        glasses_colour=tuple(int(c) for c in rng.integers(10, 120, 3)),
        beard=float(rng.uniform(0.3, 0.9)) if rng.random() < 0.15 else 0.0,
        shirt=tuple(int(c) for c in rng.integers(20, 235, 3)),
        texture_seed=int(rng.integers(2**31)),
        asymmetry=float(rng.uniform(0.25, 0.75)) if cp_like else 0.0,
        rest_mouth_open=float(rng.uniform(0.5, 2.5)) if cp_like and rng.random() < 0.6 else 0.0,
    )


# ---------------------------------------------------------------------------------------------- geometry


def _side_aus(aus: dict[str, float], identity: Identity) -> tuple[dict[str, float], dict[str, float]]:
    """AU intensities for the image-left and image-right half of the face (asymmetry weakens the right)."""
    full = {name: float(aus.get(name, 0.0)) for name in ALL_AUS}
    for name in PAIN_AUS[:-1]:  # not AU43 (eyes closed or not)
        full[name] = min(5.0, PAIN_VISUAL_GAIN * full[name])  # the strongest look stays the scale's 5
    full["AU26"] = max(full["AU26"], identity.rest_mouth_open)
    weak = {k: (v * (1 - identity.asymmetry) if k != "AU43" else v) for k, v in full.items()}
    return full, weak


def face_landmarks3d(identity: Identity, aus: dict[str, float]) -> tuple[np.ndarray, dict[str, float]]:
    """The 68 landmarks in face units, shape (68, 3), plus derived drawing strengths.

    Left/right refer to the image. dlib order: 0-16 jaw, 17-21 and 22-26 brows, 27-35 nose,
    36-41 and 42-47 eyes, 48-59 outer lips, 60-67 inner lips.
    """
    left, right = _side_aus(aus, identity)
    mid = {k: 0.5 * (left[k] + right[k]) for k in left}
    pts = np.zeros((68, 3), dtype=np.float64)
    w = identity.face_width

    # Jaw: a half ellipse from ear level to chin; AU26 drops the lower part.
    for i in range(17):
        a = math.pi * i / 16
        c = -math.cos(a)
        x = math.copysign(abs(c) ** identity.jaw_power, c) * w
        y = identity.chin_length * math.sin(a)
        drop = (0.032 * mid["AU26"]) * math.sin(a) ** 3
        pts[i] = (x, y + drop, 0.25 + 0.6 * math.sin(a))

    # Brows: arcs above the eyes; AU4 lowers them (inner ends most) and pulls them together.
    for side, (idx, au) in ((-1, (range(17, 22), left)), (1, (range(26, 21, -1), right))):
        ec = side * identity.eye_spacing
        lower = 0.032 * au["AU4"] + 0.005 * au["AU9"]
        for k, i in enumerate(idx):  # k = 0 outer .. 4 inner
            t = k / 4
            x = ec + side * (0.36 - 0.64 * t) * identity.eye_size - side * 0.018 * au["AU4"] * t
            y = -0.2 - identity.brow_height - identity.brow_arch * math.sin(math.pi * (0.15 + 0.7 * t))
            y += 0.04 * (1 - t) + lower * (0.35 + 0.65 * t)
            pts[i] = (x, y, 0.78 - 0.15 * abs(x))

    # Nose bridge and nostrils; AU9 raises and widens the wings.
    tip = 0.5 * identity.nose_length
    for k, i in enumerate(range(27, 31)):
        pts[i] = (0.0, -0.01 + tip * k / 3, 0.9 + 0.35 * k / 3)
    nose_up = 0.012 * mid["AU9"] + 0.004 * mid["AU10"]
    nw = 0.2 * identity.nose_width * (1 + 0.03 * mid["AU9"])
    for k, i in enumerate(range(31, 36)):
        u = (k - 2) / 2
        pts[i] = (u * nw, tip + 0.11 + 0.07 * (1 - abs(u)) - nose_up, 1.0 + 0.15 * (1 - abs(u)))

    # Eyes: six points each; AU6/AU7 narrow the opening from below and above, AU43 closes it.
    for side, idx, au in ((-1, (36, 37, 38, 39, 40, 41), left), (1, (45, 44, 43, 42, 47, 46), right)):
        ec = side * identity.eye_spacing
        half = 0.185 * identity.eye_size
        up = 0.085 * identity.eye_open - 0.011 * au["AU7"] - 0.003 * au["AU6"] - 0.003 * au["AU4"]
        down = 0.058 * identity.eye_open - 0.008 * au["AU7"] - 0.008 * au["AU6"] - 0.002 * au["AU12"]
        up, down = max(up, 0.012), max(down, 0.008)
        closed = min(1.0, au["AU43"]) if au["AU43"] > 0 else 0.0
        shut_y = 0.6 * down
        top = -up + closed * (shut_y + up)
        bottom = down - closed * (down - shut_y) * 0.6
        bottom = max(bottom, top)
        outer, t1, t2, inner, b1, b2 = idx
        pts[outer] = (ec + side * half, 0.01, 0.7)
        pts[t1] = (ec + side * half / 3, top, 0.78)
        pts[t2] = (ec - side * half / 3, top, 0.78)
        pts[inner] = (ec - side * half, 0.02, 0.76)
        pts[b1] = (ec - side * half / 3, bottom, 0.78)
        pts[b2] = (ec + side * half / 3, bottom, 0.78)

    # Mouth: outer lips 48-59, inner 60-67; AU10 lifts the upper lip, AU12/AU20 move the corners,
    # AU25/AU26 open it.
    my = tip + 0.41
    mw = 0.38 * identity.mouth_width
    ul, ll = 0.07 * identity.lip_thickness, 0.095 * identity.lip_thickness
    gap = 0.014 * mid["AU25"] + 0.04 * mid["AU26"] + 0.006 * mid["AU10"]
    lift = 0.016 * mid["AU10"] + 0.006 * mid["AU9"]
    corner = {}
    for side, au in ((-1, left), (1, right)):
        cx = side * (mw + 0.02 * au["AU12"] + 0.025 * au["AU20"])
        cy = my - 0.025 * au["AU12"] + 0.006 * au["AU20"] - 0.004 * au["AU10"]
        corner[side] = (cx, cy)
    pts[48] = (*corner[-1], 0.8)
    pts[54] = (*corner[1], 0.8)
    upper_x = (-0.6, -0.25, 0.0, 0.25, 0.6)
    upper_h = (0.8, 1.0, 0.82, 1.0, 0.8)
    for k, i in enumerate(range(49, 54)):
        side = -1 if upper_x[k] < 0 else 1
        cy = corner[side][1] if upper_x[k] else 0.5 * (corner[-1][1] + corner[1][1])
        base = 0.5 * (my + cy)
        pts[i] = (upper_x[k] * abs(corner[side][0]), base - ul * upper_h[k] - lift - gap * 0.2, 0.95 - 0.1 * abs(upper_x[k]))
    lower_x = (0.6, 0.25, 0.0, -0.25, -0.6)
    lower_h = (0.75, 0.95, 1.0, 0.95, 0.75)
    for k, i in enumerate(range(55, 60)):
        side = -1 if lower_x[k] < 0 else 1
        smile = 0.012 * (left["AU12"] + right["AU12"]) * (1 - abs(lower_x[k]))
        pts[i] = (lower_x[k] * abs(corner[side][0]), my + gap + ll * lower_h[k] + smile * 0.3, 0.92 - 0.1 * abs(lower_x[k]))
    pts[60] = (corner[-1][0] * 0.88, corner[-1][1], 0.8)
    pts[64] = (corner[1][0] * 0.88, corner[1][1], 0.8)
    for k, (i, u) in enumerate(((61, -0.3), (62, 0.0), (63, 0.3))):
        pts[i] = (u * mw, my - 0.1 * gap - lift * 0.8, 0.9)
    for i, u in ((65, 0.3), (66, 0.0), (67, -0.3)):
        pts[i] = (u * mw, my + 0.9 * gap, 0.9)

    strengths = {
        "furrow": 0.14 * mid["AU4"],
        "nose_wrinkle": 0.12 * mid["AU9"],
        "crows_left": 0.06 * left["AU6"],
        "crows_right": 0.06 * right["AU6"],
        "nasolabial_left": 0.1 + 0.05 * left["AU10"] + 0.04 * left["AU12"] + 0.03 * left["AU6"] + 0.03 * left["AU9"],
        "nasolabial_right": 0.1 + 0.05 * right["AU10"] + 0.04 * right["AU12"] + 0.03 * right["AU6"] + 0.03 * right["AU9"],
        "cheek_raise": 0.025 * mid["AU6"] + 0.015 * mid["AU12"],
        "squeeze": 0.04 * (mid["AU7"] + mid["AU43"] * (mid["AU43"] > 0)) + 0.025 * mid["AU4"],
        "teeth": min(1.0, gap / 0.02),
    }
    return pts, strengths


def _head_outline(identity: Identity, jaw: np.ndarray, n: int = 21) -> np.ndarray:
    """Forehead arc from the right end of the jaw over the top to its left end (face units, z column)."""
    w = identity.face_width
    out = []
    for k in range(1, n):
        b = math.pi * k / n
        out.append((math.cos(b) * w * 1.01, -identity.forehead * math.sin(b) ** 0.85 + 0.02 * (1 - math.sin(b)), 0.25))
    return np.concatenate([jaw, np.array(out)], axis=0)


class _Projector:
    """Rotates face-unit points (yaw, pitch, roll) about the nose root and maps them to pixels."""

    def __init__(self, pose: Pose, canvas: tuple[int, int]):
        width, height = canvas
        self.s = float(pose.scale * height)
        self.origin = np.array([pose.cx * width, pose.cy * height])
        y, p, r = (math.radians(a) for a in (pose.yaw, pose.pitch, pose.roll))
        ry = np.array([[math.cos(y), 0, math.sin(y)], [0, 1, 0], [-math.sin(y), 0, math.cos(y)]])
        rx = np.array([[1, 0, 0], [0, math.cos(p), -math.sin(p)], [0, math.sin(p), math.cos(p)]])
        rz = np.array([[math.cos(r), -math.sin(r), 0], [math.sin(r), math.cos(r), 0], [0, 0, 1]])
        self.rot = rz @ rx @ ry
        self.roll = r
        self.pivot = np.array([0.0, 0.45, 0.0])

    def __call__(self, pts: np.ndarray) -> np.ndarray:
        pts = np.atleast_2d(pts)
        if pts.shape[1] == 2:
            pts = np.concatenate([pts, np.full((len(pts), 1), 0.5)], axis=1)
        rotated = (pts - self.pivot) @ self.rot.T + self.pivot
        return rotated[:, :2] * self.s + self.origin

    def flat(self, pts: np.ndarray) -> np.ndarray:
        """Body parts (neck, torso): only a third of the roll, no yaw or pitch."""
        pts = np.atleast_2d(np.asarray(pts, dtype=np.float64))[:, :2]
        c, s = math.cos(self.roll / 3), math.sin(self.roll / 3)
        rot = np.array([[c, -s], [s, c]])
        return (pts - self.pivot[:2]) @ rot.T * self.s + self.pivot[:2] * self.s + self.origin


# ---------------------------------------------------------------------------------------------- drawing


def render_background(canvas: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """A cluttered indoor-like scene (wall gradient, furniture-like boxes, shapes, lines), (H, W, 3) uint8."""
    width, height = canvas
    base = rng.integers(60, 220, 3).astype(np.float32)
    tint = rng.uniform(-40, 40, 3).astype(np.float32)
    ramp = np.linspace(0, 1, height, dtype=np.float32)[:, None, None]
    img = np.broadcast_to(base + ramp * tint, (height, width, 3)).copy()
    pil = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(pil)
    for _ in range(int(rng.integers(8, 18))):
        kind = rng.random()
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        x0, y0 = rng.uniform(-0.1, 1.0) * width, rng.uniform(-0.1, 1.0) * height
        x1, y1 = x0 + rng.uniform(0.05, 0.45) * width, y0 + rng.uniform(0.05, 0.5) * height
        if kind < 0.45:
            draw.rectangle((x0, y0, x1, y1), fill=colour)
        elif kind < 0.6:
            draw.ellipse((x0, y0, x1, y1), fill=colour)
        elif kind < 0.85:
            draw.line((x0, y0, x1, y1 + rng.uniform(-0.3, 0.3) * height), fill=colour, width=int(rng.integers(2, 9)))
        else:
            n = int(rng.integers(3, 7))
            draw.polygon([(x0 + rng.uniform(0, 0.3) * width, y0 + rng.uniform(0, 0.3) * height) for _ in range(n)], fill=colour)
    pil = pil.filter(ImageFilter.GaussianBlur(1.2))
    out = np.asarray(pil, dtype=np.float32)
    out += rng.normal(0, 5, (height // 4 + 1, width // 4 + 1, 1)).repeat(4, 0).repeat(4, 1)[:height, :width]
    return np.clip(out, 0, 255).astype(np.uint8)


def _tone(colour, factor: float, alpha: int = 255) -> tuple[int, int, int, int]:
    return (*(int(np.clip(c * factor, 0, 255)) for c in colour), alpha)


def _mottle(seed: int, shape: tuple[int, int]) -> np.ndarray:
    """Identity-stable low-frequency skin variation, resized to ``shape`` (h, w); values around 1."""
    grid = np.random.default_rng(seed).normal(0, 1, (12, 12)).astype(np.float32)
    img = Image.fromarray(((grid * 0.5 + 2) * 50).clip(0, 255).astype(np.uint8)).resize(shape[::-1], Image.BILINEAR)
    return 1 + (np.asarray(img, dtype=np.float32) / 50 - 2) * 0.06


def _polyline(draw: ImageDraw.ImageDraw, pts: np.ndarray, fill, width: int) -> None:
    draw.line([tuple(p) for p in pts], fill=fill, width=max(1, width), joint="curve")


def _catmull_rom(p0: np.ndarray, p1: np.ndarray, p2: np.ndarray, p3: np.ndarray, n: int) -> np.ndarray:
    """n points per segment of the Catmull-Rom spline through p1 -> p2 (arrays (m, 2)); (m * n, 2)."""
    t = np.linspace(0, 1, n, endpoint=False)[None, :, None]
    t2, t3 = t * t, t * t * t
    p0, p1, p2, p3 = (a[:, None, :] for a in (p0, p1, p2, p3))
    out = 0.5 * (2 * p1 + (p2 - p0) * t + (2 * p0 - 5 * p1 + 4 * p2 - p3) * t2 + (3 * p1 - p0 - 3 * p2 + p3) * t3)
    return out.reshape(-1, 2)


def _smooth_closed(pts: np.ndarray, n: int = 6) -> np.ndarray:
    """Catmull-Rom through a closed polygon: smoother outlines for lips and eyes."""
    pts = np.asarray(pts, dtype=np.float64)
    return _catmull_rom(np.roll(pts, 1, 0), pts, np.roll(pts, -1, 0), np.roll(pts, -2, 0), n)


def _smooth_open(pts: np.ndarray, n: int = 6) -> np.ndarray:
    """Catmull-Rom through an open polyline, ending on its last point."""
    pts = np.asarray(pts, dtype=np.float64)
    ext = np.concatenate([pts[:1], pts, pts[-1:]])
    curve = _catmull_rom(ext[:-3], ext[1:-2], ext[2:-1], ext[3:], n)
    return np.concatenate([curve, pts[-1:]])


def _w(width: float) -> int:
    """A line width in whole pixels, at least 1."""
    return max(1, int(round(width)))


def _tuples(pts: np.ndarray) -> list[tuple[float, float]]:
    return [(float(x), float(y)) for x, y in pts]


def render_face(
    identity: Identity,
    aus: dict[str, float],
    pose: Pose,
    canvas_size: tuple[int, int],
    rng: np.random.Generator,
    background: np.ndarray | None = None,
    occluder: Occluder | None = None,
    light: tuple[float, float] | None = None,
) -> RenderedFace:
    """Draw one person with the given action units.

    canvas_size is (width, height). ``background`` (H, W, 3) uint8 is reused when given (a video keeps its
    scene); otherwise one is drawn from ``rng``. ``light`` is the (x, y) direction of the key light
    (defaults to one drawn from ``rng``). Returns the image, the 68 landmarks (x, y) and the face box.
    """
    if background is None:
        background = render_background(canvas_size, rng)
    if light is None:
        light = (float(rng.uniform(-0.6, 0.6)), float(rng.uniform(-0.7, -0.2)))
    pts3, strength = face_landmarks3d(identity, aus)
    proj = _Projector(pose, canvas_size)
    lm = proj(pts3)
    outline = proj(_head_outline(identity, pts3[:17]))
    s = proj.s

    scene = Image.fromarray(background).copy()
    _draw_body(ImageDraw.Draw(scene), identity, proj, pts3)
    skin = identity.skin

    # The head, supersampled in a patch around it (ears, hair cap, a hand), then pasted.
    ss = _SUPERSAMPLE
    x0, y0, pw, ph = _patch_bounds(identity, proj, outline, occluder, canvas_size)
    off = np.array([x0, y0], dtype=np.float64)

    def P(points: np.ndarray) -> np.ndarray:  # image pixels -> patch supersampled pixels
        return (np.atleast_2d(points) - off) * ss

    layer = Image.new("RGBA", (pw * ss, ph * ss), (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    S = s * ss  # pixels per face unit in the patch

    for side in (-1, 1):  # ears
        ec = proj(np.array([[side * identity.face_width * 1.0, 0.28, 0.1]]))[0]
        rx, ry = 0.15 * S * identity.ear_size, 0.3 * S * identity.ear_size
        c = P(ec)[0]
        draw.ellipse((c[0] - rx, c[1] - ry, c[0] + rx, c[1] + ry), fill=_tone(skin, 0.9))
    draw.polygon(_tuples(P(outline)), fill=_tone(skin, 1.0))

    _shade(layer, identity, lm, outline, strength, P, S, light)
    draw = ImageDraw.Draw(layer)

    _draw_eyes(draw, layer, identity, P(lm), S)
    _draw_brows(draw, identity, P(lm), S)
    _draw_nose(draw, identity, P(lm), S)
    _draw_mouth(draw, identity, P(lm), S, strength)
    _draw_hair_front(draw, identity, proj, P, S)
    if identity.glasses:
        _draw_glasses(draw, identity, P(lm), S)
    if occluder is not None:
        _draw_occluder(draw, identity, proj, P, S, occluder)

    small = layer.resize((pw, ph), Image.BOX)
    scene.paste(small, (x0, y0), small)
    out = scene.filter(ImageFilter.GaussianBlur(0.45 * max(1.0, s / 50)))  # the same softness at any face size
    img = np.asarray(out, dtype=np.float32)
    img += rng.standard_normal(img.shape, dtype=np.float32) * 2.2
    img = np.clip(img + 0.5, 0, 255).astype(np.uint8)

    brow_top = lm[17:27, 1].min()
    chin = lm[8, 1]
    box = (float(lm[:17, 0].min()), float(brow_top - 0.12 * (chin - brow_top)), float(lm[:17, 0].max()), float(chin))
    return RenderedFace(image=img, landmarks=lm.astype(np.float32), box=box)


def _patch_bounds(identity: Identity, proj: "_Projector", outline: np.ndarray, occluder: Occluder | None,
                  canvas: tuple[int, int]) -> tuple[int, int, int, int]:
    """x0, y0, width, height of the image region the head (ears, hair cap, a hand) can reach."""
    width, height = canvas
    reach = [outline, proj(np.array([[-1.45, 0.3, 0.1], [1.45, 0.3, 0.1], [0.0, -identity.forehead * 1.15, 0.2],
                                     [0.0, identity.chin_length + 0.25, 0.5]]))]
    if occluder is not None:
        reach.append(proj(np.array([[occluder.x, occluder.y, 1.2]])) + np.array([[-2.2, -2.2], [2.2, 2.2]]) * occluder.size * proj.s)
    span = np.concatenate(reach)
    x0 = int(max(0, math.floor(span[:, 0].min() - 2)))
    x1 = int(min(width, math.ceil(span[:, 0].max() + 2)))
    y0 = int(max(0, math.floor(span[:, 1].min() - 2)))
    y1 = int(min(height, math.ceil(span[:, 1].max() + 2)))
    return x0, y0, max(1, x1 - x0), max(1, y1 - y0)


def _draw_body(body: ImageDraw.ImageDraw, identity: Identity, proj: "_Projector", pts3: np.ndarray) -> None:
    """Long hair, torso, collar, neck and the chin's shadow, at the output resolution (behind the head)."""
    s, skin, hair = proj.s, identity.skin, identity.hair_colour
    drop = identity.chin_length - 1.65
    if identity.hair_style in ("long", "curly"):
        back = np.array([(math.cos(b) * 1.2, -identity.forehead * 1.08 * math.sin(b)) for b in np.linspace(0, math.pi, 15)])
        low = 2.4 if identity.hair_style == "long" else 0.9
        back = np.concatenate([[(1.22, low)], back, [(-1.22, low)]])
        body.polygon(_tuples(proj(back)), fill=hair)
    torso = np.array([(-0.5, 1.9), (-1.5, 2.15), (-2.3, 2.5), (-2.75, 3.4), (-2.9, 8), (2.9, 8), (2.75, 3.4), (2.3, 2.5), (1.5, 2.15), (0.5, 1.9)])
    torso[:, 1] += drop
    body.polygon(_tuples(proj.flat(torso)), fill=identity.shirt)
    collar = np.array([(-0.45, 1.95), (0.0, 2.45), (0.45, 1.95)]) + [0, drop]
    body.line(_tuples(proj.flat(collar)), fill=_tone(identity.shirt, 0.6)[:3], width=_w(0.06 * s))
    neck = np.array([(-0.52, 0.9), (0.52, 0.9), (0.5, 2.05), (0.25, 2.3), (-0.25, 2.3), (-0.5, 2.05)])
    neck[:, 1] += drop
    body.polygon(_tuples(proj.flat(neck)), fill=_tone(skin, 0.82)[:3])
    chin_shadow = pts3[3:14].copy()
    chin_shadow[:, 1] += 0.22
    body.polygon(_tuples(proj(chin_shadow)), fill=_tone(skin, 0.68)[:3])


def _shade(layer, identity, lm, outline, strength, P, S, light) -> None:
    """Darken and lighten the skin in place: rounded-head lighting, sockets, nose, folds, wrinkles.

    Only the head's bounding box of the RGBA ``layer`` is read, shaded and pasted back. The shading is
    smooth, so it is computed at the output resolution (1/_SUPERSAMPLE) and enlarged: 4x less work.
    """
    w, h = layer.size
    # Rounded head lighting: the head is an ellipsoid around the outline's centre.
    pts = P(outline)
    cx, cy = pts[:, 0].mean(), (pts[:, 1].min() + pts[:, 1].max()) / 2
    rx = (pts[:, 0].max() - pts[:, 0].min()) / 2 * 1.05
    ry = (pts[:, 1].max() - pts[:, 1].min()) / 2 * 1.05
    bx0, bx1 = int(max(0, cx - rx * 1.3)), int(min(w, cx + rx * 1.3))
    by0, by1 = int(max(0, cy - ry * 1.2)), int(min(h, cy + ry * 1.7))
    bw, bh = bx1 - bx0, by1 - by0
    off = np.array([bx0, by0], dtype=np.float64)
    crop = np.asarray(layer.crop((bx0, by0, bx1, by1)), dtype=np.float32)
    lo = 1 / _SUPERSAMPLE  # mask resolution relative to the patch
    sw, sh = max(1, round(bw * lo)), max(1, round(bh * lo))
    yy, xx = np.mgrid[0:sh, 0:sw].astype(np.float32)
    yy, xx = by0 + (yy + 0.5) / lo, bx0 + (xx + 0.5) / lo
    nx = (xx - cx) / rx
    ny = (yy - cy) / ry
    nz = np.sqrt(np.clip(1 - nx**2 - ny**2, 0.02, 1))
    lx, ly = light
    lz = math.sqrt(max(0.05, 1 - lx * lx - ly * ly))
    lambert = np.clip(nx * lx + ny * ly + nz * lz, 0, 1)
    shade = 0.5 + 0.55 * lambert

    # Soft shadows and highlights drawn as masks, blurred, then applied.
    dark = Image.new("L", (sw, sh), 0)  # broad shadows (sockets)
    crisp = Image.new("L", (sw, sh), 0)  # narrow shadows (nose sides, creases, folds)
    bright = Image.new("L", (sw, sh), 0)
    dd, cd, bd = ImageDraw.Draw(dark), ImageDraw.Draw(crisp), ImageDraw.Draw(bright)
    L = (P(lm) - off) * lo
    S = S * lo
    for eye, brow in ((range(36, 42), range(17, 22)), (range(42, 48), range(22, 27))):
        e, b = L[list(eye)], L[list(brow)]
        ex0, ex1 = min(e[:, 0].min(), b[:, 0].min()), max(e[:, 0].max(), b[:, 0].max())
        top, bot = b[:, 1].mean(), e[:, 1].max() + 0.1 * S
        dd.ellipse((ex0 - 0.02 * S, top, ex1 + 0.02 * S, bot), fill=int(min(255, 130 + 300 * strength["squeeze"])))
        dd.line(_tuples(b + [0, 0.06 * S]), fill=90, width=_w(0.07 * S))
        crease = e[[0, 1, 2, 3]] - [0, 0.035 * S]
        cd.line(_tuples(_smooth_open(crease, 4)), fill=170, width=_w(0.03 * S))
    side = 1 if light[0] < 0 else -1  # the nose shadow falls away from the light
    bridge = L[27:31]
    cd.line(_tuples(bridge + [side * 0.075 * S, 0]), fill=150, width=_w(0.06 * S))
    cd.line(_tuples(bridge[1:] - [side * 0.075 * S, 0]), fill=70, width=_w(0.04 * S))
    cd.ellipse((L[31, 0] - 0.04 * S, L[33, 1] - 0.01 * S, L[35, 0] + 0.04 * S, L[33, 1] + 0.07 * S), fill=170)
    for wing in (31, 35):  # the nose wings cast a shadow on the cheek
        cd.ellipse((L[wing, 0] - 0.05 * S, L[wing, 1] - 0.1 * S, L[wing, 0] + 0.05 * S, L[wing, 1] + 0.03 * S), fill=160)
    dd.ellipse((L[58, 0], L[57, 1], L[56, 0], L[57, 1] + 0.14 * S), fill=80)  # below the lower lip
    for k, (wing, corner) in enumerate(((31, 48), (35, 54))):
        val = strength["nasolabial_left" if k == 0 else "nasolabial_right"]
        a = L[wing] + [(-1 if k == 0 else 1) * 0.06 * S, 0]
        c = L[corner] + [(-1 if k == 0 else 1) * 0.06 * S, 0.02 * S]
        mid = (a + c) / 2 + [(-1 if k == 0 else 1) * 0.06 * S, 0]
        cd.line(_tuples(_smooth_open(np.array([a, mid, c]), 4)), fill=int(min(255, 600 * val)), width=_w(0.035 * S))
    bd.line(_tuples(bridge[1:] - [side * 0.02 * S, 0]), fill=120, width=_w(0.05 * S))
    for k, cheek in enumerate((L[[1, 2, 31, 40]].mean(0), L[[15, 14, 35, 47]].mean(0))):
        cy_ = cheek[1] - strength["cheek_raise"] * S
        bd.ellipse((cheek[0] - 0.18 * S, cy_ - 0.1 * S, cheek[0] + 0.18 * S, cy_ + 0.1 * S), fill=60 + int(400 * strength["cheek_raise"]))
    bd.ellipse((L[27, 0] - 0.35 * S, L[27, 1] - 0.9 * S, L[27, 0] + 0.35 * S, L[27, 1] - 0.45 * S), fill=50)
    dark = dark.filter(ImageFilter.GaussianBlur(0.07 * S))
    crisp = crisp.filter(ImageFilter.GaussianBlur(0.022 * S))
    bright = bright.filter(ImageFilter.GaussianBlur(0.08 * S))

    # Crisp wrinkles: furrows (AU4), nose wrinkles (AU9), crow's feet (AU6).
    lines = Image.new("L", (sw, sh), 0)
    ld = ImageDraw.Draw(lines)
    lw = _w(0.025 * S)
    if strength["furrow"] > 0.01:
        for dx in (-0.05, 0.05):
            x = (L[21, 0] + L[22, 0]) / 2 + dx * S
            y = (L[21, 1] + L[22, 1]) / 2
            ld.line((x, y - 0.14 * S, x + dx * 0.4 * S, y + 0.06 * S), fill=int(min(255, 500 * strength["furrow"])), width=lw)
    if strength["nose_wrinkle"] > 0.01:
        for k in range(3):
            y = L[27, 1] + (0.06 + 0.07 * k) * S
            ld.line((L[27, 0] - 0.09 * S, y, L[27, 0] + 0.09 * S, y - 0.01 * S), fill=int(min(255, 500 * strength["nose_wrinkle"])), width=lw)
    for corner, key, sgn in ((36, "crows_left", -1), (45, "crows_right", 1)):
        if strength[key] > 0.01:
            for dy in (-0.05, 0.0, 0.05):
                p = L[corner]
                ld.line((p[0] + sgn * 0.05 * S, p[1] + dy * S, p[0] + sgn * 0.15 * S, p[1] + dy * 1.8 * S), fill=int(min(255, 500 * strength[key])), width=lw)

    d = np.asarray(dark, dtype=np.float32)[..., None] / 255
    d = np.maximum(d, np.asarray(crisp, dtype=np.float32)[..., None] / 255)
    b = np.asarray(bright, dtype=np.float32)[..., None] / 255
    wr = np.asarray(lines, dtype=np.float32)[..., None] / 255
    mottle = _mottle(identity.texture_seed, (sh, sw))[..., None]
    region = crop[..., :3]
    factor = shade[..., None] * mottle * (1 - 0.5 * d) * (1 + 0.18 * b) * (1 - 0.45 * wr)
    if identity.beard > 0:
        jaw = Image.new("L", (sw, sh), 0)
        jd = ImageDraw.Draw(jaw)
        chin_band = np.concatenate([L[3:14], L[[54, 55, 56, 57, 58, 59, 48]] + [0, 0.05 * S]])
        jd.polygon(_tuples(chin_band), fill=int(255 * identity.beard))
        jaw = jaw.filter(ImageFilter.GaussianBlur(0.1 * S))
        beard = np.asarray(jaw, dtype=np.float32)[..., None] / 255
        factor = factor * (1 - 0.18 * beard)
    head = Image.new("L", (sw, sh), 0)
    ImageDraw.Draw(head).polygon(_tuples((pts - off) * lo), fill=255)
    inside = np.asarray(head, dtype=np.float32)[..., None] / 255
    factor = 1 + inside * (factor - 1)
    big = Image.fromarray(np.ascontiguousarray(factor[..., 0], dtype=np.float32), "F").resize((bw, bh), Image.BILINEAR)
    region *= np.asarray(big, dtype=np.float32)[..., None]
    crop[..., :3] = np.clip(region, 0, 255)
    layer.paste(Image.fromarray(crop.astype(np.uint8), "RGBA"), (bx0, by0))


def _draw_eyes(draw, layer, identity, L, S) -> None:
    """Sclera, iris and pupil inside the lids (when open), then the lash line and the lower lid."""
    lash = (*(int(0.35 * c + 10) for c in identity.hair_colour[:3]), 255)
    for idx in ((36, 37, 38, 39, 40, 41), (42, 43, 44, 45, 46, 47)):
        e = L[list(idx)]
        opening = np.mean(e[[4, 5], 1]) - np.mean(e[[1, 2], 1])
        outline = _smooth_closed(e, 5)
        if opening > 0.012 * S:
            draw.polygon(_tuples(outline), fill=(226, 222, 214, 255))
            # Iris and pupil, clipped to the eye opening: drawn on a small local image with the opening as alpha.
            c = e.mean(axis=0)
            r = 0.085 * S * identity.eye_size
            x0, y0 = int(outline[:, 0].min()) - 1, int(outline[:, 1].min()) - 1
            x1, y1 = int(outline[:, 0].max()) + 2, int(outline[:, 1].max()) + 2
            o = np.array([x0, y0])
            mask = Image.new("L", (x1 - x0, y1 - y0), 0)
            ImageDraw.Draw(mask).polygon(_tuples(outline - o), fill=255)
            iris = Image.new("RGBA", mask.size, (0, 0, 0, 0))
            idraw = ImageDraw.Draw(iris)
            q = c - o
            idraw.ellipse((q[0] - r, q[1] - r, q[0] + r, q[1] + r), fill=(*identity.iris, 255))
            idraw.ellipse((q[0] - r * 0.45, q[1] - r * 0.45, q[0] + r * 0.45, q[1] + r * 0.45), fill=(12, 10, 10, 255))
            idraw.ellipse((q[0] - r * 0.5, q[1] - r * 0.7, q[0] - r * 0.2, q[1] - r * 0.4), fill=(240, 240, 240, 255))
            alpha = Image.fromarray(np.minimum(np.asarray(iris)[..., 3], np.asarray(mask)))
            iris.putalpha(alpha)
            layer.alpha_composite(iris, dest=(x0, y0))
        # Upper lid line with lashes, lower lid line thinner.
        top = _smooth_open(e[[0, 1, 2, 3]], 5)
        bottom = _smooth_open(e[[3, 4, 5, 0]], 5)
        _polyline(draw, top, lash, int(0.045 * S))
        _polyline(draw, bottom, _tone(identity.skin, 0.55), int(0.015 * S))


def _draw_brows(draw, identity, L, S) -> None:
    """Each brow as a band along its five points, thicker at the inner end."""
    # Brows are darker than grey or fair hair.
    colour = (*(int(0.55 * c + 8) for c in identity.hair_colour[:3]), 255)
    for idx in (range(17, 22), range(22, 27)):
        b = _smooth_open(L[list(idx)], 5)
        n = len(b)
        # A brow is thicker at the inner end: draw it as a polygon of varying width.
        normals = np.gradient(b, axis=0)[:, ::-1] * [1, -1]
        normals /= np.linalg.norm(normals, axis=1, keepdims=True) + 1e-6
        thick = identity.brow_thickness * S * (0.55 + 0.45 * (np.arange(n) / (n - 1) if idx[0] == 17 else 1 - np.arange(n) / (n - 1)))
        upper = b + normals * thick[:, None] / 2
        lower = b - normals * thick[:, None] / 2
        draw.polygon(_tuples(np.concatenate([upper, lower[::-1]])), fill=colour)


def _draw_nose(draw, identity, L, S) -> None:
    """Nostrils and the creases of the nose wings (the bridge is shading, see _shade)."""
    dark = _tone(identity.skin, 0.35)
    for k in (32, 34):
        p = L[k]
        rx, ry = 0.045 * S * identity.nose_width, 0.025 * S
        draw.ellipse((p[0] - rx, p[1] - ry, p[0] + rx, p[1] + ry), fill=dark)
    wing = _tone(identity.skin, 0.7)
    _polyline(draw, _smooth_open(L[[31, 32]] + [[-0.03 * S, -0.05 * S], [0, 0]], 4), wing, int(0.02 * S))
    _polyline(draw, _smooth_open(L[[35, 34]] + [[0.03 * S, -0.05 * S], [0, 0]], 4), wing, int(0.02 * S))


def _draw_mouth(draw, identity, L, S, strength) -> None:
    """Lips, the dark opening and the teeth when the mouth is open, and the line between the lips."""
    outer = _smooth_closed(L[48:60], 4)
    draw.polygon(_tuples(outer), fill=(*identity.lip_colour, 255))
    inner = L[60:68]
    opening = np.mean(inner[[5, 6, 7], 1] - inner[[3, 2, 1], 1])
    if opening > 0.01 * S:
        poly = _smooth_closed(inner, 4)
        draw.polygon(_tuples(poly), fill=(45, 18, 20, 255))
        if strength["teeth"] > 0.2:
            top = inner[[0, 1, 2, 3, 4]]
            teeth = np.concatenate([top, top[::-1] + [0, min(opening * 0.45, 0.06 * S)]])
            draw.polygon(_tuples(teeth), fill=(196, 190, 174, 255))
    _polyline(draw, _smooth_open(L[[60, 61, 62, 63, 64]], 4), (60, 25, 28, 255), int(0.022 * S))
    # Upper lip darker than lower: a shadow band.
    upper = np.concatenate([L[48:55], L[[64, 63, 62, 61, 60]]])
    draw.polygon(_tuples(_smooth_closed(upper, 3)), fill=_tone(identity.lip_colour, 0.82))


def _draw_hair_front(draw, identity, proj, P, S) -> None:
    """The hair over the forehead and crown (style-dependent), with a hairline shadow and strands."""
    style = identity.hair_style
    if style == "bald":
        # A fringe of hair around the sides and back only.
        for side in (-1, 1):
            band = np.array([(side * 1.02, -0.55, 0.2), (side * 1.06, -0.1, 0.2), (side * 0.97, 0.05, 0.2), (side * 0.93, -0.5, 0.2)])
            draw.polygon(_tuples(P(proj(band))), fill=_tone(identity.hair_colour, 1.0))
        return
    fh = identity.forehead
    cap = [(math.cos(b) * 1.07 * identity.face_width, -fh * 1.1 * math.sin(b) ** 0.85, 0.2) for b in np.linspace(0.05, math.pi - 0.05, 17)]
    hairline_y = -0.66 - 0.1 * (style == "buzz") - max(0.0, identity.brow_height)
    part = {"side_part": 0.3, "curly": 0.0}.get(style, 0.1)
    line = []
    for t in np.linspace(-1, 1, 13):
        x = t * 1.0 * identity.face_width
        y = hairline_y - 0.18 * (1 - t * t) + 0.3 * t**6 + part * max(0.0, -t) * 0.4
        line.append((x, y, 0.6))
    # The cap runs right to left over the top; then down the left temple, along the hairline, up the right.
    shape = np.array(cap + [(-1.04 * identity.face_width, -0.05, 0.2)] + line + [(1.04 * identity.face_width, -0.05, 0.2)])
    alpha = 210 if style == "buzz" else 255
    shadow = np.array(line) + [0, 0.05, 0]  # the hair casts a soft line of shadow on the forehead
    draw.line(_tuples(P(proj(shadow))), fill=_tone(identity.skin, 0.72), width=_w(0.07 * S), joint="curve")
    draw.polygon(_tuples(P(proj(shape))), fill=_tone(identity.hair_colour, 1.0, alpha))
    # Strands: darker and lighter curves from the crown to the hairline give the hair texture.
    rng = np.random.default_rng(identity.texture_seed + 1)
    for _ in range(26):
        t = rng.uniform(-0.95, 0.95)
        crown = (t * 0.4, -fh * 1.02, 0.2)
        end = (t * identity.face_width * 0.98, hairline_y - 0.18 * (1 - t * t) + 0.3 * t**6 - 0.02, 0.6)
        mid = ((crown[0] + end[0]) / 2 * 1.25, (crown[1] + end[1]) / 2 - 0.05, 0.4)
        curve = _smooth_open(P(proj(np.array([crown, mid, end]))), 4)
        draw.line(_tuples(curve), fill=_tone(identity.hair_colour, float(rng.choice([0.8, 1.2])), alpha), width=_w(0.015 * S))
    if style == "curly":
        rng = np.random.default_rng(identity.texture_seed)
        for _ in range(40):
            b = rng.uniform(0.4, math.pi - 0.4)  # curls stay on the crown, never over the temples
            r = rng.uniform(0.95, 1.08)
            c = P(proj(np.array([[math.cos(b) * 1.05 * r, -fh * r * math.sin(b), 0.2]])))[0]
            rad = 0.09 * S
            draw.ellipse((c[0] - rad, c[1] - rad, c[0] + rad, c[1] + rad), fill=_tone(identity.hair_colour, rng.uniform(0.8, 1.2)))


def _draw_glasses(draw, identity, L, S) -> None:
    """Two rounded rectangular frames and a bridge."""
    colour = (*identity.glasses_colour, 255)
    width = max(2, int(0.03 * S))
    centres = []
    for idx in (range(36, 42), range(42, 48)):
        e = L[list(idx)]
        c = e.mean(axis=0) + [0, 0.01 * S]
        rx, ry = 0.26 * S * identity.eye_size, 0.17 * S
        draw.rounded_rectangle((c[0] - rx, c[1] - ry, c[0] + rx, c[1] + ry), radius=int(0.08 * S), outline=colour, width=width)
        centres.append((c, rx))
    (c0, r0), (c1, r1) = centres
    draw.line((c0[0] + r0, c0[1] - 0.05 * S, c1[0] - r1, c1[1] - 0.05 * S), fill=colour, width=width)


def _draw_occluder(draw, identity, proj, P, S, occ: Occluder) -> None:
    """A hand-like blob: a palm with four fingers, skin coloured, slightly darker than the face."""
    colour = _tone(identity.skin, 0.93)
    c = P(proj(np.array([[occ.x, occ.y, 1.2]])))[0]
    r = occ.size * S
    draw.ellipse((c[0] - r, c[1] - r * 0.8, c[0] + r, c[1] + r * 0.8), fill=colour)
    for k in range(4):
        a = math.radians(occ.angle) + (k - 1.5) * 0.35
        tip = c + np.array([math.cos(a), math.sin(a)]) * r * 1.9
        draw.line((c[0], c[1], tip[0], tip[1]), fill=colour, width=int(r * 0.42))
        draw.ellipse((tip[0] - r * 0.21, tip[1] - r * 0.21, tip[0] + r * 0.21, tip[1] + r * 0.21), fill=colour)
