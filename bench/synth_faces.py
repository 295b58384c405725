"""How well real detectors see the synthetic faces, and how fast they are drawn.

    python bench/synth_faces.py OUT [--size demo] [--seed 0] [--sample 0] [--no-generate]

Generates (unless --no-generate) the synthetic datasets into OUT, then reports per dataset:
- MTCNN detection rate: an image counts when MTCNN finds a face with confidence >= 0.9 whose box
  overlaps the drawn face (IoU >= 0.3 with the box from the dataset's own landmarks);
- the mean distance between dlib's 68 points (predicted in MTCNN's box) and the drawn landmarks,
  divided by the distance between the eye centres (UNBC only: the other layouts carry no landmarks,
  so the generator is re-run for them in memory);
- seconds to generate, images per second of the whole generator, and of the renderer alone.
--sample N checks N images per dataset (0: all).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def images_of(root: Path, dataset: str) -> list[Path]:
    if dataset == "unbc":
        files = sorted((root / "unbc" / "Images").rglob("*.png"))
    elif dataset == "mintpain":
        files = sorted(p for p in (root / "mintpain").rglob("*.jpg") if p.parent.name == "RGB")
    elif dataset == "delaware":
        files = sorted((root / "delaware").rglob("*.jpg"))
    else:
        files = sorted((root / "cppain" / "images").glob("*.jpg"))
    return files


def unbc_landmarks(image: Path) -> np.ndarray | None:
    """The 66 AAM points of a UNBC frame, (x, y)."""
    parts = image.parts
    i = parts.index("Images")
    aam = Path(*parts[:i], "AAM_landmarks", *parts[i + 1 : -1], image.stem + "_aam.txt")
    if not aam.is_file():
        return None
    return np.loadtxt(aam).reshape(-1, 2)


def iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def renderer_speed(n: int = 20) -> dict[str, float]:
    """Faces per second of render_face alone (one process, background reused as in a video)."""
    from engine.synth import Pose, random_identity, render_background, render_face

    out = {}
    for name, canvas, scale in (("unbc_320x240", (320, 240), 0.21), ("video_640x480", (640, 480), 0.14), ("photo_400x500", (400, 500), 0.19)):
        rng = np.random.default_rng(0)
        identity = random_identity(rng)
        background = render_background(canvas, rng)
        start = time.perf_counter()
        for i in range(n):
            render_face(identity, {"AU4": i % 5, "AU7": 2.0}, Pose(scale=scale), canvas, rng, background)
        out[name] = round(n / (time.perf_counter() - start), 1)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("out", type=Path)
    parser.add_argument("--size", default="demo")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sample", type=int, default=0)
    parser.add_argument("--no-generate", action="store_true")
    args = parser.parse_args()

    from PIL import Image

    from engine.synth import generate

    report: dict = {"size": args.size, "seed": args.seed, "renderer_images_per_second": renderer_speed()}
    print("renderer images/s (one process):", report["renderer_images_per_second"], flush=True)
    if not args.no_generate:
        start = time.perf_counter()
        record = generate(args.out, args.seed, args.size)
        seconds = time.perf_counter() - start
        total = sum(d["images"] for d in record["datasets"].values())
        report["generate_seconds"] = round(seconds, 1)
        report["images"] = total
        report["images_per_second"] = round(total / seconds, 1)
        print(f"generated {total} images in {seconds:.1f} s ({total / seconds:.1f} images/s)", flush=True)

    import dlib
    import face_recognition_models
    from mtcnn import MTCNN

    detector = MTCNN()
    predictor = dlib.shape_predictor(face_recognition_models.pose_predictor_model_location())
    rng = np.random.default_rng(0)
    for dataset in ("unbc", "mintpain", "delaware", "cppain"):
        files = images_of(args.out, dataset)
        if args.sample and len(files) > args.sample:
            files = [files[i] for i in sorted(rng.choice(len(files), args.sample, replace=False))]
        found, confidences, errors, skipped = 0, [], [], 0
        for path in files:
            img = np.asarray(Image.open(path).convert("RGB"))
            if img.max() == 0:  # UNBC black frames are not faces
                skipped += 1
                continue
            faces = [f for f in detector.detect_faces(img) if f["confidence"] >= 0.9]
            truth = unbc_landmarks(path) if dataset == "unbc" else None
            if truth is not None:
                box = (truth[:17, 0].min(), truth[17:27, 1].min(), truth[:17, 0].max(), truth[:17, 1].max())
                faces = [f for f in faces if iou(box, (f["box"][0], f["box"][1], f["box"][0] + f["box"][2], f["box"][1] + f["box"][3])) >= 0.3]
            if not faces:
                continue
            best = max(faces, key=lambda f: f["confidence"])
            found += 1
            confidences.append(best["confidence"])
            if truth is not None:
                x, y, w, h = best["box"]
                shape = predictor(img, dlib.rectangle(int(x), int(y), int(x + w), int(y + h)))
                pred = np.array([(p.x, p.y) for p in shape.parts()], dtype=float)
                pred66 = np.delete(pred, [60, 64], axis=0)
                eyes = np.linalg.norm(truth[36:42].mean(0) - truth[42:48].mean(0))
                errors.append(float(np.linalg.norm(pred66 - truth, axis=1).mean() / eyes))
        checked = len(files) - skipped
        entry = {
            "checked": checked,
            "mtcnn_found": found,
            "mtcnn_rate": round(found / max(1, checked), 4),
            "median_confidence": round(float(np.median(confidences)), 4) if confidences else None,
        }
        if errors:
            entry["dlib_error_over_eye_distance_mean"] = round(float(np.mean(errors)), 3)
            entry["dlib_error_over_eye_distance_p90"] = round(float(np.percentile(errors, 90)), 3)
        report[dataset] = entry
        print(dataset, json.dumps(entry), flush=True)
    checked = sum(report[d]["checked"] for d in ("unbc", "mintpain", "delaware", "cppain"))
    found = sum(report[d]["mtcnn_found"] for d in ("unbc", "mintpain", "delaware", "cppain"))
    report["mtcnn_rate_all"] = round(found / max(1, checked), 4)
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
