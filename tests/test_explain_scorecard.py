"""The faithfulness scorecard's parts: deletion / insertion curves against a random order, LIME's
baselines, the pain action-unit regions and their scores, Grad-CAM (TensorFlow here, JAX in a
subprocess) and the randomisation sanity check, which must flag an explainer that ignores the network."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import textwrap

import numpy as np
import pandas as pd
import pytest

from engine.explain.faithfulness import (assemble, explanation_curves, grid, noisy_linear_imputation, plan_curves,
                                         superpixel_means)
from engine.explain.lime_masks import LimeParams, baseline_image, explain_image, image_seed, perturb, segment
from engine.explain.normalize import TemplateWarp, anchor_points, template_landmarks
from engine.explain.pain_regions import (ALL_REGIONS, PAIN_REGIONS, area_shares, pain_region_map, planted_regions,
                                         score_map)
from engine.explain.regions import OUTSIDE
from engine.explain.sanity import SANITY_LIMIT, sanity_check, seed_agreement, stability_verdicts, verdicts

SIZE = 32


def quadrant_image(seed=0):
    """A 32 px image of four flat colour blocks with mild noise (SLIC cuts along the blocks)."""
    rng = np.random.default_rng(seed)
    image = np.zeros((SIZE, SIZE, 3), dtype=np.float64)
    colours = [(200, 40, 40), (40, 200, 40), (40, 40, 200), (200, 200, 40)]
    for i, colour in enumerate(colours):
        r, c = divmod(i, 2)
        image[r * 16:(r + 1) * 16, c * 16:(c + 1) * 16] = colour
    return np.clip(image + rng.normal(0, 6, image.shape), 0, 255).astype(np.uint8)


def red_top_left(images):
    """p(class 1) rises with the red of the top-left block: what a network that learned it would do."""
    red = images[:, :16, :16, 0].astype(np.float64).mean(axis=(1, 2)) / 255.0
    p = 1 / (1 + np.exp(-12 * (red - 0.4)))
    return np.stack([1 - p, p], axis=1)


# --- curves --------------------------------------------------------------------------------------------

def test_the_curve_grid_reads_every_superpixel_when_there_are_few():
    assert grid(4, 10).tolist() == [0, 1, 2, 3, 4]
    assert grid(30, 5).tolist() == [0, 6, 12, 18, 24, 30]


def test_a_faithful_map_beats_the_random_order_on_deletion_and_insertion_with_either_fill():
    image = quadrant_image()
    params = LimeParams(num_samples=200, n_segments=16, batch_size=50, baseline="mean")
    explanation = explain_image(image, red_top_left, 1, params, image_seed(0, "q"))
    red = np.zeros((SIZE, SIZE)); red[:16, :16] = 1.0  # a Grad-CAM-like pixel map on the evidence
    curves = explanation_curves(image, explanation, red_top_left, steps=8, rng=np.random.default_rng(0), gradcam_map=red)
    assert set(curves) == {"lime/road", "lime/own", "gradcam/road", "gradcam/own"}
    for name, curve in curves.items():  # (insertion saturates: the mean colour and ROAD's fill keep some red)
        aucs = curve.aucs()
        assert aucs["insertion_auc"] >= aucs["insertion_auc_random"], name
        assert aucs["deletion_auc"] < aucs["deletion_auc_random"] - 0.1, name
    # The curves start at the image and end at everything hidden: the own fill's mean colour, ROAD's mean + noise.
    full, empty = red_top_left(image[None])[0, 1], red_top_left(baseline_image(image, "mean")[None])[0, 1]
    own = curves["lime/own"].values
    assert own[0, 0] == pytest.approx(full, abs=1e-6) and own[0, -1] == pytest.approx(empty, abs=1e-6)
    assert own[1, 0] == pytest.approx(empty, abs=1e-6) and own[1, -1] == pytest.approx(full, abs=1e-6)
    assert curves["lime/road"].values[0, -1] == pytest.approx(empty, abs=0.05)


def test_road_fills_hidden_pixels_with_the_mean_of_their_neighbours_plus_a_little_noise():
    # A ramp between two known columns: the neighbour-mean system's solution is the straight line between them.
    image = np.zeros((20, 20, 3), dtype=np.uint8)
    image[:, :5] = 200
    hidden = np.zeros((20, 20), dtype=bool)
    hidden[:, 4:16] = True  # from the last bright column to the first dark one
    filled = noisy_linear_imputation(image, hidden, np.random.default_rng(0), noise=0.0)[10, 3:17, 0].astype(float)
    assert filled[0] == 200 and filled[-1] == 0 and np.all(np.diff(filled) <= 0)
    assert np.allclose(filled[1:-1], np.linspace(200, 0, 14)[1:-1], atol=8)
    assert np.array_equal(noisy_linear_imputation(image, ~hidden & hidden, np.random.default_rng(0)), image)
    noisy = noisy_linear_imputation(image, hidden, np.random.default_rng(1))
    shown = ~hidden
    assert np.array_equal(noisy[shown], image[shown]) and 0 < np.abs(noisy[hidden].astype(int) -
                                                                    filled.mean()).mean() < 120
    every = noisy_linear_imputation(image, np.ones((20, 20), bool), np.random.default_rng(0), noise=0.0)
    assert np.all(every == np.round(image.reshape(-1, 3).mean(axis=0)).astype(np.uint8))
    stacked = noisy_linear_imputation(image, np.stack([hidden, ~hidden]), np.random.default_rng(0), noise=0.0)
    assert stacked.shape == (2, 20, 20, 3) and stacked[0, 10, 3:17, 0].tolist() == filled.tolist()


def test_the_random_order_reuses_lime_samples_and_draws_only_the_points_they_miss():
    k = 20
    samples = np.ones((6, k), dtype=np.uint8)
    for row, hidden in zip(samples[1:], (5, 5, 10, 15, 15)):
        row[:hidden] = 0
    probs = np.array([0.9, 0.7, 0.5, 0.4, 0.2, 0.2])
    lime = {"lime": np.linspace(1, 0, k)}
    plan = plan_curves(lime, samples, steps=4, rng=np.random.default_rng(0), fills=("own",))
    assert plan.random_rows == {}  # 5, 10 and 15 hidden are all among LIME's samples
    assert len(plan.rows) == 2 * 3 + 1  # sorted deletions, sorted insertions, all hidden
    row_probs = np.linspace(0, 1, len(plan.rows))
    curves = assemble(plan, row_probs, samples, probs)["lime/own"]
    assert curves.values[2].tolist() == pytest.approx([0.9, 0.6, 0.4, 0.2, row_probs[plan.all_hidden_row["own"]]])
    # ROAD's fill has no LIME samples to reuse: every interior point gets its own random subset. Grad-CAM's order
    # on the same superpixels shares the random rows and the rows that equal LIME's.
    both = plan_curves({**lime, "gradcam": np.linspace(1, 0, k)}, samples[:1], steps=4, rng=np.random.default_rng(0))
    assert sorted(h for fill, h in both.random_rows if fill == "road") == [5, 10, 15]
    assert sorted(h for fill, h in both.random_rows if fill == "own") == [5, 10, 15]
    assert len(both.rows) == 2 * (7 + 3)  # per fill: the shared sorted rows, all hidden, three random
    for (fill, h), rows in both.random_rows.items():
        assert all(int((both.rows[r] == 0).sum()) == h and both.fills[r] == fill for r in rows)
    assert np.allclose(superpixel_means(np.arange(4.0).reshape(2, 2), np.array([[0, 0], [1, 1]])), [0.5, 2.5])


# --- LIME's baseline ----------------------------------------------------------------------------------

def test_hidden_superpixels_show_the_chosen_baseline():
    image = quadrant_image()
    segments = segment(image, 16, 20.0)
    hide_all = np.zeros((1, int(segments.max()) + 1), dtype=np.uint8)
    assert perturb(image, segments, hide_all, baseline_image(image, "black")).max() == 0
    mean = perturb(image, segments, hide_all, baseline_image(image, "mean"))[0]
    assert np.abs(mean.reshape(-1, 3) - image.reshape(-1, 3).mean(axis=0)).max() <= 0.5
    blurred = perturb(image, segments, hide_all, baseline_image(image, "blur"))[0].astype(float)
    assert np.abs(blurred - image).mean() > 1  # a blurred copy, not the image
    # A dark detail (a pupil, a furrow) hardly survives the blur: what "hidden" must mean.
    dot = np.full((SIZE, SIZE, 3), 150, dtype=np.uint8)
    dot[15:18, 15:18] = 0
    assert 150 - baseline_image(dot, "blur")[16, 16].min() < 0.2 * 150
    shown = perturb(image, segments, np.ones_like(hide_all), baseline_image(image, "blur"))[0]
    assert np.array_equal(shown, image)
    with pytest.raises(ValueError):
        baseline_image(image, "white")


def test_the_baseline_is_a_config_setting_checked_when_read(tmp_path):
    from engine.config import config_from_dict
    from engine.errors import ConfigError

    config = config_from_dict({"explain": {"baseline": "blur", "curve_steps": 5}}, base_dir=tmp_path)
    assert LimeParams.from_section(config.explain).baseline == "blur"
    assert config_from_dict({}, base_dir=tmp_path).explain.baseline == "mean"  # measured (bench/lime_baselines.py)
    with pytest.raises(ConfigError, match="baseline"):
        config_from_dict({"explain": {"baseline": "grey"}}, base_dir=tmp_path)
    with pytest.raises(ConfigError, match="curve_steps"):
        config_from_dict({"explain": {"curve_steps": 1}}, base_dir=tmp_path)


# --- pain regions -------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def regions():
    warp = TemplateWarp.build(128)
    return warp, pain_region_map(warp)


def test_pain_regions_partition_the_face_and_sit_where_their_action_units_show(regions):
    warp, labels = regions
    shares = area_shares(labels)
    assert sum(shares.values()) == pytest.approx(1.0)
    assert all(shares[r] > 0.02 for r in ALL_REGIONS) and shares["reference"] > 0.5
    rows = {r: np.argwhere(labels == ALL_REGIONS.index(r))[:, 0].mean() for r in ALL_REGIONS}
    landmarks = template_landmarks(128)
    eyes_y = landmarks[36:48, 1].mean()
    assert rows["brow_lowerer"] < eyes_y < rows["nose_lip"]
    for eye in (slice(36, 42), slice(42, 48)):
        x, y = np.round(landmarks[eye].mean(axis=0)).astype(int)
        assert labels[y, x] == ALL_REGIONS.index("eye_closure")
        assert labels[y + 6, x] == ALL_REGIONS.index("orbit")  # the lower lid and upper cheek
    assert labels[0, 0] == OUTSIDE


def test_map_scores_count_mass_per_area_and_the_hottest_plateau(regions):
    _, labels = regions
    eye = labels == ALL_REGIONS.index("eye_closure")
    heat = np.where(eye, 1.0, 0.1) * (labels != OUTSIDE)
    scores = score_map(heat, labels, planted=("eye_closure",))
    assert scores["pointing_hit"] == 1.0 and scores["pointing_hit_planted"] == 1.0
    assert scores["pain_vs_rest"] > 1 and scores["planted_vs_rest"] == pytest.approx(10.0)
    assert sum(scores[f"share_{r}"] for r in ALL_REGIONS) == pytest.approx(1.0)
    flat_top = np.where(labels == ALL_REGIONS.index("reference"), 1.0, 0.0)
    flat_top[eye] = 1.0  # one plateau, partly in a pain region
    expected = eye.sum() / (eye.sum() + (labels == ALL_REGIONS.index("reference")).sum())
    assert score_map(flat_top, labels)["pointing_hit"] == pytest.approx(expected)
    assert np.isnan(score_map(np.zeros_like(heat), labels)["pointing_hit"])


def test_planted_regions_follow_the_coded_action_units():
    assert planted_regions({"au4": 2.0, "au6": 0.0, "au7": 1.0, "au43": 0.0, "au9": 0.0, "au10": 0.0}) == \
        ("brow_lowerer", "orbit")
    assert planted_regions({"au4": 0.0, "au6": 0.0, "au7": 0.0, "au9": 0.0, "au10": 0.0, "au43": 0.0}) == ()
    assert planted_regions({"au4": np.nan}) is None and planted_regions({}) is None
    assert set(PAIN_REGIONS) < set(ALL_REGIONS)


# --- Grad-CAM and the sanity check --------------------------------------------------------------------

def red_detector(seed=0):
    """A conv network whose logit for class 1 grows with the red in the image (hand-set weights):
    its evidence is where red is."""
    import keras

    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input((SIZE, SIZE, 3)), keras.layers.Rescaling(1 / 255),
                              keras.layers.Conv2D(2, 3, padding="same", activation="relu"),
                              keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(2, activation="softmax")])
    kernel = np.zeros((3, 3, 3, 2), dtype=np.float32)
    kernel[1, 1, 0, 0] = 4.0  # filter 0: red
    kernel[1, 1, 1, 1] = 4.0  # filter 1: green
    model.layers[1].set_weights([kernel, np.array([-1.0, -1.0], dtype=np.float32)])
    model.layers[3].set_weights([np.array([[-3.0, 3.0], [3.0, -3.0]], dtype=np.float32), np.zeros(2, dtype=np.float32)])
    return model


def position_net(seed=0):
    """A small conv network with a dense layer on the flattened map: its evidence depends on where
    things are, as a face network's does."""
    import keras

    keras.utils.set_random_seed(seed)
    return keras.Sequential([keras.Input((SIZE, SIZE, 3)), keras.layers.Rescaling(1 / 255),
                             keras.layers.Conv2D(4, 5, strides=2, activation="relu"), keras.layers.Flatten(),
                             keras.layers.Dense(2, activation="softmax")])


