"""The per-run stage of the explanations: one run's LIME masks and the scorecard's per-run parts, made
while the run's model is in memory.

``explain_run(model, images, predictions, config, store)`` is called by the grid runner right after
training (only one model per network is kept on disk, so this is the one moment every run's model
exists), and by ``experiment_stage.py`` for a finished run whose model was kept. Resumable: masks are
written in parts and their finish record comes last (``mask_store.py``).

With each run's masks come the scorecard's per-run parts: Grad-CAM maps of the same images
(``gradcam.py``), deletion and insertion curves of both explainers on each image, with ROAD's imputation
and with LIME's own fill (``faithfulness.py``, stored in the mask parts), and on one run per network the
randomisation sanity check and LIME's stability over seeds (``sanity.py``), on ``sanity_images`` images
(the run's explained images, topped up from its other test images when it explains fewer; the check's
first two stages are read off the run's own LIME pass of those images, ``sanity.CascadeTap``). Both are
stored with the masks' fingerprint, so a rerun with the same settings does none of it again. A run whose
network gives every test image one class gets its LIME masks only (``unscored_reason``).
"""

from __future__ import annotations

import time
import weakref
from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd

from engine.artifacts import ExperimentStore, RunKey
from engine.config import SCENARIO_NAMES, ExperimentConfig
from engine.evaluation.bootstrap import one_class_reason
from engine.explain.faithfulness import CurveQueue
from engine.explain.gradcam import GradCam
from engine.explain.lime_masks import BatchedModel, LimeParams, explain_image, fit_weights, image_seed
from engine.explain.mask_store import STEPS, MaskWriter, run_fingerprint
from engine.explain.sanity import CascadeTap, sanity_check, seed_agreement

# In the masks' fingerprint: masks made by an older scorecard are made again (2: ROAD and Grad-CAM curves,
# the sanity check on absolute maps with SSIM and a null reference, LIME's stability).
SCORECARD_VERSION = 2


# --- which images -----------------------------------------------------------------------------------

def choose_images(predictions: pd.DataFrame, per_class: int, seed: int, all_cppain: bool = True) -> np.ndarray:
    """Positions of the rows to explain: per predicted class, up to ``per_class`` PAIN-DB images drawn
    at random (seeded; the draw depends only on the ids, not their order) and every CP-PAIN image
    (or, with ``all_cppain`` false, up to ``per_class`` of them drawn the same way).
    Sorted by (predicted class, image id)."""
    ids = predictions["image_id"].astype(str).to_numpy()
    predicted = predictions["predicted_label"].to_numpy(dtype=int)
    cppain = predictions["dataset"].astype(str).to_numpy() == "cppain"
    chosen = []
    for label in (0, 1):
        for in_cppain in (False, True):
            pool = np.flatnonzero((predicted == label) & (cppain == in_cppain))
            pool = pool[np.argsort(ids[pool], kind="stable")]
            if (all_cppain and in_cppain) or len(pool) <= per_class:
                chosen.extend(pool.tolist())
                continue
            rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, label])
            chosen.extend(np.sort(rng.choice(pool, size=max(per_class, 0), replace=False)).tolist())
    chosen = np.asarray(chosen, dtype=int)
    return chosen[np.lexsort((ids[chosen], predicted[chosen]))] if len(chosen) else chosen


# --- one run ----------------------------------------------------------------------------------------

def planned_masks(predictions: pd.DataFrame, config: ExperimentConfig, before_scorecard: bool = False) -> tuple[np.ndarray, str]:
    """The positions of the rows to explain and the fingerprint their masks will carry (with
    ``before_scorecard``: the fingerprint the same masks got before the scorecard existed)."""
    chosen = choose_images(predictions, config.explain.images_per_class, config.experiment.seed,
                           config.explain.all_cppain)
    rows = predictions.iloc[chosen]
    params = {**LimeParams.from_section(config.explain).as_dict(), "seed": config.experiment.seed,
              "curve_steps": config.explain.curve_steps, "sanity_images": config.explain.sanity_images,
              "stability_images": config.explain.stability_images, "stability_seeds": config.explain.stability_seeds,
              "scorecard": SCORECARD_VERSION}
    if before_scorecard:  # LIME's parameters as they were then: black hiding only, no scorecard settings
        params = {k: v for k, v in params.items() if k not in ("baseline", "curve_steps", "sanity_images", "scorecard",
                                                                "stability_images", "stability_seeds")}
    fingerprint = run_fingerprint(params, rows["image_id"].astype(str).tolist(), rows["p_pain"].to_numpy(),
                                  rows["predicted_label"].to_numpy(dtype=int))
    return chosen, fingerprint


