"""LIME's baseline on faces: where a network's pain-class mass lands under black, mean-colour and blurred hiding,
and under two realistic fills.

Black (the paper's ``hide_color = 0``) looks like shut eyes (AU43) and deep furrows (AU4): hiding a dark
eye changes little, so LIME can hardly credit it. This measures it with the planted action units known:

  1. fresh synthetic UNBC frames (the project's generator with another seed than the experiment's:
     people no network has seen), preprocessed as the experiment's config says (MTCNN, background,
     landmarks) into a temporary face cache;
  2. the experiment's kept models of one network (the external scenario's seeds) predict them;
  3. every frame predicted as pain is explained for the pain class under each baseline (the config's
     LIME settings otherwise), each mask warped onto the template and scored on the pain regions
     (``engine/explain/pain_regions.py``); Grad-CAM, which hides nothing, as a reference.

Two realistic fills answer "would a hidden part that looks like a face credit the evidence, not the hole?"
(Chang et al., ICLR 2019, fill hidden parts with plausible content):

    calm face    the mean calm face of the experiment's PAIN-DB no-pain faces, averaged on the template and
                 warped back onto each face by its landmarks, its colour matched to the face's (mean and
                 spread per channel: a patch of another skin tone is a new edge)
    own calm     the same synthetic person's calm frames (up to 3 of the fresh draw), each warped onto the
                 face by the two faces' landmarks and averaged: hiding a part shows it as it is at rest

Prints, per baseline: the share of the pain-class mass in the eye region (eye closure, AU43) on frames
with AU43 planted and on the others, the eye region's mass per unit area against the rest of the face,
and, over all pain regions planted in each frame, mass per unit area against the rest of the face and
the pointing game against the planted regions' share of the face area.

    .venv/bin/python bench/lime_baselines.py artifacts/demo [--network WeiNet SongNet ...] [--size demo] [--seed 1001]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

BASELINES = ("black", "mean", "blur")
REALISTIC = ("calm face", "own calm")
CALM_FRAMES = 3  # calm frames of each person drawn for "own calm"


def fresh_frames(config, work: Path, size: str, seed: int, frames: int) -> pd.DataFrame:
    """Preprocessed UNBC frames of a new synthetic draw (rows with cache_key, AU columns, subject, label): up to
    ``frames`` pain frames and up to ``CALM_FRAMES`` calm frames of each of their people."""
    from engine.datasets.scan import scan_dataset
    from engine.preprocess.batch import preprocess_table
    from engine.synth import generate

    generate(work / "synth", seed=seed, size=size)
    table = scan_dataset(work / "synth" / "unbc", "unbc").table
    pain = table[table["label"] == 1]
    chosen = pain.sample(min(frames, len(pain)), random_state=seed) if len(pain) else pain
    calm = table[(table["label"] == 0) & table["subject"].isin(chosen["subject"])].groupby("subject").head(CALM_FRAMES)
    processed, _ = preprocess_table(pd.concat([chosen, calm]), config.preprocess, work / "cache", progress=False)
    return processed[processed["status"] == "ok"].reset_index(drop=True)


def calm_template(store, config, size: int, warp) -> np.ndarray:
    """(T, T, 3) float: the experiment's PAIN-DB no-pain faces at ``size``, warped onto the template and averaged."""
    from engine.explain.faces import FaceSource
    from engine.explain.normalize import anchor_points, landmarks_problem

    samples = store.samples()
    calm = samples[(samples["role"] == "paindb") & (samples["label"] == 0) & (samples["status"] == "ok")]
    faces = FaceSource(calm, config.cache_dir(), config.preprocess.margin)
    ids = calm["image_id"].astype(str).tolist()
    total, count = np.zeros((warp.size, warp.size, 3)), 0
    for image_id, image in zip(ids, faces.images(ids, size)):
        points = faces.landmarks(image_id, size)
        if not landmarks_problem(points, size):
            total += warp.warp(image, warp.coordinates(anchor_points(points, size)))
            count += 1
    return total / max(count, 1)


