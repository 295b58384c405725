"""Which drawn cue moves each network's p(pain): the same synthetic faces with one group of movements at a time.

The heatmaps of some networks put their pain-class mass on the mouth, jaw and chin, outside the pain action
units' regions. This asks the networks themselves, without an explainer: fresh synthetic people (the project's
generator, another seed than the experiment's: nobody a network has seen) are drawn in a Delaware-like photo
(frontal, 400x500), each in the same pose, light and sensor noise under every condition:

    neutral       no movement
    mouth open    AU25 (lips part) 2 and AU26 (jaw drop) 1.5: no pain action unit (synthetic Delaware draws
                  these in its posed pain photos and never in its neutral ones; CP-PAIN people may rest so)
    AU10 only     upper lip raiser 3 (in this generator it also parts the lips a little and shows teeth)
    upper pain    AU4, AU6, AU7, AU9 at 3: the pain units above the mouth
    pain          AU4, AU6, AU7, AU9, AU10 at 3
    pain, mouth   the same with the mouth open as above
    and two swaps of the jaw and chin (jaw points 3-13 and the mouth corners, as the heatmaps' regions draw
    them): the pain photo with the neutral photo's, and the neutral photo with the pain photo's

Each face goes through the served pipeline (MTCNN crop, background, the experiment's networks as served:
the answer's subject-wise fold models, else the kept external seeds; ``engine.predict.Predictor``) and the
script prints, per network, the mean p(pain) per condition and how many of the people it raised over neutral.

With ``--occlusion`` it also hides parts of the faces each served model never trained on (a subject-wise fold
model's held-out PAIN-DB faces; for a network served by its external seeds, CP-PAIN's), on the images it
predicts as pain, one part at a time: the pain regions (``engine/explain/pain_regions.py``), the jaw and chin,
and the rest of the face, filled with the image's mean colour (LIME's default baseline) or with ROAD's
imputation (no new edges). It prints the fall of p(pain) per tenth of the face area hidden: a part whose fall
is large under the mean colour but not under ROAD's fill moves the network by the fill's look, not by what
the part shows.

    .venv/bin/python bench/pain_cues.py artifacts/demo [--people 16] [--seed 2027] [--networks WeiNet SongNet ...]
    .venv/bin/python bench/pain_cues.py artifacts/demo --occlusion [--images 40]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

MOUTH = {"AU25": 2.0, "AU26": 1.5}
UPPER = {"AU4": 3.0, "AU6": 3.0, "AU7": 3.0, "AU9": 3.0}
CONDITIONS = {"neutral": {}, "mouth open": MOUTH, "AU10 only": {"AU10": 3.0}, "upper pain": UPPER,
              "pain": {**UPPER, "AU10": 3.0}, "pain, mouth open": {**UPPER, "AU10": 3.0, **MOUTH}}
SWAPS = ("pain, neutral jaw", "neutral, pain jaw")
FRAME = (400, 500)  # synthetic Delaware's photo size


def faces(people: int, seed: int) -> list[dict[str, np.ndarray]]:
    """Per person: condition -> (H, W, 3) uint8 photo, identical but for the movements; and two swaps: the pain
    photo with the neutral photo's jaw and chin, and the neutral photo with the pain photo's."""
    from engine.synth.identity import random_identity
    from engine.synth.projection import Pose
    from engine.synth.render import render_face
    from engine.synth.seeding import derived_rng
    from engine.synth.shading import random_light

    out = []
    for person in range(people):
        rng = derived_rng(seed, "pain_cues", person)
        identity, light = random_identity(rng), random_light(rng)
        pose = Pose(yaw=float(rng.uniform(-6, 6)), pitch=float(rng.uniform(-3, 3)), roll=float(rng.uniform(-4, 4)),
                    scale=float(rng.uniform(0.17, 0.21)), cx=float(rng.uniform(0.46, 0.54)), cy=float(rng.uniform(0.34, 0.4)))
        scene_seed = int(rng.integers(2**31))
        drawn = {name: render_face(identity, aus, pose, FRAME, np.random.default_rng(scene_seed), light=light)
                 for name, aus in CONDITIONS.items()}
        photos = {name: face.image for name, face in drawn.items()}
        jaw = jaw_mask(drawn["pain"].landmarks, FRAME) | jaw_mask(drawn["neutral"].landmarks, FRAME)
        photos[SWAPS[0]] = np.where(jaw[..., None], photos["neutral"], photos["pain"])
        photos[SWAPS[1]] = np.where(jaw[..., None], photos["pain"], photos["neutral"])
        out.append(photos)
    return out


def jaw_mask(landmarks: np.ndarray, frame: tuple[int, int]) -> np.ndarray:
    """(H, W) bool: the jaw and chin as the heatmaps' regions draw it (jaw points 3-13 and the mouth corners)."""
    from skimage.draw import polygon

    outline = np.concatenate([landmarks[3:14], landmarks[[54, 48]]])
    mask = np.zeros((frame[1], frame[0]), dtype=bool)
    rows, cols = polygon(outline[:, 1], outline[:, 0], shape=mask.shape)
    mask[rows, cols] = True
    return mask


