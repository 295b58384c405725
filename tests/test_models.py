"""The model registry: architectures against the authors' and Keras's parameter counts, input sizes,
input scaling, augmentation fill, and the ImageNet weights file lookup."""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import time

import keras
import numpy as np
import pytest

from engine.config import TrainingSection
from engine.errors import ConfigError, MissingWeightsError
from engine.models import registry, weights
from engine.models.registry import MODELS, build_model, get_spec, input_size_for

# The authors' figures with 6 outputs at their input sizes, as printed (METHOD.md): (size, value, unit).
AUTHORS_PARAMS = {
    "AlexNet": (224, 88.7, 1e6),
    "SongNet": (224, 172.7, 1e3),
    "WeiNet": (64, 1.7, 1e6),
    "SilNet": (150, 184.9, 1e6),
}
PRETRAINED = ["VGG16", "VGG19", "ResNet50", "ResNet101V2", "InceptionV3", "Xception"]
# Building these takes seconds each (tens of millions of weights, or deep bases): `make test` only.
BIG = {"AlexNet", "SilNet", "ResNet50", "ResNet101V2", "InceptionV3", "Xception"}


def networks(names) -> list:
    """``names`` for parametrize, the BIG ones marked slow."""
    return [pytest.param(name, marks=pytest.mark.slow) if name in BIG else name for name in names]


def test_registry_holds_the_ten_networks_with_their_facts():
    assert list(MODELS) == ["AlexNet", "SongNet", "WeiNet", "SilNet", *PRETRAINED]
    assert [n for n, s in MODELS.items() if s.pretrained] == PRETRAINED
    # The authors' code: RMSprop for three scratch networks, Adam for the rest; their input sizes.
    assert [n for n, s in MODELS.items() if s.optimizer == "rmsprop"] == ["AlexNet", "SongNet", "WeiNet"]
    assert {s.optimizer for s in MODELS.values()} == {"rmsprop", "adam"}
    assert {n: s.input_size for n, s in MODELS.items() if not s.pretrained} == {
        "AlexNet": 224, "SongNet": 224, "WeiNet": 64, "SilNet": 150}
    assert {MODELS[n].input_size for n in PRETRAINED} == {224}


@pytest.mark.parametrize("name", PRETRAINED)
def test_weights_file_name_url_and_md5_are_the_ones_keras_applications_uses(name):
    spec = MODELS[name].weights
    # ResNet50 and ResNet101V2 both load through keras.src.applications.resnet.
    stem = "resnet" if name.startswith("ResNet") else MODELS[name].preprocess_module
    module = importlib.import_module(f"keras.src.applications.{stem}")
    source = inspect.getsource(module)
    if name.startswith("ResNet"):
        assert module.WEIGHTS_HASHES[spec.file_name.split("_weights")[0]][1] == spec.md5
        assert module.BASE_WEIGHTS_PATH + spec.file_name == spec.url
    else:
        assert module.WEIGHTS_PATH_NO_TOP == spec.url
        assert f'"{spec.file_name}"' in source and f'file_hash="{spec.md5}"' in source


@pytest.mark.parametrize("name", networks(AUTHORS_PARAMS))
def test_scratch_network_matches_authors_parameter_count_with_six_outputs(name):
    size, value, unit = AUTHORS_PARAMS[name]
    model = build_model(name, input_size=size, num_classes=6, weights="none", augment=False)
    # The printed figure has one decimal: the exact count must round to it.
    assert abs(model.count_params() / unit - value) <= 0.05 + 1e-9, model.count_params()


@pytest.mark.parametrize("name", networks(AUTHORS_PARAMS))
def test_two_outputs_shrink_only_the_last_dense(name):
    six = build_model(name, input_size=48, num_classes=6, weights="none", augment=False)
    two = build_model(name, input_size=48, num_classes=2, weights="none", augment=False)
    fan_in = six.get_layer("predictions").input.shape[-1]
    assert six.count_params() - two.count_params() == 4 * (fan_in + 1)


