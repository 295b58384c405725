"""Face detection with MTCNN and the square crop around the face.

The detector returns every face it finds (a ``Detection``); the training pipeline uses the most
confident one, the upload path the largest one above the confidence threshold. The crop is a square centred on the MTCNN box, of
side ``max(box width, box height) * (1 + 2 * margin)``; where it leaves the image it is padded with
white (255, 255, 255), the colour the background becomes anyway. All coordinates are in pixels,
x to the right and y down, with (0, 0) the top-left corner of the top-left pixel.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
from PIL import Image

WHITE = (255, 255, 255)


@dataclass(frozen=True)
class FaceBox:
    """One detected face: box corners in image pixels and MTCNN's confidence in [0, 1]."""

    x1: float
    y1: float
    x2: float
    y2: float
    confidence: float

    @property
    def width(self) -> float:
        return self.x2 - self.x1

    @property
    def height(self) -> float:
        return self.y2 - self.y1


@dataclass(frozen=True)
class CropBox:
    """The square region of the source image that becomes the crop: top-left corner and side, in pixels."""

    left: int
    top: int
    side: int

    def to_crop(self, points: np.ndarray, crop_size: int) -> np.ndarray:
        """Map (K, 2) image-pixel points into the ``crop_size`` x ``crop_size`` crop's pixels."""
        scale = crop_size / self.side
        offset = np.array([self.left, self.top], dtype=np.float64)
        return (np.asarray(points, dtype=np.float64) - offset) * scale

    def from_crop(self, points: np.ndarray, crop_size: int) -> np.ndarray:
        """Map (K, 2) crop pixels back into the source image's pixels (the inverse of ``to_crop``)."""
        offset = np.array([self.left, self.top], dtype=np.float64)
        return np.asarray(points, dtype=np.float64) * (self.side / crop_size) + offset


@dataclass(frozen=True)
class Detection:
    """Everything MTCNN found in one image, returned to the caller (never kept on the detector, which
    several threads share): every face at any confidence, in image pixels, in MTCNN's order."""

    faces: tuple[FaceBox, ...] = ()

    @property
    def best_confidence(self) -> float:
        """The highest confidence of any candidate (0.0 when MTCNN found none)."""
        return max((face.confidence for face in self.faces), default=0.0)

    def most_confident(self) -> FaceBox | None:
        """The highest-confidence face (ties: MTCNN's first); the training pipeline's choice."""
        return max(self.faces, key=lambda face: face.confidence, default=None)

    def confident(self, min_confidence: float) -> list[FaceBox]:
        """The faces at or above ``min_confidence``, largest first (the upload's choice and its boxes)."""
        kept = [face for face in self.faces if face.confidence >= min_confidence]
        return sorted(kept, key=lambda face: face.width * face.height, reverse=True)


@contextmanager
def _without_lz4_close_noise():
    """mtcnn loads its weights with joblib, which leaves an lz4 reader to be closed by the garbage collector;
    on Python 3.13 that close prints "Exception ignored ... ValueError: I/O operation on closed file" with a
    traceback on stderr (3.11 and 3.12 stay silent). Only that one error is dropped, while the weights load."""
    import gc
    import sys

    previous = sys.unraisablehook

    def hook(unraisable) -> None:
        if not (isinstance(unraisable.exc_value, ValueError) and "closed file" in str(unraisable.exc_value)):
            previous(unraisable)

    sys.unraisablehook = hook
    try:
        yield
        gc.collect()  # the readers are closed now, under this hook
    finally:
        sys.unraisablehook = previous


