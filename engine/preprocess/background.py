"""Background to white: rembg's U2-Net human segmentation when its model file is here, else a fallback.

Methods (recorded per image as ``background_method``):

- ``u2net``: rembg with the ``u2net_human_seg`` ONNX model (the paper's method). The file is looked for
  first at the path the config names (``[preprocess] u2net_model``), then where rembg itself looks, in
  rembg's order: ``<home>/models/u2net_human_seg/u2net_human_seg.onnx`` with home = ``$U2NET_HOME``, else
  ``$REMBG_HOME``, else ``$XDG_DATA_HOME/rembg`` or ``~/.rembg``; then the legacy flat folder
  ``$U2NET_HOME`` or ``$XDG_DATA_HOME/.u2net`` or ``~/.u2net``. The rembg session is then pinned to the
  file found, so what was detected is what runs (rembg would otherwise try to download it).
- ``fallback`` (needs no download): the face hull. The 68 dlib landmarks of the crop give the jaw line
  (points 0-16); the jaw is mirrored above the line through its two ends, shrunk to 70 % of its depth,
  to reach the forehead; the convex hull of jaw, mirrored jaw and eyebrows, grown by 4 % around its
  centre, is kept and everything else becomes white. Unlike U2-Net it also whitens hair, neck and
  shoulders, so its crops are "face only".
- ``none``: the crop is kept as it is.

rembg is imported only when the model file exists, and without compiling PyMatting's numba kernels
(``_import_rembg_without_matting_jit``: they cost 95 s on a fresh install and alpha matting is never used).
"""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import numpy as np
from PIL import Image

from engine.errors import MissingWeightsError
from engine.preprocess.landmarks import JAW

log = logging.getLogger(__name__)

U2NET_NAME = "u2net_human_seg"
U2NET_FILE = f"{U2NET_NAME}.onnx"
METHODS = ("u2net", "fallback", "none")
FOREHEAD_DEPTH = 0.7  # mirrored jaw depth reaching the forehead, as a share of the jaw's depth
HULL_GROWTH = 1.04  # hull scaled around its centre so the cheeks' edge is not cut

_NOTE_LOGGED = False


@dataclass(frozen=True)
class BackgroundChoice:
    """The method that will run, the model file it uses, and the sentence to tell the user (or "")."""

    method: str
    model_path: str = ""
    model_sha256: str = ""
    note: str = ""


def rembg_model_candidates(environ: Mapping[str, str]) -> list[Path]:
    """Where rembg 2.0.x looks for ``u2net_human_seg.onnx``, in its order, for the given environment."""
    xdg = environ.get("XDG_DATA_HOME")
    legacy = os.path.expanduser(environ.get("U2NET_HOME", os.path.join(xdg or "~", ".u2net")))
    if environ.get("U2NET_HOME"):
        home = legacy
    else:
        default = os.path.join(xdg, "rembg") if xdg else os.path.join("~", ".rembg")
        home = os.path.expanduser(environ.get("REMBG_HOME", default))
    return [Path(home) / "models" / U2NET_NAME / U2NET_FILE, Path(legacy) / U2NET_FILE]


def find_u2net_model(explicit: str, environ: Mapping[str, str]) -> Path | None:
    """The model file: ``explicit`` when given (None if it is not a file), else the first rembg candidate."""
    if explicit:
        path = Path(explicit).expanduser()
        return path if path.is_file() else None
    return next((path for path in rembg_model_candidates(environ) if path.is_file()), None)