@pytest.mark.parametrize("name", networks(PRETRAINED))
def test_pretrained_base_matches_keras_applications_plus_a_two_way_head(name):
    size = max(75, MODELS[name].min_input_size)
    model = build_model(name, input_size=size, weights="none")
    reference = getattr(keras.applications, name)(include_top=False, weights=None, input_shape=(size, size, 3))
    assert model.get_layer(name.lower()).count_params() == reference.count_params()
    channels = reference.output_shape[-1]
    assert model.count_params() == reference.count_params() + 2 * channels + 2
    assert all(layer.trainable for layer in model.get_layer(name.lower()).layers)


@pytest.mark.parametrize("name", networks(["AlexNet", "SongNet", "WeiNet", "SilNet"]))
def test_scratch_networks_stay_valid_at_demo_sizes(name):
    for size in (32, 48):
        model = build_model(name, input_size=size, weights="none")
        images = np.full((2, size, size, 3), 200, dtype=np.uint8)
        probs = keras.ops.convert_to_numpy(model(images, training=False))
        assert probs.shape == (2, 2)
        np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)


def test_input_size_override_comes_from_config_and_minimums_are_enforced():
    training = TrainingSection(input_size={"VGG16": 64, "WeiNet": 48})
    assert input_size_for("VGG16", training) == 64
    assert input_size_for("WeiNet", training) == 48
    assert input_size_for("SilNet", training) == 150
    with pytest.raises(ConfigError, match="at least 75 px"):
        input_size_for("InceptionV3", TrainingSection(input_size={"InceptionV3": 64}))
    with pytest.raises(ConfigError, match="at least 71 px"):
        build_model("Xception", input_size=64, weights="none")


def test_unknown_names_and_settings_are_refused_with_a_sentence():
    # The config refuses them when it is read (tests/test_config.py); these guard direct callers.
    with pytest.raises(ConfigError, match="Unknown network 'ResNet18'; choose from AlexNet"):
        get_spec("ResNet18")
    with pytest.raises(ConfigError, match="input_scaling"):
        build_model("WeiNet", input_size=32, weights="none", input_scaling="standardize")


def test_augmentation_keeps_white_white_and_fills_uncovered_pixels_with_white():
    augment = build_model("SongNet", input_size=32, weights="none", seed=5).get_layer("augment")
    white = np.full((16, 32, 32, 3), 255.0, dtype=np.float32)
    out = keras.ops.convert_to_numpy(augment(white, training=True))
    assert out.min() >= 254.9  # bilinear sampling of 255 everywhere, float32 rounding only
    black = np.zeros((16, 32, 32, 3), dtype=np.float32)
    out = keras.ops.convert_to_numpy(augment(black, training=True))
    # Shifts and rotations uncover pixels: they must be white (255), not black or grey-by-default.
    assert out.max() >= 254.9
    assert (out > 127).mean() > 0.005


def test_augmentation_is_identity_at_inference():
    augment = build_model("WeiNet", input_size=32, weights="none").get_layer("augment")
    images = np.random.default_rng(0).integers(0, 256, (4, 32, 32, 3)).astype(np.float32)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(augment(images, training=False)), images)


@pytest.mark.parametrize("name", networks(["AlexNet", "SongNet", "SilNet"]))
def test_an_unregularized_network_has_no_augmentation_or_dropout_and_the_same_weights(name):
    kept = build_model(name, input_size=32, weights="none", seed=1)
    plain = build_model(name, input_size=32, weights="none", seed=1, augment=False, dropout=False)
    kinds = {type(layer).__name__ for layer in plain.layers}
    assert "Dropout" in {type(layer).__name__ for layer in kept.layers} and "Dropout" not in kinds
    assert "augment" not in [layer.name for layer in plain.layers]
    assert [w.shape for w in plain.trainable_weights] == [w.shape for w in kept.trainable_weights]  # the same network


