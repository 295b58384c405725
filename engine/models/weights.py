"""ImageNet weights for the pretrained bases: find them in the Keras cache, or fail at once.

``keras.applications.<Net>(weights="imagenet")`` looks in ``<keras home>/models/`` and otherwise
downloads; offline it fails only after the network stack gives up, with a URL error that does not
say what to do. We look for the exact file first, so that a missing file is reported within
seconds with the two ways forward, and hand the file's path to ``keras.applications`` (which loads
a path exactly as it loads its own download).

The folder comes from the caller (the config's ``training.weights_dir``); only when none is given
do we ask Keras for its own cache folder (``$KERAS_HOME/models`` or ``~/.keras/models``), so the
environment is read in one place, the way Keras itself reads it.
"""

from __future__ import annotations

import hashlib
import socket
import threading
from dataclasses import dataclass
from pathlib import Path

from engine.errors import MissingWeightsError

# Where keras.applications downloads from; a download is tried only when this host answers quickly.
ORIGIN = "https://storage.googleapis.com/tensorflow/keras-applications/"
_PROBE_HOST = ("storage.googleapis.com", 443)
_PROBE_TIMEOUT_S = 3.0


@dataclass(frozen=True)
class WeightsFile:
    """One ``include_top=False`` ImageNet weights file as keras.applications names and checks it."""

    file_name: str  # e.g. "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5"
    subfolder: str  # folder under ORIGIN, e.g. "vgg16"
    md5: str  # the hash keras.applications checks (a mismatch means another file)

    @property
    def url(self) -> str:
        return f"{ORIGIN}{self.subfolder}/{self.file_name}"


def default_weights_dir() -> Path:
    """Keras's own model cache: ``$KERAS_HOME/models``, else ``~/.keras/models`` (as Keras decides)."""
    from keras.src.backend.config import keras_home  # the one place Keras resolves KERAS_HOME

    return Path(keras_home()).expanduser() / "models"


def resolve_weights(model_name: str, weights: WeightsFile, weights_dir: str | Path | None = None,
                    download: bool = True) -> Path:
    """Return the path of the weights file, downloading it only when the origin is reachable.

    Raises MissingWeightsError within a few seconds when the file is neither in ``weights_dir`` nor
    downloadable, and when the file there is not the one Keras expects (md5 mismatch).
    """
    folder = Path(weights_dir).expanduser() if weights_dir else default_weights_dir()
    path = folder / weights.file_name
    if not path.is_file() and download and _origin_reachable():
        _download(weights, folder)
    if not path.is_file():
        raise MissingWeightsError(
            f"ImageNet weights for {model_name} are missing: {weights.file_name} is not in {folder} and cannot "
            f"be downloaded from here; copy that file into {folder} (or point training.weights_dir at a folder "
            f"holding it), or set weights = \"none\" in [training] to train {model_name} from random initialisation."
        )
    if _md5(path) != weights.md5:
        raise MissingWeightsError(
            f"{path} is not the weights file Keras expects for {model_name} (its md5 differs, so it is damaged or "
            f"another version); replace it with {weights.url}, or set weights = \"none\" in [training]."
        )
    return path


def _origin_reachable() -> bool:
    # A TCP probe with a hard deadline: urllib inside keras.utils.get_file has no timeout, and the
    # name lookup before a connect ignores socket timeouts, so the probe runs in a daemon thread
    # that is abandoned when it has not answered in time.
    answer: list[bool] = []

    def probe() -> None:
        try:
            with socket.create_connection(_PROBE_HOST, timeout=_PROBE_TIMEOUT_S):
                answer.append(True)
        except OSError:
            answer.append(False)

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(_PROBE_TIMEOUT_S)
    return bool(answer and answer[0])


def _download(weights: WeightsFile, folder: Path) -> None:
    import keras

    folder.mkdir(parents=True, exist_ok=True)
    try:
        # An absolute cache_subdir makes get_file save exactly there; it checks the md5 too.
        keras.utils.get_file(weights.file_name, weights.url, cache_subdir=str(folder.resolve()),
                             file_hash=weights.md5)
    except Exception:  # noqa: BLE001 - any failure here ends in the one MissingWeightsError sentence
        (folder / weights.file_name).unlink(missing_ok=True)


def _md5(path: Path) -> str:
    digest = hashlib.md5()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
