"""A network's face descriptor beside its probabilities, for the answer's out-of-distribution check.

The descriptor is what ``engine.evaluation.answer`` measures distances in: the channel statistics (mean and
standard deviation over the image) of the first half of the network's convolutional stages, and its
penultimate features (the input of its softmax layer). Each part is scaled to unit length and divided by
the square root of the number of parts, so the squared distance between two descriptors is the mean of
the parts' squared distances.

Why not the penultimate features alone: measured on the demo (synthetic PAIN-DB), a network trained to
tell pain keeps little else there. With the threshold that lets 95 % of PAIN-DB's held-out faces through,
the penultimate features flagged 0 % (SilNet) to 78 % (SongNet) of 18 real photographs, drawings and
transformed faces, while the early stages' statistics flagged 83-100 %, and CP-PAIN's faces passed
(96-100 %) as before.
"""

from __future__ import annotations

SKIPPED = ("InputLayer", "Rescaling", "Normalization")  # inputs and fixed scalings: the image, not the network
MAX_PART = 1024  # a longer part (WeiNet's flattened map: 65,536 values) is averaged over runs of neighbouring values


def feature_model(model):
    """The same network with two outputs: the descriptor (N, D) and the class probabilities."""
    import keras

    stages = [layer for layer in model.layers if len(layer.output.shape) == 4
              and type(layer).__name__ not in SKIPPED and not type(layer).__name__.startswith("Random")]
    early = stages[: (len(stages) + 1) // 2]
    parts = [keras.ops.concatenate([keras.ops.mean(layer.output, axis=(1, 2)), keras.ops.std(layer.output, axis=(1, 2))],
                                   axis=-1) for layer in early]
    penultimate = model.layers[-1].input
    parts.append(_at_most(penultimate if len(penultimate.shape) == 2 else
                          keras.ops.mean(penultimate, axis=tuple(range(1, len(penultimate.shape) - 1))), MAX_PART))
    scale = float(len(parts)) ** 0.5
    unit = [part / (keras.ops.sqrt(keras.ops.sum(part * part, axis=-1, keepdims=True)) + 1e-12) / scale for part in parts]
    descriptor = keras.ops.concatenate(unit, axis=-1) if len(unit) > 1 else unit[0]
    return keras.Model(model.inputs, [descriptor, model.output])


def _at_most(part, size: int):
    """``part`` (N, D) with D reduced to at most ``size`` by averaging runs of ceil(D / size) neighbouring values
    (the stored descriptors of a fold's training faces stay small; distances keep their order of magnitude)."""
    import keras

    width = int(part.shape[-1])
    if width <= size:
        return part
    run = -(-width // size)
    padded = keras.ops.pad(part, [[0, 0], [0, run * size - width]])
    return keras.ops.mean(keras.ops.reshape(padded, (-1, size, run)), axis=-1)
