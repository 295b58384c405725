"""One uploaded photo in, p(pain) from every kept network and a LIME explanation out (the upload page).

    bytes ──decode_upload──► RGB (EXIF-upright, grey/CMYK/alpha/16-bit made RGB, bombs refused)
          ──Predictor.analyse──► largest face (MTCNN, all faces kept for the message) → square crop →
             background (the experiment's method) → 68 landmarks          (engine.preprocess.preprocess_image)
          ──Predictor.probabilities──► p(pain) per network: mean over its kept seeds, low-high band
          ──Predictor.explain──► LIME superpixel weights for one network (engine.explain.lime_masks)

Privacy: everything stays in memory. Nothing here writes a file, logs the image or its name, or keeps
it after the call; callers must not cache it across sessions either.

Errors a user can cause (not an image, truncated, too large, no face, face too small) raise
:class:`engine.errors.BadImageError` with one sentence. Conversions that change what the networks
see (rotation, grey, CMYK, transparency, downscaling, several faces) are reported as ``notes``.
"""

from __future__ import annotations

import io
import json
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from engine.errors import BadImageError, PainLensError

if TYPE_CHECKING:
    import pandas as pd

MAX_PIXELS = 40_000_000  # decoded size limit (a 40 MP photo); larger headers are refused before decoding
MIN_IMAGE_SIDE = 48  # px: smaller files cannot hold a face the networks can read
MIN_FACE_SIDE = 40  # px: MTCNN box side below which the face is refused as too small
SMALL_FACE_SIDE = 96  # px: below this the face is used but said to be small
DETECT_MAX_SIDE = 1280  # photos are downscaled to this longer side first (phone photos: ~4000 px)
KEPT_MODEL = "model.keras"
TIMING_STEPS = ("decode", "detection", "background", "landmarks", "inference", "explanation")


# --- decoding ---------------------------------------------------------------------------------------

@dataclass
class DecodedImage:
    rgb: np.ndarray  # (H, W, 3) uint8, upright
    format: str  # "JPEG", "PNG", "WEBP", "HEIF"...
    original_size: tuple[int, int]  # (width, height) as stored
    notes: list[str] = field(default_factory=list)


def _register_heif() -> bool:
    """HEIC/HEIF (iPhone photos) through pillow-heif when it is installed."""
    try:
        from pillow_heif import register_heif_opener
    except ImportError:
        return False
    register_heif_opener()
    return True


_HEIF = _register_heif()


def decode_upload(data: bytes, max_pixels: int = MAX_PIXELS) -> DecodedImage:
    """Photo file bytes (JPEG, PNG, WebP, HEIC...) to an upright (H, W, 3) uint8 RGB image.

    Raises BadImageError for an empty, non-image, truncated or corrupt file and for an image over
    ``max_pixels`` (checked from the header, before any pixel is decoded: decompression bombs).
    """
    if not data:
        raise BadImageError("The file is empty: choose a photo (JPEG, PNG, WebP or HEIC).")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            width, height = image.size
            if width * height > max_pixels:
                raise BadImageError(f"The image is {width} x {height} pixels ({width * height / 1e6:.0f} MP), more than "
                                    f"the {max_pixels / 1e6:.0f} MP accepted; use a smaller photo.")
            fmt = image.format or "?"
            image.load()  # decodes now, so a truncated file fails here and not later
            return _to_rgb(image, fmt, (width, height))
    except BadImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise BadImageError("The image declares more pixels than can be decoded safely (a decompression bomb); "
                            "use an ordinary photo.") from None
    except UnidentifiedImageError:
        heic = data[4:12] in (b"ftypheic", b"ftypheix", b"ftypmif1", b"ftyphevc", b"ftypmsf1")
        if heic and not _HEIF:
            raise BadImageError("This looks like a HEIC photo, but HEIC support (pillow-heif) is not installed; "
                                "export the photo as JPEG or install pillow-heif.") from None
        raise BadImageError("The file is not an image PainLens can read: upload a JPEG, PNG, WebP or HEIC photo.") from None
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        what = "truncated" if "truncated" in str(exc).lower() else "corrupt"
        raise BadImageError(f"The image file is {what} and cannot be decoded; upload the photo again or "
                            "export it anew.") from None


