"""The Ray execution engine: every (network, scenario, fold) run of the grid is one Ray task.

``painlens run CONFIG --engine ray [--address HOST:PORT]`` (or ``[execution] engine = "ray"``) hands
the runs that are not finished to Ray instead of the local engine's one child process per network.
Each task asks for ``[execution] cpus_per_run`` CPUs and ``gpus_per_run`` GPUs, and Ray places it on
a node that has them free. A task trains, predicts, writes and (through the pipeline's ``after_run``
hook) explains its run with the executor's ``execute_run``; nothing of the training is repeated here.

- Inputs: the sample tables and, per input size, the face arrays go into Ray's object store once
  (``ray.put``); every task of that size reads the same objects (zero-copy on its node) instead of
  re-reading the face cache. So the nodes need neither the face cache nor the datasets.
- Outputs: every task writes through the store, so on a cluster the store must be a folder every
  node sees at the same path (README, "Running the grid on a Ray cluster"). The driver refreshes
  the metrics after each finished task, as the local engine does.
- Failures: a task whose worker or node dies is retried by Ray (``max_retries``), and one that hits
  an ``OSError`` (a shared folder's hiccup) too (``retry_exceptions``); a retried or duplicated run
  is harmless: its files are written atomically and its finish record last. A run that stops with a
  ``PainLensError`` is not retried: its sentence ends the command; finished runs stay.
- Without an address the command starts a Ray instance on this machine (all its CPUs and GPUs)
  and stops it at the end; with one it joins that cluster and leaves it running.
- Worker processes: Ray keeps a CPU worker for further tasks (so a network's next run may reuse its
  compiled model, see ``train_run(reuse_compiled=True)``) but gives a GPU task a fresh process (so
  GPU memory is returned); with a fraction of a GPU per run, each run's backend is told to take only
  that share of the GPU's memory.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable

import numpy as np
import pandas as pd

from engine.artifacts import ExperimentStore
from engine.config import ExperimentConfig, ExecutionSection
from engine.errors import PainLensError
from engine.training.executor import PlannedRun, execute_run

RETRIES = 3  # per task, for a dead worker or node and for OSError
# Sample-table columns a task never needs; paths can hold people's names, and the object store
# may spill its objects to disk.
PRIVATE_COLUMNS = ("path",)
# The driver's settings that its tasks must share (same backend, same quiet TensorFlow).
SHARED_ENVIRONMENT = ("KERAS_BACKEND", "TF_CPP_MIN_LOG_LEVEL")


def run_on_ray(config: ExperimentConfig, store: ExperimentStore, runs: list[PlannedRun], paindb: pd.DataFrame,
               cppain: pd.DataFrame, after_run=None, on_done: Callable[[], None] = lambda: None) -> None:
    """Execute ``runs`` as Ray tasks; call ``on_done`` in this process after each finished run."""
    import ray

    if config.execution.address and not store.root.is_absolute():
        raise PainLensError(f"On a Ray cluster the artifacts must be in a folder every node sees at the same path: "
                            f"give --out as an absolute path, not {store.root.parent}.")
    _connect(config.execution)
    try:
        pending = _submit(config, store, runs, paindb, cppain, after_run)
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            run = pending.pop(ready[0])
            _result(ready[0], run)
            on_done()
    finally:
        # Leaving ends this job's tasks on the cluster too; a local instance is stopped.
        ray.shutdown()


def _connect(execution: ExecutionSection) -> None:
    import ray

    environment = {name: os.environ[name] for name in SHARED_ENVIRONMENT if name in os.environ}
    if 0 < execution.gpus_per_run < 1:  # runs share a GPU: each takes its share of the memory, not all
        environment["XLA_PYTHON_CLIENT_MEM_FRACTION"] = f"{0.9 * execution.gpus_per_run:.2f}"
        environment["TF_FORCE_GPU_ALLOW_GROWTH"] = "true"
    options = {"runtime_env": {"env_vars": environment}, "logging_level": logging.ERROR,
               "include_dashboard": False}
    try:
        if execution.address:
            ray.init(address=execution.address, **options)
        else:
            ray.init(**options)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        where = f"the Ray cluster at {execution.address}" if execution.address else "a local Ray instance"
        raise PainLensError(f"Could not start or join {where} ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__}); "
                            "check the address (`ray status` on the head shows it) or run without --address.") from None
    needed = {"CPU": execution.cpus_per_run, "GPU": execution.gpus_per_run}
    largest = _largest_node(ray.nodes())
    short = [f"{amount:g} {name}" for name, amount in needed.items() if amount > largest.get(name, 0)]
    if short:
        ray.shutdown()
        raise PainLensError(f"Each run asks for {' and '.join(short)} but no node of the Ray cluster has that many; "
                            "lower [execution] cpus_per_run / gpus_per_run or add a larger node.")


def _largest_node(nodes: list[dict]) -> dict[str, float]:
    largest: dict[str, float] = {}
    for node in nodes:
        if node.get("Alive"):
            for name, amount in node.get("Resources", {}).items():
                largest[name] = max(largest.get(name, 0.0), float(amount))
    return largest


def _submit(config: ExperimentConfig, store: ExperimentStore, runs: list[PlannedRun], paindb: pd.DataFrame,
            cppain: pd.DataFrame, after_run) -> dict:
    """One task per run, in the runner's order; returns {task reference: run}."""
    import ray

    from engine.models.registry import input_size_for
    from engine.preprocess import load_faces

    task = ray.remote(num_cpus=config.execution.cpus_per_run, num_gpus=config.execution.gpus_per_run,
                      max_retries=RETRIES, retry_exceptions=[OSError])(_train_task)
    tables = [ray.put(table.drop(columns=[c for c in PRIVATE_COLUMNS if c in table.columns]))
              for table in (paindb, cppain)]
    pending, faces = {}, {}
    for run in runs:
        size = input_size_for(run.model, config.training)
        if size not in faces:  # one size at a time in this process; the store keeps them for the tasks
            faces[size] = [ray.put(load_faces(table, size)) for table in (paindb, cppain)]
        reference = task.options(name=f"train {run.key}").remote(config, store, run, *tables, *faces[size], after_run)
        pending[reference] = run
    return pending  # the face objects live on while a task that reads them is not finished


