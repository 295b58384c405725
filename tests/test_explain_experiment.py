"""``explain_experiment`` over a small artifact store: masks from kept models, heatmaps, differences,
region scores, clusters, failures counted, runs without masks reported, and a resume that redoes nothing."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pandas as pd
import pytest

from engine.artifacts import ExperimentStore, RunKey
from engine.files import atomic_path
from engine.config import config_from_dict
from engine.explain.experiment_stage import explain_experiment
from engine.explain.mask_store import load_run_masks
from engine.explain.run_stage import explain_run

CROP = 64
SIZES = {"SongNet": 48, "VGG16": 32}


def dlib_brow_order(points):
    """Each brow's five points left to right in the image, as dlib numbers them (in place)."""
    for brow in (slice(17, 22), slice(22, 27)):
        points[brow] = points[brow][np.argsort(points[brow][:, 0])]
    return points


def render_faces(count, seed=0):
    """Synthetic face crops (CROP px) and their 68 landmarks in dlib order."""
    from PIL import Image

    from engine.synth import Pose, random_identity, render_face

    rng = np.random.default_rng(seed)
    out = []
    for _ in range(count):
        face = render_face(random_identity(rng), {"AU4": float(rng.uniform(0, 5))}, Pose(roll=float(rng.uniform(-6, 6)), scale=0.3),
                           (112, 112), rng)
        x0, y0, x1, y1 = face.box
        side = int(round(1.4 * max(x1 - x0, y1 - y0)))
        left, top = int(round((x0 + x1 - side) / 2)), int(round((y0 + y1 - side) / 2))
        crop = np.asarray(Image.fromarray(face.image).crop((left, top, left + side, top + side))
                          .resize((CROP, CROP), Image.Resampling.LANCZOS))
        points = (face.landmarks - [left, top] + 0.5) * CROP / side - 0.5
        dlib_brow_order(points)
        out.append((crop, points))
    return out


def write_cache(cache_dir, faces):
    """Real face-cache entries, as preprocessing writes them; returns their keys."""
    from engine.preprocess import cache
    from engine.preprocess.detect import CropBox, FaceBox
    from engine.preprocess.pipeline import FaceResult

    keys = []
    for i, (crop, points) in enumerate(faces):
        key = cache.cache_key(f"{i:064x}", "test-params")
        result = FaceResult(crop=crop, face=FaceBox(9, 9, 55, 55, 0.99), crop_box=CropBox(0, 0, CROP),
                            background_method="none", landmarks=points)
        cache.write_entry(cache_dir, key, result, {})
        keys.append(key)
    return keys


def tiny_model(size, seed):
    import keras

    keras.utils.set_random_seed(seed)
    return keras.Sequential([keras.Input((size, size, 3)), keras.layers.Rescaling(1 / 255),
                             keras.layers.Conv2D(4, 5, strides=2, activation="relu"), keras.layers.Flatten(),
                             keras.layers.Dense(2, activation="softmax")])


