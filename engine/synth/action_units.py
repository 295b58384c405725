"""FACS action units: which ones the faces show, how a subject expresses pain, and how a coder scores it.

Intensities run 0-5; AU43 is 0/1 for "eyes closed" (larger values squeeze). What each AU draws is
described in ``engine.synth.landmarks`` (geometry) and ``engine.synth.shading`` (wrinkles, folds).
pain  AU4 brow lowerer, AU6 cheek raiser, AU7 lid tightener, AU9 nose wrinkler, AU10 upper lip raiser,
      AU43 eyes closed.
other AU12 lip corner puller (smile), AU20 lip stretcher, AU25 lips part, AU26 jaw drop.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.synth.identity import Identity

PAIN_AUS = ("AU4", "AU6", "AU7", "AU9", "AU10", "AU43")
OTHER_AUS = ("AU12", "AU20", "AU25", "AU26")
ALL_AUS = PAIN_AUS + OTHER_AUS
# How strongly one intensity unit of a pain AU shows (geometry and wrinkles), capped at the look of
# intensity 5. At 1 a PSPI-1 frame at 32-48 px is nearly indistinguishable from a neutral one, and
# scratch networks trained for a few epochs on the demo's few hundred faces stay at chance level.
# The labels (from the coded intensities) are unchanged by it.
PAIN_VISUAL_GAIN = 2.0


def intensities_per_side(au_intensities: dict[str, float], identity: Identity) -> tuple[dict[str, float], dict[str, float]]:
    """What the image-left and image-right halves of the face show, every AU present (0 when not given).

    Pain AUs are drawn ``PAIN_VISUAL_GAIN`` times stronger; a mouth open at rest is the least AU26;
    an asymmetric identity shows every AU but AU43 weaker on the image-right side.
    """
    left = {name: float(au_intensities.get(name, 0.0)) for name in ALL_AUS}
    for name in PAIN_AUS[:-1]:  # not AU43 (eyes closed or not)
        left[name] = min(5.0, PAIN_VISUAL_GAIN * left[name])  # the strongest look stays the scale's 5
    left["AU26"] = max(left["AU26"], identity.rest_mouth_open)
    right = {name: (value * (1 - identity.asymmetry) if name != "AU43" else value) for name, value in left.items()}
    return left, right


@dataclass(frozen=True)
class Expresser:
    """How a subject shows pain: per-AU gains (0-1), and whether eyes close in strong pain."""

    gains: dict[str, float]
    closes_eyes: bool

    @staticmethod
    def draw(rng: np.random.Generator, strength: float = 1.0) -> "Expresser":
        """A random expresser; ``strength`` scales every gain (how expressive this person is overall)."""
        gains = {
            "AU4": rng.uniform(0.5, 1.0),
            "AU6": rng.uniform(0.4, 1.0),
            "AU7": rng.uniform(0.5, 1.0),
            "AU9": rng.uniform(0.1, 0.8),
            "AU10": rng.uniform(0.2, 0.9),
        }
        return Expresser({au: gain * strength for au, gain in gains.items()}, bool(rng.random() < 0.6))

    def intensities(self, pain: float, rng: np.random.Generator) -> dict[str, float]:
        """Continuous pain-AU intensities (0-5) for a pain level in [0, 1], with a little noise when in pain."""
        out = {}
        for au, gain in self.gains.items():
            value = 5 * gain * pain + (rng.normal(0, 0.3) if pain > 0 else 0.0)
            out[au] = float(np.clip(value, 0, 5)) if pain > 0 else 0.0
        out["AU43"] = 1.0 if self.closes_eyes and pain > 0.6 else 0.0
        return out


def facs_coding(au_intensities: dict[str, float]) -> dict[str, int]:
    """FACS coding of continuous intensities: whole numbers 0-5 (AU43 0/1)."""
    return {au: int(min(5, max(0, round(value)))) if au != "AU43" else int(value > 0) for au, value in au_intensities.items()}


def visible_intensities(au_intensities: dict[str, float], coded: dict[str, int]) -> dict[str, float]:
    """What the face shows: the continuous value where the coder saw the AU, nothing where not."""
    return {au: (value if coded.get(au, 0) > 0 else 0.0) for au, value in au_intensities.items()}