def part_masks(landmarks: np.ndarray, size: int) -> dict[str, np.ndarray]:
    """(S, S) bool masks of the pain regions, the jaw and chin (outside them) and the rest of the face."""
    from skimage.draw import polygon

    from engine.explain.normalize import anchor_points
    from engine.explain.pain_regions import pain_polygons
    from engine.explain.regions import region_polygons

    anchors = anchor_points(landmarks, size)

    def paint(polygons: list[np.ndarray]) -> np.ndarray:
        mask = np.zeros((size, size), dtype=bool)
        for part in polygons:
            rows, cols = polygon(part[:, 1], part[:, 0], shape=(size, size))
            mask[rows, cols] = True
        return mask

    base = region_polygons(anchors)
    face = paint([base["face"]])
    pain = paint([p for parts in pain_polygons(anchors).values() for p in parts]) & face
    jaw = paint([base["jaw_chin"]]) & face & ~pain
    return {"pain regions": pain, "jaw and chin": jaw, "rest of the face": face & ~pain & ~jaw}


def occlusion(experiment: str, networks: list[str], images: int, seed: int) -> None:
    """The fall of p(pain) per tenth of the face hidden, per part and fill (see the module doc)."""
    import keras
    from scipy.spatial import QhullError

    import engine.models.registry  # noqa: F401  the project's custom layers, for loading
    from engine.artifacts import ExperimentStore, RunKey
    from engine.explain.faces import FaceSource
    from engine.explain.faithfulness import noisy_linear_imputation
    from engine.explain.lime_masks import baseline_image
    from engine.explain.normalize import landmarks_problem

    store = ExperimentStore.open(experiment)
    config = store.config()
    faces = FaceSource(store.samples(), config.cache_dir(), config.preprocess.margin)
    rng = np.random.default_rng(seed)
    rows = []
    for network in networks:
        scenario = "subject" if store.kept_model_path(RunKey(network, "subject", 0)).exists() else "external"
        for fold in range(config.scenarios.folds if scenario == "subject" else config.scenarios.kept_seeds):
            key = RunKey(network, scenario, fold)
            if not store.kept_model_path(key).exists():
                continue
            model = keras.saving.load_model(store.kept_model_path(key), compile=False)
            predictions = store.predictions(key)
            if scenario == "external":
                predictions = predictions[predictions["dataset"] == "cppain"]
            chosen = predictions[predictions["predicted_label"] == 1].head(images)
            size = int(config.training.input_size.get(network, 32))
            pictures = faces.images(chosen["image_id"].astype(str).tolist(), size)
            for image_id, picture in zip(chosen["image_id"].astype(str), pictures):
                points = faces.landmarks(image_id, size)
                if landmarks_problem(points, size):
                    continue
                try:
                    parts = part_masks(points, size)
                except QhullError:  # a region's points on one line at this size: no polygon to hide
                    continue
                face_area = sum(m.sum() for m in parts.values())
                hidden = [picture]
                for mask in parts.values():
                    mean = baseline_image(picture, "mean")
                    hidden.append(np.where(mask[..., None], mean, picture))
                    hidden.append(noisy_linear_imputation(picture, mask, rng))
                p = np.asarray(model.predict_on_batch(np.stack(hidden)), dtype=np.float64)[:, 1]
                for k, (part, mask) in enumerate(parts.items()):
                    tenths = 10 * mask.sum() / face_area
                    if tenths == 0:
                        continue
                    for j, fill in enumerate(("mean colour", "ROAD")):
                        rows.append({"network": network, "scenario": scenario, "image_id": image_id, "part": part,
                                     "fill": fill, "fall": (p[0] - p[1 + 2 * k + j]) / tenths, "area": tenths / 10})
            keras.backend.clear_session()
    frame = pd.DataFrame(rows)
    table = frame.groupby(["network", "scenario", "fill", "part"])["fall"].mean().unstack("part")
    areas = frame.groupby("part")["area"].mean()
    counts = frame.groupby(["network", "scenario"])["image_id"].nunique()
    print(f"\nOcclusion on faces the models never trained on, predicted as pain: fall of p(pain) per tenth of the face "
          f"hidden (mean over images; mean area shares: " + ", ".join(f"{k} {v:.0%}" for k, v in areas.items()) + ")")
    parts = ["pain regions", "jaw and chin", "rest of the face"]
    header = ["network", "served", "images", "fill", *parts, "pain / jaw", "pain / rest"]
    lines = []
    for (network, scenario, fill), r in table.iterrows():
        lines.append([network, "subject-wise folds" if scenario == "subject" else "external seeds (CP-PAIN)",
                      str(counts[(network, scenario)]), fill, *(f"{r[p]:+.3f}" for p in parts),
                      f"{r['pain regions'] / r['jaw and chin']:.2f}", f"{r['pain regions'] / r['rest of the face']:.2f}"])
    widths = [max(len(h), *(len(r[i]) for r in lines)) for i, h in enumerate(header)]
    print("  ".join(h.ljust(w) for h, w in zip(header, widths)))
    for line in lines:
        print("  ".join(c.ljust(w) for c, w in zip(line, widths)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("experiment", help="an experiment folder with kept models, e.g. artifacts/demo")
    parser.add_argument("--people", type=int, default=16)
    parser.add_argument("--seed", type=int, default=2027)
    parser.add_argument("--networks", nargs="+", default=["WeiNet", "SilNet", "SongNet", "AlexNet"])
    parser.add_argument("--occlusion", action="store_true", help="only the occlusion part")
    parser.add_argument("--images", type=int, default=40, help="pain-predicted faces per model for --occlusion")
    args = parser.parse_args()
    if args.occlusion:
        occlusion(args.experiment, args.networks, args.images, args.seed)
        return
    from engine.errors import PainLensError
    from engine.predict import Predictor
    from engine.preprocess.decode import DecodedImage

    predictor = Predictor(args.experiment, warm_up=False)
    networks = [n for n in args.networks if n in predictor.networks]
    rows = []
    for person, photos in enumerate(faces(args.people, args.seed)):
        for condition, rgb in photos.items():
            try:
                face = predictor.analyse(DecodedImage(rgb=rgb, format="PNG", original_size=(rgb.shape[1], rgb.shape[0])))
            except PainLensError as exc:
                print(f"person {person}, {condition}: no face ({exc})")
                continue
            table, _ = predictor.probabilities(face.crop, only=networks)
            for r in table[table["model"].isin(networks)].itertuples():
                served = "subject-wise fold models" if predictor.networks[r.model].answer else "external seeds"
                rows.append({"person": person, "condition": condition, "network": r.model, "served": served,
                             "p_pain": r.p_pain})
    frame = pd.DataFrame(rows)
    wide = frame.pivot_table(index=["network", "served", "person"], columns="condition", values="p_pain").dropna()
    print(f"{args.experiment}: mean p(pain) over {wide.index.get_level_values('person').nunique()} synthetic people "
          "(the same photo but for the movements); in brackets: the share of people it raised over neutral")
    header = ["network", "served", *CONDITIONS, *SWAPS]
    table = []
    for (network, served), part in wide.groupby(level=["network", "served"], sort=False):
        cells = [f"{part['neutral'].mean():.2f}"]
        for condition in [*list(CONDITIONS)[1:], *SWAPS]:
            cells.append(f"{part[condition].mean():.2f} ({(part[condition] > part['neutral']).mean():.0%})")
        table.append([network, served, *cells])
    widths = [max(len(h), *(len(r[i]) for r in table)) for i, h in enumerate(header)]
    print("  ".join(h.ljust(w) for h, w in zip(header, widths)))
    for row in table:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths)))


if __name__ == "__main__":
    main()
