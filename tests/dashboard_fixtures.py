"""A tiny real experiment for the dashboard tests (a helper module, not a test file).

``tiny_experiment(base)`` runs the real pipeline small, as `painlens run` and `painlens explain` do:
synthetic data (the project's generator, size ``tiny``), scan, PAIN-DB, preprocessing (MTCNN,
face-hull background, dlib), two fast networks (WeiNet and SongNet at 32 px, one epoch) in all three
scenarios with 2 folds / 2 seeds, metrics, clinician ratings, LIME masks and heatmaps. The result is a
real artifact folder; it is built once per test session (a marker file says it is complete) and shared by the
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
    """`painlens run CONFIG --out OUT` then `painlens explain CONFIG --out OUT`, through the functions
    those commands call (in this process, so TensorFlow is imported once)."""
    from engine.artifacts import ExperimentStore
    from engine.config import load_config
    from engine.explain.explain_run import explain_experiment
    from engine.pipeline import run_experiment

    run_experiment(config_path, out=out, progress=False)
    config = load_config(config_path)
    explain_experiment(config, ExperimentStore(out, config.name), progress=False)


def half_finished(source: Path, target: Path, finished_runs: int = 3) -> Path:
    """A copy of ``source`` as it looks mid-grid: manifest status "training", only the first
    ``finished_runs`` runs done, no metrics, ratings or explanations yet (copied through the store)."""
    from engine.artifacts import ExperimentStore

    before, after = ExperimentStore.open(source), ExperimentStore.open(target)
    manifest = before.manifest()
    manifest["status"] = "training"
    manifest.pop("grid", None)
    after.write_manifest(manifest)
    after.write_samples(before.samples())
    runs = before.finished_runs()
    for key in runs[:finished_runs]:
        after.write_predictions(key, before.predictions(key))
        after.write_split(key, before.split(key))
        after.finish_run(key, before.run_record(key))
    # A run in progress: predictions written, not finished yet.
    after.write_predictions(runs[finished_runs], before.predictions(runs[finished_runs]))
    return target


# --- upload photos ----------------------------------------------------------------------------------

def face_image(seed: int = 0, size: tuple[int, int] = (320, 320), scale: float = 0.19, pain: float = 2.0) -> np.ndarray:
    """One synthetic person on a cluttered background, (H, W, 3) uint8 RGB (the generator's renderer)."""
    from engine.synth import Pose, random_identity, render_face

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