def explain_run(model, images: np.ndarray, predictions: pd.DataFrame, config: ExperimentConfig,
                store: ExperimentStore, on_image: Callable[[], None] | None = None) -> dict:
    """LIME masks for one run's chosen test images, with their scorecard parts, written through the store.

    ``images``: (N, S, S, 3) uint8 model inputs aligned with ``predictions`` (the run's
    stored prediction rows: model, scenario, fold, image_id, dataset, p_pain, predicted_label).
    Each image is explained for its predicted class. Returns the summary stored with the masks.
    """
    if len(images) != len(predictions) or len(predictions) == 0:
        raise ValueError(f"explain_run needs one image per prediction row, got {len(images)} and {len(predictions)}.")
    first = predictions.iloc[0]
    key = RunKey(str(first["model"]), str(first["scenario"]), int(first["fold"]))
    params = LimeParams.from_section(config.explain)
    chosen, fingerprint = planned_masks(predictions, config)
    rows = predictions.iloc[chosen]
    writer = MaskWriter(store, key, fingerprint, curve_points=config.explain.curve_steps + 1)
    if writer.finished():
        return store.masks_record(key)
    done = writer.resume()
    clock = time.perf_counter()
    run = _RunImages(images[chosen], rows["image_id"].astype(str).tolist(), rows["predicted_label"].to_numpy(dtype=int),
                     rows["dataset"].astype(str).tolist(), rows["p_pain"].to_numpy(dtype=float))
    unscored = "" if config.explain.score_one_class_runs else unscored_reason(predictions)
    cam = None if unscored else _grad_cam(model)
    cam_maps, gradcam_seconds = _gradcam_maps(cam, run, store, key, fingerprint)
    scorecard = {"gradcam": gradcam_seconds}
    sanity_run = not unscored and is_sanity_run(key, config, store)
    picks = sanity_picks(predictions, chosen, config.explain.sanity_images, config.experiment.seed) if sanity_run else []
    keep = {str(predictions["image_id"].iloc[p]) for p in picks}
    # The sanity check's first two stages (the top layer, the top half redrawn) read off this run's own LIME pass.
    started = time.perf_counter()
    tap = CascadeTap.of(model, config.experiment.seed, params.batch_size) if sanity_run else None
    tap_built = time.perf_counter() - started
    lime = _explain_images(model, run, done, params, config, writer, on_image, curves=not unscored, cam_maps=cam_maps,
                           keep=keep, tap=tap)
    scorecard["curves"] = lime.pop("curve_seconds")
    scorecard["sanity"], scorecard["stability"] = tap_built + lime.pop("tap_seconds"), 0.0
    if sanity_run:
        checked = _SanityImages(images[picks], [str(predictions["image_id"].iloc[p]) for p in picks],
                                predictions["predicted_label"].to_numpy(dtype=int)[picks])
        started = time.perf_counter()  # the images that topped the run's up are explained for the check alone
        originals, top_maps = _originals(model, checked, lime.pop("originals"), lime.pop("top_maps"), params,
                                         config.experiment.seed, tap)
        scorecard["sanity"] += time.perf_counter() - started + _write_sanity(
            model, cam, checked, originals, params, config, store, key, fingerprint, top_maps, tap.drawn if tap else None)
        scorecard["stability"] = _write_stability(model, checked, originals, params, config, store, key, fingerprint)
    seconds = time.perf_counter() - clock
    summary = {"model": key.model, "scenario": key.scenario, "fold": key.fold, "images": len(run.ids),
               "explained_now": lime["explained"], "resumed": len(run.ids) - lime["explained"],
               "input_size": int(images.shape[1]), "seconds": round(seconds, 4),
               "model_seconds": round(lime["model_seconds"], 4), "curve_model_seconds": round(lime["curve_model_seconds"], 4),
               "step_seconds": {k: round(v, 4) for k, v in lime["steps"].items()},
               "scorecard_seconds": {k: round(v, 4) for k, v in scorecard.items()}, "scorecard_skipped": unscored,
               "params": params.as_dict(), "seed": config.experiment.seed, "gradcam_side": cam.side if cam else 0}
    writer.finish(summary)
    return summary