def red_square():
    image = np.full((SIZE, SIZE, 3), 30, dtype=np.uint8)
    image[4:12, 20:28] = (250, 30, 30)
    image[20:28, 4:12] = (30, 250, 30)
    return image


def test_gradcam_points_at_the_evidence_for_the_class_explained():
    from engine.explain.gradcam import GradCam

    cam = GradCam(red_detector())
    maps = cam(np.stack([red_square()] * 2), np.array([1, 0]))
    assert maps.shape == (2, SIZE, SIZE) and maps.max() == pytest.approx(1.0) and maps.min() >= 0
    assert maps[0, 4:12, 20:28].mean() > 5 * maps[0, 20:28, 4:12].mean()  # pain: the red square
    assert maps[1, 20:28, 4:12].mean() > 5 * maps[1, 4:12, 20:28].mean()  # no pain: the green one


def test_one_gradcam_per_network_traces_once_without_tensorflows_retracing_warning(caplog):
    # A run's network, and each layer the sanity check randomises, gets its own GradCam, which traces
    # once: TensorFlow counts those traces across instances and warned on the demo's terminal.
    import logging

    from engine.explain.gradcam import GradCam

    with caplog.at_level(logging.WARNING, logger="tensorflow"):
        for seed in range(6):
            GradCam(red_detector(seed))(red_square()[None], np.array([1]))
    assert not [r for r in caplog.records if "retracing" in r.getMessage()]


