"""The upload page's networks: one ``engine.predict.Predictor`` per process and experiment version.

Loading TensorFlow, the kept networks, MTCNN and dlib takes seconds, so the upload page calls
``warm_in_background`` as it opens: the uploader shows at once, the models load on a thread while
the person picks a photo, and the answer to an upload then takes under two seconds. (Loading them
when the app starts would slow the other pages' first visits, which share the same two cores.)
Only models live here: photos never enter a cache.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import streamlit as st

from dashboard import loaders
from engine.artifacts import stamp

log = logging.getLogger(__name__)
_STARTED: set[str] = set()


def keep_keras_session() -> bool:
    """Stop Streamlit from calling ``keras.backend.clear_session()`` after every script run.

    Streamlit does that (``script_runner._clean_problem_modules``) to free models that scripts build
    on each run. Ours are built once per process (st.cache_resource) and must stay fast: after each
    clear, TensorFlow re-instantiates every kept network's kernels, and an upload's answer took 3.4,
    5.6, then 6.6 s instead of 0.5 s (20 networks, measured with py-spy and bench/dashboard_load.py).
    Matplotlib's figures are still closed as Streamlit does. Returns False, and the dashboard stays
    correct but slower, when a Streamlit version no longer has that private hook.
    """
    from streamlit.runtime.scriptrunner import script_runner

    original = getattr(script_runner, "_clean_problem_modules", None)
    if original is None:
        log.warning("streamlit changed: cannot keep the Keras session between reruns; uploads will be slower.")
        return False
    if getattr(original, "keeps_keras", False):
        return True

    def clean_without_keras() -> None:
        import sys

        if "matplotlib.pyplot" in sys.modules:
            sys.modules["matplotlib.pyplot"].close("all")

    clean_without_keras.keeps_keras = True
    script_runner._clean_problem_modules = clean_without_keras
    return True


def version(root: Path) -> tuple:
    """Changes when a kept model is written or replaced."""
    kept = loaders.kept_models(root)
    return stamp(*map(Path, kept["path"]))


@st.cache_resource(show_spinner=False, max_entries=2)
def predictor(root: str, model_version: tuple):
    """The Predictor for the experiment at ``root`` (engine.predict), loaded once per process and version."""
    from engine.native_log import import_tensorflow_quietly
    from engine.predict import Predictor

    import_tensorflow_quietly()
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
