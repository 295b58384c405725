"""The full protocol on one GPU, measured in one call: training speed, memory and LIME per network,
and the protocol's wall time extrapolated from them.

    KERAS_BACKEND=jax python bench/gpu_protocol.py [--faces FACES.npz] [--backends jax tensorflow]
    .venv/bin/python bench/gpu_protocol.py --smoke          # CPU, seconds: the test suite runs this

Per network, at its input size in ``--config`` (experiments/paper.toml: the authors' sizes) and its
batch (128), with that config's mixed precision ("auto": float16 compute on a GPU), weights "none"
(ImageNet weights change nothing in the speed) and its optimizer; images are face crops:

  fit img/s    training images/s through the project's own path (``compiled_model`` + ``model.fit``
               over ``TrainBatches``), median over ``--steps`` steps after ``--warmup``
  loop img/s   the same model's training step (forward, backward, update) in a bare loop on a batch
               already on the device: under JAX the very step ``fit`` compiled, called directly; under
               TensorFlow the tf.function of bench/train_throughput.py. fit/loop is the share the
               project's training path keeps of it (goal: at least 0.70)
  1st step s   build + first step (tracing, XLA compilation): once per network in a grid, as the
               runner reuses a compiled model for a network's runs; "build s" is paid by every run
  peak GiB     peak memory of the network's process: the device's (JAX ``memory_stats``) on a GPU,
               the process's resident set on a CPU
  LIME s/img   one image explained at ``--lime-samples`` samples (the config's LIME batch), median

then the protocol: per network every (scenario, fold) run of the config on the carried sample
tables (scenario splits as ``painlens run`` makes them): epochs x train images / fit rate, a build
per run, the compile once, the test images at the LIME batch's inference rate, and the images LIME
explains (up to ``images_per_class`` per class of the PAIN-DB test images, assuming predictions
follow the labels, plus every CP-PAIN image when ``all_cppain``) x LIME s/img; the sum against the
60-minute goal. Not counted: preprocessing (done once, elsewhere), data loading, the explain step's
faithfulness curves and heatmaps (small next to 1,000 LIME samples), the CPU-side metrics.

Each network is measured in a fresh process (``--workers`` at a time; 0: all in this process, as
``--smoke`` does): its peak memory is its own, and while one network compiles (CPU) another is timed.
Only one process times at a time (a lock), so no two timings share the GPU.

The GPU machine (Python 3.12, JAX with CUDA, PyTorch, pandas, scikit-learn; neither Keras nor
TensorFlow) gets the project's source tree and a folder carried along with it:

  here, once (the face arrays of a paper-size synthetic experiment, and the wheels it lacks, at the
  versions of requirements/runtime-3.12.txt; lime's matplotlib and tqdm are not needed by the part used):
    .venv/bin/python bench/gpu_protocol.py --export-faces .cache/gpu/faces.npz --experiment artifacts/paper-cpu
    .venv/bin/pip download --no-deps --only-binary=:all: --python-version 3.12 --platform manylinux_2_17_x86_64 \
        --platform manylinux2014_x86_64 --platform manylinux_2_28_x86_64 -d .cache/gpu/wheels \
        keras==3.15.1 absl-py==2.5.1 namex==0.1.0 optree==0.20.0 h5py==3.14.0 rich==15.0.0 \
        markdown-it-py==4.3.0 mdurl==0.1.2 pygments==2.21.0 packaging==26.4 typing-extensions==4.16.0 \
        scikit-image==0.26.0 lazy-loader==0.6 imageio==2.38.1 tifffile==2026.3.3 networkx==3.6.1 pillow==13.0.0
    .venv/bin/pip wheel --no-deps lime==0.2.0.1 -w .cache/gpu/wheels          # about 33 MB in all

  there, one call (the device tool's run: carry [".cache/gpu"], timeout_s 600; not run on a GPU yet):
    pip install -q --no-index --find-links .cache/gpu/wheels keras scikit-image && \
    pip install -q --no-index --no-deps --find-links .cache/gpu/wheels lime && \
    KERAS_BACKEND=jax python bench/gpu_protocol.py --faces .cache/gpu/faces.npz --budget 420

  (checked on the CPU in a Python 3.12 venv holding only jax, pandas and scikit-learn: the two pip
  lines, then ``--smoke`` and ``--smoke --workers 2`` under JAX.)

The script sets ``XLA_PYTHON_CLIENT_PREALLOCATE=false`` (unless set): the network processes share the
GPU, so none may take 75 % of its memory up front. ``--budget`` (seconds): networks not started by
then are skipped and named (the ones already started finish: keep minutes of the call's limit for them).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import resource
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# The network processes (and this one) share the GPU: none may take 75 % of its memory up front.
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the project from its source tree: the GPU machine has no install of it

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

GOAL_MINUTES = 60
SMOKE = {"models": ["WeiNet", "SongNet"], "size": 32, "batch": 8, "steps": 2, "warmup": 1, "lime_samples": 20,
         "lime_images": 1, "faces": 8}
_lock = None  # set in each network process: only one of them times at a time


@dataclasses.dataclass(frozen=True)
class Settings:
    config: str
    size: int  # 0: each network's size in the config
    batch: int  # 0: the config's batch
    steps: int
    warmup: int
    lime_samples: int
    lime_images: int


# --- one network ---------------------------------------------------------------------------------------

def measure_network(name: str, settings: Settings, faces: np.ndarray) -> dict:
    """Build, compile and time ``name``; returns its figures (see the module docstring)."""
    from engine.native_log import import_tensorflow_quietly

    import_tensorflow_quietly()  # Keras loads it even under JAX where it is installed; not on the GPU machine
    import keras

    from engine.explain.lime_masks import BatchedModel, explain_image, image_seed
    from engine.models.registry import input_size_for
    from engine.training.train import TrainBatches, compiled_model, gpu_available
    from train_throughput import StepClock, loop_rate

    training = network_training(name, settings)
    size = input_size_for(name, training)
    started = time.perf_counter()
    model, info = compiled_model(name, training, seed=0)
    build = time.perf_counter() - started
    micro = info["micro_batch_size"]
    x = resized(faces, size, micro * (settings.warmup + settings.steps))
    y = np.arange(len(x)) % 2
    started = time.perf_counter()
    model.fit(TrainBatches(x[:micro], y[:micro], micro, 0), epochs=1, shuffle=False, verbose=0)  # compiles
    first = time.perf_counter() - started
    explain = _lime_params(settings)
    classifier = BatchedModel(model, explain.batch_size)
    explain_image(x[0], classifier, 1, explain, image_seed(0, "gpu/warm-up"))  # compiles inference, imports LIME
    with _timing_turn():
        clock = StepClock()
        model.fit(TrainBatches(x, y, micro, 1), epochs=1, shuffle=False, verbose=0, callbacks=[clock])
        fit = micro / statistics.median(clock.step_seconds()[settings.warmup:])
        loop = _loop_rate(model, x[:micro], y[:micro], settings, loop_rate)
        lime, inference = [], []
        for index in range(settings.lime_images):
            classifier.seconds = 0.0
            clock_lime = time.perf_counter()
            explain_image(x[index], classifier, 1, explain, image_seed(0, f"gpu/{index}"))
            lime.append(time.perf_counter() - clock_lime)
            inference.append(explain.num_samples / classifier.seconds)
    keras.backend.clear_session()
    return {"network": name, "size": size, "batch": micro * info["accumulation_steps"], "micro": micro,
            "precision": "mixed" if info["mixed_precision"] else "float32", "gpu": gpu_available(),
            "build_s": build, "first_step_s": first, "fit_img_s": fit, "loop_img_s": loop,
            "peak_gib": peak_memory_gib(), "lime_s": statistics.median(lime),
            "infer_img_s": statistics.median(inference), "backend": keras.backend.backend()}


def network_training(name: str, settings: Settings):
    from engine.config import load_config

    training = load_config(settings.config).training
    changes = {"weights": "none"}
    if settings.batch:
        changes["batch_size"] = settings.batch
    if settings.size:
        changes["input_size"] = {**training.input_size, name: settings.size}
    return dataclasses.replace(training, **changes)


def _lime_params(settings: Settings):
    from engine.config import load_config
    from engine.explain.lime_masks import LimeParams

    explain = dataclasses.replace(load_config(settings.config).explain, num_samples=settings.lime_samples)
    return LimeParams.from_section(explain)


def _loop_rate(model, x: np.ndarray, y: np.ndarray, settings: Settings, tf_loop_rate) -> float:
    """Images/s of the bare training step on one batch already on the device."""
    import keras

    if keras.backend.backend() != "jax":
        return tf_loop_rate(model, len(x), x.shape[1], settings.steps, settings.warmup, 0)
    import jax

    # The step fit compiled (same shapes and dtypes: no compilation here), on a copy of the state:
    # it donates its input buffers, which are the model's own variables.
    state = jax.tree.map(lambda v: v.copy(), model._get_jax_state(
        trainable_variables=True, non_trainable_variables=True, optimizer_variables=True, metrics_variables=True))
    batch = (jax.device_put(x), jax.device_put(np.eye(2, dtype=np.float32)[y]), None)
    times = []
    for _ in range(settings.warmup + settings.steps):
        started = time.perf_counter()
        logs, state = model.train_function(state, iter([batch]))
        float(logs["loss"])  # wait for the device
        times.append(time.perf_counter() - started)
    return len(x) / statistics.median(times[settings.warmup:])


class _timing_turn:
    """The lock that lets one network process time at a time (none when measuring in-process)."""

    def __enter__(self):
        if _lock is not None:
            _lock.acquire()

    def __exit__(self, *exc):
        if _lock is not None:
            _lock.release()


def peak_memory_gib() -> float:
    """Peak device memory of this process on a GPU (JAX), else the process's peak resident set."""
    try:
        import jax

        device = jax.devices()[0]
        if device.platform == "gpu":
            return device.memory_stats()["peak_bytes_in_use"] / 2**30
    except (ImportError, KeyError, RuntimeError, TypeError):
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux


