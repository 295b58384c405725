"""The grid runner: every (model, scenario, fold) run of an experiment, resumable.

Each run is executed by ``engine.training.executor.execute_run`` (in a child process per network, or
as a Ray task), which writes it through the store and marks it finished last. A run that is not
finished is redone from scratch; readers only trust finished runs. After every finished run the
metrics are recomputed from the stored predictions (``engine.evaluation.results.refresh_results``), so
an interrupted-then-resumed grid gives the same metrics as one that was never interrupted, and no
metric is older than its run. Before any run starts, the temp files of killed writes are removed
(``ExperimentStore.remove_stale_temp_files``).

The runner knows nothing of later stages: a caller that wants more done while a run's model is in
memory (the pipeline explains it) passes ``after_run``, a picklable callable
``after_run(model, x_test, predictions)`` executed in the training child.
"""

from __future__ import annotations

import multiprocessing
import os
import queue
import signal

import pandas as pd

from engine.artifacts import ExperimentStore, RunKey
from engine.config import SCENARIO_NAMES, ExperimentConfig
from engine.errors import PainLensError
from engine.evaluation.results import refresh_results
from engine.progress import progress_bar
from engine.training.executor import ArrayCache, PlannedRun, execute_run
from engine.training.run_settings import changed_settings, run_settings
from engine.training.scenarios import make_splits


def plan_runs(config: ExperimentConfig, paindb: pd.DataFrame, cppain: pd.DataFrame,
              models: list[str], scenarios: list[str]) -> list[PlannedRun]:
    runs = []
    for scenario in scenarios:
        splits = make_splits(scenario, paindb, cppain, config.scenarios.folds, config.scenarios.seeds,
                             config.experiment.seed)
        runs.extend(PlannedRun(model, split) for model in models if scenario in config.scenarios.for_model(model)
                    for split in splits)
    # Model-major order: a network's runs share its input size, so its arrays are loaded once. Scenarios in
    # the engine's order, so a network's cp_adapt runs come after the external runs whose models they adapt.
    return sorted(runs, key=lambda run: (models.index(run.model), SCENARIO_NAMES.index(run.split.scenario), run.split.fold))


def run_grid(config: ExperimentConfig, store: ExperimentStore, paindb: pd.DataFrame, cppain: pd.DataFrame,
             models: list[str], scenarios: list[str], force: bool = False, progress: bool = True,
             after_run=None, previous: ExperimentConfig | None = None) -> dict:
    """Run every planned run that is not finished yet, or finished with other settings (all of them
    with ``force``); return counts (planned, ran, skipped, redone) and ``changed``: a sentence on the
    runs redone because their settings changed ("" when none).

    A finished run's settings are those its run record holds (``run_settings``); a run finished
    before they were recorded is judged by ``previous``, the config the store's manifest held before
    this command (the one it was trained with), and kept when there is none.

    Each network's runs execute in a child process of their own: Keras/TensorFlow keep memory from
    run to run in one process (a 60-run CPU grid grew past 16 GB), and a process that ends returns it.
    ``[execution] local_workers`` networks train at once. The metrics are refreshed after every finished run.
    """
    from engine.native_memory import for_child_processes

    for_child_processes()  # each network trains in a child process: give it the allocator settings
    # A killed command's half-written files, before this one's children and Ray tasks start writing.
    store.remove_stale_temp_files()
    runs = plan_runs(config, paindb, cppain, models, scenarios)
    outdated = {} if force else _outdated_runs(config, store, runs, previous)
    todo = [run for run in runs if force or not store.is_done(run.key) or run.key in outdated]

    def finished() -> None:
        refresh_results(store)
        bar.advance(task)

    with progress_bar(progress) as bar:
        task = bar.add_task("training", total=len(todo))
        if config.execution.engine == "ray":  # each run one Ray task (engine/training/ray_engine.py)
            from engine.training.ray_engine import run_on_ray

            bar.update(task, description=f"{len(todo)} runs on Ray")
            if todo:
                run_on_ray(config, store, todo, paindb, cppain, after_run, on_done=finished)
        else:
            groups = [[run for run in todo if run.model == model] for model in models]
            groups = [group for group in groups if group]

            def training(names: list[str]) -> None:
                bar.update(task, description=f"{', '.join(names)}: {sum(len(g) for g in groups if g[0].model in names)} runs")

            _run_in_children(config, store, groups, paindb, cppain, after_run, on_done=finished, on_start=training)
    refresh_results(store)  # also when nothing ran: results of an older layout are rewritten current
    return {"planned": len(runs), "ran": len(todo), "skipped": len(runs) - len(todo), "redone": len(outdated),
            "changed": _redone_sentence(outdated)}