def unscored_reason(predictions: pd.DataFrame) -> str:
    """Why a run's maps get no scorecard ("" when they do): a network that gives every test image one class
    did not learn (``learned_verdict``'s first rule); its deletion and insertion curves are flat, its Grad-CAM
    maps are flat and a sanity check of them would pass or fail on noise, so scores would mislead and
    only cost time (in the demo, the six pretrained bases: three quarters of the scorecard's time)."""
    return one_class_reason(predictions["predicted_label"].to_numpy(dtype=int))


@dataclass
class _RunImages:
    """The chosen images of one run, in order, and what is known of each."""

    images: np.ndarray  # (n, S, S, 3) uint8
    ids: list[str]
    labels: np.ndarray  # (n,) the explained (predicted) class
    datasets: list[str]
    p_pain: np.ndarray


def _explain_images(model, run: _RunImages, done: set[str], params: LimeParams, config: ExperimentConfig,
                    writer: MaskWriter, on_image, curves: bool = True, cam_maps: dict[str, np.ndarray] | None = None,
                    keep: set[str] = frozenset(), tap: CascadeTap | None = None) -> dict:
    """LIME and (with ``curves``) the faithfulness curves of every image not yet done, Grad-CAM's on the same
    superpixels where ``cam_maps`` has the image's map; the explanations of the ids in ``keep`` (the sanity
    images) are kept, with (given a ``tap``, their LIME classifier) their maps under the sanity check's tapped
    stages. An image's mask is written once its curves are complete (they share full batches across images);
    without curves, at once. ``tap_seconds``: what the tap added to the model calls, an estimate (its calls'
    time less as many calls of the trained network alone, priced by the median of the curves' calls of it, which
    a first call's tracing does not move), the sanity check's share of this pass."""
    plain = BatchedModel(model, params.batch_size)
    curve_classifier = BatchedModel(model, params.batch_size)
    queue = CurveQueue(curve_classifier, params.batch_size, config.explain.curve_steps) if curves else None
    seed, steps = config.experiment.seed, dict.fromkeys(STEPS, 0.0)
    cam_maps = cam_maps or {}
    explained, curve_seconds, originals, top_maps = 0, 0.0, {}, {}

    def write(finished: list[tuple]) -> None:
        for position, explanation, curves in finished:
            writer.add(run.ids[position], run.datasets[position], float(run.p_pain[position]), explanation, curves)

    for position, image_id in enumerate(run.ids):
        if image_id not in done:
            image, label = run.images[position], int(run.labels[position])
            classifier = tap if tap is not None and image_id in keep else plain
            explanation = explain_image(image, classifier, label, params, image_seed(seed, image_id))
            if queue is None:
                writer.add(image_id, run.datasets[position], float(run.p_pain[position]), explanation)
            else:
                clock = time.perf_counter()
                finished = queue.add(position, image, explanation,
                                     np.random.default_rng(image_seed(seed, f"{image_id}#curves")), cam_maps.get(image_id))
                curve_seconds += time.perf_counter() - clock
                write(finished)
            if image_id in keep:
                originals[image_id] = explanation
                if tap is not None:
                    top_maps[image_id] = _tapped_maps(tap, explanation, params, image_seed(seed, image_id))
            for step in STEPS:
                steps[step] += explanation.seconds[step]
            explained += 1
        if on_image is not None:
            on_image()
    if queue is not None:
        clock = time.perf_counter()
        write(queue.finish())
        curve_seconds += time.perf_counter() - clock
    tap_seconds = 0.0
    if tap is not None and tap.durations:  # a call of the trained network alone: the median of the others' calls
        price = float(np.median(curve_classifier.durations or plain.durations or tap.durations))
        tap_seconds = max(0.0, tap.seconds - len(tap.durations) * price)
    return {"explained": explained, "steps": steps, "model_seconds": plain.seconds + (tap.seconds if tap else 0.0),
            "curve_seconds": curve_seconds, "curve_model_seconds": curve_classifier.seconds, "originals": originals,
            "top_maps": top_maps, "tap_seconds": tap_seconds}


def _tapped_maps(tap: CascadeTap, explanation, params: LimeParams, seed: np.random.SeedSequence) -> dict[str, np.ndarray]:
    """Tapped stage -> (S, S) signed LIME map of the network as that stage redraws it, from the tap's probabilities
    of the explanation's own samples (the same superpixels, samples and fit as a LIME pass of that network)."""
    return {stage: fit_weights(explanation.samples, probs, explanation.label, params, seed)[0][explanation.segments]
            for stage, probs in tap.take().items()}


