"""Explanations of an experiment: LIME masks per run, then heatmaps, region scores and clusters.

Two entry points:

* ``explain_run(model, images, predictions, config, store)`` - one run's masks, called by the grid
  runner right after training, while the model is in memory (only one model per network is kept on
  disk, so this is the one moment every run's model exists). Resumable: masks are written in parts
  and their finish record comes last.
* ``explain_experiment(config, store)`` - ``painlens explain``: explains finished runs that still lack
  masks when their model was kept, reports the others, then normalizes every mask onto the template
  and writes the experiment's heatmaps, differences, region scores and clusters.

Outputs, through the store: the heatmap arrays (mean heatmaps, stretched heatmaps, mean faces,
difference maps, the template's landmarks and region map, the mean Grad-CAM maps of the same groups and
the pain action-unit regions) and the tables ``heatmaps`` (one row per group, with its ``index`` into the
arrays and its image counts, written last), ``heatmap_differences``, ``region_scores``,
``heatmap_similarity``, ``heatmap_clusters``, ``explain_timings`` and the faithfulness scorecard's
``faithfulness``, ``faithfulness_summary`` and ``sanity_checks`` (``scorecard.py``).

With each run's masks, while its model is in memory, come the scorecard's per-run parts: Grad-CAM maps
of the same images (``gradcam.py``), each mask's deletion and insertion curves (``faithfulness.py``,
stored in the mask parts), and on one run per network the randomisation sanity check (``sanity.py``).
A run whose network gives every test image one class gets its LIME masks only (``unscored_reason``).
"""

from __future__ import annotations

import time
import weakref
from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd

from engine.artifacts import ExperimentStore, RunKey
from engine.config import SCENARIO_NAMES, ExperimentConfig
from engine.evaluation.bootstrap import one_class_reason
from engine.progress import progress_bar
from engine.explain.clusters import similarity_tables
from engine.explain.faces import FaceSource
from engine.explain.faithfulness import CurveQueue
from engine.explain.gradcam import GradCam
from engine.explain.heatmaps import GROUP_COLUMNS, HeatmapAccumulator, dataset_side, difference_maps, stretch
from engine.explain.lime_masks import BatchedModel, LimeParams, explain_image, image_seed
from engine.explain.mask_store import STEPS, MaskWriter, load_run_masks, run_fingerprint
from engine.explain.normalize import FOLD_LIMIT, TEMPLATE_SIZE, TemplateWarp, anchor_points, landmarks_problem
from engine.explain.pain_regions import ALL_REGIONS, pain_region_map
from engine.explain.regions import OUTSIDE, REGIONS, face_mass_share, region_map, region_scores
from engine.explain.sanity import sanity_check
from engine.explain.scorecard import ScoreCollector, run_gradcam, sanity_table, summarise

FACE_CACHE_ENTRIES = 1024  # warped mean-face inputs kept in memory (48 KiB each at T = 128)
SCORECARD_VERSION = 1  # in the masks' fingerprint: masks made before the scorecard existed are made again


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
              "scorecard": SCORECARD_VERSION}
    if before_scorecard:  # LIME's parameters as they were then: black hiding only, no scorecard settings
        params = {k: v for k, v in params.items() if k not in ("baseline", "curve_steps", "sanity_images", "scorecard")}
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
    scorecard = {"gradcam": _write_gradcam(cam, run, store, key, fingerprint)}
    lime = _explain_images(model, run, done, params, config, writer, on_image, curves=not unscored)
    scorecard["curves"] = lime.pop("curve_seconds")
    scorecard["sanity"] = (_write_sanity(model, cam, run, lime.pop("originals"), params, config, store, key, fingerprint)
                           if not unscored and is_sanity_run(key, config, store) else 0.0)
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
                    writer: MaskWriter, on_image, curves: bool = True) -> dict:
    """LIME and (with ``curves``) the faithfulness curves of every image not yet done; the sanity images'
    maps are kept. An image's mask is written once its curves are complete (they share full batches across
    images); without curves, at once."""
    classifier, curve_classifier = BatchedModel(model, params.batch_size), BatchedModel(model, params.batch_size)
    queue = CurveQueue(curve_classifier, params.batch_size, config.explain.curve_steps) if curves else None
    seed, steps = config.experiment.seed, dict.fromkeys(STEPS, 0.0)
    sanity_ids = {run.ids[i] for i in sanity_positions(len(run.ids), config.explain.sanity_images)}
    explained, curve_seconds, originals = 0, 0.0, {}

    def write(finished: list[tuple]) -> None:
        for position, explanation, curves in finished:
            writer.add(run.ids[position], run.datasets[position], float(run.p_pain[position]), explanation, curves)

    for position, image_id in enumerate(run.ids):
        if image_id not in done:
            image, label = run.images[position], int(run.labels[position])
            explanation = explain_image(image, classifier, label, params, image_seed(seed, image_id))
            if queue is None:
                writer.add(image_id, run.datasets[position], float(run.p_pain[position]), explanation)
            else:
                clock = time.perf_counter()
                finished = queue.add(position, image, explanation,
                                     np.random.default_rng(image_seed(seed, f"{image_id}#curves")))
                curve_seconds += time.perf_counter() - clock
                write(finished)
            if image_id in sanity_ids:
                originals[image_id] = explanation.weights[explanation.segments]
            for step in STEPS:
                steps[step] += explanation.seconds[step]
            explained += 1
        if on_image is not None:
            on_image()
    if queue is not None:
        clock = time.perf_counter()
        write(queue.finish())
        curve_seconds += time.perf_counter() - clock
    return {"explained": explained, "steps": steps, "model_seconds": classifier.seconds, "curve_seconds": curve_seconds,
            "curve_model_seconds": curve_classifier.seconds, "originals": originals}


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


