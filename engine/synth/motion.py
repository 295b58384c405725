"""How things change over the frames of a sequence: head drift around a resting pose, pain episodes."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.synth.projection import Pose


def smooth_noise(rng: np.random.Generator, n_frames: int, scale: float, smoothing: int = 4) -> np.ndarray:
    """A slowly varying random signal of ``n_frames`` values with standard deviation ``scale``.

    White noise filtered by a Hann window about ``2 * smoothing`` frames wide.
    """
    raw = rng.normal(0, 1, n_frames + 2 * smoothing)
    kernel = np.hanning(2 * smoothing + 3)[1:-1]
    kernel /= kernel.sum()
    out = np.convolve(raw, kernel, mode="same")[smoothing : smoothing + n_frames]
    return out * scale / np.sqrt(np.sum(kernel**2))  # unit variance before scaling, whatever n_frames


def episode(n_frames: int, start: int, length: int, amplitude: float) -> np.ndarray:
    """A raised-cosine rise and fall over frames [start, start+length), peaking at ``amplitude``; 0 elsewhere."""
    t = np.arange(n_frames, dtype=np.float64)
    x = (t - start) / max(1, length)
    inside = (x >= 0) & (x <= 1)
    return np.where(inside, amplitude * np.sin(np.pi * np.clip(x, 0, 1)) ** 0.7, 0.0)


def random_pose(rng: np.random.Generator, scale_range: tuple[float, float], cy_range: tuple[float, float],
                max_roll: float = 6.0) -> Pose:
    """A resting head pose: turned a little (yaw up to 12 degrees), near the middle of the frame."""
    return Pose(
        yaw=float(rng.uniform(-12, 12)),
        pitch=float(rng.uniform(-5, 5)),
        roll=float(rng.uniform(-max_roll, max_roll)),
        scale=float(rng.uniform(*scale_range)),
        cx=float(rng.uniform(0.42, 0.58)),
        cy=float(rng.uniform(*cy_range)),
    )


@dataclass(frozen=True)
class HeadMotion:
    """Per-frame drift of the head around its resting pose: degrees, relative scale, fractions of the canvas."""

    yaw: np.ndarray
    pitch: np.ndarray
    roll: np.ndarray
    scale: np.ndarray
    cx: np.ndarray
    cy: np.ndarray

    @staticmethod
    def draw(rng: np.random.Generator, n_frames: int) -> "HeadMotion":
        # Keyword order = draw order.
        return HeadMotion(
            yaw=smooth_noise(rng, n_frames, 3.0),
            pitch=smooth_noise(rng, n_frames, 1.5),
            roll=smooth_noise(rng, n_frames, 1.5),
            scale=smooth_noise(rng, n_frames, 0.02),
            cx=smooth_noise(rng, n_frames, 0.01),
            cy=smooth_noise(rng, n_frames, 0.008),
        )

    def pose_at(self, resting: Pose, frame: int) -> Pose:
        """The head's pose at ``frame``: the resting pose moved by this frame's drift."""
        return Pose(
            yaw=float(resting.yaw + self.yaw[frame]),
            pitch=float(resting.pitch + self.pitch[frame]),
            roll=float(resting.roll + self.roll[frame]),
            scale=float(resting.scale * (1 + self.scale[frame])),
            cx=float(resting.cx + self.cx[frame]),
            cy=float(resting.cy + self.cy[frame]),
        )
