"""Benchmark of the whole face preprocessing: images per second, cold and warm cache, time per step.

    .venv/bin/python bench/preprocess.py [--n 100] [--workers 2] [--repeats 5] [--images DIR]

Without ``--images`` it renders ``--n`` synthetic people (320x240, cluttered background) with the
project's face renderer. Cold: an empty cache, worker processes started, models loaded, every image
computed. Warm: the same images again (median of ``--repeats`` runs). The background method is the
one the machine allows (U2-Net when rembg's model file is present, else the face-hull fallback).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from engine.config import PreprocessSection  # noqa: E402
from engine.preprocess.batch import folder_table, preprocess_table  # noqa: E402


def render_images(folder: Path, n: int, seed: int) -> None:
    from engine.synth import Pose, random_identity, render_face

    rng = np.random.default_rng(seed)
    for i in range(n):
        pose = Pose(yaw=float(rng.uniform(-12, 12)), roll=float(rng.uniform(-6, 6)), scale=float(rng.uniform(0.14, 0.2)))
        aus = {"AU4": float(rng.uniform(0, 4)), "AU6": float(rng.uniform(0, 3)), "AU12": float(rng.uniform(0, 2))}
        face = render_face(random_identity(rng), aus, pose, (320, 240), rng)
        Image.fromarray(face.image).save(folder / f"img{i:05d}.png")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=100, help="synthetic images to render")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5, help="warm runs (median reported)")
    parser.add_argument("--images", type=Path, help="use the PNG/JPEG files under this folder instead")
    parser.add_argument("--background", default="auto", choices=("auto", "u2net", "fallback", "none"))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench_preprocess_") as tmp:
        folder = args.images or Path(tmp) / "images"
        if args.images is None:
            folder.mkdir()
            clock = time.perf_counter()
            render_images(folder, args.n, args.seed)
            print(f"rendered {args.n} synthetic images in {time.perf_counter() - clock:.1f} s")
        table = folder_table(folder)
        section = PreprocessSection(workers=args.workers, background=args.background, cache_dir=str(Path(tmp) / "cache"))
        _, cold = preprocess_table(table, section, section.cache_dir, progress=False)
        warm_runs = [preprocess_table(table, section, section.cache_dir, progress=False)[1] for _ in range(args.repeats)]
        report(len(table), cold, warm_runs, args.workers)
        assert all(w.detections == 0 for w in warm_runs), "a warm run detected faces: the cache missed"


def report(n: int, cold, warm_runs, workers: int) -> None:
    cores = os.cpu_count()
    warm_seconds = statistics.median(w.wall_seconds for w in warm_runs)
    steps = dict(cold.step_seconds)
    startup = steps.pop("models")
    per_image = sum(steps.values()) / max(cold.computed, 1)
    print(f"machine: {cores} cores; workers: {workers}; images: {n} "
          f"(ok {cold.ok}, no face {cold.no_face}, unreadable {cold.unreadable}); background: {cold.background_methods}")
    print(f"cold cache: {cold.wall_seconds:.2f} s wall = {n / cold.wall_seconds:.2f} images/s "
          f"(includes starting {cold.workers} workers and loading MTCNN/dlib{'/U2-Net' if 'u2net' in cold.background_methods else ''}: "
          f"{startup / max(cold.workers, 1):.1f} s per worker)")
    print(f"cold, compute only: {per_image * 1000:.1f} ms per image per process "
          f"= {workers / per_image:.2f} images/s on {workers} processes")
    print(f"warm cache: {warm_seconds:.3f} s wall (median of {len(warm_runs)}) = {n / warm_seconds:.0f} images/s")
    print(f"warm/cold speed ratio: {cold.wall_seconds / warm_seconds:.0f}x "
          f"(compute only: {per_image * n / workers / warm_seconds:.0f}x)")
    total = sum(cold.step_seconds.values())
    print("share of cold time per step (summed over workers), with and without model loading:")
    for step, seconds in cold.step_seconds.items():
        without = "" if step == "models" else f"{100 * seconds / sum(steps.values()):5.1f} %"
        print(f"  {step:<11}{seconds:8.2f} s {100 * seconds / total:5.1f} %   {without}")
    warm_lookup = statistics.median(w.step_seconds["lookup"] for w in warm_runs)
    print(f"warm run: {1000 * warm_lookup / n:.2f} ms per image reading, hashing and checking entries")


if __name__ == "__main__":
    sys.exit(main())