def choose_background(requested: str, explicit_model: str = "", environ: Mapping[str, str] | None = None) -> BackgroundChoice:
    """Resolve the config's ``background`` (auto | u2net | fallback | none) into the method that will run.

    ``environ`` is the environment rembg would read (``os.environ`` when None). ``auto`` without the
    model file falls back and says so once per process; ``u2net`` without it is an error.
    """
    global _NOTE_LOGGED
    if requested in ("fallback", "none"):
        return BackgroundChoice(method=requested)
    environ = os.environ if environ is None else environ
    model = find_u2net_model(explicit_model, environ)
    if model is not None:
        return BackgroundChoice(method="u2net", model_path=str(model), model_sha256=_file_sha256(model))
    where = explicit_model or str(rembg_model_candidates(environ)[0])
    if requested == "u2net":
        raise MissingWeightsError(
            f"background = \"u2net\" needs rembg's {U2NET_FILE}, which is not at {where}; copy the file there "
            "(or give its path as u2net_model in the preprocess settings), or set background = \"auto\" "
            "to use the face-hull fallback."
        )
    note = (
        f"rembg's {U2NET_FILE} is not at {where} (nor in rembg's other model folders), so backgrounds are "
        "whitened with the landmark face-hull fallback; copy the file there to use U2-Net as in the paper."
    )
    if not _NOTE_LOGGED:
        log.warning(note)
        _NOTE_LOGGED = True
    return BackgroundChoice(method="fallback", note=note)


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def face_hull_mask(landmarks: np.ndarray, size: int) -> np.ndarray:
    """(size, size) bool mask of the face hull from (68, 2) landmarks in crop pixels (the fallback)."""
    from scipy.spatial import ConvexHull
    from skimage.draw import polygon

    jaw = landmarks[JAW]
    ends = jaw[-1] - jaw[0]
    normal = np.array([ends[1], -ends[0]]) / max(np.linalg.norm(ends), 1e-6)
    if np.dot(jaw[8] - jaw[0], normal) > 0:  # make ``normal`` point away from the chin, towards the forehead
        normal = -normal
    depth = (jaw - jaw[0]) @ normal  # negative below the line through the jaw's ends
    forehead = jaw - np.outer(depth * (1.0 + FOREHEAD_DEPTH), normal)
    points = np.vstack([jaw, forehead, landmarks[17:27]])
    hull = points[ConvexHull(points).vertices]
    centre = hull.mean(axis=0)
    hull = centre + (hull - centre) * HULL_GROWTH
    mask = np.zeros((size, size), dtype=bool)
    rows, cols = polygon(hull[:, 1], hull[:, 0], shape=mask.shape)
    mask[rows, cols] = True
    return mask


def whiten_outside(rgb: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8: ``rgb`` where ``mask`` is True, white elsewhere."""
    return np.where(mask[:, :, None], rgb, np.uint8(255)).astype(np.uint8)


def _import_rembg_without_matting_jit() -> None:
    """Import rembg without compiling PyMatting's kernels.

    rembg imports PyMatting for alpha matting, whose numba kernels compile when imported: 95 s on the
    first import in a fresh environment, measured here (numba's cache then holds them until the next
    install). PainLens never uses alpha matting and nothing else in it uses numba, so numba runs those
    kernels as plain Python (never called) unless someone chose otherwise in ``NUMBA_DISABLE_JIT``."""
    import sys

    if "numba" not in sys.modules:
        os.environ.setdefault("NUMBA_DISABLE_JIT", "1")
    import rembg  # noqa: F401


class U2netBackground:
    """rembg's U2-Net human segmentation on the file given, compositing onto white. One per process."""

    def __init__(self, model_path: str, threads: int = 0) -> None:
        """``threads``: ONNX Runtime threads (0: its default, all cores)."""
        import onnxruntime as ort

        _import_rembg_without_matting_jit()
        from rembg.sessions.u2net_human_seg import U2netHumanSegSession

        class _PinnedSession(U2netHumanSegSession):
            # rembg resolves the file from environment variables and downloads it when missing;
            # here the file was found beforehand, so the session loads exactly that one.
            @classmethod
            def download_models(cls, *args, **kwargs):
                return model_path

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = threads
        self._session = _PinnedSession(U2NET_NAME, options, providers=["CPUExecutionProvider"])

    def apply(self, rgb: np.ndarray) -> np.ndarray:
        """(H, W, 3) uint8 with the background (what U2-Net does not call a person) white."""
        from rembg import remove

        out = remove(Image.fromarray(rgb), session=self._session, bgcolor=(255, 255, 255, 255))
        return np.asarray(out.convert("RGB"))