def test_gradcam_traces_once_for_any_number_of_images_and_gives_each_the_same_map():
    # No padding to a full batch (a run's 6 images cost 6 maps, not 16): one trace for every call size, and an
    # image's map does not depend on the others in its call.
    import keras

    from engine.explain.gradcam import GradCam

    cam = GradCam(red_detector())
    images, labels = np.stack([red_square(), quadrant_image(1), quadrant_image(2)]), np.array([1, 0, 1])
    together = cam(images, labels)
    alone = np.concatenate([cam(images[i:i + 1], labels[i:i + 1]) for i in range(3)])
    np.testing.assert_allclose(together, alone, atol=1e-6)
    assert together.shape == (3, SIZE, SIZE) and len(cam._compiled) == 1
    if keras.backend.backend() == "tensorflow":
        assert next(iter(cam._compiled.values())).experimental_get_tracing_count() == 1


def test_a_networks_runs_share_one_gradcam_that_follows_the_weights_each_run_trained():
    # The runner resets one compiled model in place for each run of a network: the explain step keeps one
    # GradCam per model object (traced once) and its maps must be those of the weights of the moment.
    from engine.explain.run_stage import _grad_cam
    from engine.explain.gradcam import GradCam

    model, images, labels = red_detector(), np.stack([red_square()] * 2), np.array([1, 0])
    cam = _grad_cam(model)
    before = cam(images, labels)
    other = red_detector()
    kernel, bias = model.layers[1].get_weights()
    model.layers[1].set_weights([kernel[..., ::-1].copy(), bias])  # red and green swap filters: "the next run"
    assert _grad_cam(model) is cam and _grad_cam(other) is not cam
    after = cam(images, labels)
    np.testing.assert_allclose(after, GradCam(model)(images, labels), atol=1e-6)
    assert not np.allclose(after, before)