def _write_gradcam(cam: GradCam | None, run: _RunImages, store: ExperimentStore, key: RunKey, fingerprint: str) -> float:
    """The run's Grad-CAM maps (float16, input size) unless already stored for these masks; seconds spent."""
    stored = store.gradcam(key)
    if cam is None or (stored and str(stored.get("fingerprint", "")) == fingerprint):
        return 0.0
    clock = time.perf_counter()
    maps = cam(run.images, run.labels)
    store.write_gradcam(key, fingerprint=np.array(fingerprint), image_id=np.array(run.ids, dtype=str),
                        maps=maps.astype(np.float16), side=np.array(cam.side))
    return time.perf_counter() - clock


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


def _write_sanity(model, cam: GradCam | None, run: _RunImages, originals: dict[str, np.ndarray], params: LimeParams,
                  config: ExperimentConfig, store: ExperimentStore, key: RunKey, fingerprint: str) -> float:
    """The randomisation check on the sanity images, for LIME and Grad-CAM; seconds spent."""
    stored = store.sanity(key)
    if stored is not None and len(stored) and (stored["fingerprint"] == fingerprint).all():
        return 0.0
    clock = time.perf_counter()
    picks = sanity_positions(len(run.ids), config.explain.sanity_images)
    ids, seed = [run.ids[i] for i in picks], config.experiment.seed
    explainers = {"lime": lambda m, x, y: lime_maps(m, x, y, ids, params, seed)}
    if cam is not None:
        explainers["gradcam"] = lambda m, x, y: cam(x, y)
    given = {"lime": np.stack([originals[i] for i in ids])} if all(i in originals for i in ids) else {}
    checks = sanity_check(model, run.images[picks], run.labels[picks], explainers, given, seed=seed)
    checks = checks.assign(model=key.model, scenario=key.scenario, fold=key.fold,
                           image_id=[ids[i] for i in checks["image"]], fingerprint=fingerprint)
    store.write_sanity(key, checks)
    return time.perf_counter() - clock


def lime_maps(model, images: np.ndarray, labels: np.ndarray, ids: list[str], params: LimeParams, seed: int) -> np.ndarray:
    """(n, S, S) signed LIME weights painted on the superpixels, each image with its own seed (the same
    superpixels and samples whatever the network's weights)."""
    classifier = BatchedModel(model, params.batch_size)
    return np.stack([_signed(explain_image(image, classifier, int(label), params, image_seed(seed, image_id)))
                     for image, label, image_id in zip(images, labels, ids)])


def _signed(explanation) -> np.ndarray:
    return explanation.weights[explanation.segments]


# --- the experiment ---------------------------------------------------------------------------------

def finished_runs(store: ExperimentStore) -> pd.DataFrame:
    """model, scenario, fold, input_size, weights, kept (a kept model) of every finished run."""
    rows = []
    for key in store.finished_runs():
        info = store.run_record(key)
        size = info.get("input_size") or store.split(key).get("input_size")
        rows.append({"model": key.model, "scenario": key.scenario, "fold": key.fold, "input_size": int(size),
                     "weights": info.get("weights", ""), "kept": store.kept_model_path(key).exists()})
    return pd.DataFrame(rows, columns=["model", "scenario", "fold", "input_size", "weights", "kept"])


