"""One person in front of one camera: what stays the same over the frames of a sequence or a video."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.synth.action_units import Expresser
from engine.synth.identity import Identity
from engine.synth.occluder import Occluder
from engine.synth.projection import Pose
from engine.synth.render import RenderedFace, render_face


@dataclass(frozen=True, eq=False)
class Sitting:
    """Who is filmed (identity, how they show pain), in which room (background) and light."""

    identity: Identity
    expresser: Expresser
    background: np.ndarray  # (H, W, 3) uint8; its size is the frame size
    light: tuple[float, float]  # (x, y) direction of the key light

    @property
    def frame_size(self) -> tuple[int, int]:
        """(width, height) of every frame."""
        height, width = self.background.shape[:2]
        return width, height

    def render(self, au_intensities: dict[str, float], pose: Pose, rng: np.random.Generator,
               occluder: Occluder | None = None) -> RenderedFace:
        """One frame: this person showing ``au_intensities`` with the head at ``pose``; ``rng`` draws the sensor noise."""
        return render_face(self.identity, au_intensities, pose, self.frame_size, rng, self.background, occluder=occluder,
                           light=self.light)
