"""A hand passing over part of the face, as in real videos of patients."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import ImageDraw

from engine.synth.identity import Identity
from engine.synth.projection import HeadPatch
from engine.synth.strokes import tone

_DEPTH = 1.2  # in front of the face (face units toward the camera)


@dataclass(frozen=True)
class Occluder:
    """A hand-like blob over part of the face: palm centre and radius in face units, fingers' direction in degrees."""

    centre_x: float
    centre_y: float
    radius: float
    finger_angle: float  # 0 points to the image right, -90 up

    def palm_centre(self) -> np.ndarray:
        """The palm's centre in face units, shape (1, 3)."""
        return np.array([[self.centre_x, self.centre_y, _DEPTH]])


def draw_occluder(draw: ImageDraw.ImageDraw, identity: Identity, patch: HeadPatch, occluder: Occluder) -> None:
    """A palm with four fingers, skin coloured, slightly darker than the face."""
    colour = tone(identity.skin, 0.93)
    palm = patch.from_face(occluder.palm_centre())[0]
    radius = occluder.radius * patch.unit_px
    draw.ellipse((palm[0] - radius, palm[1] - radius * 0.8, palm[0] + radius, palm[1] + radius * 0.8), fill=colour)
    for k in range(4):
        angle = math.radians(occluder.finger_angle) + (k - 1.5) * 0.35
        tip = palm + np.array([math.cos(angle), math.sin(angle)]) * radius * 1.9
        draw.line((palm[0], palm[1], tip[0], tip[1]), fill=colour, width=int(radius * 0.42))
        draw.ellipse((tip[0] - radius * 0.21, tip[1] - radius * 0.21, tip[0] + radius * 0.21, tip[1] + radius * 0.21), fill=colour)
