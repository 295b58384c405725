"""Importing TensorFlow without its C++ start-up chatter on the terminal.

TensorFlow 2.21 writes lines such as "oneDNN custom operations are on" and "Could not find cuda
drivers" straight to file descriptor 2 while its libraries load, before absl logging is set up, so
``TF_CPP_MIN_LOG_LEVEL`` (and absl's own variables) no longer reach them. Every process that imports
it printed them (13 processes in a demo run), burying the progress bars; so did its first CUDA probe
on a machine without a GPU ("failed call to cuInit"). ``import_tensorflow_quietly`` imports it and
lists the devices with descriptor 2 pointed at a temporary file, then writes back every captured line
that is not one of the known start-up notices, so real warnings and errors still show.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import tempfile

# Start-up notices that say nothing about the user's work (substrings of the captured lines).
BENIGN = (
    "All log messages before absl::InitializeLog() is called are written to STDERR",
    "oneDNN custom operations are on",
    "Could not find cuda drivers",
    "Unable to register cuDNN factory",
    "Unable to register cuFFT factory",
    "Unable to register cuBLAS factory",
    "computation placer already registered",
    "TF-TRT Warning",
    "failed call to cuInit",  # CUDA probing on a machine without a GPU
    "This TensorFlow binary is optimized to use available CPU instructions",
    "rebuild TensorFlow with the appropriate compiler flags",
)


def quiet_tensorflow_logging() -> None:
    """TensorFlow's C++ log at warnings and above (``TF_CPP_MIN_LOG_LEVEL=2``) for this process and the
    ones it starts, unless the user chose a level. Set but empty counts as not chosen: TensorFlow then
    logs everything (an INFO line per training process, "Memory patch applied", in a demo run)."""
    if not os.environ.get("TF_CPP_MIN_LOG_LEVEL", "").strip():
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"


def import_tensorflow_quietly() -> None:
    """Import TensorFlow once in this process, keeping all but its benign start-up lines.

    Does nothing when it is already imported or not installed (the GPU machines have JAX only).
    """
    if "tensorflow" in sys.modules or importlib.util.find_spec("tensorflow") is None:
        return
    quiet_tensorflow_logging()
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            import tensorflow

            tensorflow.config.list_physical_devices()  # the CUDA probe, which reports its own failure here
            quiet_expected_retracing()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            kept = worth_showing(sink.read().decode(errors="replace"))
            if kept:
                sys.stderr.write(kept)
                sys.stderr.flush()


# TensorFlow's "N out of the last N calls to <function> triggered tf.function retracing" counts traces
# across instances. Each network (a run's, a kept seed's, each layer the sanity check randomises) has its
# own Keras predict function and its own GradCam, which trace once each, as they must: for these the
# warning says nothing. Retracing of anything else still shows.
EXPECTED_RETRACING = ("GradCam._maps_of", "make_predict_function.<locals>.one_step_on_data")


class _ExpectedRetracing:
    def filter(self, record) -> bool:
        message = record.getMessage()
        return not ("retracing" in message and any(name in message for name in EXPECTED_RETRACING))


def quiet_expected_retracing() -> None:
    """Drop TensorFlow's retracing warnings about the functions in ``EXPECTED_RETRACING`` (idempotent)."""
    import logging

    logger = logging.getLogger("tensorflow")
    if not any(isinstance(f, _ExpectedRetracing) for f in logger.filters):
        logger.addFilter(_ExpectedRetracing())


def worth_showing(captured: str) -> str:
    """The captured text without blank lines and the known start-up notices."""
    return "".join(line for line in captured.splitlines(keepends=True)
                   if line.strip() and not any(notice in line for notice in BENIGN))
