"""The upload page's networks: one ``engine.predict.Predictor`` per process and experiment version.

Loading TensorFlow, the kept networks, MTCNN and dlib takes seconds, so the upload page calls
``warm_in_background`` as it opens: the uploader shows at once, the models load on a thread while
the person picks a photo: first the face models and the networks that learned (what a photo's answer
needs: 16 s for the demo's, against 80 s for all 20 kept models). The others load when first asked for
(the page's switch, several photos), not on the thread: loading holds Python's lock most of the time, and
the first answers waited a minute behind it. (Loading at app start would slow the other pages' first
visits, which share the same two cores.)
Only models live here: photos never enter a cache.
"""

from __future__ import annotations

import gc
import logging
import threading
from pathlib import Path

import streamlit as st

from dashboard import loaders
from engine.artifacts import stamp

log = logging.getLogger(__name__)
_STARTED: set[str] = set()
_FROZEN_AT_START: list[bool] = []


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


def freeze_long_lived_objects() -> None:
    """Hide every object alive now from Python's cyclic garbage collector (``gc.freeze``).

    Streamlit runs a full collection after every script run (``runner.postScriptGC``), holding the GIL,
    so nothing reaches the browser meanwhile. With TensorFlow and the 20 kept networks loaded the process
    holds about 900,000 objects and each collection took 1.0 s: every upload's answer, and every click on
    any page, waited a second after its script had finished (measured in Chromium, bench/dashboard_load.py).
    The networks and modules live as long as the process, so scanning them is wasted; frozen, a collection
    takes milliseconds and still frees what each script run leaves. Garbage is collected first (after
    ``gc.unfreeze``, so that a replaced experiment's networks are freed when the next one loads).
    """
    gc.unfreeze()
    gc.collect()
    gc.freeze()


def freeze_at_start() -> None:
    """``freeze_long_lived_objects`` once per process, after the app's imports (0.13 s a script run
    without TensorFlow loaded)."""
    if not _FROZEN_AT_START:
        _FROZEN_AT_START.append(True)
        freeze_long_lived_objects()


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
    # The networks that learned only (a photo's answer needs only them); the others load when first asked for.
    loaded = Predictor(root, learned_first=True)  # st.cache_resource locks per key: loaded once per process
    freeze_long_lived_objects()
    return loaded


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