class FaceDetector:
    """MTCNN, created once (TensorFlow import and weight loading take seconds): reuse one per process.

    ``detect`` keeps nothing about an image on the instance, so threads may share one detector."""

    def __init__(self) -> None:
        from mtcnn import MTCNN  # imports TensorFlow: only when a detector is really needed
        from mtcnn.stages import StageONet, StagePNet, StageRNet

        # mtcnn signals "no candidate left" by feeding an empty batch to the next network and catching
        # TensorFlow's error, which TensorFlow also logs ("Incompatible shapes: [0,48,48,3]"): stop early.
        with _without_lz4_close_noise():
            pnet, rnet, onet = StagePNet(), StageRNet(), StageONet()
        for stage in (pnet, rnet, onet):
            _compile(stage)
        refine = [_UnlessEmpty(rnet), _UnlessEmpty(onet)]
        self._mtcnn = MTCNN(stages=[pnet, *refine])
        # The same refinement networks fed with given candidate boxes instead of P-Net's search (``near``).
        self._refiner = MTCNN(stages=[_GivenCandidates(), *refine])
        self.calls = 0  # detections run by this instance (tests check that a warm cache runs none)
        self.near_calls = 0  # images searched only near a known box (``near``)

    def warm_up(self) -> None:
        """Trace the compiled networks now rather than on a user's first photo: a synthetic face (never a
        real one) at two sizes, so every stage runs and its graph already takes any size."""
        from engine.synth import Pose, random_identity, render_face

        rng = np.random.default_rng(0)
        identity = random_identity(rng)
        for size in ((320, 240), (400, 300)):
            self.detect(render_face(identity, {}, Pose(scale=0.3), size, rng).image)

    def detect(self, rgb: np.ndarray, max_side: int = 0) -> Detection:
        """Every face MTCNN finds in an (H, W, 3) uint8 RGB image, boxes in that image's pixels.

        ``max_side`` (``[preprocess] detect_max_side``): when > 0 and the image's *shorter* side is
        longer, MTCNN sees a copy scaled so that side is ``max_side`` pixels."""
        (rgb,), scale = _reduced([rgb], max_side)
        self.calls += 1
        # fit_to_image=False keeps the box MTCNN predicted even where it passes the image edge, so the
        # crop stays centred on the face; the crop pads with white instead.
        rows = self._mtcnn.detect_faces(rgb, fit_to_image=False, output_type="numpy", box_format="xyxy")
        return _detections(rows, 1, scale)[0]

    def detect_batch(self, images: list[np.ndarray], max_side: int = 0) -> list[Detection]:
        """``detect`` for several images of one size at once (video frames): one MTCNN pass over the batch,
        several times faster per image than one call each on a CPU.

        MTCNN's ``min_face_size`` stays at its default (20): with larger values mtcnn 1.0 builds an image
        pyramid that misses faces filling half the frame, or fails on a too-small level."""
        if not images:
            return []
        images, scale = _reduced(images, max_side, VIDEO_REDUCING_GAP)
        self.calls += len(images)
        rows = self._mtcnn.detect_faces(list(images), fit_to_image=False, output_type="numpy", box_format="xyxy")
        return _detections(rows, len(images), scale)

    def near(self, images: list[np.ndarray], boxes: list[FaceBox], max_side: int = 0) -> list[Detection]:
        """The faces close to a known box in each image (video frames of one size; ``boxes[i]`` in
        ``images[i]``'s pixels, usually where the followed face was last seen), in one pass.

        A video tracker's shortcut through MTCNN: its first network (P-Net), which searches the whole
        image at every scale and is most of a detection's cost, is replaced by candidate squares around
        the known box (shifted by up to ``NEAR_SHIFT`` of its side, resized by ``NEAR_SIZES``); MTCNN's own
        refinement networks (R-Net, O-Net) then judge and place them, with their usual thresholds. So a
        face found here is a face MTCNN confirmed, with MTCNN's box and confidence; a face that moved
        further, or a face elsewhere in the image, is not found here (the caller searches the whole image)."""
        if not images:
            return []
        images, scale = _reduced(images, max_side, VIDEO_REDUCING_GAP)
        self.near_calls += len(images)
        candidates = np.concatenate([_candidates_around(i, box, scale) for i, box in enumerate(boxes)])
        rows = self._refiner.detect_faces(list(images), fit_to_image=False, output_type="numpy", box_format="xyxy",
                                          candidates=candidates)
        return _detections(rows, len(images), scale)


VIDEO_REDUCING_GAP = 2.0  # detect_batch and near (video frames): see _reduced

# Candidate squares for ``FaceDetector.near``: the box's square shifted by up to NEAR_SHIFT of its side
# (nine positions), and its square at the centre resized by NEAR_SIZES.
NEAR_SHIFT = 0.25
NEAR_SIZES = (0.8, 1.0, 1.25)


def _candidates_around(index: int, box: FaceBox, scale: float) -> np.ndarray:
    """Rows [image index, x1, y1, x2, y2, 1.0] (MTCNN's candidate layout) of squares around ``box``,
    in the reduced image's pixels."""
    side = max(box.width, box.height) * scale
    cx, cy = (box.x1 + box.x2) / 2.0 * scale, (box.y1 + box.y2) / 2.0 * scale
    shifts = [(dx, dy) for dx in (-NEAR_SHIFT, 0.0, NEAR_SHIFT) for dy in (-NEAR_SHIFT, 0.0, NEAR_SHIFT)]
    squares = [(dx, dy, 1.0) for dx, dy in shifts] + [(0.0, 0.0, size) for size in NEAR_SIZES if size != 1.0]
    rows = []
    for dx, dy, size in squares:
        x, y, half = cx + dx * side, cy + dy * side, side * size / 2.0
        rows.append([index, x - half, y - half, x + half, y + half, 1.0])
    return np.asarray(rows, dtype=np.float64)


