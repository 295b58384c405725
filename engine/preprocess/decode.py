"""The one image decoder: dataset images for training and uploaded photos go through the same steps.

    bytes ──header──► size guard ──[JPEG draft: decoded at 1/2, 1/4 or 1/8]──► first frame ──EXIF──► upright
          ──► grey, 16-bit, CMYK, palette made RGB; transparent parts filled with white
          ──[longer side above ``longest_side``: LANCZOS]──► (H, W, 3) uint8 RGB, plus notes for a person

The training path (``decode_image``, the face cache) asks for full resolution; the upload path asks for
``longest_side=UPLOAD_LONGEST_SIDE``, because faces are found at that size anyway: a 48-megapixel phone
JPEG is then decoded reduced (JPEG draft mode) instead of filling 150 MB. The size guard counts the pixels
that would really be decoded, so a PNG or WebP over ``MAX_PIXELS`` is refused from its header, before any
pixel is decoded (decompression bombs), and so is any header over Pillow's own bomb limit (89 MP).

Conversions that change what the networks see are returned as ``notes`` (sentences for the upload page).
Errors are :class:`engine.errors.BadImageError` with one sentence.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from engine.errors import BadImageError

# Part of the face cache's key (engine.preprocess.pipeline.PreprocessParams.tag): bump it whenever the
# pixels this module returns change, so crops cached from an older decoding are not reused.
# 2: transparency filled with white and 16-bit images scaled (before, alpha was dropped and 16 bits clipped).
DECODER_VERSION = 2
MAX_PIXELS = 40_000_000  # decoded size limit (a 40 MP image); a JPEG may be larger when decoded reduced
MIN_IMAGE_SIDE = 48  # px: smaller photos cannot hold a face the networks can read
UPLOAD_LONGEST_SIDE = 1280  # px: uploads are reduced to this longer side (faces are found at this size)
# The largest file a person may send, in MB: the dashboard's server and widget and the HTTP API use it.
MAX_UPLOAD_MB = 25
IMAGE_TYPES = ("jpg", "jpeg", "png", "webp", "heic", "heif")
_HEIF_BRANDS = (b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"hevm", b"hevs", b"mif1", b"msf1", b"avif")
_ACCEPTED = "upload a JPEG, PNG, WebP or HEIC photo"


@dataclass
class DecodedImage:
    rgb: np.ndarray  # (H, W, 3) uint8, upright, at most ``longest_side`` on its longer side when asked
    format: str  # "JPEG", "PNG", "WEBP", "HEIF"...
    original_size: tuple[int, int]  # (width, height) of the whole upright image in the file
    notes: list[str] = field(default_factory=list)
    reduced: bool = False  # True when the pixels are fewer than the file holds


def _register_heif() -> bool:
    """HEIC/HEIF (iPhone photos) through pillow-heif when it is installed."""
    try:
        from pillow_heif import register_heif_opener
    except ImportError:
        return False
    register_heif_opener()
    return True


_HEIF = _register_heif()


def media_kind(data: bytes) -> str:
    """"video" when the bytes start like a video container (MP4/MOV, WebM/MKV, AVI), else "image".

    HEIC photos share MP4's box format and are told apart by their brand."""
    if data[4:8] == b"ftyp":
        return "image" if data[8:12] in _HEIF_BRANDS else "video"
    if data[:4] == b"\x1aE\xdf\xa3" or (data[:4] == b"RIFF" and data[8:12] == b"AVI "):
        return "video"
    return "image"


def is_picture(data: bytes) -> bool:
    """Whether Pillow recognises the bytes as an image (header only): a photo, whatever its file name says."""
    try:
        with Image.open(io.BytesIO(data)):
            return True
    except (UnidentifiedImageError, OSError, ValueError):
        return False


def decode_image(data: bytes) -> np.ndarray:
    """A dataset image's bytes to (H, W, 3) uint8 RGB at full resolution (the training path)."""
    return decode(data, min_side=0).rgb


