"""Prepare an experiment's data: synthetic data if asked, scan, PAIN-DB, preprocessing, the sample table.

This is the first half of ``painlens run``; the grid runner (``engine.training.runner``) is the second.
"""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import logging
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from engine.artifacts import ExperimentStore
from engine.config import DATASET_NAMES, ExperimentConfig
from engine.errors import PainLensError
from engine.files import read_json

log = logging.getLogger(__name__)

# Columns of the in-memory sample table that never go to the artifact store: paths can hold names.
PRIVATE_COLUMNS = ("path",)


@dataclass
class PreparedData:
    paindb: pd.DataFrame  # usable PAIN-DB images (face found), preprocess columns included
    cppain: pd.DataFrame  # usable CP-PAIN images
    excluded: pd.DataFrame  # images left out by preprocessing, with their status
    scans: dict = field(default_factory=dict)  # dataset -> ScanResult summary dict
    preprocess_stats: dict = field(default_factory=dict)


def ensure_synthetic_data(config: ExperimentConfig, progress: bool = True) -> None:
    """Write the synthetic datasets of the configured size, unless the same ones are already there
    (same seed, size and generator version; data of an older generator is rewritten)."""
    size = config.data.synthetic_size
    if not size:
        return
    from engine.synth import GENERATOR_VERSION, generate

    root = config.base_dir / config.data.root
    marker = root / "SYNTHETIC.json"
    if marker.exists():
        try:
            written = read_json(marker)
            if (written.get("seed"), written.get("size"), written.get("version")) == (
                    config.data.synthetic_seed, size, GENERATOR_VERSION):
                return  # same seed, size and generator: the same files
        except (ValueError, OSError):
            pass  # a half-written marker: regenerate
    generate(root, seed=config.data.synthetic_seed, size=size, progress=progress)


def prepare_data(config: ExperimentConfig, progress: bool = True) -> PreparedData:
    from engine.datasets.paindb import assemble_paindb, redraw_among_faces
    from engine.datasets.scan import scan_dataset
    from engine.preprocess import FaceWorkers, preprocess_table

    ensure_synthetic_data(config, progress=progress)
    scans = {}
    for dataset in DATASET_NAMES:
        path = config.dataset_path(dataset)
        if not path.exists():
            raise PainLensError(
                f"The {dataset} dataset folder {path} does not exist; set [data] root or paths in the config "
                "(or synthetic_size to generate synthetic data)."
            )
        scans[dataset] = scan_dataset(path, dataset, pspi_threshold=config.data.pspi_threshold)  # UNBC's labels
    paindb = assemble_paindb(scans, config.data.frames_per_class, config.experiment.seed)  # CP-PAIN stays out
    cppain = scans["cppain"].table
    both = pd.concat([paindb.assign(role="paindb"), cppain.assign(role="cppain")], ignore_index=True)
    more_stats = []
    with FaceWorkers() as workers:  # the redraw's rounds reuse the first call's processes
        processed, stats = preprocess_table(both, config.preprocess, config.cache_dir(), progress=progress,
                                            workers=workers)

        def find_faces(rows: pd.DataFrame) -> pd.DataFrame:
            out, run_stats = preprocess_table(rows, config.preprocess, config.cache_dir(), progress=progress,
                                              workers=workers)
            more_stats.append(run_stats)
            return out.assign(role="paindb")

        # Frames drawn without a face are replaced by frames with one (the same subject and class).
        paindb_rows = redraw_among_faces(scans, processed[processed["role"] == "paindb"],
                                         config.data.frames_per_class, config.experiment.seed, find_faces)
    processed = pd.concat([paindb_rows, processed[processed["role"] == "cppain"]], ignore_index=True)
    ok = processed["status"] == "ok"
    usable = processed[ok]
    return PreparedData(
        paindb=usable[usable["role"] == "paindb"].reset_index(drop=True),
        cppain=usable[usable["role"] == "cppain"].reset_index(drop=True),
        excluded=processed[~ok].reset_index(drop=True),
        scans={name: scan.summary() for name, scan in scans.items()},
        preprocess_stats=_summed_stats(stats.to_dict(), [s.to_dict() for s in more_stats], processed),
    )


def _summed_stats(first: dict, more: list[dict], processed: pd.DataFrame) -> dict:
    """One record of the face pipeline's runs: work summed over the redraw's runs, outcome counts of
    the final table."""
    total = dict(first)
    for stats in more:
        for key in ("cache_hits", "computed", "detections", "wall_seconds"):
            total[key] = total.get(key, 0) + stats.get(key, 0)
        total["workers"] = max(total.get("workers", 0), stats.get("workers", 0))
        steps = dict(total.get("step_seconds", {}))
        for step, seconds in stats.get("step_seconds", {}).items():
            steps[step] = steps.get(step, 0.0) + seconds
        total["step_seconds"] = steps
    counts = processed["status"].value_counts()
    total.update(images=int(len(processed)), ok=int(counts.get("ok", 0)), no_face=int(counts.get("no_face", 0)),
                 unreadable=int(counts.get("unreadable", 0)))
    methods = processed.loc[processed["status"] == "ok", "background_method"].value_counts()
    total["background_methods"] = {str(k): int(v) for k, v in sorted(methods.items())}
    return total


def write_samples(store: ExperimentStore, data: PreparedData) -> None:
    frames = [data.paindb, data.cppain, data.excluded]
    samples = pd.concat([f for f in frames if len(f)], ignore_index=True)
    samples = samples.drop(columns=[c for c in PRIVATE_COLUMNS if c in samples.columns])
    store.write_samples(samples)


def write_manifest(store: ExperimentStore, config: ExperimentConfig, data: PreparedData, started: str, **extra) -> None:
    manifest = {
        "experiment": config.name,
        "synthetic": bool(config.data.synthetic_size),
        "config": config.to_dict(),
        "started": started,
        "updated": now(),
        "git_revision": git_revision(config.base_dir),
        "packages": package_versions(),
        "datasets": data.scans,
        "preprocess": data.preprocess_stats,
        "counts": {
            "paindb": int(len(data.paindb)),
            "cppain": int(len(data.cppain)),
            "excluded": int(len(data.excluded)),
        },
        **extra,
    }
    store.write_manifest(manifest)


def now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def git_revision(folder: Path) -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=folder, capture_output=True, text=True, timeout=5)
        return out.stdout.strip() if out.returncode == 0 else ""
    except (OSError, subprocess.SubprocessError):
        return ""


def package_versions() -> dict[str, str]:
    names = ["tensorflow", "keras", "jax", "mtcnn", "rembg", "onnxruntime", "lime", "dlib-bin", "pingouin",
             "scikit-learn", "scikit-image", "numpy", "pandas", "streamlit"]
    versions = {}
    for name in names:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions
