"""Who a synthetic person is: the stable traits drawn once per subject (no real person behind any of them)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

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
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


@dataclass(frozen=True)
class Identity:
    """Stable traits of one synthetic person (drawn once per subject from a seeded RNG).

    Lengths are in face units (half the face width, see ``engine.synth.landmarks``); colours are RGB.
    """

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
        """The traits as JSON-ready values (colours as lists), for the generator's record."""
        return {trait: (list(value) if isinstance(value, tuple) else value) for trait, value in self.__dict__.items()}


def random_identity(rng: np.random.Generator, cp_like: bool = False) -> Identity:
    """Draw one person's traits. ``cp_like`` adds asymmetry and an open mouth at rest (CP population)."""
    skin = _random_skin(rng)
    hair = _random_hair_colour(rng, skin)
    lip = np.clip(skin * np.array([0.86, 0.62, 0.62]) + np.array([18, 0, 4]), 0, 255)
    # The keyword order below is the order of the draws: changing it changes every generated file.
    return Identity(
        face_width=float(rng.uniform(0.9, 1.1)),
        chin_length=float(rng.uniform(1.5, 1.8)),
        forehead=float(rng.uniform(1.15, 1.4)),
        jaw_power=float(rng.uniform(0.75, 1.25)),
        skin=tuple(int(channel) for channel in skin),
        hair_colour=tuple(int(channel) for channel in hair),
        hair_style=str(rng.choice(_HAIR_STYLES, p=_HAIR_STYLE_P)),
        eye_spacing=float(rng.uniform(0.39, 0.49)),
        eye_size=float(rng.uniform(0.88, 1.12)),
        eye_open=float(rng.uniform(0.85, 1.15)),
        iris=tuple(int(channel) for channel in _IRIS_COLOURS[int(rng.integers(len(_IRIS_COLOURS)))]),
        brow_thickness=float(rng.uniform(0.045, 0.085)),
        brow_height=float(rng.uniform(-0.03, 0.05)),
        brow_arch=float(rng.uniform(0.04, 0.12)),
        nose_length=float(rng.uniform(0.9, 1.12)),
        nose_width=float(rng.uniform(0.85, 1.2)),
        mouth_width=float(rng.uniform(0.85, 1.15)),
        lip_thickness=float(rng.uniform(0.75, 1.25)),
        lip_colour=tuple(int(channel) for channel in lip),
        ear_size=float(rng.uniform(0.85, 1.15)),
        glasses=bool(rng.random() < 0.2),
        glasses_colour=tuple(int(channel) for channel in rng.integers(10, 120, 3)),
        beard=float(rng.uniform(0.3, 0.9)) if rng.random() < 0.15 else 0.0,
        shirt=tuple(int(channel) for channel in rng.integers(20, 235, 3)),
        texture_seed=int(rng.integers(2**31)),
        asymmetry=float(rng.uniform(0.25, 0.75)) if cp_like else 0.0,
        rest_mouth_open=float(rng.uniform(0.5, 2.5)) if cp_like and rng.random() < 0.6 else 0.0,
    )


def _random_skin(rng: np.random.Generator) -> np.ndarray:
    """A skin colour between two neighbouring anchors of the ramp, slightly tinted per channel."""
    tone = rng.uniform(0, len(_SKIN_RAMP) - 1.001)
    low = int(tone)
    skin = _SKIN_RAMP[low] * (1 - (tone - low)) + _SKIN_RAMP[low + 1] * (tone - low)
    return np.clip(skin * rng.uniform(0.95, 1.05, 3), 0, 255)


def _random_hair_colour(rng: np.random.Generator, skin: np.ndarray) -> np.ndarray:
    hair_name = str(rng.choice(list(_HAIR_COLOURS)))
    hair = np.array(_HAIR_COLOURS[hair_name], dtype=np.float32)
    if float(skin @ _LUMA) < 130 and hair_name in ("blonde", "red", "brown"):  # keep hair plausible on dark skin
        hair = np.array(_HAIR_COLOURS["black"], dtype=np.float32)
    return hair