def resized(faces: np.ndarray, size: int, count: int) -> np.ndarray:
    """``count`` images (count, size, size, 3) uint8: the faces, resized, repeated as needed."""
    from PIL import Image

    if faces.shape[1] != size:
        faces = np.stack([np.asarray(Image.fromarray(f).resize((size, size), Image.Resampling.BILINEAR))
                          for f in faces])
    return faces[np.arange(count) % len(faces)]


# --- every network, each in its own process --------------------------------------------------------------

def _start_network_process(lock, root: str) -> None:
    global _lock
    _lock = lock
    sys.path[:0] = [root, str(Path(root) / "bench")]


def measure_all(models: list[str], settings: Settings, faces: np.ndarray, workers: int,
                budget: float) -> tuple[list[dict], list[str]]:
    """Figures of each network, and the networks skipped because the budget ran out."""
    started = time.perf_counter()
    if workers == 0:
        results = []
        for name in models:
            if time.perf_counter() - started > budget:
                return results, models[len(results):]
            results.append(measure_network(name, settings, faces))
            print_network(results[-1])
        return results, []
    import multiprocessing

    context = multiprocessing.get_context("spawn")  # a fresh backend per network
    lock = context.Lock()
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_start_network_process,
                             initargs=(lock, str(ROOT)), max_tasks_per_child=1) as pool:
        futures = {name: pool.submit(measure_network, name, settings, faces) for name in models}
        results, skipped = [], []
        for name, future in futures.items():
            remaining = budget - (time.perf_counter() - started)
            if remaining <= 0 and not future.running() and future.cancel():
                skipped.append(name)
                continue
            results.append(future.result())
            print_network(results[-1])
    return results, skipped