def decode(data: bytes, longest_side: int = 0, max_pixels: int = MAX_PIXELS,
           min_side: int = MIN_IMAGE_SIDE) -> DecodedImage:
    """Image file bytes (JPEG, PNG, WebP, HEIC...) to an upright (H, W, 3) uint8 RGB image.

    ``longest_side`` > 0: the result's longer side is at most that many pixels (JPEGs decode reduced).
    Raises BadImageError for an empty, non-image, truncated or corrupt file, for more than ``max_pixels``
    to decode, and for a side under ``min_side`` pixels.
    """
    if not data:
        raise BadImageError("The file is empty: choose a photo (JPEG, PNG, WebP or HEIC).")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            size, fmt = image.size, image.format or "?"
            if longest_side and fmt == "JPEG":
                _draft(image, longest_side)
            _check_pixels(size, image.size, max_pixels)
            image.load()  # decodes now, so a truncated file fails here and not later
            decoded = _to_rgb(image, fmt, size)
    except BadImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise BadImageError("The image declares more pixels than can be decoded safely (a decompression bomb); "
                            "use an ordinary photo.") from None
    except UnidentifiedImageError:
        if data[4:8] == b"ftyp" and data[8:12] in _HEIF_BRANDS and not _HEIF:
            raise BadImageError("This looks like a HEIC photo, but HEIC support (pillow-heif) is not installed; "
                                "export the photo as JPEG or install pillow-heif.") from None
        raise BadImageError(f"The file is not an image PainLens can read: {_ACCEPTED}.") from None
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        what = "truncated" if "truncated" in str(exc).lower() else "corrupt"
        raise BadImageError(f"The image file is {what} and cannot be decoded; upload the photo again or "
                            "export it anew.") from None
    _check_sides(decoded.rgb, min_side)
    return _reduce(decoded, longest_side) if longest_side else decoded


def _draft(image: Image.Image, longest_side: int) -> None:
    """Let libjpeg decode at 1/2, 1/4 or 1/8 scale while the longer side stays >= ``longest_side``."""
    width, height = image.size
    factor = longest_side / max(width, height)
    if factor < 0.5:
        image.draft(None, (max(1, int(width * factor + 0.5)), max(1, int(height * factor + 0.5))))


def _check_pixels(stored: tuple[int, int], decoded: tuple[int, int], max_pixels: int) -> None:
    width, height = stored
    if decoded[0] * decoded[1] > max_pixels:
        raise BadImageError(f"The image is {width} x {height} pixels ({width * height / 1e6:.0f} MP), more than "
                            f"the {max_pixels / 1e6:.0f} MP accepted; use a smaller photo.")


def _check_sides(rgb: np.ndarray, min_side: int) -> None:
    if min(rgb.shape[:2]) < min_side:
        raise BadImageError(f"The image is only {rgb.shape[1]} x {rgb.shape[0]} pixels; a face needs a photo of at "
                            f"least {min_side} pixels on each side.")


def _to_rgb(image: Image.Image, fmt: str, size: tuple[int, int]) -> DecodedImage:
    notes = []
    if getattr(image, "n_frames", 1) > 1:
        notes.append("The file holds several frames (an animation); the first one is used.")
    reduced = image.size != size
    orientation = image.getexif().get(0x0112, 1)
    if orientation in (5, 6, 7, 8):  # a quarter turn: width and height swap
        size = size[::-1]
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
    if mode in ("RGBA", "LA", "PA", "RGBa") or (mode == "P" and "transparency" in image.info):
        # White, because the background becomes white anyway (crop padding, background removal).
        rgba = image.convert("RGBA")
        image = Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba)
        notes.append("The photo has transparent parts; they were filled with white, like the removed backgrounds.")
    rgb = np.asarray(image.convert("RGB"), dtype=np.uint8)
    return DecodedImage(rgb=rgb, format=fmt, original_size=size, notes=notes, reduced=reduced)


def _reduce(decoded: DecodedImage, longest_side: int) -> DecodedImage:
    """The image with its longer side at most ``longest_side`` (LANCZOS), with a note when reduced."""
    rgb = decoded.rgb
    height, width = rgb.shape[:2]
    factor = min(1.0, longest_side / max(height, width))
    if factor < 1.0:
        size = (max(1, round(width * factor)), max(1, round(height * factor)))
        rgb = np.asarray(Image.fromarray(rgb).resize(size, Image.Resampling.LANCZOS))
    if factor < 1.0 or decoded.reduced:
        width, height = decoded.original_size
        decoded.notes.append(f"The photo ({width} x {height}) was reduced to {rgb.shape[1]} x {rgb.shape[0]} "
                             "pixels for face detection.")
    decoded.rgb, decoded.reduced = rgb, decoded.reduced or factor < 1.0
    return decoded