def _key(run) -> RunKey:
    return RunKey(run.model, run.scenario, int(run.fold))


def explain_experiment(config: ExperimentConfig, store: ExperimentStore, progress: bool = True,
                       faces: FaceSource | None = None) -> dict:
    """Masks still missing (where the model was kept), then heatmaps, regions and clusters; returns a
    summary with ``notes`` (sentences for the user) and timings."""
    runs = finished_runs(store)
    if runs.empty:
        return {"runs": 0, "notes": ["No finished runs in this experiment yet: nothing to explain."]}
    if faces is None:
        samples = store.samples()
        if samples is None:
            return {"runs": len(runs), "notes": ["The experiment has no sample table yet: run `painlens run` first."]}
        faces = FaceSource(samples, config.cache_dir(), config.preprocess.margin)
    clock = time.perf_counter()
    current = np.array([_has_current_masks(run, config, store) for run in runs.itertuples()], dtype=bool)
    unexplained = runs[~current]
    kept = unexplained[unexplained["kept"]]
    problems = []
    with progress_bar(progress) as bar:
        for run in kept.itertuples():
            problem = _explain_kept_model(run, config, store, faces, bar)
            if problem:
                problems.append(problem)
        explain_seconds = time.perf_counter() - clock
        clock = time.perf_counter()
        current = np.array([_has_current_masks(run, config, store) for run in runs.itertuples()], dtype=bool)
        older = ~current & np.array([_has_masks_before_scorecard(run, config, store) for run in runs.itertuples()], dtype=bool)
        result = aggregate(runs[current | older], store, faces, bar, baseline=config.explain.baseline,
                           seed=config.experiment.seed)
    result["notes"] = problems + result["notes"]
    result["seconds"] = {"explain": round(explain_seconds, 3), "heatmaps": round(time.perf_counter() - clock, 3),
                         "heatmaps_scorecard": round(result.pop("scorecard_seconds", 0.0), 3)}
    if older.any():
        result["notes"].append(f"{int(older.sum())} runs have masks made before the faithfulness scorecard and no kept "
                               "model: they are in the heatmaps but not scored; `painlens run --force --models NETWORK` "
                               "redoes a network's runs.")
    timings = result.get("timings")
    if timings is not None and len(timings) and "scorecard_skipped" in timings:
        skipped = timings[timings["scorecard_skipped"].astype(str) != ""]
        if len(skipped):
            names = ", ".join(sorted(set(skipped["model"])))
            result["notes"].append(f"{len(skipped)} runs got LIME masks but no faithfulness scores ({names}): their network "
                                   "gave every test image one class, so it did not learn and its scores would describe noise.")
    lost = runs[~current & ~older & ~runs["kept"].to_numpy(dtype=bool)]
    result["runs"], result["runs_without_masks"] = len(runs), len(lost)
    if len(lost):
        result["notes"].insert(0, f"{len(lost)} finished runs have no masks for this config and no kept model (e.g. "
                                  f"{lost.iloc[0]['model']}/{lost.iloc[0]['scenario']}/{lost.iloc[0]['fold']}); "
                                  "they are left out of the heatmaps; `painlens run --force --models NETWORK` "
                                  "retrains and explains a network's runs.")
    return result


def _has_current_masks(run, config: ExperimentConfig, store: ExperimentStore) -> bool:
    """Masks finished for this run's stored predictions and the config's LIME settings (a retrained
    model or other settings make them stale)."""
    record = store.masks_record(_key(run))
    predictions = store.predictions(_key(run))
    if not record or predictions is None:
        return False
    return record.get("fingerprint") == planned_masks(predictions, config)[1]


def _has_masks_before_scorecard(run, config: ExperimentConfig, store: ExperimentStore) -> bool:
    """Masks a version without the scorecard made with these LIME settings (its baseline was black)."""
    record = store.masks_record(_key(run))
    predictions = store.predictions(_key(run))
    if not record or predictions is None or config.explain.baseline != "black":
        return False
    return record.get("fingerprint") == planned_masks(predictions, config, before_scorecard=True)[1]


