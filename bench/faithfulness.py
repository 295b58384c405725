"""The faithfulness scorecard of an experiment, and what it costs.

    .venv/bin/python bench/faithfulness.py artifacts/demo                 # the scorecard of an explained experiment
    .venv/bin/python bench/faithfulness.py artifacts/demo --network WeiNet   # + that network's pain regions AU by AU
    .venv/bin/python bench/faithfulness.py --cost [--config experiments/demo.toml] [--models WeiNet:32 ...] [--cpu-time]

The first form reads what `painlens run` / `painlens explain` wrote (through the store) and prints, per
network, scenario and explainer (LIME and Grad-CAM on the same images): the gain of its deletion and
insertion curves over the random order's with ROAD's imputation and with the explainer's own fill (95 %
intervals over subjects; "beats" when the interval lies above faithfulness.MIN_GAIN), how far the ranking of
(network, explainer) moves between the fills, the pointing game per explained class against its chance
level, the pain regions' mass per unit area against the rest of the face for the pain class, the sanity
verdicts with their n and null reference, LIME's stability over seeds, the pain-class mass per unit area on
the pain regions of the stored heatmaps (the ones the dashboard shows), and the time the scorecard added to
the explanation stage (from the stored per-run timings). With --network: per pain region, on the frames
where its action units were planted, mass per unit area against the rest of the face and the planted
pointing game, per explainer.

The second form measures the scorecard's cost without an experiment: for each network (untrained, the
cost of a forward pass does not depend on the weights) at the config's LIME settings, the median time
per image of LIME alone, of the curves (both explainers, both fills) and of Grad-CAM, and the sanity check
and the stability check amortised over the images one network explains in that config (runs x images per
run); prints the added share (target <= 35 %).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

# The networks the demo scores (the pretrained bases give one class there and get no scorecard): --models for others
DEFAULT_COST_MODELS = ["WeiNet:32", "SongNet:32", "SilNet:32", "AlexNet:32"]
now = time.perf_counter  # --cpu-time: the process's CPU seconds (steadier on a machine shared with other jobs)


# --- the scorecard of an experiment ------------------------------------------------------------------

def interval(summary: pd.DataFrame, metric: str) -> str:
    row = summary[summary["metric"] == metric]
    if row.empty or not np.isfinite(row["value"].iloc[0]):
        return "-"
    r = row.iloc[0]
    return f"{r['value']:.3f} [{r['low']:.3f}, {r['high']:.3f}]"


def beats(summary: pd.DataFrame, metric: str) -> str:
    from engine.explain.faithfulness import beats_random

    row = summary[summary["metric"] == metric]
    return "-" if row.empty or not np.isfinite(row["low"].iloc[0]) else ("yes" if beats_random(row["low"].iloc[0]) else "no")


def learned_networks(store) -> dict[tuple[str, str], object]:
    """(network, scenario) -> learned (True/False), when the summary says so (issue 11's column)."""
    summary = store.table("summary")
    if summary is None or "learned" not in summary:
        return {}
    rows = summary.drop_duplicates(["model", "scenario"])
    return {(r.model, r.scenario): bool(r.learned) for r in rows.itertuples()}


def scorecard(store) -> None:
    from engine.explain.scorecard import fill_ranking, ranking_sentence

    summary = store.table("faithfulness_summary")
    if summary is None or summary.empty:
        sys.exit(f"{store.root} has no faithfulness scorecard yet: run `painlens explain CONFIG` first.")
    learned = learned_networks(store)
    everything = summary[summary["dataset"] == "all"]
    faith = store.table("faithfulness")
    baselines = sorted(set(faith["baseline"].astype(str))) if faith is not None and "baseline" in faith else []
    print(f"LIME baseline: {', '.join(baselines) or '?'}; all test images explained (95 % intervals over subjects); "
          "gains over the random order, ROAD's fill and the explainer's own")
    header = ["network", "scenario", "learned", "explainer", "ins gain ROAD", "del gain ROAD", "beats", "ins gain own",
              "del gain own", "beats", "pointing pain", "pointing no pain", "chance", "pain/rest (pain)", "planted/rest"]
    rows = []
    for (model, scenario, explainer), part in everything.groupby(["model", "scenario", "explainer"], sort=False):
        rows.append([model, scenario, str(learned.get((model, scenario), "?")), explainer,
                     interval(part, "insertion_gain"), interval(part, "deletion_gain"),
                     f"{beats(part, 'insertion_gain')}/{beats(part, 'deletion_gain')}",
                     interval(part, "insertion_gain_own"), interval(part, "deletion_gain_own"),
                     f"{beats(part, 'insertion_gain_own')}/{beats(part, 'deletion_gain_own')}",
                     interval(part, "pointing_hit_pain"), interval(part, "pointing_hit_no_pain"),
                     interval(part, "pointing_chance").split(" ")[0], interval(part, "pain_vs_rest_pain"),
                     interval(part, "planted_vs_rest")])
    print_table(header, rows)
    ranking = fill_ranking(summary)
    for scenario in dict.fromkeys(ranking["scenario"]):
        print(f"\n{scenario}: {ranking_sentence(ranking, scenario)}")
        part = ranking[ranking["scenario"] == scenario]
        print_table(["network", "explainer", "gain ROAD", "rank ROAD", "gain own", "rank own", "moved"],
                    [[r.model, r.explainer, f"{r.gain_road:.3f}", str(r.rank_road), f"{r.gain_own:.3f}", str(r.rank_own),
                      str(r.moved)] for r in part.itertuples()])
    sanity = store.table("sanity_checks")
    if sanity is not None and len(sanity):
        print("\nRandomisation sanity check (medians; Spearman of absolute maps / SSIM of normalized maps with the "
              "trained network's; null: two independently randomised networks)")
        rows = [[r.model, r.explainer, f"{r.rho_top_layer:.2f}", f"{r.rho_top_half:.2f}", f"{r.rho_all_layers:.2f}",
                 f"{getattr(r, 'rho_null', np.nan):.2f}", f"{getattr(r, 'ssim_all_layers', np.nan):.2f}",
                 f"{getattr(r, 'ssim_null', np.nan):.2f}", str(r.images), r.verdict] for r in sanity.itertuples()]
        print_table(["network", "explainer", "rho top", "rho half", "rho all", "rho null", "ssim all", "ssim null", "n",
                     "verdict"], rows)
    stability = store.table("lime_stability")
    if stability is not None and len(stability):
        print("\nLIME over sampling seeds (medians over images of the mean over pairs of seeds)")
        print_table(["network", "rank correlation", "top-5 overlap", "images", "seeds", "unstable"],
                    [[r.model, f"{r.rank_correlation:.2f}", f"{r.top5_overlap:.2f}", str(r.images), str(r.seeds),
                      str(bool(r.unstable))] for r in stability.itertuples()])
    stored_heatmaps(store, learned)
    added_time(store)


def stored_heatmaps(store, learned: dict) -> None:
    """The pain class's mass per unit area in the pain regions against the rest of the face, on the stored
    mean heatmaps (the ones the Heatmaps page shows), per network, scenario and dataset side."""
    from engine.explain.pain_regions import POINTS_AT_PAIN, heatmap_pain_ratio

    groups, arrays = store.table("heatmaps"), store.heatmap_arrays(("heatmaps", "pain_regions"))
    if groups is None or not arrays or "pain_regions" not in arrays:
        return
    print("\nStored heatmaps, pain class: mass per unit area in the pain regions (brows with the glabella, orbits, eyes, "
          f"nose and upper lip) / in the rest of the face (a map points at the pain regions at {POINTS_AT_PAIN:g} or more)")
    rows = []
    for r in groups[(groups["label"] == 1) & (groups["n_images"] > 0)].itertuples():
        ratio = heatmap_pain_ratio(arrays["heatmaps"][r.index], arrays["pain_regions"])
        rows.append([r.model, r.scenario, r.dataset, str(learned.get((r.model, r.scenario), "?")),
                     str(getattr(r, "baseline", "?")), str(r.n_images), f"{ratio:.2f}"])
    print_table(["network", "scenario", "dataset", "learned", "baseline", "images", "pain / rest"], rows)


def au_by_au(store, network: str) -> None:
    """Per pain region: on frames where its AUs were planted, its mass per unit area vs the reference."""
    from engine.explain.normalize import TemplateWarp
    from engine.explain.pain_regions import PAIN_REGIONS, REFERENCE, area_shares, pain_region_map

    faith = store.table("faithfulness")
    faith = faith[(faith["model"] == network) & (faith["label"] == 1)] if faith is not None else pd.DataFrame()
    if faith.empty:
        print(f"\n{network}: no explained pain predictions in the scorecard.")
        return
    areas = area_shares(pain_region_map(TemplateWarp.build()))
    print(f"\n{network}, images explained as pain, by planted region (mass per unit area / the reference's)")
    rows = []
    for explainer, part in faith.groupby("explainer"):
        planted = part["planted_regions"].fillna("")
        for region in PAIN_REGIONS:
            chosen = part[planted.str.split().apply(lambda names, r=region: r in names)]
            if chosen.empty:
                continue
            density = chosen[f"share_{region}"].mean() / areas[region]
            reference = chosen[f"share_{REFERENCE}"].mean() / areas[REFERENCE]
            rows.append([explainer, region, str(len(chosen)), f"{density / reference:.2f}",
                         f"{chosen['pointing_hit_planted'].mean():.2f}", f"{chosen['planted_area_share'].mean():.2f}"])
        coded = part[planted != ""]
        if len(coded):
            ratio = (coded["planted_share"].mean() / coded["planted_area_share"].mean()) / \
                (coded[f"share_{REFERENCE}"].mean() / areas[REFERENCE])
            rows.append([explainer, "all planted", str(len(coded)), f"{ratio:.2f}",
                         f"{coded['pointing_hit_planted'].mean():.2f}", f"{coded['planted_area_share'].mean():.2f}"])
    print_table(["explainer", "region", "images", "density / rest", "pointing", "area share"], rows)


def added_time(store) -> None:
    from engine.explain.experiment_stage import scorecard_share

    timings = store.table("explain_timings")
    if timings is None or timings.empty or "curves_seconds" not in timings:
        print("\nNo per-run timings of the scorecard (runs explained before it existed).")
        return
    from engine.explain.experiment_stage import SCORECARD_PARTS

    parts = {k: float(timings[f"{k}_seconds"].sum()) for k in SCORECARD_PARTS if f"{k}_seconds" in timings}
    total = float(timings["seconds"].sum())
    print(f"\nExplanation stage (per-run masks, {len(timings)} runs): {total:.1f} s, of which the scorecard "
          + ", ".join(f"{k} {v:.1f} s" for k, v in parts.items())
          + f": it added {scorecard_share(timings):.1%} to LIME alone")
    for model, rows in timings.groupby("model", sort=False):
        print(f"  {model:<14}{scorecard_share(rows):>8.1%}")


def print_table(header: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)]
    print("  ".join(h.ljust(w) for h, w in zip(header, widths)))
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths)))