def _train_task(config: ExperimentConfig, store: ExperimentStore, run: PlannedRun, paindb: pd.DataFrame,
                cppain: pd.DataFrame, paindb_faces: np.ndarray, cppain_faces: np.ndarray, after_run) -> str:
    """One run in a Ray worker: the arrays arrive from the object store (read-only, not copied)."""
    if os.environ.get("KERAS_BACKEND", "tensorflow") == "tensorflow":
        from engine.native_log import import_tensorflow_quietly

        import_tensorflow_quietly()
    execute_run(config, store, run, paindb, cppain, StoredFaces(paindb_faces, cppain_faces), after_run)
    return str(run.key)


class StoredFaces:
    """The executor's ``ArrayCache`` interface over the face arrays of one input size from the object store."""

    def __init__(self, paindb: np.ndarray, cppain: np.ndarray):
        self.arrays = {"paindb": paindb, "cppain": cppain}

    def get(self, table: str, size: int) -> np.ndarray:
        faces = self.arrays[table]
        if faces.shape[1] != size:
            raise ValueError(f"the task was given {faces.shape[1]} px faces for a {size} px network")
        return faces


def _result(reference, run: PlannedRun) -> None:
    """The task's outcome: nothing when it finished; a sentence when it stopped for good."""
    import ray

    try:
        ray.get(reference)
    except ray.exceptions.RayTaskError as exc:
        if isinstance(exc.cause, PainLensError):
            raise PainLensError(f"Run {run.key} stopped ({exc.cause}); finished runs are kept: run the same command "
                                "again to resume.") from None
        raise  # a bug: its traceback
    except ray.exceptions.RayError as exc:  # a worker or node that died more often than Ray retries
        raise PainLensError(f"Run {run.key} failed on the Ray cluster after {RETRIES} retries "
                            f"({type(exc).__name__}); finished runs are kept: run the same command again to "
                            "resume.") from None