def test_gradcam_maps_are_normalised_onto_the_template_like_lime_masks():
    from engine.explain.gradcam import GradCam

    # A face whose landmarks are the template's (at 32 px) with red over its image-left eye: on the
    # 128 px template the map's hottest part must sit on that eye.
    points = template_landmarks(SIZE)
    image = np.full((SIZE, SIZE, 3), 30, dtype=np.uint8)
    ex, ey = np.round(points[36:42].mean(axis=0)).astype(int)
    image[ey - 2:ey + 3, ex - 3:ex + 4] = (250, 30, 30)
    gradcam = GradCam(red_detector())(image[None], np.array([1]))[0]
    warp = TemplateWarp.build(128)
    warped = warp.warp(gradcam, warp.coordinates(anchor_points(points, SIZE)))
    hot = np.argwhere(warped >= 0.9 * warped.max()).mean(axis=0)[::-1]  # x, y
    assert warped.shape == (128, 128)
    assert np.hypot(*(hot - warp.landmarks[36:42].mean(axis=0))) < 8


GRADCAM_JAX = textwrap.dedent("""
    import json, sys
    import numpy as np
    import keras
    sys.path.insert(0, sys.argv[1])
    from test_explain_scorecard import red_detector, red_square
    from engine.explain.gradcam import GradCam
    from engine.explain.sanity import randomised
    model = red_detector()
    maps = GradCam(model)(np.stack([red_square()] * 2), np.array([1, 0]))
    before = model.predict_on_batch(red_square()[None])
    with randomised(model, 2, np.random.default_rng(0)):
        during = model.predict_on_batch(red_square()[None])
    after = model.predict_on_batch(red_square()[None])
    print(json.dumps({"backend": keras.backend.backend(), "maps": maps.tolist(),
                      "changed": bool(np.abs(during - before).max() > 1e-4), "restored": bool(np.allclose(before, after))}))
""")