# --- the cost without an experiment -------------------------------------------------------------------

def cost(config_path: str, models: list[str], images: int, what_if: dict | None = None) -> None:
    import dataclasses

    import keras

    from engine.config import load_config

    config = load_config(config_path)
    what_if = {k: v for k, v in (what_if or {}).items() if v is not None}
    if what_if:  # [explain] settings other than the config's, without editing it
        config = dataclasses.replace(config, explain=dataclasses.replace(config.explain, **what_if))
    # Both predicted classes of the run's one test set (PAIN-DB in the image- and subject-wise runs, CP-PAIN in the
    # external ones; every CP-PAIN image with all_cppain, counted here as capped): the demo's runs explain 6 each.
    per_run = config.explain.images_per_class * 2
    print(f"backend {keras.backend.backend()}, {os.cpu_count()} CPUs, {config.explain.num_samples} LIME samples, baseline "
          f"{config.explain.baseline}, curves at {config.explain.curve_steps} steps (LIME and Grad-CAM, ROAD and own fill), "
          f"sanity on {config.explain.sanity_images} images and stability on {config.explain.stability_images} x "
          f"{config.explain.stability_seeds} seeds once per network, amortised over the network's runs x {per_run} "
          f"images; median of {images} images")
    print_table(["network", "runs", "LIME s/img", "curves", "Grad-CAM", "sanity", "stability", "added",
                 "added, one class predicted"],
                [measure(name, int(size), config, images, explained_runs(config, name), per_run)
                 for name, size in (m.split(":") for m in models)])
    print("(sanity: its passes, the images topping a run's explained ones up to sanity_images and what reading stages "
          "off the run's own LIME pass adds to it; one class predicted: a network that gives every image one class "
          "explains half as many images, so the sanity and stability checks weigh twice as much)")


