"""Landmark normalization onto the template, face regions, heatmap aggregation and clustering."""

import numpy as np
import pandas as pd
import pytest

from engine.explain.clusters import ALL, similarity_tables
from engine.explain.heatmaps import HeatmapAccumulator, difference_maps, stretch
from engine.explain.normalize import (FOLD_LIMIT, N_ANCHORS, TemplateWarp, anchor_points, landmarks_problem, scale_landmarks,
                                      template_landmarks)
from engine.explain.regions import OUTSIDE, REGIONS, region_map, region_scores


def dlib_brow_order(points):
    """Each brow's five points left to right in the image, as dlib numbers them (in place)."""
    for brow in (slice(17, 22), slice(22, 27)):
        points[brow] = points[brow][np.argsort(points[brow][:, 0])]
    return points


@pytest.fixture(scope="module")
def warp():
    return TemplateWarp.build(128)


@pytest.fixture(scope="module")
def labels(warp):
    return region_map(warp)


def synthetic_face(roll=0.0, yaw=0.0, size=64, seed=0):
    """A rendered synthetic face cropped like a detector crop: image (size, size, 3) and its 68 landmarks."""
    from PIL import Image

    from engine.synth import Pose, random_identity, render_face

    rng = np.random.default_rng(seed)
    face = render_face(random_identity(rng), {}, Pose(roll=roll, yaw=yaw, scale=0.3), (128, 128), rng)
    x0, y0, x1, y1 = face.box
    side = int(round(1.4 * max(x1 - x0, y1 - y0)))
    left, top = int(round((x0 + x1 - side) / 2)), int(round((y0 + y1 - side) / 2))
    crop = Image.fromarray(face.image).crop((left, top, left + side, top + side))
    image = np.asarray(crop.resize((size, size), Image.Resampling.LANCZOS))
    points = scale_landmarks(face.landmarks - [left, top], side, size)
    dlib_brow_order(points)
    return image, points


def test_warp_is_the_same_map_as_scikit_image_piecewise_affine(warp):
    from skimage.transform import PiecewiseAffineTransform

    _, points = synthetic_face(roll=8)
    anchors = anchor_points(points, 64)
    reference = PiecewiseAffineTransform.from_estimate(warp.anchors, anchors)
    assert reference
    rows, cols = np.mgrid[0:128, 0:128]
    expected = reference(np.stack([cols.ravel(), rows.ravel()], axis=1))
    ours = warp.coordinates(anchors)
    assert np.allclose(ours[1].ravel(), expected[:, 0], atol=1e-6)
    assert np.allclose(ours[0].ravel(), expected[:, 1], atol=1e-6)


@pytest.mark.parametrize("roll,yaw", [(0, 0), (12, 0), (-9, 15)])
def test_a_blob_on_a_facial_feature_lands_on_that_feature_of_the_template(warp, roll, yaw):
    _, points = synthetic_face(roll=roll, yaw=yaw)
    anchors = anchor_points(points, 64)
    assert landmarks_problem(points, 64) == "" and warp.folded_share(anchors) == 0
    coords = warp.coordinates(anchors)
    yy, xx = np.mgrid[0:64, 0:64]
    for feature in (slice(42, 48), slice(36, 42), slice(48, 68), slice(17, 22)):
        cx, cy = points[feature].mean(axis=0)
        blob = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * 1.2 ** 2))
        warped = warp.warp(blob, coords)
        peak_row, peak_col = np.unravel_index(np.argmax(warped), warped.shape)
        target = warp.landmarks[feature].mean(axis=0)
        assert np.hypot(peak_col - target[0], peak_row - target[1]) <= 3.0  # template px (128 wide)


def test_warping_the_template_face_onto_itself_changes_nothing(warp):
    image = np.random.default_rng(0).random((128, 128, 3)).astype(np.float32)
    out = warp.warp(image, warp.coordinates(warp.anchors))
    assert np.allclose(out, image, atol=1e-5)


def test_anchors_add_forehead_points_reaching_the_top_edge_and_the_corners():
    points = template_landmarks(64)
    anchors = anchor_points(points, 64)
    assert anchors.shape == (N_ANCHORS, 2)
    forehead = anchors[68:83]
    assert forehead[:, 1].max() < points[17:27, 1].min() + 1e-9  # above the brows
    assert forehead[:, 1].min() == pytest.approx(0.0)  # the chin's mirror on the top edge
    assert {tuple(c) for c in anchors[-4:]} == {(0, 0), (63, 0), (0, 63), (63, 63)}


def test_bad_landmarks_are_named_not_warped(warp):
    good = template_landmarks(64)
    assert landmarks_problem(good, 64) == ""
    assert landmarks_problem(None, 64) == "no landmarks"
    assert landmarks_problem(good[:, ::-1] * [1, 1], 64) != ""  # x and y swapped
    assert landmarks_problem(np.stack([good[:, 0], 63 - good[:, 1]], axis=1), 64) == "face not upright"
    assert landmarks_problem(good + 200, 64) == "landmarks far outside the image"
    nan = good.copy()
    nan[3] = np.nan
    assert landmarks_problem(nan, 64) == "landmarks malformed"
    assert warp.folded_share(warp.anchors) == 0