@pytest.mark.slow
def test_gradcam_and_the_randomisation_run_the_same_under_jax(tmp_path):
    from engine.explain.gradcam import GradCam
    from test_train_jax import run_under_jax

    result = run_under_jax(GRADCAM_JAX, tmp_path)
    assert result["backend"] == "jax" and result["changed"] and result["restored"]
    here = GradCam(red_detector())(np.stack([red_square()] * 2), np.array([1, 0]))
    assert np.allclose(np.array(result["maps"]), here, atol=1e-4)


def image_edges(model, images, labels):
    """A broken explainer: the image's own gradient magnitude, whatever the network."""
    grey = images.astype(np.float64).mean(axis=-1)
    return np.hypot(*np.gradient(grey, axis=(1, 2)))


def test_the_sanity_check_flags_an_explainer_that_ignores_the_network_and_passes_lime():
    from engine.explain.run_stage import lime_maps
    from engine.explain.gradcam import GradCam

    model = position_net(seed=1)
    weights = [w.copy() for w in model.get_weights()]
    images = np.stack([red_square(), quadrant_image(2)])
    params = LimeParams(num_samples=60, n_segments=16, batch_size=30)
    cam = GradCam(model)
    explainers = {"edges": image_edges, "lime": lambda m, x, y: lime_maps(m, x, y, ["a", "b"], params, seed=1),
                  "gradcam": lambda m, x, y: cam(x, y)}
    checks = sanity_check(model, images, np.array([1, 1]), explainers, seed=0)
    assert len(checks) == 3 * 4 * 2 and set(checks["stage"]) == {"top_layer", "top_half", "all_layers", "null"}
    verdict = verdicts(checks).set_index("explainer")
    assert verdict.loc["edges", "flagged"] and verdict.loc["edges", "rho_all_layers"] == pytest.approx(1.0)
    assert verdict.loc["edges", "ssim_all_layers"] == pytest.approx(1.0) and verdict.loc["edges", "rho_null"] == pytest.approx(1.0)
    assert "do not change" in verdict.loc["edges", "verdict"] and "n = 2 images" in verdict.loc["edges", "verdict"]
    assert not verdict.loc["lime", "flagged"] and verdict.loc["lime", "verdict"].startswith("passes")
    assert "too few" in verdict.loc["lime", "verdict"] and verdict.loc["lime", "images"] == 2
    assert not verdict.loc["gradcam", "flagged"]
    assert all(np.array_equal(a, b) for a, b in zip(weights, model.get_weights()))  # restored