def _outdated_runs(config: ExperimentConfig, store: ExperimentStore, runs: list[PlannedRun],
                   previous: ExperimentConfig | None) -> dict[RunKey, list[str]]:
    """Finished runs whose settings differ from ``config``'s, with what changed."""
    outdated = {}
    for run in runs:
        if not store.is_done(run.key):
            continue
        current = run_settings(config, run.model, run.split.scenario)
        recorded = store.run_record(run.key).get("settings")
        if not isinstance(recorded, dict):  # none (an older PainLens) or unreadable: judge by the previous config
            recorded = None
        if recorded is None and previous is not None and run.model in previous.training.models:
            recorded = run_settings(previous, run.model, run.split.scenario)
        changes = changed_settings(recorded, current) if recorded is not None else []
        if changes:
            outdated[run.key] = changes
    return outdated


def _redone_sentence(outdated: dict[RunKey, list[str]]) -> str:
    if not outdated:
        return ""
    by_change: dict[tuple[str, ...], list[RunKey]] = {}
    for key, changes in outdated.items():
        by_change.setdefault(tuple(changes), []).append(key)
    parts = [f"{', '.join(sorted({k.model for k in keys}))} ({len(keys)} run{'s' if len(keys) != 1 else ''}): "
             f"{', '.join(changes)}" for changes, keys in by_change.items()]
    return (f"{len(outdated)} finished run{'s were' if len(outdated) != 1 else ' was'} trained with other settings "
            f"and {'were' if len(outdated) != 1 else 'was'} redone: {'; '.join(parts)}.")


def _run_in_children(config: ExperimentConfig, store: ExperimentStore, groups: list[list[PlannedRun]],
                     paindb: pd.DataFrame, cppain: pd.DataFrame, after_run, on_done, on_start) -> None:
    """Each group (one network's runs) in a child process of its own, ``[execution] local_workers`` at once,
    in the given order. A child that fails stops no other: the running ones finish their networks (so
    nothing they did is lost), no new one starts, and the failures are reported together at the end."""
    context = multiprocessing.get_context("spawn")
    messages = context.Queue()  # (network, "done" | why it stopped), from every child
    waiting = list(groups)
    running: dict[str, multiprocessing.Process] = {}
    errors: dict[str, str] = {}
    workers = config.execution.local_workers

    def handle(model: str, message: str) -> None:
        if message == "done":
            on_done()
        else:
            errors[model] = message

    while waiting or running:
        if waiting and len(running) < workers and not errors:
            group = waiting.pop(0)
            child = context.Process(target=_child_main, args=(config, store, group, paindb, cppain, after_run,
                                                              messages), name=f"painlens-train-{group[0].model}")
            child.start()
            running[group[0].model] = child
            on_start(list(running))
            continue
        try:
            handle(*messages.get(timeout=0.5))
        except queue.Empty:
            pass
        ended = [model for model, child in running.items() if not child.is_alive()]
        if ended:
            # An ended child's messages reached the pipe before it exited: read them before judging it.
            while not messages.empty():
                handle(*messages.get())
            for model in ended:
                child = running.pop(model)
                child.join()
                if child.exitcode != 0 and model not in errors:
                    errors[model] = _ended_how(child.exitcode)
            if running:
                on_start(list(running))
    if errors:
        stopped = "; ".join(f"{model} ({detail})" for model, detail in errors.items())
        raise PainLensError(f"Training stopped: {stopped}; finished runs are kept: run the same command again to "
                            "resume.")


def _ended_how(exitcode: int) -> str:
    """A child's end in words: a negative exit code is the signal that killed it (9: often the kernel's
    out-of-memory killer)."""
    if exitcode >= 0:
        return f"exit code {exitcode}"
    name = signal.Signals(-exitcode).name if -exitcode in signal.valid_signals() else f"signal {-exitcode}"
    hint = ": the system may have run out of memory (try [execution] local_workers = 1)" if -exitcode == 9 else ""
    return f"killed by {name}{hint}"


def _child_main(config, store, group, paindb, cppain, after_run, messages) -> None:
    _die_with_parent()
    if os.environ.get("KERAS_BACKEND", "tensorflow") == "tensorflow":
        from engine.native_log import import_tensorflow_quietly

        import_tensorflow_quietly()
    arrays = ArrayCache(paindb, cppain)
    try:
        for run in group:
            execute_run(config, store, run, paindb, cppain, arrays, after_run)
            messages.put((run.model, "done"))
    except PainLensError as exc:
        messages.put((group[0].model, str(exc)))
        raise SystemExit(1) from None


def _die_with_parent() -> None:
    # A killed runner must not leave its training child running on: ask Linux to kill it too.
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