@pytest.fixture(scope="module")
def experiment(tmp_path_factory):
    """A store with four finished runs: two explained during training, one with only its kept model,
    one with neither (its masks are lost); one PAIN-DB face has upside-down landmarks."""
    from engine.preprocess.batch import load_faces

    root = tmp_path_factory.mktemp("exp")
    faces = render_faces(14)
    flipped = faces[2][1].copy()
    flipped[:, 1] = CROP - 1 - flipped[:, 1]
    faces[2] = (faces[2][0], flipped)
    config = config_from_dict({"experiment": {"name": "e", "seed": 3}, "preprocess": {"cache_dir": "cache"},
                               "explain": {"images_per_class": 8, "num_samples": 40, "batch_size": 20, "sanity_images": 8,
                                           "stability_images": 2}}, base_dir=root)
    keys = write_cache(config.cache_dir(), faces)
    samples = pd.DataFrame({
        "image_id": [f"unbc/s{i:02d}/q/0" for i in range(8)] + [f"cppain/p{i:02d}/v/0" for i in range(6)],
        "dataset": ["unbc"] * 8 + ["cppain"] * 6, "subject": [f"s{i:02d}" for i in range(14)],
        "label": [i % 2 for i in range(14)], "cache_key": keys, "status": "ok",
        # Coded action units (UNBC's FACS files): AU4 in every other frame, none coded for CP-PAIN.
        **{au: [float(au == "au4" and i % 2) for i in range(8)] + [np.nan] * 6 for au in ("au4", "au6", "au7", "au9", "au10", "au43")}})
    store = ExperimentStore(root / "artifacts", "e")
    store.write_samples(samples)
    plan = [("SongNet", "external", 0, "keep"), ("SongNet", "subject", 0, "explain"),
            ("VGG16", "external", 0, "explain"), ("VGG16", "subject", 0, "lose")]
    for seed, (model_name, scenario, fold, fate) in enumerate(plan):
        size = SIZES[model_name]
        tested = samples[samples["dataset"] == "cppain"] if scenario == "external" else samples[samples["dataset"] != "cppain"]
        images = load_faces(tested, size, config.cache_dir())
        model = tiny_model(size, seed)
        p_pain = model.predict(images, verbose=0)[:, 1]
        predictions = pd.DataFrame({"model": model_name, "scenario": scenario, "fold": fold, "seed": seed,
                                    "image_id": tested["image_id"].to_numpy(), "subject": tested["subject"].to_numpy(),
                                    "dataset": tested["dataset"].to_numpy(), "true_label": tested["label"].to_numpy(),
                                    "p_pain": p_pain, "predicted_label": (p_pain >= 0.5).astype(int)})
        key = RunKey(model_name, scenario, fold)
        store.write_predictions(key, predictions)
        store.write_split(key, {"input_size": size})
        if fate == "keep":
            with atomic_path(store.kept_model_path(key)) as tmp:
                keras_tmp = tmp.with_suffix(".keras")
                model.save(keras_tmp)
                keras_tmp.replace(tmp)
        if fate == "explain":
            explain_run(model, images, predictions, config, store)
        store.finish_run(key, {"input_size": size, "weights": "none"})
    first = explain_experiment(config, store, progress=False)
    second = explain_experiment(config, store, progress=False)
    return config, store, first, second


def test_masks_are_made_from_kept_models_and_lost_runs_are_reported(experiment):
    _, store, first, _ = experiment
    kept = load_run_masks(store, RunKey("SongNet", "external", 0))
    assert len(kept) == 6 and set(kept.dataset) == {"cppain"}  # every CP-PAIN image
    assert first["runs"] == 4 and first["runs_without_masks"] == 1
    assert "VGG16/subject/0" in first["notes"][0] and "--force --models" in first["notes"][0]
    assert RunKey("VGG16", "subject", 0) not in store.explained_runs()


def test_heatmaps_have_one_row_per_group_with_counts_and_failures(experiment):
    _, store, first, _ = experiment
    groups = store.table("heatmaps")
    arrays = store.heatmap_arrays()
    assert set(groups["model"]) == {"SongNet", "VGG16"} and set(groups["dataset"]) == {"paindb", "cppain"}
    assert arrays["heatmaps"].shape == (len(groups), 128, 128) and arrays["faces"].shape == (len(groups), 128, 128, 3)
    assert groups["n_landmark_failed"].sum() == first["landmark_failures"] == 1  # the upside-down face
    failed = groups[groups["n_landmark_failed"] > 0].iloc[0]
    assert failed["model"] == "SongNet" and failed["landmark_failures"] == "face not upright: 1"
    assert (groups["n_images"] + groups["n_landmark_failed"] == groups["n_explained"]).all()
    used = groups[groups["n_images"] > 0]
    stretched = arrays["stretched"][used["index"].to_numpy()]
    assert np.allclose(stretched.min(axis=(1, 2)), 0) and np.allclose(stretched.max(axis=(1, 2)), 1)
    assert groups.set_index("model")["pretrained"].to_dict() == {"SongNet": False, "VGG16": True}
    assert arrays["regions"].shape == (128, 128) and len(arrays["template_landmarks"]) == 68