def print_network(row: dict) -> None:
    print(f"{row['network']:<12}{row['size']:>5}{row['batch']:>6}{row['precision']:>10}{row['build_s']:>8.1f}"
          f"{row['first_step_s']:>11.1f}{row['fit_img_s']:>10.1f}{row['loop_img_s']:>11.1f}"
          f"{row['fit_img_s'] / row['loop_img_s']:>9.2f}{row['peak_gib']:>9.2f}{row['lime_s']:>11.2f}", flush=True)


HEADER = (f"{'network':<12}{'size':>5}{'batch':>6}{'precision':>10}{'build s':>8}{'1st step s':>11}{'fit img/s':>10}"
          f"{'loop img/s':>11}{'fit/loop':>9}{'peak GiB':>9}{'LIME s/img':>11}")


# --- the protocol, extrapolated ---------------------------------------------------------------------------

def protocol_minutes(config_path: str, paindb: pd.DataFrame, cppain: pd.DataFrame, row: dict) -> dict:
    """One network's share of the protocol in minutes (training, LIME, the rest), from its figures."""
    from engine.config import load_config
    from engine.training.scenarios import make_splits

    config = load_config(config_path)
    train = lime = other = 0.0
    runs = 0
    for scenario in config.scenarios.for_model(row["network"]):
        for split in make_splits(scenario, paindb, cppain, config.scenarios.folds, config.scenarios.seeds,
                                 config.experiment.seed):
            runs += 1
            train += config.training.epochs_for(row["network"], scenario) * len(split.train) / row["fit_img_s"]
            tested = (cppain if split.test_set == "cppain" else paindb).iloc[split.test]
            other += row["build_s"] + len(tested) / row["infer_img_s"]
            lime += explained_images(tested, config.explain) * row["lime_s"]
    other += row["first_step_s"]  # compiled once, reused by the network's further runs
    return {"network": row["network"], "runs": runs, "train_min": train / 60, "lime_min": lime / 60,
            "other_min": other / 60, "total_min": (train + lime + other) / 60}


