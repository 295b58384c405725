"""Time ``painlens ratings`` on a paper-sized ratings file (127 videos, 2 raters, 3 scales).

The file is synthetic (seeded): a per-video pain level, rater noise that grows from stretching to
other to injection, as the paper found. Prints the in-process time of each step and the wall time
of the command, imports included. Run: ``.venv/bin/python bench/bench_ratings.py [--videos 127]``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from engine.ratings import agreement, load_ratings, scale_scores, table4
from engine.ratings.load import HEADER
from engine.scales import FACS_ITEMS, NCAPC_ITEMS

NOISE = {"injection": 1.0, "stretching": 0.3, "other": 0.6}  # rater noise, in points per item


def write_paper_sized(path: Path, n_videos: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    sources = ["injection"] * 77 + ["stretching"] * 32 + ["other"] * 18  # the paper's 127 videos
    rows = []
    for v in range(n_videos):
        source, pain = sources[v % len(sources)], rng.random() < 0.85
        aus = np.clip(np.round(rng.gamma(1.5, 1.2, len(FACS_ITEMS)) * pain), 0, 5)
        items = np.clip(np.round(rng.gamma(1.0, 0.8, len(NCAPC_ITEMS)) * pain), 0, 3)
        for rater in ("A", "B"):
            def noisy(x, top, scale=1.0):
                return int(np.clip(x + np.round(rng.normal(0, NOISE[source] * scale)), 0, top) * pain)
            rows.append((f"V{v:03d}", source, rater, "wong_baker", "", noisy(aus.sum() / 2, 10, 1.5)))
            rows += [(f"V{v:03d}", source, rater, "ncapc", i, noisy(x, 3, 0.6)) for i, x in zip(NCAPC_ITEMS, items)]
            rows += [(f"V{v:03d}", source, rater, "facs", i, noisy(x, 5, 0.7)) for i, x in zip(FACS_ITEMS, aus)]
    pd.DataFrame(rows, columns=HEADER.split(",")).to_csv(path, index=False)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--videos", type=int, default=127)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--file", type=Path, help="time this ratings file instead of a generated one")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        path = args.file or Path(folder) / "ratings.csv"
        if args.file is None:
            write_paper_sized(path, args.videos, args.seed)
        steps: dict[str, list[float]] = {"load": [], "scores": [], "agreement": [], "table4": []}
        for _ in range(args.repeats):
            t0 = time.perf_counter(); load = load_ratings(path)
            t1 = time.perf_counter(); scores = scale_scores(load.ratings)
            t2 = time.perf_counter(); result = agreement(scores)
            t3 = time.perf_counter(); table4(result)
            t4 = time.perf_counter()
            for name, seconds in zip(steps, (t1 - t0, t2 - t1, t3 - t2, t4 - t3)):
                steps[name].append(seconds)
        print(f"{load.ratings['video'].nunique()} videos, {load.rows_read} rows, {len(load.raters)} raters, "
              f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
        for name, times in steps.items():
            print(f"  {name:<10} median {1000 * np.median(times):7.1f} ms over {args.repeats}")
        walls = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            subprocess.run([sys.executable, "-m", "painlens.cli", "ratings", str(path)], check=True,
                           stdout=subprocess.DEVNULL)
            walls.append(time.perf_counter() - start)
        print(f"  painlens ratings (new process, imports included) median {np.median(walls):.2f} s")
        print(table4(result).round(3).to_string())


if __name__ == "__main__":
    main()