def onto_face(source: np.ndarray, source_anchors: np.ndarray, face_anchors: np.ndarray, size: int) -> np.ndarray:
    """(size, size, 3) float: ``source`` (an image whose anchor points are ``source_anchors``) warped piecewise
    affinely onto a face whose anchor points are ``face_anchors``."""
    from skimage.transform import PiecewiseAffineTransform, warp

    # face pixel (x, y) -> where it lies in the source; the anchors include the image corners, so it covers the face
    transform = PiecewiseAffineTransform.from_estimate(face_anchors, source_anchors)
    if not transform:
        raise ValueError(f"the landmarks give no piecewise-affine map: {transform}")
    return np.stack([warp(source[..., c].astype(np.float64), transform, output_shape=(size, size), order=1,
                          mode="edge", preserve_range=True) for c in range(source.shape[-1])], axis=-1)


def colour_matched(fill: np.ndarray, image: np.ndarray) -> np.ndarray:
    """uint8 ``fill`` with the mean and spread of each colour channel of ``image``."""
    fill, image = np.asarray(fill, dtype=np.float64), np.asarray(image, dtype=np.float64)
    scaled = (fill - fill.mean(axis=(0, 1))) / (fill.std(axis=(0, 1)) + 1e-6) * image.std(axis=(0, 1)) + image.mean(axis=(0, 1))
    return np.clip(np.round(scaled), 0, 255).astype(np.uint8)


def score_frames(models: list, rows: pd.DataFrame, config, cache: Path, size: int, template: np.ndarray) -> pd.DataFrame:
    """One row per (kept model, frame predicted as pain, explainer/baseline) with the pain-region scores;
    ``template``: the calm face on the template (``calm_template``)."""
    from dataclasses import replace

    from engine.explain.faces import FaceSource
    from engine.explain.gradcam import GradCam
    from engine.explain.lime_masks import BatchedModel, LimeParams, explain_image, image_seed
    from engine.explain.normalize import TemplateWarp, anchor_points, landmarks_problem
    from engine.explain.pain_regions import pain_region_map, planted_regions, score_map

    faces = FaceSource(rows.assign(status="ok"), cache, config.preprocess.margin)
    ids = rows["image_id"].astype(str).tolist()
    images = faces.images(ids, size)
    warp = TemplateWarp.build()
    labels = pain_region_map(warp)
    params = LimeParams.from_section(config.explain)
    aus = rows.set_index("image_id")[["au4", "au6", "au7", "au9", "au10", "au43"]].to_dict("index")
    labels_true, subjects = rows["label"].to_numpy(dtype=int), rows["subject"].astype(str).to_numpy()
    anchors = {}
    for i, image_id in enumerate(ids):
        points = faces.landmarks(image_id, size)
        anchors[i] = None if landmarks_problem(points, size) else anchor_points(points, size)
    out = []
    for seed_index, model in enumerate(models):
        pain = np.flatnonzero((np.asarray(model.predict(images, verbose=0))[:, 1] >= 0.5) & (labels_true == 1))
        classifier, cam = BatchedModel(model, params.batch_size), GradCam(model)
        cams = cam(images[pain], np.ones(len(pain), dtype=int)) if len(pain) else []
        for k, i in enumerate(pain):
            own = [onto_face(images[j], anchors[j], anchors[i], size) for j in np.flatnonzero(
                (subjects == subjects[i]) & (labels_true == 0)) if anchors[j] is not None]
            if anchors[i] is None or not own:
                continue
            coords = warp.coordinates(anchors[i])
            planted = planted_regions(aus[ids[i]])
            maps = {"gradcam": cams[k]}
            for baseline in BASELINES:
                explanation = explain_image(images[i], classifier, 1, replace(params, baseline=baseline), image_seed(0, ids[i]))
                maps[f"LIME {baseline}"] = explanation.mask()
            fills = {"calm face": colour_matched(onto_face(template, warp.anchors, anchors[i], size), images[i]),
                     "own calm": np.clip(np.round(np.mean(own, axis=0)), 0, 255).astype(np.uint8)}
            for name, fill in fills.items():
                maps[f"LIME {name}"] = explain_image(images[i], classifier, 1, params, image_seed(0, ids[i]), fill=fill).mask()
            for name, heat in maps.items():
                scores = score_map(warp.warp(heat, coords), labels, planted)
                out.append({"model": seed_index, "image_id": ids[i], "explainer": name,
                            "au43": bool(np.nan_to_num(aus[ids[i]]["au43"]) > 0), **scores})
    return pd.DataFrame(out)


