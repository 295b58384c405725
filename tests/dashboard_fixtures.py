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

[execution]
local_workers = 2  # the two networks' children train at once: the other test process often waits for this build

[explain]
images_per_class = 3
num_samples = 40
batch_size = 20
score_one_class_runs = true  # one epoch on tiny data: mostly one class, and the pages need scores to show
# Kept small for the test suite's time: ROAD's imputation makes each curve step dearer than LIME's own fill.
curve_steps = 4
sanity_images = 2
stability_images = 2
"""
MARKER = "dashboard-fixture-complete.json"


def tiny_experiment(base: Path) -> Path:
    """The experiment folder ``base/artifacts/tiny`` (built on first call, reused after; a file lock lets
    the test processes of one session share it: one builds, the others wait)."""
    from filelock import FileLock

    base = Path(base)
    experiment = base / "artifacts" / "tiny"
    base.mkdir(parents=True, exist_ok=True)
    with FileLock(str(base / "build.lock")):
        if not (base / MARKER).exists():
            config_path = base / "tiny.toml"
            config_path.write_text(TINY_TOML, encoding="utf-8")
            _run_engine(config_path, base / "artifacts")
            (base / MARKER).write_text(json.dumps({"experiment": str(experiment)}), encoding="utf-8")
    return experiment


def _run_engine(config_path: Path, out: Path) -> None:
    """`painlens run CONFIG --out OUT` through the function that command calls (in this process). With
    [explain] enabled (the default) it also does what `painlens explain` does: a second pass would
    only aggregate the heatmaps again."""
    from engine.pipeline import run_experiment

    run_experiment(config_path, out=out, progress=False)


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


# --- an evaluated experiment from made-up predictions (no training: seconds) -------------------------

EVALUATED_MODELS = ("WeiNet", "SongNet", "VGG16", "SilNet")
PAINDB_SUBJECTS = {"unbc": ("u01", "u02", "u03", "u04"), "mintpain": ("Sub01", "Sub02", "Sub03"),
                   "delaware": ("D01", "D02", "D03")}
CPPAIN_SUBJECTS = ("CP01", "CP02", "CP03", "CP04", "CP05")  # five: fewer are too few to judge a network


def evaluated_experiment(base: Path, learned: bool = True, kept: tuple[str, ...] = (), name: str = "cards") -> Path:
    """An experiment folder written through the store's API with made-up predictions, and its summary,
    calibration and per-subject tables computed by the engine (``refresh_results``).

    ``learned``: WeiNet's p(pain) follows the truth (it learns in every scenario); otherwise it, like
    every other network, gives every image one class, so no network learned. SongNet always gives one
    class; VGG16, a pretrained base trained from random weights here (weights = "none"), guesses at
    random; SilNet, kept to the subject-wise and external scenarios ([scenarios] per_model), gives one
    class. ``kept``: networks whose external runs keep a real (untrained) Keras model, for uploads."""
    from engine.artifacts import ExperimentStore, RunKey
    from engine.config import config_from_dict
    from engine.evaluation.results import refresh_results

    config = config_from_dict({
        "experiment": {"name": name, "seed": 5, "description": "Made-up predictions written by the dashboard tests."},
        "data": {"root": "data", "synthetic_size": "tiny"},
        "preprocess": {"crop_size": 64, "background": "fallback", "workers": 1, "cache_dir": ".cache/faces"},
        "training": {"models": list(EVALUATED_MODELS), "epochs": 1, "weights": "none",
                     "input_size": {m: 32 for m in EVALUATED_MODELS}, "epochs_per_model": {"SongNet": 4},
                     "external_epoch_share": 0.5},
        "scenarios": {"folds": 2, "seeds": 2, "kept_seeds": 1, "per_model": {"SilNet": ["subject", "external"]}},
        "evaluation": {"bootstrap_resamples": 200},
    }, base_dir=Path(base))
    store = ExperimentStore(Path(base) / "artifacts", name)
    samples = _made_up_samples()
    store.write_samples(samples)
    store.write_manifest({"experiment": name, "synthetic": True, "status": "finished", "config": config.to_dict(),
                          "plan": {"models": list(EVALUATED_MODELS), "scenarios": ["image", "subject", "external"]},
                          "preprocess": {"background_methods": {"fallback": len(samples)}, "background_note": ""},
                          "counts": {"paindb": int((samples["role"] == "paindb").sum()),
                                     "cppain": int((samples["role"] == "cppain").sum())},
                          "git_revision": "", "started": "2026-12-01T10:00:00+00:00", "updated": "2026-12-01T10:05:00+00:00"})
    for model in EVALUATED_MODELS:
        for scenario in config.scenarios.for_model(model):
            for fold in range(2):
                key = RunKey(model, scenario, fold)
                store.write_predictions(key, _made_up_predictions(samples, model, scenario, fold, learned))
                if scenario == "external" and fold == 0 and model in kept:
                    _keep_untrained_model(store, key)
                if scenario == "subject" and model in kept:  # the answer's fold models, as the runner keeps them
                    _keep_untrained_model(store, key)
                    _write_development_arrays(store, key, samples, learned)
                store.finish_run(key, {"seconds": 1.0, "input_size": 32, "weights": "none"})
    refresh_results(store)
    from engine.evaluation.answer import AnswerBasis
    from engine.evaluation.answer_evaluation import evaluate_answer
    from engine.evaluation.answer_fit import refresh_answer

    refresh_answer(store, config.evaluation)
    store.write_table("answer_evaluation", evaluate_answer(store, AnswerBasis.from_store(store), seed=5))
    return store.root


def _write_development_arrays(store, key, samples, learned: bool) -> None:
    """What a subject-wise run writes for the answer: the kept (untrained) fold model's descriptors of its
    training, held-out and CP-PAIN faces, here seeded noise images (the made-up samples have no pictures;
    a real face is then unlike them, so the upload page shows the withheld answer), and its CP-PAIN p(pain)."""
    import keras
    import numpy as np

    from engine.models.features import feature_model
    from engine.training.train import predict_with_features

    both = feature_model(keras.saving.load_model(store.kept_model_path(key), compile=False))
    rng = np.random.default_rng(key.fold)
    paindb, cppain = samples[samples["role"] == "paindb"], samples[samples["role"] == "cppain"]
    held_out = set(_made_up_predictions(samples, key.model, "subject", key.fold, learned)["image_id"])

    def descriptors(count: int) -> np.ndarray:
        return predict_with_features(both, rng.integers(0, 256, (count, 32, 32, 3), dtype=np.uint8))[1]

    external = _made_up_predictions(samples, key.model, "external", key.fold, learned)
    store.write_features(key, train=descriptors(int((~paindb["image_id"].isin(held_out)).sum())).astype(np.float16),
                         test=descriptors(len(held_out)).astype(np.float16), cppain=descriptors(len(cppain)).astype(np.float16),
                         cppain_p_pain=external["p_pain"].to_numpy(dtype=np.float32),
                         cppain_image_ids=external["image_id"].to_numpy().astype(str))


def _made_up_samples():
    import pandas as pd

    rows = []
    for dataset, subjects in (*PAINDB_SUBJECTS.items(), ("cppain", CPPAIN_SUBJECTS)):
        for s, subject in enumerate(subjects):
            for i in range(8):
                label = i % 2
                rows.append({"image_id": f"{dataset}/{subject}/{i:03d}", "dataset": dataset, "subject": subject,
                             "sequence": f"{subject}-seq", "frame": i, "label": label,
                             "intensity": float(label * (1 + (s + i) % 3)) if dataset == "mintpain" else float(label),
                             "pspi": float(label * (2 + s + i % 4)) if dataset == "unbc" else float("nan"),
                             "role": "cppain" if dataset == "cppain" else "paindb", "status": "ok", "cache_key": "",
                             "background_method": "fallback"})
    return pd.DataFrame(rows)


def _made_up_predictions(samples, model: str, scenario: str, fold: int, learned: bool):
    """The runner's columns for one run: which images it tests follows the scenario (image-wise: every
    other pair of images; subject-wise: every other subject; external: every CP-PAIN image, each seed)."""
    import zlib

    pool = samples[samples["role"] == ("cppain" if scenario == "external" else "paindb")].reset_index(drop=True)
    if scenario == "image":  # pairs of images, so that each fold tests both classes
        pool = pool[(pool.index // 2) % 2 == fold]
    elif scenario == "subject":
        order = {s: i for i, s in enumerate(dict.fromkeys(pool["subject"]))}
        pool = pool[pool["subject"].map(order) % 2 == fold]
    rng = np.random.default_rng(zlib.crc32(f"{model}/{scenario}/{fold}".encode()))
    truth = pool["label"].to_numpy()
    noise = rng.uniform(0, 1, len(pool))
    if model == "WeiNet" and learned:
        p = np.clip(0.5 + 0.3 * (2 * truth - 1) + 0.2 * (noise - 0.5), 0.01, 0.99)
    elif model == "VGG16":  # both classes given, at random: an AUC interval around 0.5
        p = 0.3 + 0.4 * noise
    else:  # one class for every image: below 0.5 everywhere
        p = 0.2 + 0.2 * noise
    return pd_frame(model, scenario, fold, pool, p)


def pd_frame(model: str, scenario: str, fold: int, pool, p):
    import pandas as pd

    return pd.DataFrame({"model": model, "scenario": scenario, "fold": fold, "seed": fold,
                         "image_id": pool["image_id"].to_numpy(), "subject": pool["subject"].to_numpy(),
                         "dataset": pool["dataset"].to_numpy(), "true_label": pool["label"].to_numpy(),
                         "p_pain": p, "predicted_label": (p >= 0.5).astype(int)})


def _keep_untrained_model(store, key) -> None:
    """A real network (the registry's builder, untrained) saved where the runner keeps its model."""
    import keras

    from engine.models.registry import build_model
    from engine.training.executor import save_for_inference

    keras.utils.set_random_seed(0)
    save_for_inference(build_model(key.model, 32, weights="none", augment=False), store.kept_model_path(key))
