"""Errors a user can cause. Each carries one sentence that says what happened and what to do.

The CLI and the dashboard print ``str(error)`` and never a traceback for these.
"""


class PainLensError(Exception):
    """Base class: a problem the user can fix; the message is shown as is."""

    exit_code = 1


class NotADatasetError(PainLensError):
    """The folder given is not the dataset it was said to be."""

    exit_code = 2


class ConfigError(PainLensError):
    """An experiment config file is missing, unreadable or has a wrong value."""

    exit_code = 2


class MissingWeightsError(PainLensError):
    """A pretrained weights file is neither in the Keras cache nor downloadable."""


class BadImageError(PainLensError):
    """An image cannot be decoded, is too large, or holds no usable face."""


class BadVideoError(BadImageError):
    """A video cannot be read (empty, not a video, sound only, damaged, frames too large)."""
