"""The dashboard's scorecard builders (dashboard/scorecard.py) without a browser: charts build and carry
every network, networks that did not learn are marked, each heatmap's scores are the means of its images,
the explainer switch gives LIME, Grad-CAM or their signed difference, and the pain regions are outlined."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dashboard import scorecard
from engine.evaluation.bootstrap import sample_size
from engine.explain.normalize import TemplateWarp
from engine.explain.pain_regions import pain_region_map
from engine.explain.scorecard import IMAGE_COLUMNS, summarise


@pytest.fixture(scope="module")
def regions():
    return pain_region_map(TemplateWarp.build(64))


@pytest.fixture(scope="module")
def faith():
    """Per-image rows of two networks in one scenario: WeiNet's LIME order beats random, SongNet's is worse than random."""
    rng = np.random.default_rng(0)
    rows = []
    for model, gain in (("WeiNet", 0.2), ("SongNet", -0.1)):
        for i in range(12):
            for explainer in ("lime", "gradcam"):
                row = dict.fromkeys(IMAGE_COLUMNS, np.nan)
                shares = rng.dirichlet(np.ones(5))
                row.update(model=model, scenario="subject", fold=0, image_id=f"unbc/s{i % 4}/q/{i}", dataset="unbc",
                           subject=f"s{i % 4}", label=1, p_pain=0.8, explainer=explainer, baseline="black",
                           agreement=0.3, pointing_hit=float(i % 2), pain_vs_rest=1.5, planted_regions="",
                           **{f"share_{r}": v for r, v in zip(("brow_lowerer", "orbit", "eye_closure", "nose_lip",
                                                               "reference"), shares)})
                if explainer == "lime":
                    row.update(insertion_auc=0.5 + gain + rng.normal(0, 0.01), insertion_auc_random=0.5,
                               deletion_auc=0.5 - gain + rng.normal(0, 0.01), deletion_auc_random=0.5)
                rows.append(row)
    return pd.DataFrame(rows, columns=IMAGE_COLUMNS)


def test_the_charts_build_for_every_network_and_grey_the_one_that_did_not_learn(faith, regions):
    summary = summarise(faith, regions)
    learned = {("SongNet", "subject"): False}
    lime = summary[(summary["explainer"] == "lime") & (summary["dataset"] == "all")]
    assert {"pointing_hit_pain", "pointing_hit_no_pain"} <= set(lime["metric"]) or \
        "pointing_hit_pain" in set(lime["metric"])  # the fixture's maps explain the pain class only
    for chart in (scorecard.auc_chart(lime, ["WeiNet", "SongNet"], learned, "t"),
                  scorecard.region_chart(lime, ["WeiNet", "SongNet"], learned, "t"),
                  scorecard.pointing_chart(lime, ["WeiNet", "SongNet"], learned, "t"),
                  scorecard.agreement_chart(lime, ["WeiNet", "SongNet"], learned, "t")):
        spec = chart.to_dict()
        assert "SongNet (did not learn)" in str(spec) and "WeiNet" in str(spec)
    assert "two random nets" not in str(scorecard.auc_chart(lime, ["WeiNet"], learned, "t", fill="own").to_dict())
    from engine.explain.sanity import verdict_sentence

    sanity = pd.DataFrame([{"model": m, "scenario": "subject", "fold": 0, "explainer": "lime", "rho_top_layer": 0.6,
                            "rho_top_half": 0.4, "rho_all_layers": 0.1, "rho_null": 0.1, "ssim_top_layer": 0.5,
                            "ssim_top_half": 0.3, "ssim_all_layers": 0.1, "ssim_null": 0.1, "flagged": False,
                            "verdict": verdict_sentence(0.1, 0.1, False, 10), "images": 10} for m in ("WeiNet", "SongNet")])
    assert "two random nets" in str(scorecard.sanity_chart(sanity, ["WeiNet", "SongNet"], 0.5, "t").to_dict())
    table = scorecard.scorecard_table(summary[summary["dataset"] == "all"], sanity, learned)
    assert table.loc[table["explainer"] == "LIME", "sanity check"].str.contains("n = 10 images").all()
    table = table[table["explainer"] == "LIME"]  # one row per network, scenario and explainer
    beats = table.set_index("network")["insertion beats random"]
    assert bool(beats["WeiNet"]) and not bool(beats["SongNet"])
    assert table.set_index("network").loc["SongNet", "learned"] == False  # noqa: E712
    curves = lime[lime["metric"] == "insertion_auc"].set_index("model")
    assert table.set_index("network").loc["WeiNet", "n (curves)"] == sample_size(curves.loc["WeiNet", "images"],
                                                                                 curves.loc["WeiNet", "subjects"])


def test_runs_the_scorecard_skipped_are_named_on_the_page_and_in_the_table(faith, regions):
    from dashboard.loaders import unscored_runs

    reason = "predicts one class (pain for every image)"
    timings = pd.DataFrame({"model": ["SongNet", "SongNet", "WeiNet", "WeiNet"], "scenario": ["subject"] * 4,
                            "fold": [0, 1, 0, 1], "scorecard_skipped": [reason, reason, "", reason]})
    unscored = unscored_runs(timings)
    assert unscored.to_dict("records") == [
        {"model": "SongNet", "scenario": "subject", "runs": 2, "of_runs": 2, "reason": reason},
        {"model": "WeiNet", "scenario": "subject", "runs": 1, "of_runs": 2, "reason": reason}]
    sentence = scorecard.unscored_sentence(unscored, "subject")
    assert sentence.startswith("Not scored here: SongNet, WeiNet (1 of 2 runs).") and "did not learn" in sentence
    assert scorecard.unscored_sentence(unscored, "image") == ""
    assert unscored_runs(timings.drop(columns="scorecard_skipped")).empty  # tables written before the rule
    summary = summarise(faith, regions)
    table = scorecard.scorecard_table(summary[summary["dataset"] == "all"], pd.DataFrame(), {}, unscored)
    table = table[table["explainer"] == "LIME"].set_index("network")
    assert table.loc["SongNet", "not scored"] == f"2 of 2 runs: {reason}"


def test_a_negligible_but_consistent_gain_does_not_beat_the_random_order(faith, regions):
    # A network whose output hardly moves gains ~0.001 on every image: an interval above 0, and no evidence.
    flat = faith[faith["model"] == "WeiNet"].copy()
    lime = flat["explainer"] == "lime"
    flat.loc[lime, "insertion_auc"] = 0.501 + np.arange(lime.sum()) * 1e-5
    flat.loc[lime, "deletion_auc"] = 0.499 - np.arange(lime.sum()) * 1e-5
    summary = summarise(flat, regions)
    table = scorecard.scorecard_table(summary[summary["dataset"] == "all"], pd.DataFrame(), {})
    table = table[table["explainer"] == "LIME"].set_index("network")
    assert not bool(table.loc["WeiNet", "insertion beats random"]) and not bool(table.loc["WeiNet", "deletion beats random"])
    gains = summary[(summary["explainer"] == "lime") & (summary["dataset"] == "all") & (summary["metric"] == "insertion_gain")]
    assert (gains["low"] > 0).all()  # the interval alone would have said "beats"


def test_each_heatmap_scores_are_the_means_of_its_images(faith):
    scores = scorecard.heatmap_scores(faith, "WeiNet", "subject", "paindb", 1, "lime")
    rows = faith[(faith["model"] == "WeiNet") & (faith["explainer"] == "lime")]
    assert scores["images"] == 12 and scores["pointing"] == pytest.approx(rows["pointing_hit"].mean())
    assert scores["insertion_gain"] == pytest.approx((rows["insertion_auc"] - rows["insertion_auc_random"]).mean())
    assert scorecard.heatmap_scores(faith, "WeiNet", "subject", "cppain", 1, "lime") == {}
    caption = scorecard.score_caption(scores, 0.34)
    assert "pointing 0.50 (chance 0.34)" in caption and "insertion +0.2" in caption


def test_the_explainer_switch_and_the_pain_region_outlines(regions):
    arrays = {"stretched": np.full((2, 64, 64), 0.8, dtype=np.float32),
              "gradcam_stretched": np.stack([np.full((64, 64), 0.3, dtype=np.float32), np.full((64, 64), np.nan)])}
    assert scorecard.explainer_map(arrays, 0, "lime")[0].mean() == pytest.approx(0.8)
    diff, signed = scorecard.explainer_map(arrays, 0, "difference")
    assert signed and diff.mean() == pytest.approx(0.5)
    assert scorecard.explainer_map(arrays, 1, "gradcam") == (None, False)  # a group without Grad-CAM maps
    tile = np.zeros((128, 128, 3), dtype=np.uint8)
    outlined = scorecard.with_outlines(tile, regions)
    colours = {tuple(c) for c in outlined.reshape(-1, 3)}
    assert set(scorecard.REGION_COLOURS.values()) <= colours and (0, 0, 0) in colours  # borders only
    assert 0.3 < scorecard.pointing_chance(regions) < 0.4


def test_unstable_networks_are_named_with_their_numbers_and_the_baseline_in_words():
    stability = pd.DataFrame({"model": ["WeiNet", "SongNet"], "rank_correlation": [0.9, 0.3], "top5_overlap": [0.8, 0.4],
                              "images": [3, 3], "seeds": [3, 3], "unstable": [False, True]})
    unstable = scorecard.unstable_networks(stability)
    assert list(unstable) == ["SongNet"] and "rank correlation 0.30, top-5 overlap 0.40 (3 seeds, n = 3 images)" in unstable["SongNet"]
    assert "SongNet" in scorecard.unstable_sentence(unstable) and scorecard.unstable_networks(None) == {}
    assert "the image's mean colour" in scorecard.baseline_sentence("mean")
    assert "black, the paper's" in scorecard.baseline_sentence("black")


def test_pain_maps_that_look_mostly_outside_the_pain_regions_are_named_flat_ones_are_not(regions, faith):
    from engine.explain.pain_regions import ALL_REGIONS, REFERENCE

    on_pain = np.isin(regions, [i for i, r in enumerate(ALL_REGIONS) if r != REFERENCE]).astype(np.float32)
    on_rest = (regions == ALL_REGIONS.index(REFERENCE)).astype(np.float32)
    groups = pd.DataFrame({"index": [0, 1, 2], "model": ["WeiNet", "SongNet", "SongNet"], "scenario": "image",
                           "dataset": "paindb", "label": [1, 1, 0], "n_images": 6})
    arrays = {"heatmaps": np.stack([on_pain + 0.1, on_rest + 0.1, on_rest]), "pain_regions": regions,
              "gradcam_heatmaps": np.stack([on_rest, np.full_like(on_rest, 0.5), on_rest])}  # SongNet's Grad-CAM flat
    outside = scorecard.outside_pain_regions(groups, arrays)
    assert set(zip(outside["model"], outside["explainer"])) == {("SongNet", "lime"), ("WeiNet", "gradcam")}  # pain class only
    assert (outside["ratio"] < 2).all()
    assert scorecard.outside_mark(outside, "SongNet", "image", "paindb", "lime").startswith("outside the pain regions (0.0")
    assert scorecard.outside_mark(outside, "WeiNet", "image", "paindb", "lime") == ""
    sentence = scorecard.outside_sentence(outside)
    assert "SongNet LIME, image, PAIN-DB" in sentence and "(n = 6)" in sentence and "bench/pain_cues.py" in sentence
    assert scorecard.outside_sentence(outside.iloc[:0]) == ""
    verdicts = pd.DataFrame({"model": ["SongNet", "WeiNet"], "scenario": "image", "learned": [False, True],
                             "reason": ["AUC interval includes 0.5", ""]})
    assert scorecard.learned_outside(outside, verdicts).empty  # SongNet did not learn: marked so already
    assert list(scorecard.learned_outside(outside, verdicts, "gradcam")["model"]) == ["WeiNet"]
    summary = summarise(faith, regions)
    assert scorecard.points_at_pain(summary[summary["dataset"] == "all"], "WeiNet", "subject", "lime") != ""
    assert "hidden" in scorecard.baseline_meaning("mean") and "mean colour" in scorecard.baseline_meaning("mean")