def _to_rgb(image: Image.Image, fmt: str, size: tuple[int, int]) -> DecodedImage:
    notes = []
    if getattr(image, "n_frames", 1) > 1:
        notes.append("The file holds several frames (an animation); the first one is used.")
    orientation = image.getexif().get(0x0112, 1)
    if orientation not in (1, None):
        image = ImageOps.exif_transpose(image)
        notes.append("The photo was turned upright as its EXIF orientation asks.")
    mode = image.mode
    if mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        values = np.asarray(image, dtype=np.float64)
        high = values.max() if values.size and values.max() > 255 else 255.0
        image = Image.fromarray(np.clip(values / high * 255, 0, 255).astype(np.uint8), "L")
        notes.append("The photo is a high-bit-depth greyscale image; it was scaled to 8 bits and given three equal "
                     "colour channels.")
    elif mode in ("L", "1", "LA"):
        notes.append("The photo is greyscale; it was given three equal colour channels (the networks were trained on "
                     "colour photos, so results may be less reliable).")
    elif mode == "CMYK":
        notes.append("The photo is in CMYK (print) colours; it was converted to RGB.")
    if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(white, rgba)
        notes.append("The photo has transparent parts; they were filled with white, like the removed backgrounds.")
    rgb = np.asarray(image.convert("RGB"), dtype=np.uint8)
    if min(rgb.shape[:2]) < MIN_IMAGE_SIDE:
        raise BadImageError(f"The image is only {rgb.shape[1]} x {rgb.shape[0]} pixels; a face needs a photo of at "
                            f"least {MIN_IMAGE_SIDE} pixels on each side.")
    return DecodedImage(rgb=rgb, format=fmt, original_size=size, notes=notes)


def downscale(rgb: np.ndarray, max_side: int = DETECT_MAX_SIDE) -> tuple[np.ndarray, float]:
    """The image with its longer side at most ``max_side`` px, and the factor applied (1.0: unchanged)."""
    height, width = rgb.shape[:2]
    factor = min(1.0, max_side / max(height, width))
    if factor == 1.0:
        return rgb, 1.0
    size = (max(1, round(width * factor)), max(1, round(height * factor)))
    return np.asarray(Image.fromarray(rgb).resize(size, Image.Resampling.LANCZOS)), factor


# --- face -------------------------------------------------------------------------------------------

class LargestFaceDetector:
    """MTCNN keeping every face above the confidence threshold and returning the largest one.

    Same interface as ``engine.preprocess.detect.FaceDetector.detect``; ``faces`` holds every face of
    the last call, largest first (for the "several faces" message and the boxes drawn)."""

    def __init__(self, min_confidence: float) -> None:
        from mtcnn import MTCNN

        self._mtcnn = MTCNN()
        self.min_confidence = min_confidence
        self.faces: list = []
        self.best_confidence = 0.0

    def detect(self, rgb: np.ndarray, max_side: int = 0):
        """The largest face at or above the confidence threshold (None when there is none).

        ``max_side`` as in FaceDetector.detect: MTCNN sees a copy whose shorter side is at most that
        many pixels; boxes are returned in ``rgb``'s pixels."""
        from engine.preprocess.detect import FaceBox

        scale = max_side / min(rgb.shape[:2]) if max_side > 0 and min(rgb.shape[:2]) > max_side else 1.0
        seen = rgb if scale == 1.0 else downscale(rgb, round(max(rgb.shape[:2]) * scale))[0]
        rows = np.asarray(self._mtcnn.detect_faces(seen, fit_to_image=False, output_type="numpy", box_format="xyxy"),
                          dtype=np.float64)
        rows = rows.reshape(-1, rows.shape[-1]) if rows.size else np.zeros((0, 6))
        # Row layout: image index, x1, y1, x2, y2, confidence, five keypoints.
        boxes = [FaceBox(*(float(v) / scale for v in row[1:5]), confidence=float(row[5])) for row in rows]
        self.best_confidence = max((b.confidence for b in boxes), default=0.0)
        self.faces = sorted((b for b in boxes if b.confidence >= self.min_confidence),
                            key=lambda b: b.width * b.height, reverse=True)
        return self.faces[0] if self.faces else None


@dataclass
class FaceAnalysis:
    """A photo's face, ready for the networks."""

    rgb: np.ndarray  # the (possibly downscaled) upright photo the face was found in
    crop: np.ndarray  # (S, S, 3) uint8, background white
    landmarks: np.ndarray  # (68, 2) in crop pixels
    boxes: list[tuple[float, float, float, float]]  # every face found in ``rgb``, largest (the one used) first
    confidence: float
    background_method: str
    notes: list[str]
    timings: dict[str, float]


# --- networks ---------------------------------------------------------------------------------------