def _explain_kept_model(run, config: ExperimentConfig, store: ExperimentStore, faces: FaceSource, bar) -> str:
    """Explain a finished run from its kept model; "" when done, else the sentence saying why not."""
    import keras

    import engine.models.registry  # noqa: F401  registers the project's custom layers for loading

    predictions = store.predictions(_key(run))
    rows = predictions.iloc[choose_images(predictions, config.explain.images_per_class, config.experiment.seed,
                                          config.explain.all_cppain)]
    try:
        model = keras.saving.load_model(store.kept_model_path(_key(run)), compile=False)
    except (OSError, ValueError, TypeError) as exc:
        return (f"The kept model of {run.model}/{run.scenario}/{run.fold} could not be loaded ({type(exc).__name__}); "
                f"its masks are missing; `painlens run --force --models {run.model}` retrains and explains it.")
    task = bar.add_task(f"LIME {run.model} / {run.scenario} / {run.fold}", total=len(rows))
    images = faces.images(rows["image_id"].astype(str).tolist(), int(run.input_size))
    explain_run(model, images, rows.reset_index(drop=True), config, store, on_image=lambda: bar.advance(task))
    keras.backend.clear_session()
    return ""


def aggregate(runs: pd.DataFrame, store: ExperimentStore, faces: FaceSource, bar=None,
              template_size: int = TEMPLATE_SIZE, baseline: str = "black", seed: int = 0) -> dict:
    """Warp every mask (and Grad-CAM map) of ``runs`` (explained runs, as from ``finished_runs``) onto the
    template, score each, and write the heatmap and scorecard artifacts; returns counts and notes."""
    warp = TemplateWarp.build(template_size)
    accumulator = HeatmapAccumulator(template_size)
    scores = ScoreCollector(pain_region_map(warp), faces.rows.reset_index(drop=True), baseline)
    geometry = _Geometry(warp, faces)
    run_rows = []
    task = bar.add_task("heatmaps", total=len(runs)) if bar is not None else None
    for run in runs.sort_values(["input_size", "model", "scenario", "fold"]).itertuples():
        record = store.masks_record(_key(run))
        masks = load_run_masks(store, _key(run))
        cams = run_gradcam(store, _key(run), str(record.get("fingerprint", "")))
        for i in range(len(masks)):
            key = (run.model, run.scenario, dataset_side(str(masks.dataset[i])), int(masks.label[i]))
            image_id, size = str(masks.image_id[i]), masks.segments[i].shape[0]
            problem, coords = geometry.coordinates(image_id, size)
            if problem:
                accumulator.fail(key, problem)
                continue
            lime, face = warp.warp(masks.mask(i), coords), geometry.face(image_id, size, coords)
            accumulator.add(key, lime, face)
            clock = time.perf_counter()
            cam = cams.get(image_id)
            cam = None if cam is None else warp.warp(cam, coords)
            scores.seconds += time.perf_counter() - clock
            scores.add(_key(run), masks, i, lime, cam, key, face)
        run_rows.append(_run_timing(record, run))
        if task is not None:
            bar.advance(task)
    return _write_outputs(store, accumulator, warp, runs, pd.DataFrame(run_rows), scores, seed)


class _Geometry:
    """Per (image, input size): the landmark check and the warp coordinates; warped faces, LRU-cached."""

    def __init__(self, warp: TemplateWarp, faces: FaceSource):
        self.warp, self.faces = warp, faces
        self._anchors: dict[tuple[str, int], tuple[str, np.ndarray | None]] = {}
        self._faces: OrderedDict[tuple[str, int], np.ndarray] = OrderedDict()

    def coordinates(self, image_id: str, size: int) -> tuple[str, np.ndarray | None]:
        key = (image_id, size)
        if key not in self._anchors:
            points = self.faces.landmarks(image_id, size)
            problem = landmarks_problem(points, size)
            anchors = None
            if not problem:
                anchors = anchor_points(points, size)
                if self.warp.folded_share(anchors) > FOLD_LIMIT:
                    problem, anchors = "landmarks fold the face mesh", None
            self._anchors[key] = (problem, anchors)
        problem, anchors = self._anchors[key]
        return problem, None if anchors is None else self.warp.coordinates(anchors)

    def face(self, image_id: str, size: int, coords: np.ndarray) -> np.ndarray:
        key = (image_id, size)
        if key in self._faces:
            self._faces.move_to_end(key)
        else:
            image = self.faces.images([image_id], size)[0]
            self._faces[key] = np.clip(np.round(self.warp.warp(image, coords)), 0, 255).astype(np.uint8)
            if len(self._faces) > FACE_CACHE_ENTRIES:
                self._faces.popitem(last=False)
        return self._faces[key]


