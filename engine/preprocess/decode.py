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
IMAGE_TYPES = ("jpg", "jpeg", "png", "webp", "bmp", "tif", "tiff", "heic", "heif")
# The only formats Pillow may open: it knows some 40, among them EPS (which runs Ghostscript when installed) and
# other rarely used parsers; a photo from a phone, camera or scanner is one of these. HEIF is added when
# pillow-heif (a maintained binding of libheif) is installed.
FORMATS = ["JPEG", "PNG", "WEBP", "BMP", "TIFF"]
ACCEPTED_NAMES = "JPEG, PNG, WebP, BMP, TIFF or HEIC"
_HEIF_BRANDS = (b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"hevm", b"hevs", b"mif1", b"msf1", b"avif")
_ACCEPTED = f"upload a {ACCEPTED_NAMES} photo"
BAND_PIXELS = 4_000_000  # pixels converted at once from a 16-bit or float image (32 MB as float64)


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
    FORMATS.append("HEIF")
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
        with Image.open(io.BytesIO(data), formats=FORMATS):
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
        raise BadImageError(f"The file is empty: choose a photo ({ACCEPTED_NAMES}).")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=FORMATS)
            size, fmt = image.size, image.format or "?"
            if longest_side and fmt == "JPEG":
                _draft(image, longest_side)
            _check_pixels(size, image.size, max_pixels)
            image.load()  # decodes now, so a truncated file fails here and not later
            picture, size, notes, reduced = _upright_picture(image, size)
            del image  # the file's own pixels (a 16-bit image's twice the 8-bit size) are freed before the copies below
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
    _check_sides(picture.size, min_side)
    decoded = DecodedImage(rgb=np.empty((0, 0, 3), np.uint8), format=fmt, original_size=size, notes=notes,
                           reduced=reduced)
    if longest_side:
        picture = _reduce(picture, decoded, longest_side)
    decoded.rgb = _rgb_array(picture)
    return decoded


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


def _check_sides(size: tuple[int, int], min_side: int) -> None:
    if min(size) < min_side:
        raise BadImageError(f"The image is only {size[0]} x {size[1]} pixels; a face needs a photo of at "
                            f"least {min_side} pixels on each side.")


def _upright_picture(image: Image.Image, size: tuple[int, int]) -> tuple[Image.Image, tuple[int, int], list[str], bool]:
    """(the picture upright, in mode "L" when grey and "RGB" otherwise; the upright size of the whole image
    in the file; notes for a person; whether fewer pixels were decoded than the file holds). Grey stays one
    channel until the very end, so a large grey image is reduced before it is tripled."""
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
        image = _high_depth_to_grey(image)
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
    picture = image if image.mode == "L" else image.convert("L" if image.mode == "1" else "RGB")
    return picture, size, notes, reduced


def _rgb_array(picture: Image.Image) -> np.ndarray:
    """(H, W, 3) uint8 RGB; a grey picture's one channel tripled directly (Pillow's RGB holds 4 bytes a pixel)."""
    if picture.mode == "L":
        return np.repeat(np.asarray(picture, dtype=np.uint8)[:, :, None], 3, axis=2)
    return np.asarray(picture, dtype=np.uint8)


def _bands(image: Image.Image):
    """The image's values in bands of rows, each a small float64 array (never the whole image as float64:
    a 6300 x 6300 16-bit PNG of 92 KB would take 320 MB per copy)."""
    width, height = image.size
    rows = max(1, BAND_PIXELS // max(1, width))
    for top in range(0, height, rows):
        band = np.asarray(image.crop((0, top, width, min(height, top + rows))), dtype=np.float64)
        yield top, np.nan_to_num(band, nan=0.0, posinf=0.0, neginf=0.0)


def _high_depth_to_grey(image: Image.Image) -> Image.Image:
    """A 16-bit, 32-bit or float greyscale image scaled to 8 bits (its brightest value, or 255 when none is
    above, becomes 255), band by band into one uint8 array: memory beyond the file's own pixels stays at one
    band (~32 MB) and the 8-bit result."""
    high = max((float(band.max()) for _, band in _bands(image) if band.size), default=0.0)
    high = high if high > 255 else 255.0
    grey = np.empty((image.size[1], image.size[0]), np.uint8)
    for top, band in _bands(image):
        grey[top:top + len(band)] = np.clip(band / high * 255, 0, 255).astype(np.uint8)
    return Image.fromarray(grey, "L")


def _reduce(picture: Image.Image, decoded: DecodedImage, longest_side: int) -> Image.Image:
    """The picture with its longer side at most ``longest_side`` (LANCZOS), with a note when reduced."""
    width, height = picture.size
    factor = min(1.0, longest_side / max(height, width))
    if factor < 1.0:
        size = (max(1, round(width * factor)), max(1, round(height * factor)))
        picture = picture.resize(size, Image.Resampling.LANCZOS)
    if factor < 1.0 or decoded.reduced:
        width, height = decoded.original_size
        decoded.notes.append(f"The photo ({width} x {height}) was reduced to {picture.size[0]} x {picture.size[1]} "
                             "pixels for face detection.")
    decoded.reduced = decoded.reduced or factor < 1.0
    return picture