@dataclass
class Network:
    name: str
    input_size: int
    models: list  # one Keras model per kept seed
    seeds: list[int]


class Predictor:
    """The experiment's kept networks and the face models, loaded once (the dashboard keeps one per process).

    ``experiment_root``: an artifact folder with manifest.json and runs/<model>/<scenario>/<fold>/model.keras."""

    def __init__(self, experiment_root: str | Path, warm_up: bool = True) -> None:
        self.root = Path(experiment_root)
        self.config = _manifest_config(self.root)
        self.params, self.background_note = _preprocess_params(self.config)
        self.networks = load_networks(self.root)
        if not self.networks:
            raise PainLensError(f"No trained network is kept in {self.root}: `painlens run CONFIG` keeps one per network "
                                "(external scenario) for uploads.")
        from engine.preprocess.pipeline import FaceModels

        self.face_models = FaceModels(self.params)
        # The pipeline's detector keeps the most confident face; uploads want the largest, and all of them.
        self.face_models.detector = LargestFaceDetector(self.params.min_confidence)
        if warm_up:
            self._warm_up()

    def _warm_up(self) -> None:
        """First calls trace and compile; doing them now keeps an upload's answer under two seconds."""
        self.face_models.detector.detect(np.full((160, 160, 3), 255, np.uint8))
        for network in self.networks.values():
            blank = np.full((1, network.input_size, network.input_size, 3), 255, np.uint8)
            for model in network.models:
                model.predict_on_batch(blank)

    # -- steps --
    def analyse(self, photo: DecodedImage) -> FaceAnalysis:
        """Find, crop, whiten and landmark the largest face; BadImageError when there is no usable face."""
        from engine.preprocess.pipeline import NoFace, preprocess_image

        rgb, factor = downscale(photo.rgb)
        notes = list(photo.notes)
        if factor < 1.0:
            notes.append(f"The photo ({photo.rgb.shape[1]} x {photo.rgb.shape[0]}) was reduced to {rgb.shape[1]} x "
                         f"{rgb.shape[0]} pixels for face detection.")
        result = preprocess_image(rgb, self.params, models=self.face_models)
        detector: LargestFaceDetector = self.face_models.detector
        timings = _step_timings(result.timings)
        if isinstance(result, NoFace):
            if detector.best_confidence > 0:
                raise BadImageError(f"No clear face was found (the best candidate scored {detector.best_confidence:.2f}, "
                                    f"below {self.params.min_confidence:.2f}); use a well-lit, frontal photo of one face.")
            raise BadImageError("No face was found in the photo; use a well-lit, frontal photo of one face.")
        side = max(result.face.width, result.face.height)
        if side < MIN_FACE_SIDE:
            raise BadImageError(f"The face is only {side:.0f} pixels wide, too small to judge (at least {MIN_FACE_SIDE}); "
                                "use a closer photo.")
        if side < SMALL_FACE_SIDE:
            notes.append(f"The face is small ({side:.0f} pixels); it was enlarged, so fine detail is lost.")
        if len(detector.faces) > 1:
            notes.append(f"{len(detector.faces)} faces were found; the largest one (orange box) is used.")
        boxes = [(b.x1, b.y1, b.x2, b.y2) for b in detector.faces]
        return FaceAnalysis(rgb=rgb, crop=result.crop, landmarks=result.landmarks, boxes=boxes,
                            confidence=result.face.confidence, background_method=result.background_method,
                            notes=notes, timings=timings)

    def probabilities(self, crop: np.ndarray) -> tuple["pd.DataFrame", float]:
        """p(pain) per network (mean over its seeds; low / high over seeds, NaN with one seed) and seconds."""
        import pandas as pd

        clock = time.perf_counter()
        rows = []
        for network in self.networks.values():
            x = _resize(crop, network.input_size)[None]
            values = [float(np.asarray(model.predict_on_batch(x))[0, 1]) for model in network.models]
            many = len(values) > 1
            rows.append({"model": network.name, "p_pain": float(np.mean(values)),
                         "low": min(values) if many else np.nan, "high": max(values) if many else np.nan,
                         "seeds": len(values), "input_size": network.input_size})
        return pd.DataFrame(rows), time.perf_counter() - clock

    def explain(self, crop: np.ndarray, model_name: str, label: int, seed: int = 0,
                progress: Callable[[float], None] | None = None, num_samples: int | None = None):
        """LIME explanation (engine.explain.lime_masks.Explanation) of ``label`` for one network's first seed,
        at that network's input size; ``progress`` gets the share done (0..1) after each batch."""
        from engine.explain.lime_masks import BatchedModel, LimeParams, explain_image

        section = self.config.get("explain", {})
        params = LimeParams(num_samples=int(num_samples or section.get("num_samples", 1000)),
                            n_segments=int(section.get("n_segments", 30)),
                            compactness=float(section.get("compactness", 20.0)),
                            batch_size=int(section.get("batch_size", 100)))
        network = self.networks[model_name]
        classifier = _Counting(BatchedModel(network.models[0], params.batch_size),
                               -(-params.num_samples // params.batch_size), progress)
        image = _resize(crop, network.input_size)
        return explain_image(image, classifier, int(label), params, np.random.SeedSequence(seed))


class _Counting:
    """A LIME classifier that reports the share of perturbation batches done."""

    def __init__(self, inner, total: int, progress):
        self.inner, self.total, self.progress, self.done = inner, max(1, total), progress, 0

    def __call__(self, images: np.ndarray) -> np.ndarray:
        out = self.inner(images)
        self.done += 1
        if self.progress is not None:
            self.progress(min(1.0, self.done / self.total))
        return out


def load_networks(root: Path) -> dict[str, Network]:
    """Every finished run's kept model under ``root/runs``, grouped by network; external-scenario seeds
    first (the models trained on all of PAIN-DB), in the manifest's plan order."""
    import keras

    import engine.models.pretrained  # noqa: F401  registers the custom layers a saved model may hold

    order = _manifest_config(root, plan=True)
    found: dict[str, list[tuple[int, Path]]] = {}
    for path in sorted(Path(root).glob(f"runs/*/external/*/{KEPT_MODEL}")):
        if (path.parent / "done.json").exists():
            found.setdefault(path.parent.parent.parent.name, []).append((int(path.parent.name), path))
    names = [m for m in order if m in found] + sorted(m for m in found if m not in order)
    networks = {}
    for name in names:
        models = [keras.saving.load_model(path, compile=False) for _, path in sorted(found[name])]
        networks[name] = Network(name, int(models[0].input_shape[1]), models, [seed for seed, _ in sorted(found[name])])
    return networks


# --- one call ---------------------------------------------------------------------------------------

@dataclass
class Prediction:
    photo: DecodedImage
    face: FaceAnalysis
    probabilities: "pd.DataFrame"  # model, p_pain, low, high, seeds, input_size
    timings: dict[str, float]  # seconds per TIMING_STEPS (explanation: 0 until explained)

    @property
    def mean(self) -> float:
        return float(self.probabilities["p_pain"].mean())

    @property
    def notes(self) -> list[str]:
        return self.face.notes


def predict_bytes(predictor: Predictor, data: bytes) -> Prediction:
    """Everything up to the probabilities for one photo file's bytes (BadImageError for bad input)."""
    clock = time.perf_counter()
    photo = decode_upload(data)
    decode_s = time.perf_counter() - clock
    face = predictor.analyse(photo)
    probabilities, inference_s = predictor.probabilities(face.crop)
    timings = {"decode": decode_s, **face.timings, "inference": inference_s, "explanation": 0.0}
    return Prediction(photo, face, probabilities, {k: timings.get(k, 0.0) for k in TIMING_STEPS})


# --- helpers ----------------------------------------------------------------------------------------

def _step_timings(raw: dict[str, float]) -> dict[str, float]:
    """preprocess_image's steps mapped onto TIMING_STEPS (the crop counts as detection)."""
    return {"detection": raw.get("detect", 0.0) + raw.get("crop", 0.0), "background": raw.get("background", 0.0),
            "landmarks": raw.get("landmarks", 0.0)}


def _resize(crop: np.ndarray, size: int) -> np.ndarray:
    if crop.shape[0] == size:
        return crop
    return np.asarray(Image.fromarray(crop).resize((size, size), Image.Resampling.LANCZOS))


def _manifest_config(root: Path, plan: bool = False):
    try:
        manifest = json.loads((Path(root) / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        manifest = {}
    if plan:
        return list((manifest.get("plan") or {}).get("models") or [])
    return manifest.get("config", {}) or {}


def _preprocess_params(config: dict):
    """The experiment's preprocessing (crop margin, size, background method), so uploads match training."""
    from engine.config import PreprocessSection
    from engine.preprocess.pipeline import params_from_section

    known = {k: v for k, v in (config.get("preprocess") or {}).items() if k in PreprocessSection.__dataclass_fields__}
    return params_from_section(PreprocessSection(**known))
