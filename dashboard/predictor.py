"""The upload page's networks: one ``engine.predict.Predictor`` per process and experiment version.

Loading TensorFlow, the kept networks, MTCNN and dlib takes seconds, so the upload page calls
``warm_in_background`` as it opens: the uploader shows at once, the models load on a thread while
the person picks a photo, and the answer to an upload then takes under two seconds. (Loading them
when the app starts would slow the other pages' first visits, which share the same two cores.)
Only models live here: photos never enter a cache.
"""

from __future__ import annotations

import threading
from pathlib import Path

import streamlit as st

from dashboard import loaders

_STARTED: set[str] = set()


def version(root: Path) -> tuple:
    """Changes when a kept model is written or replaced."""
    kept = loaders.kept_models(root)
    return loaders.stamp(*map(Path, kept["path"]))


@st.cache_resource(show_spinner=False, max_entries=2)
def predictor(root: str, model_version: tuple):
    """The Predictor for the experiment at ``root`` (engine.predict), loaded once per process and version."""
    from engine.predict import Predictor

    return Predictor(root)  # st.cache_resource locks per key: the warm-up thread and a page load it once


def warm_in_background(root: Path) -> None:
    """Start loading the predictor on a daemon thread (once per process and experiment)."""
    key = str(root)
    if key in _STARTED or loaders.kept_models(root).empty:
        return
    _STARTED.add(key)
    model_version = version(root)

    def load() -> None:
        try:
            predictor(key, model_version)
        except Exception:  # the upload page shows the error when someone opens it
            _STARTED.discard(key)

    threading.Thread(target=load, name="painlens-warm-models", daemon=True).start()