def deep_position_net(seed=0):
    """``position_net`` with a second convolution: three weighted layers, so the cascade's top half (two of them)
    is more than its top layer and keeps the first convolution as trained."""
    import keras

    keras.utils.set_random_seed(seed)
    return keras.Sequential([keras.Input((SIZE, SIZE, 3)), keras.layers.Rescaling(1 / 255),
                             keras.layers.Conv2D(4, 5, strides=2, activation="relu"), keras.layers.MaxPooling2D(2),
                             keras.layers.Conv2D(4, 3, activation="relu"), keras.layers.Flatten(),
                             keras.layers.Dense(2, activation="softmax")])


def test_the_first_two_stages_read_off_the_trained_pass_equal_lime_passes_of_the_networks_the_cascade_redraws():
    # The run's own LIME pass (a CascadeTap as classifier) gives the sanity check's top-layer and top-half stages:
    # the trained bottom layers' activations fed to copies of the redrawn top ones give the same maps as explaining
    # the network with those layers redrawn in place, as the cascade does, at the cost of the copies alone.
    from engine.explain.run_stage import _tapped_maps, lime_maps
    from engine.explain.sanity import CascadeTap, _restored, cascade, weighted_layers

    model = deep_position_net(seed=1)
    images, labels, ids = np.stack([red_square(), quadrant_image(2)]), np.array([1, 1]), ["a", "b"]
    params = LimeParams(num_samples=60, n_segments=16, batch_size=30)
    tap = CascadeTap.of(model, seed=0, batch_size=params.batch_size)
    assert tap.stages == ("top_layer", "top_half") and len(tap.drawn) == 4  # both stages' kernels and biases
    originals, tapped = [], []
    for image, image_id in zip(images, ids):
        explanation = explain_image(image, tap, 1, params, image_seed(1, image_id))
        originals.append(explanation.weights[explanation.segments])
        tapped.append(_tapped_maps(tap, explanation, params, image_seed(1, image_id)))
    np.testing.assert_allclose(np.stack(originals), lime_maps(model, images, labels, ids, params, seed=1), atol=1e-6)
    expected = {}
    with _restored(model):  # the networks the cascade explains, redrawn in place
        for stage, _, draws in cascade(weighted_layers(model), seed=0):
            for variable, value in draws:
                variable.assign(value)
            expected[stage] = lime_maps(model, images, labels, ids, params, seed=1)
    for stage in tap.stages:
        np.testing.assert_allclose(np.stack([t[stage] for t in tapped]), expected[stage], atol=1e-6)
        assert not np.allclose(expected[stage], np.stack(originals), atol=1e-3)  # the stage changed the maps
    assert not np.allclose(expected["top_half"], expected["top_layer"], atol=1e-3)
    explainers = {"lime": lambda m, x, y: lime_maps(m, x, y, ids, params, seed=1)}
    given, made = {"lime": np.stack(originals)}, {"lime": {s: np.stack([t[s] for t in tapped]) for s in tap.stages}}
    plain = sanity_check(model, images, labels, explainers, given, seed=0)
    tapped_check = sanity_check(model, images, labels, explainers, given, seed=0, made=made, drawn=tap.drawn)
    np.testing.assert_allclose(tapped_check[["rank_correlation", "ssim"]], plain[["rank_correlation", "ssim"]], atol=1e-6)


