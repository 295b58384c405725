"""Per-image LIME masks: faithful to the lime package, reproducible, cached and resumable per run."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pandas as pd
import pytest

from engine.artifacts import ExperimentStore, RunKey
from engine.config import config_from_dict
from engine.explain.run_stage import choose_images, explain_run
from engine.explain.lime_masks import BatchedModel, LimeParams, explain_image, image_seed, perturb, segment
from engine.explain.mask_store import load_run_masks


def face_like(size=48, seed=0):
    """A smooth image with a few blobs: SLIC finds its ~20 superpixels as on a face crop."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    image = np.zeros((size, size, 3))
    for _ in range(6):
        cx, cy, r = rng.uniform(0.2, 0.8), rng.uniform(0.2, 0.8), rng.uniform(0.08, 0.2)
        image += np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / r ** 2)[..., None] * rng.uniform(40, 120, 3)
    return np.clip(image + 60, 0, 255).astype(np.uint8)


def brightness_classifier(images):
    """p(class 1) rises with the brightness of the image's top-left quarter: a fixed, known model."""
    images = np.asarray(images, dtype=np.float64)
    half = images.shape[1] // 2
    score = images[:, :half, :half].mean(axis=(1, 2, 3)) / 255.0
    p = 1 / (1 + np.exp(-8 * (score - 0.3)))
    return np.stack([1 - p, p], axis=1)


def tiny_model(size=32, seed=0):
    import keras

    keras.utils.set_random_seed(seed)
    return keras.Sequential([
        keras.Input((size, size, 3)), keras.layers.Rescaling(1 / 255),
        keras.layers.Conv2D(4, 3, activation="relu"), keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(2, activation="softmax"),
    ])


def test_segments_are_dense_uint8_labels_from_slic():
    segments = segment(face_like(), n_segments=30, compactness=20)
    assert segments.dtype == np.uint8 and segments.shape == (48, 48)
    labels = np.unique(segments)
    assert labels[0] == 0 and np.array_equal(labels, np.arange(len(labels))) and 5 < len(labels) <= 40


def test_perturbation_blacks_out_exactly_the_superpixels_whose_bit_is_zero():
    image = face_like()
    segments = segment(image)
    samples = np.random.default_rng(1).integers(0, 2, (7, int(segments.max()) + 1), dtype=np.uint8)
    out = perturb(image, segments, samples)
    for row, bits in zip(out, samples):
        hidden = bits[segments] == 0
        assert np.all(row[hidden] == 0) and np.array_equal(row[~hidden], image[~hidden])
    grey = perturb(image, segments, samples, hide_color=128)
    assert np.all(grey[0][samples[0][segments] == 0] == 128)


def test_weights_match_the_lime_package_explainer_on_the_same_samples():
    from lime import lime_image

    # the lime package hides superpixels with hide_color (black), the paper's baseline
    image, label, params = face_like(seed=3), 1, LimeParams(num_samples=400, baseline="black")
    segments = segment(image)
    n_features = int(segments.max()) + 1
    explainer = lime_image.LimeImageExplainer(kernel_width=0.25, random_state=np.random.RandomState(5))
    reference = explainer.explain_instance(image, brightness_classifier, labels=(label,), top_labels=None,
                                           hide_color=0, num_samples=400, batch_size=100,
                                           segmentation_fn=lambda _: segments, random_seed=0)
    expected = np.zeros(n_features)
    for feature, weight in reference.local_exp[label]:
        expected[feature] = weight
    # LIME draws its samples from its RandomState; feed ours the very same matrix.
    lime_samples = np.random.RandomState(5).randint(0, 2, 400 * n_features).reshape(400, -1)
    lime_samples[0, :] = 1
    ours = explain_image(image, brightness_classifier, label, params, image_seed(0, "x"), samples=lime_samples)
    assert np.allclose(ours.weights, expected, atol=1e-6)
    assert ours.weights[segments[5, 5]] > 0  # the top-left quarter drives class 1


def test_a_given_fill_is_what_hidden_superpixels_show_and_what_lime_credits_against():
    image, params = face_like(seed=4), LimeParams(num_samples=60, baseline="black")
    fill = face_like(seed=9)
    seen = []

    def recording(images):
        seen.append(np.array(images))
        return brightness_classifier(images)

    explanation = explain_image(image, recording, 1, params, image_seed(0, "x"), fill=fill)
    shown, segments = np.concatenate(seen), explanation.segments
    for row, bits in zip(shown, explanation.samples):
        hidden = bits[segments] == 0
        assert np.array_equal(row[hidden], fill[hidden]) and np.array_equal(row[~hidden], image[~hidden])
    # Hiding the top-left quarter behind itself changes nothing: no credit there.
    same = explain_image(image, brightness_classifier, 1, params, image_seed(0, "x"), fill=image)
    assert np.allclose(same.weights, 0, atol=1e-9)


