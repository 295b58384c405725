"""Training-time augmentation inside the model, as in METHOD.md ("Training").

The block sits right after the input, where pixels are still in [0, 255]: uncovered pixels after a
rotation or shift are filled with 255 (white, the colour of the removed background), and the
contrast layer clips to (0, 255). Keras random layers are identity at inference (``training=False``),
so the same model serves ``predict``.
"""

from __future__ import annotations

import keras
from keras import layers

WHITE = 255.0  # fill value: white in the [0, 255] range the block sees


def augmentation(seed: int, name: str = "augment") -> keras.Sequential:
    """Flip, rotation (0.03 of a turn), translation (5 %, 5 %), contrast (0.1); each seeded.

    Input and output: float images (N, H, W, 3) in [0, 255].
    """
    return keras.Sequential(
        [
            layers.RandomFlip("horizontal", seed=seed),
            layers.RandomRotation(0.03, fill_mode="constant", fill_value=WHITE, seed=seed + 1),
            layers.RandomTranslation(0.05, 0.05, fill_mode="constant", fill_value=WHITE, seed=seed + 2),
            layers.RandomContrast(0.1, value_range=(0, 255), seed=seed + 3),
        ],
        name=name,
    )
