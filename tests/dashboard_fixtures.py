"""A tiny real experiment for the dashboard tests (a helper module, not a test file).

``tiny_experiment(base)`` makes synthetic data (the project's generator, size ``tiny``), and runs the
engine on it: scan, PAIN-DB, preprocessing (MTCNN, face-hull background, dlib), two fast networks
(WeiNet and SongNet at 32 px, one epoch) in all three scenarios with 2 folds / 2 seeds, metrics,
clinician ratings, LIME masks and heatmaps. The result is a real artifact folder, as `painlens run`
writes it; it is built once per test session (a marker file says it is complete) and shared by the
AppTest and browser tests. ``half_finished(src, dst)`` copies it as it looks while a grid is still
training; ``upload_*`` make the photos the upload tests send (rendered faces, never real people).
"""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import numpy as np
from PIL import Image

TINY_TOML = """
[experiment]
name = "tiny"
seed = 3
description = "Synthetic tiny experiment written by the dashboard tests."

[data]
root = "data"
synthetic_size = "tiny"
synthetic_seed = 3
frames_per_class = 3

[preprocess]
crop_size = 64
background = "fallback"
workers = 1
cache_dir = ".cache/faces"

[training]
models = ["WeiNet", "SongNet"]
epochs = 1
batch_size = 16
weights = "none"
input_size = { WeiNet = 32, SongNet = 32 }

[scenarios]
names = ["image", "subject", "external"]
folds = 2
seeds = 2

[explain]
images_per_class = 3
num_samples = 40
batch_size = 20
"""
MARKER = "dashboard-fixture-complete.json"


def tiny_experiment(base: Path) -> Path:
    """The experiment folder ``base/artifacts/tiny`` (built on first call, reused after)."""
    base = Path(base)
    experiment = base / "artifacts" / "tiny"
    if (base / MARKER).exists():
        return experiment
    base.mkdir(parents=True, exist_ok=True)
    config_path = base / "tiny.toml"
    config_path.write_text(TINY_TOML, encoding="utf-8")
    _run_engine(config_path, base / "artifacts")
    (base / MARKER).write_text(json.dumps({"experiment": str(experiment)}), encoding="utf-8")
    return experiment


def _run_engine(config_path: Path, out: Path) -> None:
    """What `painlens run` + the explain step do, called through the engine's own functions."""
    from engine.artifacts import ExperimentStore
    from engine.config import load_config
    from engine.datasets.paindb import assemble_paindb
    from engine.datasets.scan import scan_dataset
    from engine.experiment import PreparedData, ensure_synthetic_data, now, write_manifest, write_samples
    from engine.explain.explain_run import explain_experiment
    from engine.preprocess.batch import preprocess_table
    from engine.ratings import rate_experiment
    from engine.training.runner import collect_metrics, execute_run, plan_runs

    import pandas as pd

    config = load_config(config_path)
    store = ExperimentStore(out, config.name)
    started = now()
    ensure_synthetic_data(config, progress=False)
    scans = {d: scan_dataset(config.dataset_path(d), d) for d in ("unbc", "mintpain", "delaware", "cppain")}
    paindb = assemble_paindb({d: scans[d] for d in ("unbc", "mintpain", "delaware")}, config.data.frames_per_class,
                             config.experiment.seed)
    both = pd.concat([paindb.assign(role="paindb"), scans["cppain"].table.assign(role="cppain")], ignore_index=True)
    processed, stats = preprocess_table(both, config.preprocess, config.cache_dir(), progress=False)
    ok = processed["status"] == "ok"
    usable = processed[ok]
    data = PreparedData(paindb=usable[usable["role"] == "paindb"].reset_index(drop=True),
                        cppain=usable[usable["role"] == "cppain"].reset_index(drop=True),
                        excluded=processed[~ok].reset_index(drop=True),
                        scans={name: scan.summary() for name, scan in scans.items()},
                        preprocess_stats=stats.to_dict())
    write_samples(store, data)
    models, scenarios = list(config.training.models), list(config.scenarios.names)
    plan = {"models": models, "scenarios": scenarios}
    write_manifest(store, config, data, started, plan=plan, status="training")
    arrays = _Arrays({"paindb": data.paindb, "cppain": data.cppain}, config.cache_dir())
    runs = plan_runs(config, data.paindb, data.cppain, models, scenarios)
    for run in runs:
        execute_run(config, store, run, data.paindb, data.cppain, arrays)
    collect_metrics(store)
    rate_experiment(config, store)
    explain_experiment(config, store, progress=False)
    write_manifest(store, config, data, started, plan=plan, status="finished",
                   grid={"planned": len(runs), "ran": len(runs), "skipped": 0})


class _Arrays:
    """Face crops at one input size (the runner's ArrayCache interface: ``get(table, size)``)."""

    def __init__(self, tables: dict, cache_dir: Path):
        self.tables, self.cache_dir, self._cache = tables, cache_dir, {}

    def get(self, table: str, size: int) -> np.ndarray:
        from engine.preprocess.batch import load_faces

        if (table, size) not in self._cache:
            self._cache[(table, size)] = load_faces(self.tables[table], size, self.cache_dir)
        return self._cache[(table, size)]


def half_finished(source: Path, target: Path, finished_runs: int = 3) -> Path:
    """A copy of ``source`` as it looks mid-grid: manifest status "training", only the first
    ``finished_runs`` runs done, no metrics, ratings or explanations yet."""
    target = Path(target)
    target.mkdir(parents=True, exist_ok=True)
    manifest = json.loads((source / "manifest.json").read_text(encoding="utf-8"))
    manifest["status"] = "training"
    manifest.pop("grid", None)
    (target / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    shutil.copy2(source / "samples.parquet", target / "samples.parquet")
    for done in sorted((source / "runs").glob("*/*/*/done.json"))[:finished_runs]:
        run = done.parent
        shutil.copytree(run, target / run.relative_to(source))
    # A run in progress: predictions written, done.json not yet.
    unfinished = sorted((source / "runs").glob("*/*/*/done.json"))[finished_runs].parent
    (target / unfinished.relative_to(source)).mkdir(parents=True, exist_ok=True)
    shutil.copy2(unfinished / "predictions.parquet", target / unfinished.relative_to(source) / "predictions.parquet")
    return target


# --- upload photos ----------------------------------------------------------------------------------

def face_image(seed: int = 0, size: tuple[int, int] = (320, 320), scale: float = 0.19, pain: float = 2.0) -> np.ndarray:
    """One synthetic person on a cluttered background, (H, W, 3) uint8 RGB (the generator's renderer)."""
    from engine.datasets.synth_faces import Pose, random_identity, render_face

    rng = np.random.default_rng(seed)
    return render_face(random_identity(rng), {"AU4": pain, "AU6": pain, "AU43": pain / 2}, Pose(scale=scale), size,
                       rng).image


def encode(image: np.ndarray | Image.Image, fmt: str, **save) -> bytes:
    buffer = io.BytesIO()
    picture = image if isinstance(image, Image.Image) else Image.fromarray(image)
    picture.save(buffer, format=fmt, **save)
    return buffer.getvalue()


def two_faces(seed: int = 0) -> np.ndarray:
    """Two rendered people side by side, the left one's face larger."""
    left = face_image(seed, (320, 320), scale=0.24)
    right = np.asarray(Image.fromarray(face_image(seed + 1, (320, 320), scale=0.19)).resize((240, 240)))
    canvas = np.full((320, 560, 3), 235, dtype=np.uint8)
    canvas[:, :320] = left
    canvas[40:280, 320:560] = right
    return canvas