def test_same_seed_gives_the_same_mask_and_another_seed_another():
    image, params = face_like(), LimeParams(num_samples=200)
    a = explain_image(image, brightness_classifier, 1, params, image_seed(7, "unbc/01/a/3"))
    b = explain_image(image, brightness_classifier, 1, params, image_seed(7, "unbc/01/a/3"))
    c = explain_image(image, brightness_classifier, 1, params, image_seed(8, "unbc/01/a/3"))
    assert np.array_equal(a.weights, b.weights) and np.array_equal(a.mask(), b.mask())
    assert not np.array_equal(a.weights, c.weights)
    assert a.mask().min() >= 0 and a.mask().shape == image.shape[:2]


def test_batched_model_pads_to_one_batch_shape_and_returns_the_model_probabilities():
    model = tiny_model()
    images = np.random.default_rng(0).integers(0, 255, (13, 32, 32, 3), dtype=np.uint8)
    batched = BatchedModel(model, batch_size=8)
    probs = np.concatenate([batched(images[:8]), batched(images[8:])])
    assert probs.shape == (13, 2) and batched.seconds > 0
    assert np.allclose(probs, model.predict(images, verbose=0), atol=1e-5)


def predictions_table(n=12, cppain=3, seed=0):
    rng = np.random.default_rng(seed)
    rows = [{"model": "Tiny", "scenario": "external", "fold": 0, "image_id": f"unbc/s{i:02d}/q/{i}", "dataset": "unbc",
             "p_pain": float(rng.random())} for i in range(n)]
    rows += [{"model": "Tiny", "scenario": "external", "fold": 0, "image_id": f"cppain/p{i:02d}/v/0",
              "dataset": "cppain", "p_pain": float(rng.random())} for i in range(cppain)]
    frame = pd.DataFrame(rows)
    frame["predicted_label"] = (frame["p_pain"] >= 0.5).astype(int)
    return frame


def test_choice_caps_paindb_per_predicted_class_keeps_every_cppain_image_and_is_seeded():
    table = predictions_table(n=40, cppain=5)
    chosen = choose_images(table, per_class=4, seed=3)
    picked = table.iloc[chosen]
    assert (picked["dataset"] == "cppain").sum() == 5
    assert all(picked[(picked["dataset"] != "cppain")]["predicted_label"].value_counts() == 4)
    assert np.array_equal(chosen, choose_images(table.sample(frac=1, random_state=1).sort_index(), 4, 3))
    shuffled = table.sample(frac=1, random_state=2).reset_index(drop=True)
    assert set(shuffled.iloc[choose_images(shuffled, 4, 3)]["image_id"]) == set(picked["image_id"])


def small_config(**explain):
    return config_from_dict({"experiment": {"name": "t", "seed": 4},
                             "explain": {"images_per_class": 3, "num_samples": 60, "batch_size": 32, "sanity_images": 2,
                                         "stability_images": 1, "curve_steps": 4, **explain}})


def test_explain_run_writes_resumable_masks_that_a_second_call_reuses(tmp_path):
    model, config = tiny_model(), small_config()
    store = ExperimentStore(tmp_path, "t")
    table = predictions_table(n=10, cppain=3)
    images = np.stack([face_like(32, seed=i) for i in range(len(table))])
    summary = explain_run(model, images, table, config, store)
    key = RunKey("Tiny", "external", 0)
    assert summary["images"] == summary["explained_now"] == len(choose_images(table, 3, 4))
    # The scorecard's parts (the sanity check's among them) are parts of the run's time, never more than it.
    assert summary["scorecard_seconds"]["sanity"] > 0 and summary["seconds"] >= sum(summary["scorecard_seconds"].values())
    first = load_run_masks(store, key)
    assert len(first) == summary["images"] and set(first.dataset) >= {"cppain"}
    assert explain_run(model, images, table, config, store)["explained_now"] == summary["explained_now"]  # from done.json

    # A crash after the first part: done.json missing, the part kept; resuming explains only the rest.
    store.masks_done_path(key).unlink()
    for _, extra in store.mask_parts(key)[1:]:
        extra.unlink()
    resumed = explain_run(model, images, table, config, store)
    assert resumed["resumed"] == min(16, summary["images"]) and resumed["explained_now"] == summary["images"] - resumed["resumed"]
    again = load_run_masks(store, key)
    assert list(again.image_id) == list(first.image_id)
    for i in range(len(first)):
        assert np.array_equal(again.mask(i), first.mask(i))


def test_masks_of_a_model_that_predicts_differently_are_replaced_not_mixed(tmp_path):
    config, store = small_config(), ExperimentStore(tmp_path, "t")
    table = predictions_table(n=6, cppain=2)
    images = np.stack([face_like(32, seed=i) for i in range(len(table))])
    explain_run(tiny_model(seed=0), images, table, config, store)
    retrained = table.assign(p_pain=table["p_pain"] * 0.99)
    summary = explain_run(tiny_model(seed=1), images, retrained, config, store)
    key = RunKey("Tiny", "external", 0)
    assert summary["resumed"] == 0 and summary["explained_now"] == summary["images"]
    assert np.allclose(load_run_masks(store, key).p_pain, retrained.iloc[choose_images(retrained, 3, 4)]["p_pain"])


