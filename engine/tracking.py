"""One person followed across the frames of a clip: which detected face is "the" face in each frame.

The person is the largest face of the first frame that has one (the person filmed is usually the one
nearest the camera). In every later frame the tracked face is the candidate that continues the last
one: its box overlaps or lies close to the last box, its size is similar, and it covers where the last
frame's 68 landmarks were. A candidate that continues nothing is another person and is only counted.
When no candidate continues the track, the face is lost in that frame (a gap on the timeline: nothing
is interpolated); it is found again by the same rules, which allow more movement the longer it was away.

Pure bookkeeping on boxes and points (no detector here), so it is tested with made-up boxes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from engine.preprocess.detect import FaceBox

# How far the face may move between two analysed frames: its centre by this share of its side, plus
# AWAY_MOVE per second since it was last seen; its side by this factor (either way), plus AWAY_GROWTH per second.
MAX_MOVE = 0.6
AWAY_MOVE = 1.5
MAX_GROWTH = 1.5
AWAY_GROWTH = 0.5
# The last landmarks are compared with a candidate only this soon after them, with this margin (share of its side).
NEAR_SECONDS = 0.5
LANDMARK_PAD = 0.25


@dataclass
class Track:
    """Where the followed face was last seen."""

    box: FaceBox
    t: float
    landmarks: np.ndarray | None = None  # (68, 2) in the frame's pixels, once known


@dataclass
class FaceTracker:
    """Follow one face over frames given in time order: ``follow(faces, t)`` then ``seen(landmarks)``."""

    track: Track | None = None
    frames_with_others: int = 0  # frames where faces other than the tracked one were found
    most_others: int = 0  # the most other faces in one frame
    lost: int = 0  # frames where the face could not be followed
    _pending: FaceBox | None = field(default=None, repr=False)

    def follow(self, faces: list[FaceBox], t: float, whole_frame: bool = True) -> FaceBox | None:
        """The tracked person's face among ``faces`` (largest first) at time ``t``, or None (lost).

        ``whole_frame``: False when ``faces`` were only looked for near the person (``FaceDetector.near``):
        any other face there is not counted as another person (the frame was not searched for people)."""
        if self.track is None:
            chosen = faces[0] if faces else None  # the largest face starts the track
        else:
            chosen = self._continuing(faces, t)
        others = len(faces) - (chosen is not None) if whole_frame else 0
        if others:
            self.frames_with_others += 1
            self.most_others = max(self.most_others, others)
        if chosen is None:
            self.lost += self.track is not None
        else:
            self.track = Track(chosen, t, self.track.landmarks if self.track else None)
        return chosen

    def seen(self, landmarks: np.ndarray | None) -> None:
        """The 68 landmarks (frame pixels) found on the face ``follow`` just returned."""
        if self.track is not None and landmarks is not None:
            self.track.landmarks = np.asarray(landmarks, dtype=np.float64)

    def continues(self, faces: list[FaceBox], t: float) -> bool:
        """Whether one of ``faces`` would continue the track at ``t`` (nothing is changed)."""
        return self.track is not None and self._continuing(faces, t) is not None

    def _continuing(self, faces: list[FaceBox], t: float) -> FaceBox | None:
        scored = [(cost, face) for face in faces if (cost := continuation_cost(self.track, face, t)) is not None]
        return min(scored, key=lambda pair: pair[0])[1] if scored else None

    def note(self) -> str:
        """A sentence about other people, or ""."""
        if not self.frames_with_others:
            return ""
        people = self.most_others + 1
        return (f"Up to {people} faces were seen in {self.frames_with_others} frame{'s' if self.frames_with_others > 1 else ''}; "
                "only the person followed from the start (the largest face then) is analysed, the others are ignored.")


def side(box: FaceBox) -> float:
    return max(box.width, box.height, 1e-6)


def centre(box: FaceBox) -> np.ndarray:
    return np.array([(box.x1 + box.x2) / 2.0, (box.y1 + box.y2) / 2.0])


def iou(a: FaceBox, b: FaceBox) -> float:
    width = max(0.0, min(a.x2, b.x2) - max(a.x1, b.x1))
    height = max(0.0, min(a.y2, b.y2) - max(a.y1, b.y1))
    inter = width * height
    union = a.width * a.height + b.width * b.height - inter
    return inter / union if union > 0 else 0.0


def continuation_cost(track: Track, face: FaceBox, t: float) -> float | None:
    """How well ``face`` continues ``track`` (lower is better), or None when it cannot be the same face.

    Terms: box overlap (1 - IoU), centre movement in units of the face's side, change of size (log
    ratio), and the share of the last frame's eye, brow, nose and mouth landmarks that fall outside the
    candidate's box (more than half outside: not the same face)."""
    away = max(0.0, t - track.t)
    last = side(track.box)
    move = float(np.linalg.norm(centre(face) - centre(track.box))) / last
    growth = abs(math.log(side(face) / last))
    if move > MAX_MOVE + AWAY_MOVE * away or growth > math.log(MAX_GROWTH + AWAY_GROWTH * away):
        return None
    outside = 0.0
    if track.landmarks is not None and away <= NEAR_SECONDS:
        # Where the eyes, nose and mouth just were must lie in (or next to) the candidate's box.
        points, pad = track.landmarks[17:], LANDMARK_PAD * side(face)
        inside = ((points[:, 0] >= face.x1 - pad) & (points[:, 0] <= face.x2 + pad)
                  & (points[:, 1] >= face.y1 - pad) & (points[:, 1] <= face.y2 + pad))
        outside = 1.0 - float(inside.mean())
        if outside > 0.5:
            return None
    return (1.0 - iou(track.box, face)) + move + growth + outside
