"""The four networks trained from scratch, layer for layer as in METHOD.md ("The ten networks").

Each builder takes the scaled image tensor (N, H, W, 3) and returns class probabilities
(N, num_classes). Every convolution is ReLU with ``padding="same"``, and so is every max-pool:
only then do the parameter counts match the authors' figures with 6 outputs (AlexNet 88.7 M,
SongNet 172.7 K, WeiNet 1.7 M, SilNet 184.9 M at 224/224/64/150 px); "valid" pools would give
e.g. AlexNet 75.1 M and WeiNet 1.6 M. "Same" pools also keep every map at least 1 px, so any
input size is architecturally valid; the registry still sets a minimum of 32 px (see registry.py).

``dropout=False`` leaves the dropout layers out ([training] unregularized): dropout is identity at
inference, so the network that predicts is the same; only its training is unregularized.
"""

from __future__ import annotations

from keras import layers


def _conv(x, filters: int, kernel: int, strides: int = 1, init: str = "glorot_uniform"):
    return layers.Conv2D(filters, kernel, strides=strides, padding="same", activation="relu",
                         kernel_initializer=init)(x)


def _pool(x, size: int, strides: int):
    return layers.MaxPooling2D(size, strides=strides, padding="same")(x)


def _dropout(x, rate: float, seed: int, enabled: bool):
    return layers.Dropout(rate, seed=seed)(x) if enabled else x


def classifier(x, num_classes: int, init: str = "glorot_uniform"):
    """The softmax output; float32 even under mixed precision, so probabilities and loss stay exact."""
    return layers.Dense(num_classes, activation="softmax", kernel_initializer=init, dtype="float32",
                        name="predictions")(x)


def alexnet(x, num_classes: int, seed: int, dropout: bool = True):
    x = _conv(x, 96, 11, strides=4)
    x = _pool(x, 3, 2)
    x = _conv(x, 256, 5)
    x = _pool(x, 3, 2)
    x = _conv(x, 384, 3)
    x = _conv(x, 384, 3)
    x = _conv(x, 256, 3)
    x = _pool(x, 3, 2)
    x = layers.Flatten()(x)
    x = layers.Dense(4096, activation="relu")(x)
    x = _dropout(x, 0.4, seed, dropout)
    x = layers.Dense(4096, activation="relu")(x)
    x = layers.Dense(4096, activation="relu")(x)
    x = _dropout(x, 0.4, seed + 1, dropout)
    return classifier(x, num_classes)


def songnet(x, num_classes: int, seed: int, dropout: bool = True):
    x = _conv(x, 64, 5)
    x = _pool(x, 3, 2)
    x = _conv(x, 64, 5)
    x = _pool(x, 3, 2)
    x = _conv(x, 32, 3)
    x = _pool(x, 3, 2)
    x = _dropout(x, 0.5, seed, dropout)
    x = _conv(x, 32, 3)
    x = _pool(x, 3, 2)
    x = _dropout(x, 0.5, seed + 1, dropout)
    x = layers.Flatten()(x)
    return classifier(x, num_classes)


def weinet(x, num_classes: int, seed: int, dropout: bool = True):
    del seed, dropout  # no random layer
    x = _conv(x, 32, 7)
    x = _pool(x, 2, 1)
    x = _conv(x, 32, 7)
    x = _pool(x, 2, 1)
    x = _conv(x, 64, 7)
    x = _pool(x, 2, 1)
    x = layers.Flatten()(x)
    return classifier(x, num_classes)


def silnet(x, num_classes: int, seed: int, dropout: bool = True):
    init = "glorot_normal"  # the authors' choice for this network, every layer
    x = _conv(x, 32, 11, init=init)
    x = _pool(x, 2, 2)
    x = _conv(x, 32, 7, init=init)
    x = _conv(x, 32, 7, init=init)
    x = _pool(x, 2, 1)
    x = _conv(x, 64, 5, init=init)
    x = _conv(x, 64, 5, init=init)
    x = _pool(x, 2, 1)
    x = layers.Flatten()(x)
    x = layers.Dense(512, activation="relu", kernel_initializer=init)(x)
    x = _dropout(x, 0.5, seed, dropout)
    x = layers.Dense(512, activation="relu", kernel_initializer=init)(x)
    return classifier(x, num_classes, init=init)