def _run_timing(done: dict, run) -> dict:
    """One run's explanation time: LIME (its model calls and its own work) and the scorecard's parts."""
    explained = int(done.get("explained_now", 0))
    seconds, model_seconds = float(done.get("seconds", 0.0)), float(done.get("model_seconds", 0.0))
    scorecard = {f"{k}_seconds": float(v) for k, v in (done.get("scorecard_seconds") or {}).items()}
    lime_seconds = seconds - model_seconds - sum(scorecard.values())
    return {"model": run.model, "scenario": run.scenario, "fold": run.fold, "input_size": run.input_size,
            "images": int(done.get("images", 0)), "explained_now": explained, "seconds": seconds,
            "model_seconds": model_seconds, "lime_seconds": lime_seconds,
            "seconds_per_image": seconds / explained if explained else np.nan,
            "lime_overhead": lime_seconds / model_seconds if model_seconds > 0 else np.nan,
            "gradcam_seconds": scorecard.get("gradcam_seconds", 0.0), "curves_seconds": scorecard.get("curves_seconds", 0.0),
            "sanity_seconds": scorecard.get("sanity_seconds", 0.0),
            "scorecard_skipped": str(done.get("scorecard_skipped", ""))}


def _is_pretrained(model: str) -> bool:
    from engine.errors import ConfigError
    from engine.models.registry import get_spec

    try:
        return bool(get_spec(model).pretrained)
    except ConfigError:
        return False  # a network outside the registry (e.g. a test's): counted as trained from scratch


def _write_outputs(store: ExperimentStore, accumulator: HeatmapAccumulator, warp: TemplateWarp,
                   runs: pd.DataFrame, timings: pd.DataFrame, scores: ScoreCollector, seed: int) -> dict:
    heat, mean_faces = accumulator.arrays()
    gradcam, scorecard = _scorecard_outputs(store, scores, accumulator, runs, seed)
    labels = region_map(warp)
    pretrained = {m: _is_pretrained(m) for m in sorted(set(runs["model"]))}
    groups = _describe_groups(accumulator.frame(), heat, labels, runs, pretrained)
    diff_rows, diffs = difference_maps(groups, heat)
    similarity, clusters = similarity_tables(groups, heat, labels != OUTSIDE, pretrained)
    stretched = _stretched(heat)
    store.write_heatmap_arrays(heatmaps=heat, stretched=stretched.astype(np.float32), faces=mean_faces,
                               differences=diffs, template_landmarks=warp.landmarks.astype(np.float32),
                               template_anchors=warp.anchors.astype(np.float32), regions=labels,
                               region_names=np.array(REGIONS, dtype=str), gradcam_heatmaps=gradcam,
                               gradcam_stretched=_stretched(gradcam), pain_regions=scores.labels,
                               pain_region_names=np.array(ALL_REGIONS, dtype=str))
    tables = {**scorecard,
              "heatmap_differences": diff_rows, "region_scores": _region_table(groups, heat, labels),
              "heatmap_similarity": similarity, "heatmap_clusters": clusters, "explain_timings": timings,
              "heatmaps": groups}
    for name, frame in tables.items():
        store.write_table(name, frame)  # heatmaps last: its presence means the set is complete
    failed = int(groups["n_landmark_failed"].sum())
    notes = [f"{failed} explained images were left out of the heatmaps because their landmarks failed "
             "(counts per heatmap in the heatmap table)."] if failed else []
    return {"heatmaps": len(groups), "explained_runs": len(runs), "masks": int(groups["n_explained"].sum()),
            "landmark_failures": failed, "notes": notes, "timings": timings, "scorecard_seconds": scores.seconds}


def _scorecard_outputs(store: ExperimentStore, scores: ScoreCollector, accumulator: HeatmapAccumulator,
                       runs: pd.DataFrame, seed: int) -> tuple[np.ndarray, dict[str, pd.DataFrame]]:
    """The mean Grad-CAM maps of the heatmap groups and the scorecard's tables (timed into ``scores``)."""
    clock = time.perf_counter()
    gradcam = scores.gradcam_arrays(accumulator.keys())
    faithfulness = scores.frame()
    fingerprints = {_key(r): str(store.masks_record(_key(r)).get("fingerprint", "")) for r in runs.itertuples()}
    tables = {"faithfulness": faithfulness, "faithfulness_summary": summarise(faithfulness, scores.labels, seed),
              "sanity_checks": sanity_table(store, sorted(fingerprints), fingerprints)}
    scores.seconds += time.perf_counter() - clock
    return gradcam, tables