# One GradCam per model object. A network's runs in one process train the same compiled model, reset in
# place (train_run's reuse_compiled), and GradCam reads the weights when called: building it anew for every
# run traced its gradient function every run (seconds per run for the pretrained bases on a CPU).
_GRAD_CAMS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def _grad_cam(model) -> GradCam | None:
    if model not in _GRAD_CAMS:
        try:
            _GRAD_CAMS[model] = GradCam(model)
        except ValueError:  # no convolutional block (e.g. a dense-only test network): LIME only
            _GRAD_CAMS[model] = None
    return _GRAD_CAMS[model]


def _gradcam_maps(cam: GradCam | None, run: _RunImages, store: ExperimentStore, key: RunKey,
                  fingerprint: str) -> tuple[dict[str, np.ndarray], float]:
    """The run's Grad-CAM maps by image id (input size), made and stored (float16) unless already stored for
    these masks; and the seconds spent."""
    stored = store.gradcam(key)
    if cam is None:
        return {}, 0.0
    if stored and str(stored.get("fingerprint", "")) == fingerprint:
        return {str(i): m.astype(np.float32) for i, m in zip(stored["image_id"], stored["maps"])}, 0.0
    clock = time.perf_counter()
    maps = cam(run.images, run.labels)
    store.write_gradcam(key, fingerprint=np.array(fingerprint), image_id=np.array(run.ids, dtype=str),
                        maps=maps.astype(np.float16), side=np.array(cam.side))
    return dict(zip(run.ids, maps)), time.perf_counter() - clock


def is_sanity_run(key: RunKey, config: ExperimentConfig, store: ExperimentStore | None = None) -> bool:
    """One run per network gets the sanity check: fold 0 of the external scenario (its model is kept, so
    `painlens explain` can redo it), else of the first scenario planned. When that run's network gave every
    image one class (no scorecard: ``unscored_reason``), the next kept external seed takes its place, once
    the earlier ones are explained (``store``: where their records are)."""
    names = [s for s in SCENARIO_NAMES if s in config.scenarios.names]
    preferred = "external" if "external" in names else (names[0] if names else "")
    if config.explain.sanity_images <= 0 or key.scenario != preferred:
        return False
    if key.fold == 0:
        return True
    if preferred != "external" or key.fold >= config.scenarios.kept_seeds or store is None:
        return False
    earlier = [store.masks_record(RunKey(key.model, key.scenario, fold)) for fold in range(key.fold)]
    return all(record and record.get("scorecard_skipped") for record in earlier)


def sanity_positions(count: int, wanted: int) -> list[int]:
    """Which of a run's chosen images (sorted by class, then id) the sanity check uses: spread over both classes."""
    if count == 0 or wanted <= 0:
        return []
    return sorted(set(np.round(np.linspace(0, count - 1, min(wanted, count))).astype(int).tolist()))


def sanity_picks(predictions: pd.DataFrame, chosen: np.ndarray, wanted: int, seed: int) -> list[int]:
    """Positions (rows of ``predictions``) of the sanity check's images: ``wanted`` of the run's chosen images,
    spread over both classes; when it explains fewer, all of them and the rest drawn (seeded, from the run's
    other test images, each predicted class in turn) so the verdict rests on ``wanted`` images where it can."""
    chosen = np.asarray(chosen, dtype=int)
    if len(chosen) >= wanted:
        return [int(chosen[i]) for i in sanity_positions(len(chosen), wanted)]
    ids = predictions["image_id"].astype(str).to_numpy()
    predicted = predictions["predicted_label"].to_numpy(dtype=int)
    rest = np.setdiff1d(np.arange(len(predictions)), chosen)
    rest = rest[np.argsort(ids[rest], kind="stable")]
    rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, 27])
    pools = [list(rng.permutation(rest[predicted[rest] == label])) for label in (0, 1)]
    extra = []
    while len(extra) < wanted - len(chosen) and any(pools):
        for pool in pools:
            if pool and len(extra) < wanted - len(chosen):
                extra.append(int(pool.pop()))
    return [int(p) for p in chosen] + sorted(extra)


@dataclass
class _SanityImages:
    """The sanity check's images of one run: pixels, ids, the explained (predicted) classes."""

    images: np.ndarray
    ids: list[str]
    labels: np.ndarray


