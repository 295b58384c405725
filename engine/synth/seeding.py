"""Independent random generators derived from the seed, so that no job's randomness depends on another's."""

from __future__ import annotations

import zlib

import numpy as np


def derived_rng(seed: int, *keys: object) -> np.random.Generator:
    """A generator for (seed, keys...): stable across runs, processes and Python versions.

    Keys are hashed by their ``str``, so ``1`` and ``"1"`` give the same generator.
    """
    words = [int(seed) & 0xFFFFFFFF] + [zlib.crc32(str(key).encode()) for key in keys]
    return np.random.default_rng(np.random.SeedSequence(words))
