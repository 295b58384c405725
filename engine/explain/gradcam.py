"""Grad-CAM (Selvaraju et al., 2017) on a network's last convolutional block, in Keras 3 ops.

    A (N, h, w, C)   the last 4-D activation: the input of the layer that flattens or pools the spatial
                     dimensions away (a scratch network's last conv block, a pretrained base's output)
    y_c              the explained class's logit: the final Dense layer's output before its softmax
                     (log p_c when the network does not end in one)
    map              ReLU(sum_C mean_hw(dy_c / dA) * A), resized bilinearly to the input size (S, S) and
                     scaled to a maximum of 1 per image (all 0 when nothing is positive)

One forward and one backward pass per batch. Everything is ``keras.ops`` but the gradient, the one line
each backend does its own way (TensorFlow's tape, ``jax.grad``), so it runs on
TensorFlow and JAX alike. Under TensorFlow the pass is a ``tf.function`` over fixed-size (padded)
batches, traced once: run eagerly, a network of hundreds of layers (InceptionV3) costs more in Python
than in arithmetic. Under JAX it runs eagerly: ``jax.jit`` would bake the weights in as constants, and
the sanity check changes them. The logit rather than p_c: a confident softmax saturates and its gradient
underflows. A last block of 1 x 1 (e.g. VGG16 at 32 px) gives a constant map: ``side`` says so.

The network is split at A into two functions: the layers up to A (a sub-model of a functional network;
the layers in order for a Sequential one) and the layers after it, applied in order. The latter must
form a chain (pooling or flattening, dense layers, dropout), as in all ten networks.
"""

from __future__ import annotations

import numpy as np

SPATIAL_COLLAPSE = ("Flatten", "GlobalAveragePooling2D", "GlobalMaxPooling2D")
BATCH = 16


class GradCam:
    """Grad-CAM maps of one Keras functional (or Sequential) model."""

    def __init__(self, model, batch_size: int = BATCH):
        import keras

        layers = list(model.layers)
        cut = next((i for i, layer in enumerate(layers) if type(layer).__name__ in SPATIAL_COLLAPSE), None)
        if cut is None or len(layers[cut].input.shape) != 4:
            raise ValueError(f"{model.name} has no convolutional block before a Flatten or global pooling layer.")
        final = layers[-1]
        softmax = isinstance(final, keras.layers.Dense) and getattr(final.activation, "__name__", "") == "softmax"
        self.dense = final if softmax else None
        self.tail = layers[cut:-1] if softmax else layers[cut:]
        if isinstance(model, keras.Sequential):
            before = layers[:cut]
            self.features = lambda x, training=False: _chain(before, x)
        else:
            self.features = keras.Model(model.inputs, layers[cut].input)
        self.n_classes = int(model.outputs[0].shape[-1])
        self.side = int(layers[cut].input.shape[1])
        self.batch_size = int(batch_size)
        self._compiled: dict[tuple, object] = {}  # (image shape, dtype) -> the maps function, traced once for any n

    def _score(self, activation, onehot):
        from keras import ops

        hidden = _chain(self.tail, activation)
        if self.dense is not None:
            logits = ops.matmul(ops.cast(hidden, "float32"), ops.cast(self.dense.kernel, "float32"))
            if self.dense.use_bias:
                logits = logits + ops.cast(self.dense.bias, "float32")
        else:
            logits = ops.log(ops.maximum(ops.cast(hidden, "float32"), 1e-12))
        return ops.sum(logits * onehot)  # images are independent: d(sum)/dA_i = dy_i / dA_i

    def __call__(self, images: np.ndarray, labels: np.ndarray) -> np.ndarray:
        """(N, S, S) float32 maps in [0, 1] for (N, S, S, 3) uint8 images and the classes to explain."""
        out = [self._batch(images[i:i + self.batch_size], labels[i:i + self.batch_size])
               for i in range(0, len(images), self.batch_size)]
        return np.concatenate(out) if out else np.zeros((0, *images.shape[1:3]), dtype=np.float32)

    def _batch(self, images: np.ndarray, labels: np.ndarray) -> np.ndarray:
        from keras import ops

        images = np.asarray(images)
        onehot = np.eye(self.n_classes, dtype=np.float32)[np.asarray(labels, dtype=int)]
        # Traced for any number of images (no padding to a full batch: a run's 6 images cost 6 maps, not 16;
        # AlexNet's 10 sanity images 0.14 -> 0.06 s a call; the same maps, tested).
        key = (images.shape[1:], images.dtype.str)
        if key not in self._compiled:
            self._compiled[key] = _compiled(self._maps_of, images.shape[1:], images.dtype, self.n_classes)
        cam = self._compiled[key](ops.convert_to_tensor(images), ops.convert_to_tensor(onehot))
        return np.asarray(ops.convert_to_numpy(cam), dtype=np.float32)

    def _maps_of(self, images, onehot):
        from keras import ops

        activation = ops.cast(self.features(images, training=False), "float32")
        grads = ops.cast(gradient(lambda a: self._score(a, onehot), activation), "float32")
        weights = ops.mean(grads, axis=(1, 2), keepdims=True)
        cam = ops.relu(ops.sum(weights * activation, axis=-1, keepdims=True))
        cam = ops.image.resize(cam, tuple(images.shape[1:3]), interpolation="bilinear")[..., 0]
        peak = ops.max(cam, axis=(1, 2), keepdims=True)
        return ops.where(peak > 0, cam / ops.maximum(peak, 1e-12), ops.zeros_like(cam))


def _compiled(function, image_shape: tuple, dtype, n_classes: int):
    """``function(images, onehot)`` traced once for any number of images of ``image_shape`` (TensorFlow; other
    backends run it as it is)."""
    import keras

    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        from engine.native_log import quiet_expected_retracing

        quiet_expected_retracing()  # each GradCam traces once; TensorFlow counts across instances
        return tf.function(function, input_signature=[tf.TensorSpec((None, *image_shape), tf.as_dtype(dtype)),
                                                      tf.TensorSpec((None, n_classes), tf.float32)])
    return function


def _chain(layers: list, x):
    for layer in layers:
        x = layer(x, training=False)
    return x


def gradient(function, x):
    """d function(x) / dx for a scalar-valued ``function`` of a backend tensor: the only backend-specific step."""
    import keras

    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        x = tf.convert_to_tensor(x)
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = function(x)
        return tape.gradient(y, x)
    if backend == "jax":
        import jax

        return jax.grad(function)(x)
    raise ValueError(f"Grad-CAM has no gradient for the Keras backend {backend!r}: PainLens runs on TensorFlow and "
                     "JAX (KERAS_BACKEND=tensorflow or jax).")