def explained_images(tested: pd.DataFrame, explain) -> int:
    """Images LIME explains in a run, as ``choose_images`` picks them, if predictions follow the labels."""
    if not explain.enabled:
        return 0
    cppain = tested["dataset"].astype(str) == "cppain"
    count = int(cppain.sum()) if explain.all_cppain else 0
    for in_cppain in ((False,) if explain.all_cppain else (False, True)):
        labels = tested.loc[cppain == in_cppain, "label"]
        count += sum(min(explain.images_per_class, int((labels == label).sum())) for label in (0, 1))
    return count


def print_protocol(config_path: str, paindb: pd.DataFrame, cppain: pd.DataFrame, results: list[dict],
                   skipped: list[str]) -> None:
    shares = [protocol_minutes(config_path, paindb, cppain, row) for row in results]
    print(f"\nprotocol of {config_path} on {len(paindb)} PAIN-DB and {len(cppain)} CP-PAIN images, extrapolated (minutes):")
    print(f"{'network':<12}{'runs':>5}{'train':>9}{'LIME':>9}{'other':>9}{'total':>9}")
    for share in shares:
        print(f"{share['network']:<12}{share['runs']:>5}{share['train_min']:>9.1f}{share['lime_min']:>9.1f}"
              f"{share['other_min']:>9.1f}{share['total_min']:>9.1f}")
    total = sum(share["total_min"] for share in shares)
    print(f"{'all':<12}{sum(s['runs'] for s in shares):>5}{sum(s['train_min'] for s in shares):>9.1f}"
          f"{sum(s['lime_min'] for s in shares):>9.1f}{sum(s['other_min'] for s in shares):>9.1f}{total:>9.1f}")
    verdict = "within" if total <= GOAL_MINUTES else "over"
    missing = f"; not measured (budget): {', '.join(skipped)}" if skipped else ""
    print(f"whole protocol: {total:.1f} min, {verdict} the {GOAL_MINUTES}-minute goal{missing}")
    ratios = [row["fit_img_s"] / row["loop_img_s"] for row in results]
    if ratios:
        print(f"fit/loop: median {statistics.median(ratios):.2f}, lowest {min(ratios):.2f} (goal: at least 0.70)")


