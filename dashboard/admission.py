"""Bounded work on the upload page: every analysis of the process (all sessions together) passes one gate,
uploads hold at most ``MAX_FILES`` files, and an upload's bytes stay in memory.

``run(function, ...)``: ``AT_ONCE`` analyses run at a time and at most ``QUEUE`` are inside (running or
waiting their turn); beyond that the page says the server is busy, in one sentence, and stops, with
nothing cached, so the person's next click tries again. Without it twenty sessions uploading at once
would each hold their photos, faces and LIME samples in memory together. (``painlens api`` has its own
admission control in ``painlens.admission``: it counts requests on an event loop, this counts script threads;
the dashboard cannot import the delivery layer.) An analysis whose session goes away stops at its next
progress report: Streamlit raises ``StopException`` in the script thread there.

``keep_uploads_in_memory``: Streamlit's upload handler parses the multipart body with Starlette, whose
parser puts each file part in a ``SpooledTemporaryFile`` that moves to a temporary file (an unnamed one,
O_TMPFILE, in ``$TMPDIR``) once it passes 1 MB: a face photo would be on disk. The spool's threshold is
set above the upload cap, so parts stay in memory; the measurement is in tests/test_dashboard_admission.py.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager

import streamlit as st

AT_ONCE = 2  # analyses running at once in this process (one per core here)
QUEUE = 8  # analyses inside at once, running or waiting; more get the busy sentence
MAX_FILES = 20  # files analysed from one upload
BUSY = ("The server is busy with as many analyses as it takes at once (other people are uploading too); "
        "try again in a minute. Nothing was analysed or kept.")
_inside = [0]
_lock = threading.Lock()
_turns = threading.BoundedSemaphore(AT_ONCE)


def admit() -> bool:
    """Count one analysis in, unless QUEUE are inside already (then False)."""
    with _lock:
        if _inside[0] >= QUEUE:
            return False
        _inside[0] += 1
        return True


def leave() -> None:
    with _lock:
        _inside[0] -= 1


@contextmanager
def analysis_turn():
    """Inside the gate for the block (waiting for one of AT_ONCE turns); the busy sentence and a stop when full."""
    if not admit():
        st.warning(BUSY, icon=":material/hourglass_top:")
        st.stop()
    try:
        with _turns:
            yield
    finally:
        leave()


def run(function, *args, **kwargs):
    """``function(*args, **kwargs)`` inside the gate (``analysis_turn``)."""
    with analysis_turn():
        return function(*args, **kwargs)


def capped(files: list) -> list:
    """The first MAX_FILES of an upload, with a sentence when there were more (they are not analysed)."""
    if len(files) > MAX_FILES:
        st.warning(f"{len(files)} files were chosen; the page analyses up to {MAX_FILES} at a time, so the first "
                   f"{MAX_FILES} are analysed below. Remove them to analyse the others.", icon=":material/info:")
    return files[:MAX_FILES]


def keep_uploads_in_memory(max_upload_mb: int) -> bool:
    """Keep every upload's file part in memory in Streamlit's server (see the module docstring); False, and a
    file over 1 MB is spooled to ``$TMPDIR`` as before, when Starlette no longer has the setting."""
    try:
        from starlette.formparsers import MultiPartParser
    except ImportError:
        return False
    if not hasattr(MultiPartParser, "spool_max_size"):
        return False
    limit = (max_upload_mb + 1) * 1024 * 1024  # above the cap: Streamlit refuses a larger part before it is spooled
    MultiPartParser.spool_max_size = max(MultiPartParser.spool_max_size, limit)
    return True