def test_differences_regions_and_clusters_are_written(experiment):
    _, store, _, _ = experiment
    groups = store.table("heatmaps")
    differences = store.table("heatmap_differences")
    arrays = store.heatmap_arrays()
    assert set(differences["model"]) <= {"SongNet"} and (differences["paindb_scenario"] == "subject").all()
    assert arrays["differences"].shape[0] == len(differences) >= 1
    assert np.abs(arrays["differences"]).max() <= 1 + 1e-6
    regions = store.table("region_scores")
    assert len(regions) == 7 * (groups["n_images"] > 0).sum()
    assert np.allclose(regions.groupby("index")["share"].sum(), 1.0)
    clusters = store.table("heatmap_clusters")
    similarity = store.table("heatmap_similarity")
    assert set(clusters["model"]) == {"SongNet", "VGG16"} and "all" in set(clusters["scope"])
    diagonal = similarity[similarity["model_a"] == similarity["model_b"]]["correlation"]
    assert np.allclose(diagonal.dropna(), 1.0)
    runs = store.table("explain_timings")
    assert len(runs) == 3 and (runs["seconds_per_image"] > 0).all()


def test_a_second_call_explains_nothing_again_and_gives_the_same_heatmaps(experiment):
    _, store, first, second = experiment
    assert second["runs_without_masks"] == 1 and second["seconds"]["explain"] < 1.0
    assert second["heatmaps"] == first["heatmaps"] and second["landmark_failures"] == 1
    assert len(load_run_masks(store, RunKey("SongNet", "external", 0))) == 6


def test_an_experiment_without_runs_says_so(tmp_path):
    config = config_from_dict({"experiment": {"name": "empty"}}, base_dir=tmp_path)
    result = explain_experiment(config, ExperimentStore(tmp_path, "empty"), progress=False)
    assert result["runs"] == 0 and "nothing to explain" in result["notes"][0]


