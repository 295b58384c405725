"""The ten networks behind one registry: name → builder and facts (input size, pretrained?, optimizer).

In the style of timm: adding an eleventh network is one ``ModelSpec`` entry. ``build_model`` wraps
any builder the same way::

    uint8 image (N, S, S, 3) → [augmentation, train only, in 0..255 with white fill]
                             → scaling (Rescaling to [0, 1]; or "centered" to [-1, 1]; or the base's
                               preprocess_input)
                             → network → softmax (N, num_classes), index 1 = pain

Minimum input sizes: ``keras.applications`` refuses InceptionV3 below 75 px and Xception below 71 px
(VGG and ResNet: 32 px). The scratch networks pool with ``padding="same"``, so no feature map ever
shrinks to zero (AlexNet at 32 px: 8 → 4 → 2 → 1), but below 32 px a face is no longer a face and
augmentation shifts are under one pixel, so 32 px is their documented minimum too.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from engine.errors import ConfigError
from engine.models.weights import WeightsFile, resolve_weights

# How ``build_model`` scales the uint8 image for the network ([training] input_scaling in the config).
INPUT_SCALINGS = ("rescale", "centered", "preprocess_input")


@dataclass(frozen=True)
class ModelSpec:
    """What the project knows about one network.

    ``builder(x, num_classes, seed[, weights_path])`` maps the scaled image tensor to class
    probabilities; ``input_size`` is the authors' side length in pixels; ``optimizer`` is the
    authors' default (a Keras optimizer name).
    """

    name: str
    builder: Callable
    input_size: int
    pretrained: bool
    optimizer: str
    min_input_size: int = 32
    weights: WeightsFile | None = None  # the ImageNet file of a pretrained base
    preprocess_module: str = ""  # keras.applications module whose preprocess_input fits the base


def _scratch(function: str) -> Callable:
    """``scratch.<function>``, imported when a network is built: the config reads this registry's
    facts when a file is loaded, and that must not import Keras."""

    def build(x, num_classes: int, seed: int, dropout: bool = True):
        from engine.models import scratch

        return getattr(scratch, function)(x, num_classes, seed, dropout=dropout)

    return build


def _pretrained(application: str) -> Callable:
    """``pretrained.make_builder(application)``, imported when a network is built (see ``_scratch``)."""

    def build(x, num_classes: int, seed: int, weights_path: str | None = None):
        from engine.models import pretrained

        return pretrained.make_builder(application)(x, num_classes, seed, weights_path)

    return build


def _base(name: str, module: str, weights: WeightsFile, min_size: int = 32) -> ModelSpec:
    return ModelSpec(name, _pretrained(name), 224, True, "adam", min_size, weights, module)


def _notop(stem: str, subfolder: str, md5: str) -> WeightsFile:
    return WeightsFile(f"{stem}_weights_tf_dim_ordering_tf_kernels_notop.h5", subfolder, md5)


MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec("AlexNet", _scratch("alexnet"), 224, False, "rmsprop"),
        ModelSpec("SongNet", _scratch("songnet"), 224, False, "rmsprop"),
        ModelSpec("WeiNet", _scratch("weinet"), 64, False, "rmsprop"),
        ModelSpec("SilNet", _scratch("silnet"), 150, False, "adam"),
        _base("VGG16", "vgg16", _notop("vgg16", "vgg16", "6d6bbae143d832006294945121d1f1fc")),
        _base("VGG19", "vgg19", _notop("vgg19", "vgg19", "253f8cb515780f3b799900260a226db6")),
        _base("ResNet50", "resnet50", _notop("resnet50", "resnet", "4d473c1dd8becc155b73f8504c6f6626")),
        _base("ResNet101V2", "resnet_v2", _notop("resnet101v2", "resnet", "c0ed64b8031c3730f411d2eb4eea35b5")),
        _base("InceptionV3", "inception_v3",
              _notop("inception_v3", "inception_v3", "bcbd6486424b2319ff4ef7d526e38f63"), min_size=75),
        _base("Xception", "xception", _notop("xception", "xception", "b0042744bf5b25fce3cb969f33bebb97"),
              min_size=71),
    )
}


def get_spec(name: str) -> ModelSpec:
    """The entry for ``name``; ConfigError naming the ten choices when there is none."""
    if name not in MODELS:
        raise ConfigError(f"Unknown network '{name}'; choose from {', '.join(MODELS)}.")
    return MODELS[name]


def input_size_for(name: str, training=None) -> int:
    """The side length (px) ``name`` is trained at: the override in ``training`` (the config's
    ``TrainingSection``: this registry sits below the config and does not import it), else the authors' size."""
    spec = get_spec(name)
    size = (training.input_size if training else {}).get(name, spec.input_size)
    if size < spec.min_input_size:
        raise ConfigError(f"{name} needs inputs of at least {spec.min_input_size} px, but training.input_size "
                          f"asks for {size}; raise it to {spec.min_input_size} or more.")
    return size


