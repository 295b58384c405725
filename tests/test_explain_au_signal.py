"""On synthetic faces: when only some action units carry the pain signal, a network that learned it
has its pain heatmap mass in the face regions of those action units.

Each identity is drawn twice with the same pose, light and background: once neutral (no pain) and once
with the pain AU (pain), so the AU is the only difference a network can learn from.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pandas as pd
import pytest

from engine.artifacts import ExperimentStore, RunKey
from engine.config import config_from_dict
from engine.explain.run_stage import explain_run
from engine.explain.heatmaps import HeatmapAccumulator
from engine.explain.mask_store import load_run_masks
from engine.explain.normalize import TemplateWarp, anchor_points, landmarks_problem, scale_landmarks
from engine.explain.regions import REGIONS, region_map, region_scores

SIZE, IDENTITIES = 48, 80
pytestmark = pytest.mark.slow


def dlib_brow_order(points):
    """Each brow's five points left to right in the image, as dlib numbers them (in place)."""
    for brow in (slice(17, 22), slice(22, 27)):
        points[brow] = points[brow][np.argsort(points[brow][:, 0])]
    return points


@pytest.fixture(scope="module")
def renders():
    """{au: (images, landmarks)} for the neutral face and each AU, identity i at index i."""
    from PIL import Image

    from engine.synth import Pose, random_identity, render_face

    rng = np.random.default_rng(11)
    variants = {"neutral": {}, "AU4": {"AU4": 5.0}, "AU10": {"AU10": 5.0}}
    out = {name: ([], []) for name in variants}
    for i in range(IDENTITIES):
        identity = random_identity(rng)
        pose = Pose(yaw=float(rng.uniform(-8, 8)), roll=float(rng.uniform(-5, 5)), scale=0.3)
        for name, aus in variants.items():
            face = render_face(identity, aus, pose, (96, 96), np.random.default_rng(1000 + i))
            x0, y0, x1, y1 = face.box
            side = int(round(1.4 * max(x1 - x0, y1 - y0)))
            left, top = int(round((x0 + x1 - side) / 2)), int(round((y0 + y1 - side) / 2))
            crop = Image.fromarray(face.image).crop((left, top, left + side, top + side))
            points = scale_landmarks(face.landmarks - [left, top], side, SIZE)
            dlib_brow_order(points)
            out[name][0].append(np.asarray(crop.resize((SIZE, SIZE), Image.Resampling.LANCZOS)))
            out[name][1].append(points)
    return {name: (np.stack(images), np.stack(points)) for name, (images, points) in out.items()}


def train_network(x, y, seed=0):
    import keras

    keras.utils.set_random_seed(seed)
    layers = keras.layers
    model = keras.Sequential([
        keras.Input((SIZE, SIZE, 3)), layers.Rescaling(1 / 127.5, offset=-1),
        layers.Conv2D(16, 5, strides=2, activation="relu"), layers.MaxPooling2D(2),
        layers.Conv2D(32, 3, activation="relu"), layers.MaxPooling2D(2),
        layers.Flatten(), layers.Dense(2, activation="softmax"),
    ])
    model.compile(keras.optimizers.Adam(3e-3), "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, epochs=25, batch_size=8, verbose=0)
    return model


def pain_region_scores(renders, au, tmp_path):
    """Train on neutral vs ``au`` faces, explain the held-out faces predicted as pain, return the
    region scores of their landmark-normalized mean mask and the held-out accuracy."""
    neutral, painful = renders["neutral"], renders[au]
    x = np.concatenate([neutral[0], painful[0]])
    points = np.concatenate([neutral[1], painful[1]])
    y = np.repeat([0, 1], IDENTITIES)
    train = np.arange(len(y)) % IDENTITIES < int(IDENTITIES * 0.75)  # whole identities held out
    model = train_network(x[train], y[train])
    test = np.flatnonzero(~train)
    p_pain = model.predict(x[test], verbose=0)[:, 1]
    accuracy = float(np.mean((p_pain >= 0.5) == y[test]))
    predictions = pd.DataFrame({"model": "Tiny", "scenario": "subject", "fold": 0, "image_id": [f"synth/{i}" for i in test],
                                "dataset": "unbc", "p_pain": p_pain, "predicted_label": (p_pain >= 0.5).astype(int)})
    config = config_from_dict({"experiment": {"name": "au", "seed": 1},
                               # the masks alone: no sanity or stability check (not what this test is about), the
                               # shortest curves
                               "explain": {"images_per_class": 20, "num_samples": 400, "batch_size": 100,
                                           "sanity_images": 0, "stability_images": 0, "curve_steps": 2}})
    store = ExperimentStore(tmp_path, "au")
    explain_run(model, x[test], predictions, config, store)
    masks = load_run_masks(store, RunKey("Tiny", "subject", 0))
    warp, accumulator = TemplateWarp.build(), HeatmapAccumulator(128)
    for i in np.flatnonzero(masks.label == 1):
        index = int(str(masks.image_id[i]).split("/")[1])
        assert landmarks_problem(points[index], SIZE) == ""
        coords = warp.coordinates(anchor_points(points[index], SIZE))
        accumulator.add(("Tiny", "subject", "paindb", 1), warp.warp(masks.mask(i), coords), warp.warp(x[index], coords))
    heat, _ = accumulator.arrays()
    return region_scores(heat[0], region_map(warp)).set_index("region"), accuracy, int((masks.label == 1).sum())


def ratio(scores, regions):
    """Mass share over area share of a union of regions."""
    return scores.loc[regions, "share"].sum() / scores.loc[regions, "area_share"].sum()


UPPER, LOWER = ["brows", "forehead"], ["nose", "mouth", "jaw_chin"]


def test_networks_that_learned_au4_or_au10_look_at_the_matching_face_regions(renders, tmp_path):
    brow, brow_accuracy, brow_explained = pain_region_scores(renders, "AU4", tmp_path / "au4")
    lip, lip_accuracy, lip_explained = pain_region_scores(renders, "AU10", tmp_path / "au10")
    assert min(brow_accuracy, lip_accuracy) >= 0.8 and min(brow_explained, lip_explained) >= 8  # both learned
    assert set(brow.index) == set(REGIONS)
    # AU4 lowers the brows: at 48 px one superpixel spans a brow and the forehead above it, so the two
    # count together. AU10 raises the upper lip: nose and mouth.
    assert ratio(brow, UPPER) > 1 and ratio(brow, UPPER) > ratio(brow, LOWER)
    assert ratio(lip, ["nose", "mouth"]) > 1.5 and ratio(lip, ["nose", "mouth"]) > ratio(lip, UPPER)
    # And each network looks where the other does not.
    assert brow.loc[UPPER, "share"].sum() > 1.5 * lip.loc[UPPER, "share"].sum()
    assert lip.loc[["nose", "mouth"], "share"].sum() > 1.5 * brow.loc[["nose", "mouth"], "share"].sum()