def _originals(model, checked: _SanityImages, kept: dict, top_maps: dict, params: LimeParams, seed: int,
               tap: CascadeTap | None) -> tuple[dict, dict]:
    """The trained network's LIME explanation of every sanity image, and (with a ``tap``) its maps under the tapped
    stages: kept from the run, or made now (the images that topped the run's up; a resumed run's)."""
    classifier = tap if tap is not None else BatchedModel(model, params.batch_size)
    originals, top_maps = dict(kept), dict(top_maps)
    for image, label, image_id in zip(checked.images, checked.labels, checked.ids):
        if image_id in originals and (tap is None or image_id in top_maps):
            continue
        originals[image_id] = explain_image(image, classifier, int(label), params, image_seed(seed, image_id))
        if tap is not None:
            top_maps[image_id] = _tapped_maps(tap, originals[image_id], params, image_seed(seed, image_id))
    return originals, top_maps


def _write_sanity(model, cam: GradCam | None, checked: _SanityImages, originals: dict, params: LimeParams,
                  config: ExperimentConfig, store: ExperimentStore, key: RunKey, fingerprint: str,
                  top_maps: dict | None = None, drawn: dict | None = None) -> float:
    """The randomisation check on the sanity images, for LIME and Grad-CAM (LIME's tapped stages from
    ``top_maps``, image id -> stage -> map, when it has every image; their weights from ``drawn``, the tap's);
    seconds spent."""
    stored = store.sanity(key)
    if stored is not None and len(stored) and (stored["fingerprint"] == fingerprint).all():
        return 0.0
    clock = time.perf_counter()
    ids, seed = checked.ids, config.experiment.seed
    explainers = {"lime": lambda m, x, y: lime_maps(m, x, y, ids, params, seed)}
    if cam is not None:
        explainers["gradcam"] = lambda m, x, y: cam(x, y)
    given = {"lime": np.stack([_signed(originals[i]) for i in ids])}
    made = None
    if top_maps and set(ids) <= set(top_maps):
        made = {"lime": {stage: np.stack([top_maps[i][stage] for i in ids]) for stage in top_maps[ids[0]]}}
    checks = sanity_check(model, checked.images, checked.labels, explainers, given, seed=seed, made=made, drawn=drawn)
    checks = checks.assign(model=key.model, scenario=key.scenario, fold=key.fold,
                           image_id=[ids[i] for i in checks["image"]], fingerprint=fingerprint)
    store.write_sanity(key, checks)
    return time.perf_counter() - clock


def _write_stability(model, checked: _SanityImages, originals: dict, params: LimeParams, config: ExperimentConfig,
                     store: ExperimentStore, key: RunKey, fingerprint: str) -> float:
    """LIME over ``stability_seeds`` sampling seeds (the first is the stored map's) on the first
    ``stability_images`` sanity images: rank correlation and top-5 overlap between seeds; seconds spent."""
    count = min(config.explain.stability_images, len(checked.ids))
    stored = store.stability(key)
    if count == 0 or (stored is not None and len(stored) and (stored["fingerprint"] == fingerprint).all()):
        return 0.0
    clock = time.perf_counter()
    classifier, seed, rows = BatchedModel(model, params.batch_size), config.experiment.seed, []
    for position in sanity_positions(len(checked.ids), count):
        image_id, label = checked.ids[position], int(checked.labels[position])
        weights = [originals[image_id].weights] + [
            explain_image(checked.images[position], classifier, label, params,
                          image_seed(seed, f"{image_id}#seed{j}")).weights
            for j in range(1, config.explain.stability_seeds)]
        rows.append({"model": key.model, "scenario": key.scenario, "fold": key.fold, "image_id": image_id,
                     "label": label, **seed_agreement(weights), "fingerprint": fingerprint})
    store.write_stability(key, pd.DataFrame(rows))
    return time.perf_counter() - clock


def lime_maps(model, images: np.ndarray, labels: np.ndarray, ids: list[str], params: LimeParams, seed: int) -> np.ndarray:
    """(n, S, S) signed LIME weights painted on the superpixels, each image with its own seed (the same
    superpixels and samples whatever the network's weights)."""
    classifier = BatchedModel(model, params.batch_size)
    return np.stack([_signed(explain_image(image, classifier, int(label), params, image_seed(seed, image_id)))
                     for image, label, image_id in zip(images, labels, ids)])


def _signed(explanation) -> np.ndarray:
    return explanation.weights[explanation.segments]