def explained_runs(config, name: str) -> int:
    """The runs of network ``name`` whose masks the explanation stage makes (not cp_adapt's)."""
    per_scenario = {"image": config.scenarios.folds, "subject": config.scenarios.folds, "external": config.scenarios.seeds}
    return sum(per_scenario.get(s, 0) for s in config.scenarios.for_model(name))


def measure(name: str, size: int, config, count: int, runs: int, per_run: int) -> list[str]:
    import keras

    from engine.explain.run_stage import _tapped_maps, lime_maps
    from engine.explain.faithfulness import CurveQueue
    from engine.explain.gradcam import GradCam
    from engine.explain.lime_masks import BatchedModel, LimeParams, explain_image, image_seed
    from engine.explain.sanity import CascadeTap, sanity_check
    from engine.models.registry import build_model
    from lime_overhead import faces

    keras.utils.set_random_seed(0)
    model = build_model(name, size, weights="none", augment=False, input_scaling=config.training.input_scaling)
    params = LimeParams.from_section(config.explain)
    classifier, cam = BatchedModel(model, params.batch_size), GradCam(model)
    queue = CurveQueue(classifier, params.batch_size, config.explain.curve_steps)  # as in a run: shared full batches
    pictures = faces(count + 1, size)
    cam(np.stack(pictures[:1]), np.array([1]))
    clock = now()
    cams = cam(np.stack(pictures[1:]), np.ones(count, dtype=int))  # a run's images in one pass
    gradcam = (now() - clock) / count
    lime_s, curve_s = [], []
    for index, image in enumerate(pictures):
        clock = now()
        explanation = explain_image(image, classifier, 1, params, image_seed(0, f"bench/{index}"))
        lime = now() - clock
        clock = now()
        queue.add(index, image, explanation, np.random.default_rng(index), cams[index - 1] if index else None)
        if index:  # the first image compiles
            lime_s.append(lime), curve_s.append(now() - clock)
    clock = now()
    queue.finish()
    curve_s.append(now() - clock)
    n, images_per_network = config.explain.sanity_images, runs * per_run
    picks, labels = np.stack((pictures * (n // len(pictures) + 1))[:n]), np.ones(n, dtype=int)
    ids = [str(i) for i in range(n)]
    # A run reuses its own masks, and its LIME pass of these images (a CascadeTap as classifier) gives the first two
    # stages' maps: the check pays for what the tap adds to that pass, and for the trained LIME passes of the images
    # that top the run's explained ones up to n (a run explains per_run).
    clock = now()
    tap = CascadeTap.of(model, 0, params.batch_size)
    originals, tops = [], []
    for image, image_id in zip(picks, ids):
        explanation = explain_image(image, tap or classifier, 1, params, image_seed(0, image_id))
        originals.append(explanation.weights[explanation.segments])
        if tap is not None:
            tops.append(_tapped_maps(tap, explanation, params, image_seed(0, image_id)))
    trained = now() - clock - min(n, per_run) * statistics.median(lime_s)
    made = {"lime": {stage: np.stack([top[stage] for top in tops]) for stage in tap.stages}} if tap is not None else None
    clock = now()
    sanity_check(model, picks, labels, {"lime": lambda m, x, y: lime_maps(m, x, y, ids, params, 0),
                                        "gradcam": lambda m, x, y: cam(x, y)}, {"lime": np.stack(originals)}, made=made,
                 drawn=tap.drawn if tap is not None else None)
    sanity = (now() - clock + trained) / images_per_network
    clock = now()
    for index in range(min(config.explain.stability_images, n)):  # the extra seeds (the first is the stored map's)
        for seed in range(1, config.explain.stability_seeds):
            explain_image(picks[index], classifier, 1, params, image_seed(seed, f"bench/{index}"))
    stability = (now() - clock) / images_per_network
    keras.backend.clear_session()
    lime, curves = statistics.median(lime_s), sum(curve_s) / count  # curves: a run's total per image (batches are shared)
    checks = sanity + stability
    return [f"{name}@{size}", str(runs), f"{lime:.3f}", f"{curves / lime:.1%}", f"{gradcam / lime:.1%}", f"{sanity / lime:.1%}",
            f"{stability / lime:.1%}", f"{(curves + gradcam + checks) / lime:.1%}",
            f"{(curves + gradcam + 2 * checks) / lime:.1%}"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("experiment", nargs="?", help="an experiment folder, e.g. artifacts/demo")
    parser.add_argument("--network", default="", help="also show this network's pain regions AU by AU")
    parser.add_argument("--cost", action="store_true", help="measure the scorecard's cost without an experiment")
    parser.add_argument("--config", default="experiments/demo.toml", help="LIME settings for --cost")
    parser.add_argument("--models", nargs="+", default=DEFAULT_COST_MODELS, help="NAME:SIZE entries for --cost")
    parser.add_argument("--images", type=int, default=12, help="images per network for --cost (median reported)")
    parser.add_argument("--images-per-class", type=int, default=None,
                        help="--cost as if the config's [explain] images_per_class were this")
    parser.add_argument("--num-samples", type=int, default=None,
                        help="--cost as if the config's [explain] num_samples were this")
    parser.add_argument("--cpu-time", action="store_true", help="--cost in CPU seconds of this process, not wall time")
    args = parser.parse_args()
    if args.cost:
        global now
        now = time.process_time if args.cpu_time else time.perf_counter
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        cost(args.config, args.models, args.images,
             {"images_per_class": args.images_per_class, "num_samples": args.num_samples})
        return
    if not args.experiment:
        parser.error("give an experiment folder, or --cost")
    from engine.artifacts import ExperimentStore

    store = ExperimentStore.open(args.experiment)
    scorecard(store)
    if args.network:
        au_by_au(store, args.network)


if __name__ == "__main__":
    main()