def test_painlens_explain_prints_the_per_network_table_and_the_notes(experiment):
    from typer.testing import CliRunner

    from painlens.cli import app

    config, store, _, _ = experiment
    toml = config.base_dir / "e.toml"
    toml.write_text('[experiment]\nname = "e"\nseed = 3\n[preprocess]\ncache_dir = "cache"\n'
                    '[explain]\nimages_per_class = 8\nnum_samples = 40\nbatch_size = 20\nsanity_images = 8\n'
                    'stability_images = 2\n')
    result = CliRunner().invoke(app, ["explain", str(toml), "--no-progress"], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "SongNet" in result.output and "LIME overhead" in result.output
    assert "no masks for this config and no kept model" in result.output


def test_masks_made_with_other_lime_settings_are_redone_from_kept_models_or_reported(experiment, tmp_path):
    import shutil

    config, store, _, _ = experiment
    root = tmp_path / "copy"
    shutil.copytree(config.base_dir, root)
    changed = config_from_dict({"experiment": {"name": "e", "seed": 3}, "preprocess": {"cache_dir": "cache"},
                                "explain": {"images_per_class": 8, "num_samples": 30, "batch_size": 20}}, base_dir=root)
    copy = ExperimentStore(root / "artifacts", "e")
    result = explain_experiment(changed, copy, progress=False)
    assert result["runs_without_masks"] == 3 and result["explained_runs"] == 1  # only the kept model's run
    redone = copy.table("explain_timings").iloc[0]
    assert (redone["model"], redone["scenario"], redone["explained_now"]) == ("SongNet", "external", 6)


def test_a_cache_entry_without_landmarks_gets_them_from_dlib_on_the_crop(tmp_path):
    import json

    from engine.explain.faces import FaceSource
    from engine.explain.normalize import scale_landmarks
    from engine.preprocess import cache

    faces = render_faces(1, seed=5)
    keys = write_cache(tmp_path, faces)
    _, meta_path = cache.entry_paths(tmp_path, keys[0])
    meta = json.loads(meta_path.read_text())
    meta["landmarks"] = None  # as an entry from a pipeline that stored none
    meta_path.write_text(json.dumps(meta))
    source = FaceSource(pd.DataFrame({"image_id": ["a"], "cache_key": keys, "status": ["ok"]}), tmp_path, margin=0.2)
    points = source.landmarks("a", 32)
    assert source.dlib_runs == 1 and points.shape == (68, 2)
    truth = scale_landmarks(faces[0][1], CROP, 32)
    assert np.median(np.hypot(*(points - truth).T)) < 3.0  # px at 32: dlib finds the same face
    assert source.landmarks("missing", 32) is None


def test_the_faithfulness_table_scores_every_explained_image_for_lime_and_gradcam(experiment):
    _, store, first, _ = experiment
    faith = store.table("faithfulness")
    groups = store.table("heatmaps")
    required = {"model", "scenario", "fold", "image_id", "dataset", "insertion_auc", "deletion_auc", "insertion_auc_random",
                "deletion_auc_random", "pointing_hit", "share_brow_lowerer", "share_orbit", "share_eye_closure",
                "share_nose_lip", "share_reference", "agreement"}
    assert required <= set(faith.columns)
    lime, gradcam = faith[faith["explainer"] == "lime"], faith[faith["explainer"] == "gradcam"]
    assert len(lime) == len(gradcam) == groups["n_images"].sum()  # every image placed on the template, twice
    # Both explainers get curves on the same images, with ROAD's fill and with LIME's own; LIME's baseline named.
    curves = ["insertion_auc", "deletion_auc", "insertion_auc_random", "insertion_auc_own", "deletion_auc_own"]
    assert lime[curves].notna().all().all() and gradcam[curves].notna().all().all()
    assert np.allclose(lime["insertion_auc_random"], gradcam["insertion_auc_random"].to_numpy())  # one reference
    assert np.allclose(lime["agreement"], gradcam["agreement"].to_numpy(), equal_nan=True)
    assert set(faith["baseline"]) == {"mean"} and set(groups["baseline"]) == {"mean"}
    shares = faith[[f"share_{r}" for r in ("brow_lowerer", "orbit", "eye_closure", "nose_lip", "reference")]].sum(axis=1, min_count=1)
    assert np.allclose(shares.dropna(), 1.0)
    # Planted regions where AUs were coded: AU4 frames score against the brow region, CP-PAIN has none.
    coded = lime[lime["dataset"] == "unbc"]
    with_au4 = coded[coded["planted_regions"] == "brow_lowerer"]
    assert len(with_au4) and with_au4["planted_share"].notna().all()
    assert coded.loc[coded["planted_regions"] == "", "planted_share"].isna().all()
    assert lime.loc[lime["dataset"] == "cppain", "planted_share"].isna().all()


def test_the_scorecard_summary_sanity_verdicts_and_gradcam_heatmaps_are_written(experiment):
    _, store, _, _ = experiment
    summary = store.table("faithfulness_summary")
    assert {"insertion_gain", "deletion_gain", "insertion_gain_own", "deletion_gain_own", "pain_vs_rest", "pointing_hit",
            "pointing_hit_pain", "pointing_hit_no_pain", "pain_vs_rest_pain", "pointing_chance", "agreement"} <= \
        set(summary["metric"])
    assert {"lime", "gradcam"} <= set(summary.loc[summary["metric"] == "insertion_gain", "explainer"])
    assert set(summary["dataset"]) == {"unbc", "cppain", "all"}
    bounded = summary.dropna(subset=["low", "high"])
    assert ((bounded["low"] <= bounded["value"] + 1e-9) & (bounded["value"] <= bounded["high"] + 1e-9)).all()
    sanity = store.table("sanity_checks")
    # One run per network (fold 0 of the external scenario), LIME and Grad-CAM each.
    assert set(zip(sanity["model"], sanity["explainer"])) == {(m, e) for m in ("SongNet", "VGG16") for e in ("lime", "gradcam")}
    assert (sanity["scenario"] == "external").all() and sanity["verdict"].str.len().gt(0).all()
    # The external runs test (and explain) 6 CP-PAIN images: the verdict rests on them (those whose map is not flat)
    # and says they are too few.
    lime = sanity[sanity["explainer"] == "lime"]
    assert (lime["images"] == 6).all() and lime["verdict"].str.contains("n = 6 images; fewer than 10").all()
    assert sanity["images"].between(1, 6).all() and sanity["verdict"].str.contains("fewer than 10").all()
    assert sanity[["rho_null", "ssim_all_layers"]].notna().any().all()
    stability = store.table("lime_stability")
    assert set(stability["model"]) == {"SongNet", "VGG16"} and (stability["images"] == 2).all()
    assert (stability["seeds"] == 3).all() and stability["top5_overlap"].between(0, 1).all()
    arrays = store.heatmap_arrays()
    assert arrays["gradcam_heatmaps"].shape == arrays["heatmaps"].shape and arrays["pain_regions"].shape == (128, 128)
    assert list(arrays["pain_region_names"]) == ["brow_lowerer", "orbit", "eye_closure", "nose_lip", "reference"]
    timings = store.table("explain_timings")
    assert (timings["curves_seconds"] > 0).all() and (timings["gradcam_seconds"] > 0).all()
    assert (timings.loc[timings["scenario"] == "external", "sanity_seconds"] > 0).all()


def test_masks_made_before_the_scorecard_stay_in_the_heatmaps_unscored(experiment, tmp_path):
    import json
    import shutil

    from engine.explain.run_stage import planned_masks

    config, store, _, _ = experiment
    root = tmp_path / "copy"
    shutil.copytree(config.base_dir, root)
    copy = ExperimentStore(root / "artifacts", "e")
    # The paper's black baseline (a version before the scorecard knew no other); the mean-baseline masks of the
    # other explained runs are stale under it (VGG16's external run, no kept model) or made again (kept).
    old = config_from_dict({"experiment": {"name": "e", "seed": 3}, "preprocess": {"cache_dir": "cache"},
                            "explain": {"images_per_class": 8, "num_samples": 40, "batch_size": 20, "sanity_images": 8,
                                        "stability_images": 2, "baseline": "black"}}, base_dir=root)
    key = RunKey("SongNet", "subject", 0)  # explained during training, its model not kept
    legacy = planned_masks(copy.predictions(key), old, before_scorecard=True)[1]
    for _, path in copy.mask_parts(key):  # as an older version wrote them: LIME only, its fingerprint
        with np.load(path) as part:
            arrays = {k: part[k] for k in part.files if k not in ("aucs", "curves")}
        np.savez_compressed(path, **{**arrays, "fingerprint": np.array(legacy)})
    record = json.loads(copy.masks_done_path(key).read_text())
    copy.masks_done_path(key).write_text(json.dumps({**record, "fingerprint": legacy}))
    result = explain_experiment(old, copy, progress=False)
    assert result["runs_without_masks"] == 2 and any("before the faithfulness scorecard" in n for n in result["notes"])
    groups = copy.table("heatmaps")
    assert groups.loc[(groups["model"] == "SongNet") & (groups["scenario"] == "subject"), "n_images"].sum() > 0
    faith = copy.table("faithfulness")
    unscored = faith[(faith["model"] == "SongNet") & (faith["scenario"] == "subject")]
    assert len(unscored) and unscored["insertion_auc"].isna().all() and set(unscored["explainer"]) == {"lime"}
