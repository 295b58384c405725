"""Preprocess a whole sample table through the face cache, on ``workers`` processes, with a progress bar.

The calling process hashes each image file and looks its entry up; only misses go to the worker
processes (new ones, even for one worker), each of which creates MTCNN, dlib and (if used) U2-Net
once and writes its results into the cache. A second run over the same images therefore reads files
and hashes only, and starts no worker. Output rows follow the input order, and the cache's bytes do
not depend on the number of workers. Calls made one after another with the same settings (PAIN-DB's
redraw among frames with a face) can share their workers through ``FaceWorkers``: starting them and
loading the models costs about 10 s, more than the few frames of a redraw round.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import time
from collections import Counter
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping

import numpy as np
import pandas as pd
from PIL import Image

from engine.config import PreprocessSection
from engine.errors import BadImageError, PainLensError
import engine.preprocess.cache as cache  # the submodule, not the package (whose __init__ imports this module)
from engine.preprocess.pipeline import STEPS, FaceResult, NoFace, PreprocessParams, decode_image, models_for, params_from_section, preprocess_image
from engine.progress import progress_bar

NEW_COLUMNS = ("cache_key", "status", "background_method", "face_confidence", "cache_dir")


@dataclass
class PreprocessStats:
    """What one run did. ``step_seconds`` sums worker time over the images computed in this run
    (``lookup`` is the main process reading and hashing every file and checking the cache)."""

    images: int = 0
    ok: int = 0
    no_face: int = 0  # excluded from training, as in the paper
    unreadable: int = 0  # missing or undecodable files, also excluded
    cache_hits: int = 0  # rows whose entry was already in the cache
    computed: int = 0  # entries computed in this run (duplicate images count once)
    detections: int = 0  # MTCNN runs in this run
    workers: int = 0  # worker processes used (0 when everything came from the cache)
    background_methods: dict[str, int] = field(default_factory=dict)  # over ok rows
    background_note: str = ""  # the one sentence about the background method, "" when none
    params: dict[str, Any] = field(default_factory=dict)
    step_seconds: dict[str, float] = field(default_factory=dict)
    wall_seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class _Task:
    key: str
    path: str
    landmarks: np.ndarray | None
    landmark_format: str


class FaceWorkers:
    """Worker processes kept between ``preprocess_table`` calls with the same settings; a context
    manager (``with FaceWorkers() as workers: preprocess_table(..., workers=workers)``) that stops them
    at its end. Started on the first miss, so a run whose faces are all cached starts none."""

    def __init__(self) -> None:
        self._pool: ProcessPoolExecutor | None = None
        self._key: tuple | None = None

    def pool(self, params: PreprocessParams, cache_dir: str | Path, workers: int) -> ProcessPoolExecutor:
        key = (params, str(Path(cache_dir).resolve()), workers)
        if self._pool is None or self._key != key:
            self.close()
            self._pool, self._key = _new_pool(params, cache_dir, workers), key
        return self._pool

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
        self._pool, self._key = None, None

    def __enter__(self) -> "FaceWorkers":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def preprocess_table(
    table: pd.DataFrame,
    section: PreprocessSection,
    cache_dir: str | Path,
    progress: bool = True,
    environ: Mapping[str, str] | None = None,
    workers: FaceWorkers | None = None,
) -> tuple[pd.DataFrame, PreprocessStats]:
    """Preprocess every row of a sample table (columns ``path``, ``landmarks``, ``landmark_format``).

    Returns a copy of the table with the columns ``cache_key``, ``status`` (ok | no_face | unreadable),
    ``background_method`` ("" unless ok), ``face_confidence`` (NaN when unreadable) and ``cache_dir``
    (the cache's absolute path, so ``load_faces`` needs only the table), and the run's statistics. Rows that are not ``ok`` stay in the table so they can be counted; use
    ``table[table.status == "ok"]`` to train. ``environ``: where rembg's model folders come from
    (``os.environ`` when None). ``workers``: processes kept from an earlier call (``FaceWorkers``);
    when None, new ones are started for the misses and stopped before returning.
    """
    started = time.perf_counter()
    params, note = params_from_section(section, environ)
    stats = PreprocessStats(images=len(table), background_note=note, params=asdict(params))
    stats.step_seconds = {"lookup": 0.0, **{step: 0.0 for step in STEPS}}
    keys: list[str] = []
    metas: dict[str, dict[str, Any]] = {}
    todo: dict[str, _Task] = {}
    with progress_bar(progress) as bar:
        bar_task = bar.add_task("faces", total=len(table))
        for row in table.itertuples(index=False):
            clock = time.perf_counter()
            key, task, meta = _look_up(row, params, cache_dir)
            stats.step_seconds["lookup"] += time.perf_counter() - clock
            keys.append(key)
            if meta is not None:
                metas[key] = meta
                stats.cache_hits += 1
            if task is not None and key not in todo:
                todo[key] = task
            elif task is None:
                bar.advance(bar_task, 1)  # from the cache, or a file that cannot be read
        if todo:
            rows_per_key = Counter(keys)  # the same image twice is computed once
            if workers is not None:  # kept for later calls: sized for the section, not this call
                stats.workers = max(1, int(section.workers))
                pool = workers.pool(params, cache_dir, stats.workers)
            else:
                stats.workers = max(1, min(int(section.workers), len(todo)))
                pool = None
            for key, summary in _run_tasks(list(todo.values()), params, cache_dir, stats.workers, pool):
                metas[key] = summary["meta"]
                stats.computed += 1
                stats.detections += summary["detections"]
                for step, seconds in summary["timings"].items():
                    stats.step_seconds[step] += seconds
                bar.advance(bar_task, rows_per_key[key])
    out = _with_status_columns(table, keys, metas)
    out["cache_dir"] = str(Path(cache_dir).resolve())
    _count(out, stats)
    stats.wall_seconds = time.perf_counter() - started
    return out, stats


def _look_up(row: Any, params: PreprocessParams, cache_dir: str | Path) -> tuple[str, _Task | None, dict | None]:
    """(key, task to compute or None, cached metadata or None). A file that cannot be read has key ""."""
    try:
        data = Path(row.path).read_bytes()
    except (OSError, TypeError, ValueError):
        return "", None, None
    points = _dataset_points(getattr(row, "landmarks", None))
    landmark_format = str(getattr(row, "landmark_format", "") or "") if points is not None else ""
    key = cache.cache_key(
        hashlib.sha256(data).hexdigest(), params.tag(), cache.landmarks_digest(points, landmark_format)
    )
    meta = cache.read_meta(cache_dir, key)
    return key, (None if meta else _Task(key, str(row.path), points, landmark_format)), meta


def _dataset_points(value: Any) -> np.ndarray | None:
    """A row's flat [x0, y0, x1, y1, ...] landmark list as (K, 2) float64, or None."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    points = np.asarray(value, dtype=np.float64).ravel()
    if points.size == 0 or points.size % 2:
        return None
    return points.reshape(-1, 2)


def _with_status_columns(table: pd.DataFrame, keys: list[str], metas: dict[str, dict]) -> pd.DataFrame:
    out = table.copy()
    out["cache_key"] = keys
    out["status"] = [metas[k]["status"] if k in metas else "unreadable" for k in keys]
    out["background_method"] = [metas[k].get("background_method", "") if k in metas else "" for k in keys]
    out["face_confidence"] = [float(metas[k].get("face_confidence", np.nan)) if k in metas else np.nan for k in keys]
    return out


def _count(out: pd.DataFrame, stats: PreprocessStats) -> None:
    counts = out["status"].value_counts()
    stats.ok, stats.no_face, stats.unreadable = (int(counts.get(s, 0)) for s in cache.STATUSES)
    methods = out.loc[out["status"] == "ok", "background_method"].value_counts()
    stats.background_methods = {str(k): int(v) for k, v in sorted(methods.items())}


# --- computing the misses -------------------------------------------------------------------------

class _Worker:
    """Computes and stores entries in a worker process; the models come from ``models_for``."""

    def __init__(self, params: PreprocessParams, cache_dir: str | Path) -> None:
        self.params = params
        self.cache_dir = Path(cache_dir)

    def run(self, task: _Task) -> tuple[str, dict[str, Any]]:
        clock = time.perf_counter()
        extra = {"params": asdict(self.params), "params_tag": self.params.tag()}
        try:
            rgb = decode_image(Path(task.path).read_bytes())
        except (BadImageError, OSError):
            rgb = None
        decode_seconds = time.perf_counter() - clock
        result: FaceResult | NoFace | None = None
        detections, models_seconds = 0, 0.0
        if rgb is not None:
            extra["image_size"] = [int(rgb.shape[1]), int(rgb.shape[0])]
            clock = time.perf_counter()
            models = models_for(self.params, single_thread=True)  # slow only on this process's first image
            models_seconds = time.perf_counter() - clock
            calls = models.detector.calls
            result = preprocess_image(rgb, self.params, task.landmarks, task.landmark_format, models)
            detections = models.detector.calls - calls
        clock = time.perf_counter()
        cache.write_entry(self.cache_dir, task.key, result, extra)
        timings = {**(result.timings if result is not None else {}), "models": models_seconds, "decode": decode_seconds, "write": time.perf_counter() - clock}
        meta = cache.read_meta(self.cache_dir, task.key, check_png=False)
        return task.key, {"meta": meta, "timings": timings, "detections": detections}


_POOL_WORKER: _Worker | None = None


def _init_pool_worker(params: PreprocessParams, cache_dir: str) -> None:
    global _POOL_WORKER
    from engine.native_log import import_tensorflow_quietly

    import_tensorflow_quietly()  # MTCNN runs on TensorFlow
    _POOL_WORKER = _Worker(params, cache_dir)


def _run_in_pool(task: _Task) -> tuple[str, dict[str, Any]]:
    assert _POOL_WORKER is not None
    return _POOL_WORKER.run(task)


def _new_pool(params: PreprocessParams, cache_dir: str | Path, workers: int) -> ProcessPoolExecutor:
    """``workers`` new processes, each loading the models for ``params`` once.

    Always other processes, even for one worker: TensorFlow then never loads into the caller (which
    may train with JAX), the caller's thread settings stay its own, and each worker runs with one
    thread, so results are the same bits whatever ``workers`` is. "spawn" starts clean interpreters
    (forking a process that already runs TensorFlow threads can deadlock); a script that calls this
    must guard its top level with ``if __name__ == "__main__":``.
    """
    context = multiprocessing.get_context("spawn")
    return ProcessPoolExecutor(workers, mp_context=context, initializer=_init_pool_worker,
                               initargs=(params, str(cache_dir)))


def _run_tasks(tasks: list[_Task], params: PreprocessParams, cache_dir: str | Path, workers: int,
               pool: ProcessPoolExecutor | None = None) -> Iterator[tuple[str, dict]]:
    """Yield (key, summary) per task as they finish, on ``pool`` (kept by the caller) or on ``workers``
    new processes stopped at the end."""
    if pool is None:
        with _new_pool(params, cache_dir, workers) as own:
            yield from _run_on(own, tasks, workers)
    else:
        yield from _run_on(pool, tasks, workers)


def _run_on(pool: ProcessPoolExecutor, tasks: list[_Task], workers: int) -> Iterator[tuple[str, dict]]:
    pending: set = set()
    queue = iter(tasks)
    while True:
        # A bounded window of tasks in flight keeps memory flat on big tables.
        for task in queue:
            pending.add(pool.submit(_run_in_pool, task))
            if len(pending) >= 4 * workers:
                break
        if not pending:
            return
        done, pending = wait(pending, return_when=FIRST_COMPLETED)
        for future in done:
            try:
                yield future.result()
            except BrokenProcessPool:
                raise PainLensError(
                    "A face-preprocessing worker process stopped abruptly (killed, out of memory, or started by a "
                    "script that calls PainLens at its top level: put that call under `if __name__ == \"__main__\":`); "
                    "faces finished so far are cached, so running the same command again resumes.") from None


# --- reading the cache ----------------------------------------------------------------------------

def load_faces(table: pd.DataFrame, size: int, cache_dir: str | Path | None = None) -> np.ndarray:
    """The crops of a preprocessed table's rows, resized to a network's input: (N, size, size, 3) uint8.

    Every row must have ``status == "ok"`` (filter the table first). ``cache_dir``: the face cache;
    when None, each row's ``cache_dir`` column (written by ``preprocess_table``)."""
    if "status" not in table or "cache_key" not in table:
        raise PainLensError("The table has not been preprocessed (no status column); run preprocess_table on it first.")
    bad = int((table["status"] != "ok").sum())
    if bad:
        raise PainLensError(f"{bad} rows have no face crop (status not ok); keep only rows with status == \"ok\".")
    if cache_dir is None and "cache_dir" not in table:
        raise PainLensError("The table does not say where its face cache is; pass cache_dir to load_faces.")
    folders = [cache_dir] * len(table) if cache_dir is not None else table["cache_dir"].tolist()
    out = np.empty((len(table), size, size, 3), dtype=np.uint8)
    for i, (key, folder) in enumerate(zip(table["cache_key"], folders)):
        crop = cache.read_crop(folder, key)
        if crop.shape[0] != size:
            crop = np.asarray(Image.fromarray(crop).resize((size, size), Image.Resampling.LANCZOS))
        out[i] = crop
    return out


def load_face_record(cache_dir: str | Path, key: str) -> FaceResult | NoFace | None:
    """One entry with its crop, face box, 68 detected and the dataset landmarks (None: not an image)."""
    return cache.load_entry(cache_dir, key)


def folder_table(folder: str | Path) -> pd.DataFrame:
    """A minimal sample table of every PNG/JPEG under ``folder`` (ids are paths relative to it)."""
    root = Path(folder)
    paths = sorted(p for p in root.rglob("*") if p.suffix.lower() in (".png", ".jpg", ".jpeg") and p.is_file())
    return pd.DataFrame(
        {
            "image_id": [p.relative_to(root).as_posix() for p in paths],
            "path": [str(p) for p in paths],
            "landmarks": [None] * len(paths),
            "landmark_format": [""] * len(paths),
        }
    )