def test_the_tap_leaves_a_top_half_with_branches_to_the_cascade():
    import keras

    from engine.explain.sanity import CascadeTap

    keras.utils.set_random_seed(0)
    inputs = keras.Input((SIZE, SIZE, 3))
    x = keras.layers.Conv2D(4, 5, strides=4, activation="relu")(keras.layers.Rescaling(1 / 255)(inputs))
    x = keras.layers.Add()([x, keras.layers.Conv2D(4, 3, padding="same")(x)])  # a residual block
    model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(keras.layers.Flatten()(x)))
    tap = CascadeTap.of(model, seed=0, batch_size=4)
    assert tap.stages == ("top_layer",)
    tap(np.zeros((4, SIZE, SIZE, 3), dtype=np.uint8))
    assert set(tap.take()) == {"top_layer"}


def test_a_map_that_only_flips_its_sign_has_not_changed_for_the_sanity_check():
    from engine.explain.sanity import _map_change

    rng = np.random.default_rng(0)
    signed = rng.normal(size=(16, 16))
    rho, ssim = _map_change(signed, -signed)
    assert rho == pytest.approx(1.0) and ssim == pytest.approx(1.0)
    rho, _ = _map_change(signed, rng.normal(size=(16, 16)))
    assert abs(rho) < 0.3


def test_lime_stability_counts_rank_agreement_and_top_five_overlap_between_seeds():
    same = seed_agreement([np.arange(10.0)] * 3)
    assert same["rank_correlation"] == pytest.approx(1.0) and same["top5_overlap"] == 1.0 and same["seeds"] == 3
    flipped = seed_agreement([np.arange(10.0), -np.arange(10.0)])
    assert flipped["rank_correlation"] == pytest.approx(-1.0) and flipped["top5_overlap"] == 0.0
    rows = pd.DataFrame([{"model": "A", "image_id": str(i), **same} for i in range(3)] +
                        [{"model": "B", "image_id": str(i), **flipped} for i in range(3)])
    table = stability_verdicts(rows).set_index("model")
    assert not table.loc["A", "unstable"] and table.loc["B", "unstable"] and table.loc["A", "images"] == 3


def test_the_ranking_between_fills_says_how_far_it_moves():
    from engine.explain.scorecard import fill_ranking, ranking_sentence

    gains = {("A", "lime"): (0.3, 0.1), ("A", "gradcam"): (0.2, 0.2), ("B", "lime"): (0.1, 0.3), ("B", "gradcam"): (0.0, 0.0)}
    rows = []
    for (model, explainer), (road, own) in gains.items():
        for metric, value in (("insertion_gain", road), ("deletion_gain", 0.0), ("insertion_gain_own", own),
                              ("deletion_gain_own", 0.0)):
            rows.append({"model": model, "scenario": "external", "dataset": "all", "explainer": explainer,
                         "metric": metric, "value": value})
    ranking = fill_ranking(pd.DataFrame(rows)).set_index(["model", "explainer"])
    assert ranking.loc[("A", "lime"), "rank_road"] == 1 and ranking.loc[("B", "lime"), "rank_own"] == 1
    assert ranking.loc[("B", "lime"), "moved"] == 2 and ranking.loc[("B", "gradcam"), "moved"] == 0
    assert "at most 2" in ranking_sentence(ranking.reset_index(), "external")