def test_a_broken_fit_folds_the_mesh_but_an_ordinary_sliver_flip_does_not(warp):
    good = template_landmarks(128)
    swapped = good.copy()
    swapped[[36, 39]] = swapped[[39, 36]]  # an eye's corners swapped: the triangles around it flip
    assert warp.folded_share(anchor_points(swapped, 128)) > FOLD_LIMIT
    sliver = good.copy()
    sliver[17] = good[0] + [-6, 0]  # the brow drawn out to the ear line, as dlib gives on some faces
    assert 0 < warp.folded_share(anchor_points(sliver, 128)) < FOLD_LIMIT


def test_regions_partition_the_face_and_hold_their_landmarks(warp, labels):
    lm = warp.landmarks
    face = labels != OUTSIDE
    assert set(np.unique(labels[face])) == set(range(len(REGIONS)))

    def region_at(point):
        return REGIONS[labels[int(round(point[1])), int(round(point[0]))]]

    assert all(region_at(p) == "eyes" for p in lm[36:48])
    assert region_at(lm[19]) == region_at(lm[24]) == "brows"
    assert region_at((lm[21] + lm[22]) / 2 + [0, 3]) == "brows"  # the glabella, where AU4 furrows show
    assert region_at(lm[30]) == "nose"
    assert region_at(lm[66]) == "mouth" and region_at((lm[33] + lm[51]) / 2) == "mouth"  # upper lip
    assert region_at(lm[8] - [0, 4]) == "jaw_chin"
    assert region_at(warp.anchors[75] + [0, 6]) == "forehead"
    assert region_at((lm[2] + lm[31]) / 2) == "cheeks"


def test_region_scores_are_shares_of_mass_and_of_area(labels):
    uniform = region_scores(np.ones(labels.shape), labels)
    assert np.allclose(uniform["ratio"], 1.0) and uniform["share"].sum() == pytest.approx(1.0)
    eyes_only = np.where(labels == REGIONS.index("eyes"), 2.0, 0.0)
    eyes_only[labels == OUTSIDE] = 5.0  # mass off the face does not count
    scores = region_scores(eyes_only, labels).set_index("region")
    assert scores.loc["eyes", "share"] == pytest.approx(1.0)
    assert scores.loc["eyes", "ratio"] == pytest.approx(1 / scores.loc["eyes", "area_share"])
    assert scores.loc["eyes", "aus"] == "AU6 AU7 AU43" and scores.loc["brows", "aus"] == "AU4"
    assert region_scores(np.zeros(labels.shape), labels)["share"].isna().all()


def test_heatmaps_average_used_images_count_failures_and_subtract_datasets():
    acc = HeatmapAccumulator(4)
    ones, face = np.ones((4, 4)), np.full((4, 4, 3), 100.0)
    acc.add(("Net", "external", "cppain", 1), ones * 3, face)
    acc.add(("Net", "external", "cppain", 1), ones, face)
    acc.fail(("Net", "external", "cppain", 1), "no landmarks")
    grad = np.arange(16.0).reshape(4, 4)
    acc.add(("Net", "subject", "paindb", 1), grad, face)
    acc.fail(("Net", "subject", "paindb", 0), "face not upright")
    groups = acc.frame().set_index(["scenario", "label"])
    heat, faces = acc.arrays()
    cp = groups.loc[("external", 1)]
    assert (cp.n_images, cp.n_landmark_failed, cp.n_explained) == (2, 1, 3)
    assert np.allclose(heat[cp["index"]], 2.0) and faces[cp["index"]].max() == 100
    empty = groups.loc[("subject", 0)]
    assert empty.n_images == 0 and np.isnan(heat[empty["index"]]).all() and empty.landmark_failures == "face not upright: 1"
    rows, diffs = difference_maps(acc.frame(), heat)
    assert len(rows) == 1 and rows.iloc[0]["paindb_scenario"] == "subject"
    assert np.allclose(diffs[0], stretch(np.full((4, 4), 2.0)) - stretch(grad))
    assert stretch(grad).min() == 0 and stretch(grad).max() == 1


def test_clusters_separate_two_families_of_heatmaps(labels):
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:128, 0:128]
    upper, lower = np.exp(-((yy - 40) ** 2) / 200.0), np.exp(-((yy - 100) ** 2) / 200.0)
    maps, rows = [], []
    for i, (model, base) in enumerate([("VGG16", upper), ("ResNet50", upper), ("SongNet", lower), ("WeiNet", lower)]):
        maps.append(base + 0.05 * rng.random(base.shape) + 0.01 * xx * (i % 2))
        rows.append({"index": i, "model": model, "scenario": "external", "dataset": "cppain", "label": 1,
                     "class_name": "pain", "n_images": 5})
    pretrained = {"VGG16": True, "ResNet50": True, "SongNet": False, "WeiNet": False}
    similarity, clusters = similarity_tables(pd.DataFrame(rows), np.stack(maps), labels != OUTSIDE, pretrained)
    overall = clusters[clusters["scope"] == ALL].set_index("model")
    assert overall.loc["VGG16", "cluster"] == overall.loc["ResNet50", "cluster"] != overall.loc["SongNet", "cluster"]
    assert overall["agreement"].iloc[0] == pytest.approx(1.0)
    pair = similarity[(similarity["scope"] == ALL) & (similarity["model_a"] == "VGG16")].set_index("model_b")
    assert pair.loc["ResNet50", "correlation"] > 0.8 and pair.loc["SongNet", "correlation"] < 0
