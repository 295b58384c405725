"""LIME's own cost next to the model's: prints, per network, the overhead ratio and seconds per image.

    ratio = (LIME wall time - time inside the model) / (the model alone on the same perturbed images)

The model-alone baseline runs the very perturbed batches LIME builds (same samples, same batch size,
same padding), prepared beforehand, through the same compiled ``predict_on_batch``. LIME's own work is
the SLIC segmentation, the perturbation, the distances and the Ridge fit. Target: ratio <= 0.25.

    .venv/bin/python bench/lime_overhead.py                       # demo sizes + ResNet50 at 224
    .venv/bin/python bench/lime_overhead.py --models SongNet:48 VGG16:224 --samples 1000 --images 3

Untrained networks (weights=none): the cost of a forward pass does not depend on the weights.
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

DEFAULT = ["SongNet:48", "WeiNet:48", "AlexNet:64", "VGG16:32", "InceptionV3:75", "ResNet50:224"]


def faces(count: int, size: int, seed: int = 0) -> list[np.ndarray]:
    """Synthetic face crops (no real people), (size, size, 3) uint8."""
    from PIL import Image

    from engine.synth import Pose, random_identity, render_face

    rng = np.random.default_rng(seed)
    out = []
    for _ in range(count):
        face = render_face(random_identity(rng), {}, Pose(scale=0.3), (160, 160), rng)
        x0, y0, x1, y1 = face.box
        side = 1.4 * max(x1 - x0, y1 - y0)
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        box = tuple(int(round(v)) for v in (cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2))
        out.append(np.asarray(Image.fromarray(face.image).crop(box).resize((size, size), Image.Resampling.LANCZOS)))
    return out


def measure(name: str, size: int, samples: int, batch: int, images: list[np.ndarray]) -> dict:
    import keras

    from engine.explain.lime_masks import BatchedModel, LimeParams, explain_image, image_seed, perturb, sample_matrix, segment
    from engine.models.registry import build_model

    keras.utils.set_random_seed(0)
    model = build_model(name, size, weights="none", augment=False)
    params = LimeParams(num_samples=samples, batch_size=batch)
    classifier = BatchedModel(model, batch)
    explain_image(images[0], classifier, 1, params, image_seed(0, "warm-up"))  # compile, warm caches
    ratios, per_image, model_only = [], [], []
    for index, image in enumerate(images):
        seed = image_seed(0, f"bench/{index}")
        segments = segment(image, params.n_segments, params.compactness)
        matrix = sample_matrix(int(segments.max()) + 1, samples, seed)
        batches = [perturb(image, segments, matrix[s:s + batch]) for s in range(0, samples, batch)]
        baseline = BatchedModel(model, batch)
        for chunk in batches:
            baseline(chunk)
        classifier.seconds = 0.0
        clock = time.perf_counter()
        explain_image(image, classifier, 1, params, seed)
        wall = time.perf_counter() - clock
        ratios.append((wall - classifier.seconds) / baseline.seconds)
        per_image.append(wall)
        model_only.append(baseline.seconds)
    keras.backend.clear_session()
    return {"network": f"{name}@{size}", "params": model.count_params(), "model_s": statistics.median(model_only),
            "lime_s": statistics.median(per_image), "ratio": statistics.median(ratios)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=DEFAULT, help="NAME:SIZE entries")
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--images", type=int, default=3, help="images per network (median reported)")
    args = parser.parse_args()
    import keras

    print(f"backend {keras.backend.backend()}, {os.cpu_count()} CPUs, {args.samples} samples, batch {args.batch}, "
          f"median of {args.images} images")
    print(f"{'network':<18}{'params':>12}{'model s':>10}{'LIME s/img':>12}{'overhead':>10}")
    for entry in args.models:
        name, size = entry.split(":")
        row = measure(name, int(size), args.samples, args.batch, faces(args.images, int(size)))
        print(f"{row['network']:<18}{row['params']:>12,}{row['model_s']:>10.3f}{row['lime_s']:>12.3f}{row['ratio']:>9.1%}",
              flush=True)


if __name__ == "__main__":
    main()
