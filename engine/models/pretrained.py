"""The six ImageNet bases: ``keras.applications.<Net>(include_top=False)`` → GlobalAveragePooling2D
→ Dense(num_classes, softmax); the whole network is trained, nothing frozen (METHOD.md).

The base is one nested layer named after the network, so its parameters can be compared with
``keras.applications`` directly. Also here: the layer that applies a base's own ``preprocess_input``
(the ``training.input_scaling = "preprocess_input"`` option).
"""

from __future__ import annotations

from collections.abc import Callable

import keras
from keras import layers

from engine.models.scratch import classifier


@keras.saving.register_keras_serializable(package="painlens")
class ImageNetPreprocess(layers.Layer):
    """Apply ``keras.applications.<module>.preprocess_input`` to images in [0, 255], (N, H, W, 3).

    A layer (not a Lambda) so that saved models reload without unsafe deserialisation.
    """

    def __init__(self, module: str, **kwargs):
        super().__init__(**kwargs)
        self.module = module
        self._preprocess = getattr(keras.applications, module).preprocess_input

    def call(self, inputs):
        return self._preprocess(keras.ops.cast(inputs, self.compute_dtype))

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "module": self.module}


def make_builder(application: str) -> Callable:
    """A builder for ``keras.applications.<application>`` with a new 2-way (or n-way) head.

    The returned function maps (x, num_classes, seed, weights_path) to class probabilities, where
    ``weights_path`` is a local ImageNet ``_notop.h5`` file or None for random initialisation.
    """

    def build(x, num_classes: int, seed: int, weights_path: str | None = None):
        del seed  # the base and the head draw from the global seed set by the caller
        base_cls = getattr(keras.applications, application)
        base = base_cls(include_top=False, weights=weights_path, input_shape=tuple(x.shape[1:]),
                        name=application.lower())
        x = base(x)
        x = layers.GlobalAveragePooling2D()(x)
        return classifier(x, num_classes)

    build.__name__ = f"build_{application.lower()}"
    return build