def test_explain_run_refuses_images_that_do_not_match_the_predictions(tmp_path):
    with pytest.raises(ValueError):
        explain_run(tiny_model(), np.zeros((2, 32, 32, 3), np.uint8), predictions_table(n=3, cppain=0),
                    small_config(), ExperimentStore(tmp_path, "t"))


def test_cppain_can_be_capped_like_paindb_for_small_profiles():
    table = pd.DataFrame({"image_id": [f"cppain/s/v{i}/0" for i in range(10)] + [f"unbc/s/q/{i}" for i in range(10)],
                          "dataset": ["cppain"] * 10 + ["unbc"] * 10,
                          "predicted_label": [0, 1] * 10, "p_pain": 0.5})
    everything = table.iloc[choose_images(table, per_class=2, seed=1)]
    capped = table.iloc[choose_images(table, per_class=2, seed=1, all_cppain=False)]
    assert (everything["dataset"] == "cppain").sum() == 10
    assert (capped["dataset"] == "cppain").sum() == 4 and (capped["dataset"] == "unbc").sum() == 4


def test_a_run_that_gives_every_image_one_class_gets_its_masks_but_no_scorecard(tmp_path):
    # A network that did not learn: its curves and Grad-CAM maps are flat and a sanity check of them would
    # pass or fail on noise, so only its LIME masks are made (and the run says why).
    model, config = tiny_model(), small_config(sanity_images=1)
    key = RunKey("Tiny", "external", 0)
    both = predictions_table(n=8, cppain=2)
    assert both["predicted_label"].nunique() == 2
    images = np.stack([face_like(32, seed=i) for i in range(len(both))])
    runs = {"one class": both.assign(p_pain=0.7, predicted_label=1), "both classes": both}
    stores = {name: ExperimentStore(tmp_path, name.replace(" ", "-")) for name in runs}
    summaries = {name: explain_run(model, images, table, config, stores[name]) for name, table in runs.items()}
    one, two = load_run_masks(stores["one class"], key), load_run_masks(stores["both classes"], key)
    assert summaries["one class"]["scorecard_skipped"] == "predicts one class (pain for every image)"
    assert len(one) == summaries["one class"]["images"] > 0 and np.isnan(one.aucs).all()
    assert not stores["one class"].gradcam(key) and stores["one class"].sanity(key) is None
    assert summaries["both classes"]["scorecard_skipped"] == "" and np.isfinite(two.aucs).all()
    assert stores["both classes"].gradcam(key) and stores["both classes"].sanity(key) is not None
    scored_anyway = ExperimentStore(tmp_path, "scored-anyway")
    summary = explain_run(model, images, runs["one class"], small_config(sanity_images=1, score_one_class_runs=True),
                          scored_anyway)
    assert summary["scorecard_skipped"] == "" and np.isfinite(load_run_masks(scored_anyway, key).aucs).all()


def test_the_sanity_check_moves_to_the_next_kept_seed_when_the_first_gives_one_class(tmp_path):
    # Fold 0 of the external scenario carries a network's sanity check; when its network gave every image
    # one class (no scorecard), the next kept seed is checked instead, so a network that learned keeps one.
    from engine.config import config_from_dict

    config = config_from_dict({"experiment": {"name": "t", "seed": 4}, "scenarios": {"kept_seeds": 2},
                               "explain": {"images_per_class": 3, "num_samples": 60, "batch_size": 32, "sanity_images": 1,
                                           "stability_images": 1, "curve_steps": 4}})
    model, store = tiny_model(), ExperimentStore(tmp_path, "t")
    both = predictions_table(n=8, cppain=2)
    images = np.stack([face_like(32, seed=i) for i in range(len(both))])
    explain_run(model, images, both.assign(p_pain=0.7, predicted_label=1), config, store)  # fold 0: one class
    explain_run(model, images, both.assign(fold=1), config, store)
    explain_run(model, images, both.assign(fold=2), config, store)  # not kept: never checked
    assert store.sanity(RunKey("Tiny", "external", 0)) is None
    assert store.sanity(RunKey("Tiny", "external", 1)) is not None
    assert store.sanity(RunKey("Tiny", "external", 2)) is None
    usual = ExperimentStore(tmp_path, "usual")  # fold 0 scored: it alone is checked
    for fold in (0, 1):
        explain_run(model, images, both.assign(fold=fold), config, usual)
    assert usual.sanity(RunKey("Tiny", "external", 0)) is not None and usual.sanity(RunKey("Tiny", "external", 1)) is None


def test_the_sanity_check_tops_up_a_run_that_explains_fewer_images_than_it_needs():
    from engine.explain.run_stage import sanity_picks

    table = predictions_table(n=30, cppain=0)
    chosen = choose_images(table, per_class=2, seed=4)
    picks = sanity_picks(table, chosen, 10, seed=4)
    assert len(picks) == 10 and set(chosen) <= set(picks) and len(set(picks)) == 10
    assert set(table.iloc[picks]["predicted_label"]) == {0, 1}
    assert picks == sanity_picks(table, chosen, 10, seed=4)  # seeded
    assert sanity_picks(table, chosen, 3, seed=4) == [int(chosen[i]) for i in (0, 2, 3)][:3] or \
        set(sanity_picks(table, chosen, 3, seed=4)) <= set(chosen)
