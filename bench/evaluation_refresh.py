"""Time the evaluation refresh that runs after every finished run (bootstrap over subjects, calibration,
per-subject table) on a store of the demo's shape, and one bootstrap group of the paper's size.

The store holds simulated predictions (seeded; no training): 10 networks x 3 scenarios x 2 folds/seeds,
PAIN-DB as the demo samples it (UNBC 6 subjects x 40 frames, MIntPAIN 5 x 40, Delaware 40 subjects /
134 photos) and CP-PAIN's 24 images of 10 subjects. Prints medians:

- one (network, scenario) group's intervals at 2,000 resamples (``group_intervals``), demo and paper size
  (PAIN-DB image-wise: 2,583 images of 285 subjects);
- ``refresh_results`` after one run is redone (what the runner pays per run), and with nothing changed;
- ``refresh_results`` on a store whose tables are all missing (every group computed).

Each figure is given as wall time and as the process's CPU time (on a shared, busy machine the wall
time is mostly waiting for a core).

Run: ``.venv/bin/python bench/evaluation_refresh.py [--repeats 5]``.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from engine.artifacts import ExperimentStore, RunKey
from engine.evaluation.bootstrap import BootstrapSettings, group_intervals
from engine.evaluation.results import refresh_results

NETWORKS = ("AlexNet", "SongNet", "WeiNet", "SilNet", "VGG16", "VGG19", "ResNet50", "ResNet101V2", "InceptionV3",
            "Xception")


def images(subjects: dict[str, tuple[int, int]]) -> pd.DataFrame:
    """dataset -> (subjects, images): a balanced sample table with alternating labels."""
    rows = []
    for dataset, (count, total) in subjects.items():
        for k in range(total):
            subject = f"{dataset[:3]}{k % count:03d}"
            rows.append({"image_id": f"{dataset}/{subject}/s/{k:05d}", "dataset": dataset, "subject": subject,
                         "label": k % 2, "pspi": float(k % 5) if dataset == "unbc" else np.nan,
                         "intensity": float(k % 5)})
    return pd.DataFrame(rows)


def predictions(model: str, scenario: str, fold: int, tested: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    y = tested["label"].to_numpy()
    p = 1 / (1 + np.exp(-(2 * y - 1 + rng.normal(0, 1.5, len(y)))))
    return pd.DataFrame({"model": model, "scenario": scenario, "fold": fold, "image_id": tested["image_id"].to_numpy(),
                         "subject": tested["subject"].to_numpy(), "dataset": tested["dataset"].to_numpy(),
                         "true_label": y, "p_pain": p, "predicted_label": (p >= 0.5).astype(int)})


def demo_store(root: Path, rng: np.random.Generator) -> ExperimentStore:
    store = ExperimentStore(root, "bench")
    paindb = images({"unbc": (6, 240), "mintpain": (5, 200), "delaware": (40, 134)})
    cppain = images({"cppain": (10, 24)})
    store.write_samples(pd.concat([paindb, cppain], ignore_index=True))
    store.write_manifest({"experiment": "bench", "synthetic": True})
    subjects = sorted(paindb["subject"].unique())
    for model in NETWORKS:
        for scenario in ("image", "subject", "external"):
            for fold in range(2):
                tested = {"image": paindb.iloc[fold::2], "external": cppain,
                          "subject": paindb[paindb["subject"].isin(subjects[fold::2])]}[scenario]
                key = RunKey(model, scenario, fold)
                store.write_predictions(key, predictions(model, scenario, fold, tested, rng))
                store.finish_run(key, {})
    return store


CPU: list[float] = []  # CPU seconds of the process behind the last median_seconds (shared machines: wall >> CPU)


def median_seconds(action, repeats: int) -> float:
    times, cpu = [], []
    for _ in range(repeats):
        started, started_cpu = time.perf_counter(), time.process_time()
        action()
        times.append(time.perf_counter() - started)
        cpu.append(time.process_time() - started_cpu)
    CPU[:] = [statistics.median(cpu)]
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    settings = BootstrapSettings(resamples=2000)
    with tempfile.TemporaryDirectory() as folder:
        store = demo_store(Path(folder), rng)
        every = store.finished_predictions()
        for scenario in ("image", "subject", "external"):
            group = every[(every["model"] == "WeiNet") & (every["scenario"] == scenario)]
            seconds = median_seconds(lambda: group_intervals(group, settings), args.repeats)
            print(f"one group, demo {scenario:8s} ({group['image_id'].nunique()} images, {group['subject'].nunique()} "
                  f"subjects): {seconds * 1000:7.1f} ms wall, {CPU[0] * 1000:7.1f} ms CPU")
        paper = images({"unbc": (25, 980), "mintpain": (20, 800), "delaware": (240, 803)})
        group = pd.concat([predictions("WeiNet", "image", f, paper.iloc[f::5], rng) for f in range(5)])
        seconds = median_seconds(lambda: group_intervals(group, settings), args.repeats)
        print(f"one group, paper image    ({len(group)} images, {group['subject'].nunique()} subjects): "
              f"{seconds * 1000:7.1f} ms wall, {CPU[0] * 1000:7.1f} ms CPU")

        refresh_results(store)
        key = RunKey("WeiNet", "subject", 1)
        redo = store.predictions(key)

        def redo_and_refresh():
            redo["p_pain"] = rng.random(len(redo))
            store.start_run(key)
            store.write_predictions(key, redo)
            store.finish_run(key, {})
            refresh_results(store)

        wall = median_seconds(redo_and_refresh, args.repeats)
        print(f"refresh after one redone run (30 groups): {wall:6.2f} s wall, {CPU[0]:6.2f} s CPU")
        wall = median_seconds(lambda: refresh_results(store), args.repeats)
        print(f"refresh with nothing changed:             {wall:6.2f} s wall, {CPU[0]:6.2f} s CPU")

        scratch, scratch_cpu = [], []
        for repeat in range(args.repeats):  # a new store each time: no table written yet
            fresh = demo_store(Path(folder) / f"scratch{repeat}", np.random.default_rng(repeat))
            scratch.append(median_seconds(lambda: refresh_results(fresh), 1))
            scratch_cpu.append(CPU[0])
        print(f"refresh from scratch (30 groups):         {statistics.median(scratch):6.2f} s wall, "
              f"{statistics.median(scratch_cpu):6.2f} s CPU")


if __name__ == "__main__":
    main()