# --- inputs: the carried face arrays and sample tables, or synthetic ones --------------------------------

TABLE_COLUMNS = ("image_id", "dataset", "subject", "label")


def load_inputs(path: str | None, count: int) -> tuple[np.ndarray, pd.DataFrame, pd.DataFrame, str]:
    """(faces, PAIN-DB table, CP-PAIN table, where they came from)."""
    if path:
        with np.load(path, allow_pickle=False) as data:
            tables = [pd.DataFrame({c: data[f"{name}_{c}"] for c in TABLE_COLUMNS}) for name in ("paindb", "cppain")]
            return data["faces"], *tables, f"{path} ({len(data['faces'])} face crops)"
    return synthetic_faces(count), *paper_shaped_tables(), "faces rendered here, tables shaped like the paper's"


def synthetic_faces(count: int, size: int = 96) -> np.ndarray:
    from lime_overhead import faces

    return np.stack(faces(count, size, seed=0))


def paper_shaped_tables() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Tables with the paper-size synthetic data's subjects and images per class (engine.synth.sizes),
    for when no exported tables are carried: balanced classes within each subject."""
    from engine.synth.sizes import SIZES

    spec = SIZES["paper"]
    groups = [("unbc", spec.unbc_subjects, 40), ("mintpain", spec.mint_subjects, 40),
              ("delaware", spec.delaware_subjects, max(2, round(spec.delaware_images / spec.delaware_subjects)))]
    rows = [(f"{dataset}/{s}/{i}", dataset, f"s{s}", i % 2) for dataset, subjects, per in groups
            for s in range(subjects) for i in range(per)]
    paindb = pd.DataFrame(rows, columns=list(TABLE_COLUMNS))
    cppain = pd.DataFrame([(f"cppain/{i}", "cppain", f"c{i % spec.cp_subjects}", i % 2) for i in range(spec.cp_images)],
                          columns=list(TABLE_COLUMNS))
    return paindb, cppain


def export_faces(experiment: str, out: str, count: int, size: int) -> None:
    """Write ``count`` PAIN-DB face crops of a finished experiment (at ``size`` px) and its sample tables
    (ids, dataset, subject, label: no paths) to ``out``, for carrying to a machine without the face cache."""
    from PIL import Image

    from engine.artifacts import ExperimentStore
    from engine.files import write_bytes

    store = ExperimentStore.open(experiment)
    samples = store.samples()
    if samples is None:
        raise SystemExit(f"{experiment} has no samples table: run `painlens run` on it first.")
    usable = samples[samples["status"] == "ok"]
    paindb, cppain = usable[usable["dataset"] != "cppain"], usable[usable["dataset"] == "cppain"]
    picked = paindb.sample(n=min(count, len(paindb)), random_state=0)
    crops = []
    for key in picked["cache_key"]:
        crop = store.face_crop(key)
        if crop is None:
            raise SystemExit(f"The face cache of {experiment} is not on this machine; export where it ran.")
        crops.append(np.asarray(Image.fromarray(crop).resize((size, size), Image.Resampling.LANCZOS)))
    arrays = {"faces": np.stack(crops)}
    for name, table in (("paindb", paindb), ("cppain", cppain)):
        for column in TABLE_COLUMNS:
            arrays[f"{name}_{column}"] = table[column].astype(int if column == "label" else str).to_numpy()
    import io

    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    write_bytes(out, buffer.getvalue())
    print(f"{out}: {len(crops)} faces at {size} px, {len(paindb)} PAIN-DB and {len(cppain)} CP-PAIN rows, "
          f"{Path(out).stat().st_size / 2**20:.1f} MiB")


# --- the command -----------------------------------------------------------------------------------------

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="CPU check in seconds: two networks, tiny sizes, few steps")
    parser.add_argument("--config", default=str(ROOT / "experiments" / "paper.toml"))
    parser.add_argument("--models", nargs="+", help="networks (default: the config's ten)")
    parser.add_argument("--faces", help="exported face arrays and sample tables (.npz); default: rendered here")
    parser.add_argument("--steps", type=int, default=20, help="timed training steps (median reported)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps before them")
    parser.add_argument("--lime-samples", type=int, default=1000)
    parser.add_argument("--lime-images", type=int, default=3, help="images explained per network (median)")
    parser.add_argument("--workers", type=int, help="network processes at a time; 0: all in this process "
                        "(default: 3, with --smoke 0)")
    parser.add_argument("--budget", type=float, default=480, help="seconds after which no network starts")
    parser.add_argument("--backends", nargs="+", help="Keras backends, each in its own network processes "
                        "(default: $KERAS_BACKEND); e.g. jax tensorflow where TensorFlow is installed")
    parser.add_argument("--export-faces", metavar="OUT", help="write the face arrays of --experiment to OUT and stop")
    parser.add_argument("--experiment", help="a finished experiment folder (with --export-faces)")
    parser.add_argument("--count", type=int, default=256, help="faces to export")
    parser.add_argument("--size", type=int, default=224, help="side of the exported faces")
    args = parser.parse_args()
    if args.export_faces:
        return export_faces(args.experiment, args.export_faces, args.count, args.size)

    from engine.config import load_config

    config = load_config(args.config)
    models = args.models or (SMOKE["models"] if args.smoke else list(config.training.models))
    settings = Settings(config=args.config, size=SMOKE["size"] if args.smoke else 0,
                        batch=SMOKE["batch"] if args.smoke else 0,
                        steps=SMOKE["steps"] if args.smoke else args.steps,
                        warmup=SMOKE["warmup"] if args.smoke else args.warmup,
                        lime_samples=SMOKE["lime_samples"] if args.smoke else args.lime_samples,
                        lime_images=SMOKE["lime_images"] if args.smoke else args.lime_images)
    faces, paindb, cppain, source = load_inputs(args.faces, SMOKE["faces"] if args.smoke else 64)
    backends = args.backends or [os.environ.get("KERAS_BACKEND", "tensorflow")]
    workers = args.workers if args.workers is not None else (0 if args.smoke else 3)
    if workers == 0 and backends != [os.environ.get("KERAS_BACKEND", "tensorflow")]:
        parser.error("--backends other than $KERAS_BACKEND need network processes (--workers 1 or more)")
    print(f"{'smoke run: ' if args.smoke else ''}{describe_devices()}, {os.cpu_count()} CPUs ({platform.machine()}); "
          f"inputs: {source}")
    print(f"median of {settings.steps} steps after {settings.warmup}; LIME at {settings.lime_samples} samples, "
          f"median of {settings.lime_images} images")
    started = time.perf_counter()
    for backend in backends:
        os.environ["KERAS_BACKEND"] = backend  # what the network processes start with
        print(f"\nbackend {backend}\n{HEADER}")
        budget = args.budget - (time.perf_counter() - started)
        results, skipped = measure_all(models, settings, faces, workers, budget)
        print_protocol(args.config, paindb, cppain, results, skipped)


def describe_devices() -> str:
    try:
        import jax

        devices = jax.devices()
        return f"{len(devices)} x {devices[0].device_kind}" if devices[0].platform == "gpu" else "no GPU"
    except ImportError:
        return "devices unknown (no JAX)"


if __name__ == "__main__":
    main()
