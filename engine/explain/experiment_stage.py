"""The experiment stage of the explanations (``painlens explain``): every run's masks aggregated into
heatmaps, differences, region scores, clusters and the faithfulness scorecard's tables.

``explain_experiment(config, store)`` first explains the finished runs that still lack masks when their
model was kept (``run_stage.explain_run``) and reports the others, then normalizes every mask (and
Grad-CAM map) onto the template and writes the experiment's outputs.

Outputs, through the store: the heatmap arrays (mean heatmaps, stretched heatmaps, mean faces,
difference maps, the template's landmarks and region map, the mean Grad-CAM maps of the same groups and
the pain action-unit regions) and the tables ``heatmaps`` (one row per group, with its ``index`` into the
arrays and its image counts, written last), ``heatmap_differences``, ``region_scores``,
``heatmap_similarity``, ``heatmap_clusters``, ``explain_timings`` and the faithfulness scorecard's
``faithfulness``, ``faithfulness_summary`` and ``sanity_checks`` (``scorecard.py``).
"""

from __future__ import annotations

import time
from collections import OrderedDict

import numpy as np
import pandas as pd

from engine.artifacts import ExperimentStore, RunKey
from engine.config import ExperimentConfig
from engine.progress import progress_bar
from engine.explain.clusters import similarity_tables
from engine.explain.faces import FaceSource
from engine.explain.heatmaps import GROUP_COLUMNS, HeatmapAccumulator, dataset_side, difference_maps, stretch
from engine.explain.mask_store import load_run_masks
from engine.explain.normalize import FOLD_LIMIT, TEMPLATE_SIZE, TemplateWarp, anchor_points, landmarks_problem
from engine.explain.pain_regions import ALL_REGIONS, pain_region_map
from engine.explain.regions import OUTSIDE, REGIONS, face_mass_share, region_map, region_scores
from engine.explain.run_stage import choose_images, explain_run, is_sanity_run, planned_masks, sanity_picks
from engine.explain.scorecard import ScoreCollector, run_gradcam, sanity_table, stability_table, summarise

FACE_CACHE_ENTRIES = 1024  # warped mean-face inputs kept in memory (48 KiB each at T = 128)


def finished_runs(store: ExperimentStore) -> pd.DataFrame:
    """model, scenario, fold, input_size, weights, kept (a kept model) of every finished run (but cp_adapt's:
    a research scenario of one subject per run, not explained)."""
    rows = []
    for key in store.finished_runs():
        if key.scenario == "cp_adapt":
            continue
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
    store.remove_stale_temp_files()  # a killed earlier explain (or run) may have left half-written files
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

    predictions = store.predictions(_key(run)).reset_index(drop=True)
    chosen = choose_images(predictions, config.explain.images_per_class, config.experiment.seed, config.explain.all_cppain)
    # The sanity check's images beyond the explained ones (a run that explains fewer than it needs); the
    # other rows' pixels are never read, so they stay zeros rather than being loaded.
    needed = np.union1d(chosen, sanity_picks(predictions, chosen, config.explain.sanity_images, config.experiment.seed)
                        if is_sanity_run(_key(run), config, store) else []).astype(int)
    try:
        model = keras.saving.load_model(store.kept_model_path(_key(run)), compile=False)
    except (OSError, ValueError, TypeError) as exc:
        return (f"The kept model of {run.model}/{run.scenario}/{run.fold} could not be loaded ({type(exc).__name__}); "
                f"its masks are missing; `painlens run --force --models {run.model}` retrains and explains it.")
    task = bar.add_task(f"LIME {run.model} / {run.scenario} / {run.fold}", total=len(chosen))
    size = int(run.input_size)
    images = np.zeros((len(predictions), size, size, 3), dtype=np.uint8)
    images[needed] = faces.images(predictions["image_id"].iloc[needed].astype(str).tolist(), size)
    explain_run(model, images, predictions, config, store, on_image=lambda: bar.advance(task))
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
            scores.add(_key(run), masks, i, lime, cam, key, face, str((record.get("params") or {}).get("baseline", "black")))
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
            "sanity_seconds": scorecard.get("sanity_seconds", 0.0), "stability_seconds": scorecard.get("stability_seconds", 0.0),
            "baseline": str((done.get("params") or {}).get("baseline", "black")),
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
    if "baseline" in timings:
        runs = runs.merge(timings[["model", "scenario", "fold", "baseline"]], on=["model", "scenario", "fold"], how="left")
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
              "sanity_checks": sanity_table(store, sorted(fingerprints), fingerprints),
              "lime_stability": stability_table(store, sorted(fingerprints), fingerprints)}
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
    # Which LIME baseline made each heatmap (every page and exported figure names it).
    if "baseline" in runs:
        made = runs.groupby(["model", "scenario"])["baseline"].agg(lambda b: ",".join(sorted(set(map(str, b)))))
        groups["baseline"] = [made.get((m, sc), "") for m, sc in zip(groups["model"], groups["scenario"])]
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


SCORECARD_PARTS = ("gradcam", "curves", "sanity", "stability")


def scorecard_share(timings: pd.DataFrame) -> float:
    """Time the scorecard's parts (Grad-CAM, curves, sanity check, LIME's stability) took, as a share of the
    rest of the explanation's time (LIME alone) in the same runs."""
    added = timings[[f"{p}_seconds" for p in SCORECARD_PARTS if f"{p}_seconds" in timings]].to_numpy().sum()
    lime = timings["seconds"].sum() - added
    return float(added / lime) if lime > 0 else float("nan")