def report(scores: pd.DataFrame) -> None:
    from engine.explain.normalize import TemplateWarp
    from engine.explain.pain_regions import area_shares, pain_region_map

    areas = area_shares(pain_region_map(TemplateWarp.build()))
    rows = []
    for name, part in scores.groupby("explainer", sort=False):
        closed, open_ = part[part["au43"]], part[~part["au43"]]
        reference = part["share_reference"].mean() / areas["reference"]
        planted = part.dropna(subset=["planted_share"])
        rows.append([name, str(part["image_id"].nunique()), f"{closed['share_eye_closure'].mean():.3f} (n={len(closed)})",
                     f"{open_['share_eye_closure'].mean():.3f} (n={len(open_)})",
                     f"{part['share_eye_closure'].mean() / areas['eye_closure'] / reference:.2f}",
                     f"{planted['planted_share'].mean() / planted['planted_area_share'].mean() / (planted['share_reference'].mean() / areas['reference']):.2f}",
                     f"{planted['pointing_hit_planted'].mean():.2f} vs {planted['planted_area_share'].mean():.2f}"])
    header = ["explainer", "frames", "eye share, AU43", "eye share, eyes open", "eye / rest", "planted / rest",
              "pointing vs chance"]
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    print("  ".join(h.ljust(w) for h, w in zip(header, widths)))
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths)))
    print(f"(eye region: {areas['eye_closure']:.1%} of the face area; mass per unit area is against the rest of the face)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("experiment", help="an experiment folder with kept models, e.g. artifacts/demo")
    parser.add_argument("--network", nargs="+", default=["WeiNet"], help="one or more networks (one fresh draw for all)")
    parser.add_argument("--size", default="tiny", help="synthetic size of the fresh draw (tiny, demo)")
    parser.add_argument("--seed", type=int, default=1001, help="generator seed of the fresh draw (not the experiment's)")
    parser.add_argument("--frames", type=int, default=60, help="pain frames to preprocess at most")
    args = parser.parse_args()
    import keras

    import engine.models.registry  # noqa: F401  registers the project's layers for loading
    from engine.artifacts import ExperimentStore
    from engine.explain.normalize import TemplateWarp

    store = ExperimentStore.open(args.experiment)
    config = store.config()
    with tempfile.TemporaryDirectory() as folder:
        rows = fresh_frames(config, Path(folder), args.size, args.seed, args.frames)
        for network in args.network:
            kept = [k for k in store.kept_models() if k.model == network]
            if not kept:
                print(f"{args.experiment} keeps no model of {network}.")
                continue
            models = [keras.saving.load_model(store.kept_model_path(k), compile=False) for k in kept]
            size = int(store.run_record(kept[0]).get("input_size") or models[0].input_shape[1])
            scores = score_frames(models, rows, config, Path(folder) / "cache", size,
                                  calm_template(store, config, size, TemplateWarp.build()))
            print(f"\n{network} ({len(models)} kept models) on {int((rows['label'] == 1).sum())} fresh synthetic UNBC pain frames "
                  f"(generator seed {args.seed}, {args.size}); {config.explain.num_samples} LIME samples")
            if scores.empty:
                print("No frame was predicted as pain: nothing to explain for the pain class.")
                continue
            report(scores)
            keras.backend.clear_session()


if __name__ == "__main__":
    main()