def _stretched(heat: np.ndarray) -> np.ndarray:
    """Each map min-max scaled to [0, 1] (NaN maps stay NaN), float32."""
    return (np.stack([stretch(h) if np.isfinite(h).all() else h for h in heat]) if len(heat) else heat).astype(np.float32)


def _describe_groups(groups: pd.DataFrame, heat: np.ndarray, labels: np.ndarray, runs: pd.DataFrame,
                     pretrained: dict[str, bool]) -> pd.DataFrame:
    """The group table plus what a reader needs beside the counts: the network's facts and the
    heatmap's range and share of mass on the face (NaN for a group without usable images)."""
    used = groups["n_images"].to_numpy() > 0
    index = groups["index"].to_numpy()
    groups["pretrained"] = groups["model"].map(pretrained)
    weights = runs.groupby("model")["weights"].agg(lambda w: ",".join(sorted(set(map(str, w)))))
    groups["weights"] = groups["model"].map(weights)
    groups["input_size"] = groups["model"].map(runs.groupby("model")["input_size"].first())
    groups["face_mass_share"] = [face_mass_share(heat[i], labels) if u else np.nan for i, u in zip(index, used)]
    groups["heat_min"] = [float(heat[i].min()) if u else np.nan for i, u in zip(index, used)]
    groups["heat_max"] = [float(heat[i].max()) if u else np.nan for i, u in zip(index, used)]
    return groups


def _region_table(groups: pd.DataFrame, heat: np.ndarray, labels: np.ndarray) -> pd.DataFrame:
    """Region scores of every usable heatmap, with its group's columns and ``index``."""
    frames = []
    for row in groups[groups["n_images"] > 0].itertuples():
        keys = {column: getattr(row, column) for column in ("index", *GROUP_COLUMNS, "class_name", "n_images")}
        frames.append(region_scores(heat[row.index], labels).assign(**keys))
    columns = ["index", *GROUP_COLUMNS, "class_name", "n_images", "region", "aus", "share", "area_share", "ratio"]
    return pd.concat(frames, ignore_index=True)[columns] if frames else pd.DataFrame(columns=columns)


def summary_table(result: dict, experiment: str = ""):
    """A rich Table for the console: per network, images explained, seconds per image, LIME's own
    overhead next to inference, and what the faithfulness scorecard added to the explanation's time."""
    from rich.table import Table

    seconds = result.get("seconds", {})
    step = (f"; heatmap step {seconds['heatmaps']:.1f} s, of which the scorecard {seconds['heatmaps_scorecard']:.1f} s"
            if "heatmaps_scorecard" in seconds else "")
    table = Table(title=f"{experiment + ': ' if experiment else ''}{result.get('heatmaps', 0)} heatmaps from "
                        f"{result.get('explained_runs', 0)} explained runs{step}")
    for column in ("network", "runs", "images", "s / image", "LIME overhead", "scorecard added"):
        table.add_column(column, justify="left" if column == "network" else "right")
    timings = result.get("timings")
    if timings is None or timings.empty:
        return table
    for model, rows in timings.groupby("model", sort=False):
        explained = rows["explained_now"].sum()
        per_image = rows["seconds"].sum() / explained if explained else float("nan")
        model_seconds = rows["model_seconds"].sum()
        overhead = rows["lime_seconds"].sum() / model_seconds if model_seconds else float("nan")
        table.add_row(model, str(len(rows)), str(int(rows["images"].sum())), f"{per_image:.2f}", f"{overhead:.1%}",
                      f"{scorecard_share(rows):.1%}")
    return table


def scorecard_share(timings: pd.DataFrame) -> float:
    """Time the scorecard's parts (Grad-CAM, curves, sanity check) took, as a share of the rest of the
    explanation's time (LIME alone) in the same runs."""
    added = timings[["gradcam_seconds", "curves_seconds", "sanity_seconds"]].to_numpy().sum()
    lime = timings["seconds"].sum() - added
    return float(added / lime) if lime > 0 else float("nan")
