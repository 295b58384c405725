"""One image through the whole preprocessing, in memory: detect, crop, whiten the background, landmarks.

    rgb (H, W, 3) uint8 ──MTCNN──► face box ──square crop + margin, white padding──► crop (S, S, 3)
        ──background (u2net | fallback | none)──► crop on white ──dlib──► 68 landmarks in crop pixels

``preprocess_image`` never touches a file, so the upload page can run it on one photo. The table
runner (``engine.preprocess.batch``) wraps it with the cache and a process pool.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass, field
from typing import Mapping

import numpy as np

from engine.config import PreprocessSection
from engine.preprocess.background import U2netBackground, choose_background, face_hull_mask, whiten_outside
from engine.preprocess.decode import DECODER_VERSION, decode_image  # noqa: F401  (decode_image: the training path's decoder)
from engine.preprocess.detect import CropBox, FaceBox, FaceDetector, crop_square, square_crop_box
from engine.preprocess.landmarks import LandmarkPredictor

# Bump when the crop, background or landmark computation changes: old cache entries stop matching.
PIPELINE_VERSION = 1
STEPS = ("models", "decode", "detect", "crop", "background", "landmarks", "write")
# Which detected face is preprocessed: the training pipeline takes the most confident (the paper's
# frames hold one person); uploads take the largest above the threshold (the person photographed).
MOST_CONFIDENT, LARGEST = "most_confident", "largest"


@dataclass(frozen=True)
class PreprocessParams:
    """Everything that decides the output; its ``tag`` is part of every cache key."""

    margin: float = 0.2  # border around the MTCNN box, share of the box's longer side, each side
    crop_size: int = 224  # side of the stored crop, pixels
    min_confidence: float = 0.9  # faces MTCNN scores below this count as "no face"
    # Detection runs on a copy whose shorter side is at most this many pixels (0: full resolution);
    # the box is mapped back and the crop taken from the full image. Faces fill much of a frame in
    # these datasets, and MTCNN's time grows with the pixel count.
    detect_max_side: int = 0
    background: str = "fallback"  # the method that runs: u2net | fallback | none (never "auto")
    u2net_model: str = field(default="", compare=False)  # the ONNX file, when background == "u2net"
    u2net_model_sha256: str = ""  # identifies the model in the cache key, wherever the file lies

    def tag(self) -> str:
        """Hex digest of the parameters that change the output (not the model's location)."""
        data = {k: v for k, v in asdict(self).items() if k != "u2net_model"}
        data["version"] = PIPELINE_VERSION
        data["decoder"] = DECODER_VERSION  # the cached crops were cut from the decoder's pixels
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


@dataclass(eq=False)
class FaceResult:
    """A face found and preprocessed. Coordinates: ``face`` and ``crop_box`` in source-image pixels,
    landmarks in crop pixels (0..crop_size)."""

    crop: np.ndarray  # (crop_size, crop_size, 3) uint8, background white
    face: FaceBox  # MTCNN's box and confidence
    crop_box: CropBox  # the square of the source image the crop shows
    background_method: str  # u2net | fallback | none
    landmarks: np.ndarray  # (68, 2) float64, dlib on the final crop
    dataset_landmarks: np.ndarray | None = None  # (K, 2) float64, the dataset's own points mapped into the crop
    dataset_landmark_format: str = ""  # "aam66", "dlib68" or ""
    timings: dict[str, float] = field(default_factory=dict, compare=False)  # seconds per step
    faces: tuple[FaceBox, ...] = ()  # every face at or above the threshold, largest first (not cached)

    def __eq__(self, other: object) -> bool:
        """Equal results: same arrays and values (timings aside), e.g. a cache entry and a fresh run."""
        if not isinstance(other, FaceResult):
            return NotImplemented
        arrays = ("crop", "landmarks", "dataset_landmarks")
        same_arrays = all(
            (a is None and b is None) or (a is not None and b is not None and np.array_equal(a, b))
            for a, b in ((getattr(self, n), getattr(other, n)) for n in arrays)
        )
        scalars = ("face", "crop_box", "background_method", "dataset_landmark_format")
        return same_arrays and all(getattr(self, n) == getattr(other, n) for n in scalars)


@dataclass
class NoFace:
    """No face at or above ``min_confidence``; ``confidence`` is the best MTCNN gave (0.0 when none)."""

    confidence: float = 0.0
    timings: dict[str, float] = field(default_factory=dict, compare=False)


def params_from_section(section: PreprocessSection, environ: Mapping[str, str] | None = None) -> tuple[PreprocessParams, str]:
    """Resolve a config section into parameters (``auto`` becomes the method that will run) and the
    sentence to show the user about the background method ("" when nothing needs saying)."""
    choice = choose_background(section.background, section.u2net_model, environ)
    params = PreprocessParams(
        margin=float(section.margin),
        crop_size=int(section.crop_size),
        min_confidence=float(section.min_confidence),
        detect_max_side=int(section.detect_max_side),
        background=choice.method,
        u2net_model=choice.model_path,
        u2net_model_sha256=choice.model_sha256,
    )
    return params, choice.note


class FaceModels:
    """The detector, landmark predictor and background model; slow to create, so one per process.

    ``single_thread``: one TensorFlow and ONNX Runtime thread (the table runner's worker processes,
    one per core). It is never set in a caller's own process, whose threads belong to the caller.
    """

    def __init__(self, params: PreprocessParams, single_thread: bool = False) -> None:
        if single_thread:
            _single_thread_tensorflow()
        self.detector = FaceDetector()
        self.landmarks = LandmarkPredictor()
        threads = 1 if single_thread else 0  # 0: ONNX Runtime's default
        self.u2net = U2netBackground(params.u2net_model, threads) if params.background == "u2net" else None


_MODELS: dict[tuple[str, str], FaceModels] = {}


def models_for(params: PreprocessParams, single_thread: bool = False) -> FaceModels:
    """This process's models for ``params`` (created on first use, then reused)."""
    key = (params.background, params.u2net_model)
    if key not in _MODELS:
        _MODELS[key] = FaceModels(params, single_thread)
    return _MODELS[key]


def _single_thread_tensorflow() -> None:
    # TensorFlow's float results depend (in the last bits) on its thread count, so every worker
    # uses the same count, one, whatever the number of workers: the cache is then identical.
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(1)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:
        pass  # TensorFlow already ran something in this process; its threads are fixed by now


def preprocess_image(
    rgb: np.ndarray,
    params: PreprocessParams,
    dataset_landmarks: np.ndarray | None = None,
    landmark_format: str = "",
    models: FaceModels | None = None,
    choose: str = MOST_CONFIDENT,
) -> FaceResult | NoFace:
    """Detect the face in an (H, W, 3) uint8 RGB image and preprocess it (see the module docstring).

    ``dataset_landmarks``: (K, 2) points in ``rgb``'s pixels (e.g. UNBC's AAM points), returned mapped
    into the crop. ``models``: this process's models when None. ``choose``: MOST_CONFIDENT or LARGEST.
    Everything about the image is in the result; nothing is kept on ``models`` (threads may share them).
    """
    if choose not in (MOST_CONFIDENT, LARGEST):
        raise ValueError(f"choose must be {MOST_CONFIDENT!r} or {LARGEST!r}, not {choose!r}")
    models = models or models_for(params)
    timings: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(step: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[step] = timings.get(step, 0.0) + now - clock
        clock = now

    detection = models.detector.detect(rgb, max_side=params.detect_max_side)
    lap("detect")
    faces = detection.confident(params.min_confidence)
    face = (faces[0] if faces else None) if choose == LARGEST else detection.most_confident()
    if face is None or face.confidence < params.min_confidence:
        return NoFace(confidence=detection.best_confidence, timings=timings)
    return preprocess_face(rgb, face, params, models, dataset_landmarks, landmark_format, timings, tuple(faces))


def preprocess_face(
    rgb: np.ndarray,
    face: FaceBox,
    params: PreprocessParams,
    models: FaceModels,
    dataset_landmarks: np.ndarray | None = None,
    landmark_format: str = "",
    timings: dict[str, float] | None = None,
    faces: tuple[FaceBox, ...] = (),
) -> FaceResult:
    """Everything after detection for one chosen ``face`` of ``rgb``: crop, background, landmarks.

    Also the video path's step, where the face is chosen by the tracker among a batch's detections.
    ``timings`` (seconds per step) is added to in place when given."""
    timings = {} if timings is None else timings
    clock = time.perf_counter()

    def lap(step: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[step] = timings.get(step, 0.0) + now - clock
        clock = now

    crop_box = square_crop_box(face, params.margin)
    crop = crop_square(rgb, crop_box, params.crop_size)
    corners = crop_box.to_crop(np.array([[face.x1, face.y1], [face.x2, face.y2]]), params.crop_size)
    face_in_crop = FaceBox(*corners.ravel().tolist(), confidence=face.confidence)
    lap("crop")
    if params.background == "u2net":
        crop = models.u2net.apply(crop)
        lap("background")
    elif params.background == "fallback":
        raw_points = models.landmarks.predict(crop, face_in_crop)
        lap("landmarks")
        crop = whiten_outside(crop, face_hull_mask(raw_points, params.crop_size))
        lap("background")
    landmarks = models.landmarks.predict(crop, face_in_crop)
    mapped = None if dataset_landmarks is None else crop_box.to_crop(dataset_landmarks, params.crop_size)
    lap("landmarks")
    return FaceResult(
        crop=crop,
        face=face,
        crop_box=crop_box,
        background_method=params.background,
        landmarks=landmarks,
        dataset_landmarks=mapped,
        dataset_landmark_format=landmark_format if mapped is not None else "",
        timings=timings,
        faces=faces,
    )