def build_model(name: str, input_size: int | None = None, num_classes: int = 2, weights: str = "imagenet",
                augment: bool = True, seed: int = 0, input_scaling: str = "rescale",
                weights_dir: str | Path | None = None, mixed_precision: bool = False, dropout: bool = True):
    """Build network ``name`` for uint8-valued images (N, S, S, 3) → probabilities (N, num_classes).

    ``weights`` ("imagenet" or "none") matters for pretrained bases only; ImageNet files are looked
    up in ``weights_dir`` (default: Keras's cache) before anything is built, so a missing file fails
    at once with MissingWeightsError. ``input_scaling="preprocess_input"`` uses the base's own
    preprocessing (scratch networks then rescale to [0, 1]); ``"centered"`` maps every network's input
    to [-1, 1]. With ``mixed_precision`` the layers
    compute in float16 and the softmax stays float32. ``dropout=False`` builds a scratch network without its
    dropout layers (the same network at inference; [training] unregularized). Call ``keras.utils.set_random_seed`` first
    for repeatable initial weights; ``seed`` seeds the augmentation and dropout layers.
    """
    import keras

    from engine.models import pretrained

    spec = get_spec(name)
    size = input_size or spec.input_size
    if size < spec.min_input_size:
        raise ConfigError(f"{name} needs inputs of at least {spec.min_input_size} px, not {size}.")
    if weights not in ("imagenet", "none"):
        raise ConfigError(f"weights must be \"imagenet\" or \"none\", not '{weights}'.")
    if input_scaling not in INPUT_SCALINGS:
        raise ConfigError(f"input_scaling must be one of {', '.join(INPUT_SCALINGS)}, not '{input_scaling}'.")
    extra = {}
    if spec.pretrained:
        use_imagenet = weights == "imagenet"
        extra["weights_path"] = str(resolve_weights(name, spec.weights, weights_dir)) if use_imagenet else None
    else:
        extra["dropout"] = dropout
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_float16" if mixed_precision else "float32")
    try:
        inputs = keras.Input((size, size, 3), name="image")
        x = inputs
        if augment:
            from engine.models.augment import augmentation

            x = augmentation(seed)(x)
        if input_scaling == "preprocess_input" and spec.preprocess_module:
            x = pretrained.ImageNetPreprocess(spec.preprocess_module, name="preprocess")(x)
        elif input_scaling == "centered":
            # Zero-centred inputs: with [0, 1] inputs and a white background every ReLU starts on a
            # large positive offset, and a scratch network trained for a few epochs on a few hundred
            # images stays on its constant-output plateau (the demo profile's problem, see README).
            x = keras.layers.Rescaling(1.0 / 127.5, offset=-1.0, name="rescale")(x)
        else:
            x = keras.layers.Rescaling(1.0 / 255.0, name="rescale")(x)
        outputs = spec.builder(x, num_classes, seed, **extra)
        return keras.Model(inputs, outputs, name=name)
    finally:
        keras.config.set_dtype_policy(previous)


def load_model(path: str | Path):
    """Reload a model saved with ``model.save(path)`` (``.keras``); our custom layers are registered
    first, so a fresh process can read it."""
    import keras

    import engine.models.pretrained  # noqa: F401  registers the custom layers a saved model may hold

    return keras.models.load_model(path)