def _reduced(images: list[np.ndarray], max_side: int, reducing_gap: float | None = None) -> tuple[list[np.ndarray], float]:
    """The images (all one size) scaled so their shorter side is ``max_side`` when it is longer, and the scale.

    ``reducing_gap`` (PIL): shrink by whole factors first (box filter), then resample: several times
    faster for large reductions (video frames), and not byte-identical to the plain resize photos get."""
    height, width = images[0].shape[:2]
    if not (max_side > 0 and min(height, width) > max_side):
        return images, 1.0
    scale = max_side / min(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return [np.asarray(Image.fromarray(image).resize(size, Image.BILINEAR, reducing_gap=reducing_gap))
            for image in images], scale


def _detections(rows, count: int, scale: float) -> list[Detection]:
    """MTCNN's numpy rows (image index, x1, y1, x2, y2, confidence, keypoints) as one Detection per image,
    boxes in the caller's pixels."""
    rows = np.asarray(rows, dtype=np.float64)
    rows = rows.reshape(-1, rows.shape[-1]) if rows.size else np.zeros((0, 6))
    found: list[list[FaceBox]] = [[] for _ in range(count)]
    for row in rows:  # column 0: which image of the batch
        found[int(row[0])].append(FaceBox(*(float(v) / scale for v in row[1:5]), confidence=float(row[5])))
    return [Detection(tuple(faces)) for faces in found]


def square_crop_box(face: FaceBox, margin: float) -> CropBox:
    """The square around ``face``: side = longer box side * (1 + 2 * margin), same centre as the box."""
    side = max(face.width, face.height) * (1.0 + 2.0 * margin)
    side_px = max(1, int(round(side)))
    cx = (face.x1 + face.x2) / 2.0
    cy = (face.y1 + face.y2) / 2.0
    return CropBox(left=int(round(cx - side_px / 2.0)), top=int(round(cy - side_px / 2.0)), side=side_px)


def crop_square(rgb: np.ndarray, box: CropBox, crop_size: int) -> np.ndarray:
    """Cut ``box`` out of an (H, W, 3) uint8 image, white where it leaves the image, resized to
    (crop_size, crop_size, 3) uint8."""
    height, width = rgb.shape[:2]
    canvas = np.full((box.side, box.side, 3), 255, dtype=np.uint8)
    # Overlap of the square with the image, in image coordinates, then in canvas coordinates.
    x0, y0 = max(box.left, 0), max(box.top, 0)
    x1, y1 = min(box.left + box.side, width), min(box.top + box.side, height)
    if x1 > x0 and y1 > y0:
        canvas[y0 - box.top : y1 - box.top, x0 - box.left : x1 - box.left] = rgb[y0:y1, x0:x1, :3]
    if box.side == crop_size:
        return canvas
    # LANCZOS antialiases when shrinking; PIL's resampling is deterministic across runs and machines.
    return np.asarray(Image.fromarray(canvas).resize((crop_size, crop_size), Image.Resampling.LANCZOS))


def _compile(stage) -> None:
    """Run an MTCNN stage's network as one TensorFlow graph instead of layer by layer.

    mtcnn calls its three small networks eagerly: about a hundred Keras layer calls per image, whose
    Python overhead was most of a detection (0.24 s for one 320x180 frame, 0.055 s compiled) for the same
    boxes and confidences (tests/test_batch_predict.py compares with mtcnn's own eager run).
    ``reduce_retracing``: after two image or batch sizes the graph takes any size, so photos of new
    sizes are not traced again (warm-up detects two sizes)."""
    import tensorflow as tf

    # autograph=False: the networks have no Python control flow to convert, and autograph would write
    # its converted code to the temporary folder (nothing may be written while serving uploads).
    stage._model = tf.function(stage.model, reduce_retracing=True, autograph=False)


class _GivenCandidates:
    """MTCNN's first stage for ``FaceDetector.near``: passes on the candidate boxes given to
    ``detect_faces(..., candidates=rows)`` instead of searching the image with P-Net."""

    id = 1
    name = "Given candidates"

    def __call__(self, candidates=None, **kwargs):
        return np.empty((0, 6)) if candidates is None else candidates


class _UnlessEmpty:
    """An MTCNN refinement stage that passes an empty set of candidates on instead of running its
    network on an empty batch (same result as mtcnn's own no-face path: no boxes)."""

    def __init__(self, stage):
        self.stage = stage

    @property
    def id(self):
        return self.stage.id

    @property
    def name(self):
        return self.stage.name

    def __call__(self, bboxes_batch=None, **kwargs):
        if bboxes_batch is not None and len(bboxes_batch) == 0:
            return np.empty((0, 16))
        return self.stage(bboxes_batch=bboxes_batch, **kwargs)