def test_centered_scaling_maps_0_to_minus_1_and_255_to_1_for_scratch_and_pretrained_networks():
    for name in ("WeiNet", "ResNet50"):
        model = build_model(name, input_size=32, weights="none", augment=False, input_scaling="centered")
        out = keras.ops.convert_to_numpy(model.get_layer("rescale")(np.array([[[[0.0, 127.5, 255.0]]]], np.float32)))
        np.testing.assert_allclose(out.ravel(), [-1.0, 0.0, 1.0], atol=1e-6)


def test_preprocess_input_scaling_uses_the_bases_own_function():
    model = build_model("VGG16", input_size=32, weights="none", augment=False, input_scaling="preprocess_input")
    images = np.random.default_rng(1).integers(0, 256, (2, 32, 32, 3)).astype(np.float32)
    ours = keras.ops.convert_to_numpy(model.get_layer("preprocess")(images))
    expected = keras.applications.vgg16.preprocess_input(images.copy())
    np.testing.assert_allclose(ours, expected, atol=1e-4)
    rescaled = build_model("VGG16", input_size=32, weights="none", augment=False)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(rescaled.get_layer("rescale")(images)), images / 255.0,
                               rtol=1e-6)


def test_missing_weights_file_fails_within_seconds_naming_the_file_and_both_ways_forward(tmp_path, monkeypatch):
    # Simulate "no route to the download host" whatever the test machine's network is.
    monkeypatch.setattr(weights, "_origin_reachable", lambda: False)
    started = time.perf_counter()
    with pytest.raises(MissingWeightsError) as caught:
        build_model("ResNet101V2", input_size=64, weights="imagenet", weights_dir=tmp_path)
    assert time.perf_counter() - started < 3.0
    message = str(caught.value)
    assert "resnet101v2_weights_tf_dim_ordering_tf_kernels_notop.h5" in message
    assert str(tmp_path) in message and "copy" in message and 'weights = "none"' in message


def test_damaged_weights_file_is_refused_with_a_sentence(tmp_path):
    (tmp_path / "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5").write_bytes(b"not an hdf5 file")
    with pytest.raises(MissingWeightsError, match="md5 differs"):
        build_model("VGG19", input_size=32, weights="imagenet", weights_dir=tmp_path)


def test_weights_file_in_the_cache_is_loaded_through_keras_applications(tmp_path, monkeypatch):
    keras.utils.set_random_seed(11)
    source = keras.applications.VGG16(include_top=False, weights=None, input_shape=(32, 32, 3))
    spec = MODELS["VGG16"]
    path = tmp_path / spec.weights.file_name
    source.save(path)  # the legacy HDF5 layout the ImageNet files use
    # Our file is not Keras's ImageNet file, so its md5 stands in for the registry's.
    md5 = weights._md5(path)
    monkeypatch.setitem(registry.MODELS, "VGG16",
                        dataclasses.replace(spec, weights=dataclasses.replace(spec.weights, md5=md5)))
    keras.utils.set_random_seed(12)
    model = build_model("VGG16", input_size=32, weights="imagenet", weights_dir=tmp_path)
    for ours, theirs in zip(model.get_layer("vgg16").get_weights(), source.get_weights()):
        np.testing.assert_array_equal(ours, theirs)


def test_built_models_save_and_reload_with_the_same_outputs(tmp_path):
    images = np.random.default_rng(2).integers(0, 256, (2, 32, 32, 3)).astype(np.uint8)
    for name, scaling in (("SongNet", "rescale"), ("VGG16", "preprocess_input")):
        model = build_model(name, input_size=32, weights="none", input_scaling=scaling)
        path = tmp_path / f"{name}.keras"
        model.save(path)
        again = registry.load_model(path)
        np.testing.assert_allclose(keras.ops.convert_to_numpy(again(images, training=False)),
                                   keras.ops.convert_to_numpy(model(images, training=False)), atol=1e-6)
