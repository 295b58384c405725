"""From face units to image pixels, and from image pixels to the supersampled patch the head is drawn in.

Face units: x to the image right, y down, z toward the camera; the origin is between the eyes on the
eye line and one unit is half the face width.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

# The head is drawn at twice the output resolution and reduced, for smooth edges.
SUPERSAMPLE = 2


@dataclass(frozen=True)
class Pose:
    """Head pose and placement. Angles in degrees; scale = face half-width / canvas height; cx, cy in [0, 1]."""

    yaw: float = 0.0
    pitch: float = 0.0
    roll: float = 0.0
    scale: float = 0.2
    cx: float = 0.5
    cy: float = 0.42


class Projector:
    """Rotates face-unit points (yaw, pitch, roll) about the nose root and maps them to image pixels."""

    def __init__(self, pose: Pose, canvas_size: tuple[int, int]):
        width, height = canvas_size
        self.pixels_per_unit = float(pose.scale * height)
        self.origin = np.array([pose.cx * width, pose.cy * height])
        yaw, pitch, roll = (math.radians(angle) for angle in (pose.yaw, pose.pitch, pose.roll))
        about_y = np.array([[math.cos(yaw), 0, math.sin(yaw)], [0, 1, 0], [-math.sin(yaw), 0, math.cos(yaw)]])
        about_x = np.array([[1, 0, 0], [0, math.cos(pitch), -math.sin(pitch)], [0, math.sin(pitch), math.cos(pitch)]])
        about_z = np.array([[math.cos(roll), -math.sin(roll), 0], [math.sin(roll), math.cos(roll), 0], [0, 0, 1]])
        self.rotation = about_z @ about_x @ about_y
        self.roll = roll
        self.pivot = np.array([0.0, 0.45, 0.0])

    def head(self, points: np.ndarray) -> np.ndarray:
        """(n, 3) face-unit points (or (n, 2), then at depth 0.5) to (n, 2) pixels, fully rotated."""
        points = np.atleast_2d(points)
        if points.shape[1] == 2:
            points = np.concatenate([points, np.full((len(points), 1), 0.5)], axis=1)
        rotated = (points - self.pivot) @ self.rotation.T + self.pivot
        return rotated[:, :2] * self.pixels_per_unit + self.origin

    def body(self, points: np.ndarray) -> np.ndarray:
        """Body parts (neck, torso): only a third of the roll, no yaw or pitch."""
        points = np.atleast_2d(np.asarray(points, dtype=np.float64))[:, :2]
        cos, sin = math.cos(self.roll / 3), math.sin(self.roll / 3)
        rotation = np.array([[cos, -sin], [sin, cos]])
        return (points - self.pivot[:2]) @ rotation.T * self.pixels_per_unit + self.pivot[:2] * self.pixels_per_unit + self.origin


@dataclass(frozen=True)
class HeadPatch:
    """The image region the head is drawn in, at ``SUPERSAMPLE`` times the output resolution."""

    x0: int  # top-left corner in image pixels
    y0: int
    width: int  # size in image pixels (the drawing surface is SUPERSAMPLE times larger)
    height: int
    projector: Projector

    @property
    def unit_px(self) -> float:
        """Pixels per face unit on the supersampled drawing surface."""
        return self.projector.pixels_per_unit * SUPERSAMPLE

    def to_patch(self, image_points: np.ndarray) -> np.ndarray:
        """Image pixels to pixels of the supersampled drawing surface."""
        return (np.atleast_2d(image_points) - np.array([self.x0, self.y0], dtype=np.float64)) * SUPERSAMPLE

    def from_face(self, face_points: np.ndarray) -> np.ndarray:
        """Face units (rotated with the head) to pixels of the supersampled drawing surface."""
        return self.to_patch(self.projector.head(face_points))
