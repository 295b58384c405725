"""``painlens run``: one experiment from config to artifacts, every stage cached or resumable.

This module composes the stages; none of them imports another: prepare data (``engine.experiment``),
train the grid (``engine.training.runner``, which explains each run while its model is in memory
through the ``after_run`` hook given here), explain and aggregate (``engine.explain``), evaluate
(``engine.evaluation``) and rate (``engine.ratings``). Each stage reads and writes the store.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from rich.table import Table

from engine.artifacts import ExperimentStore
from engine.config import SCENARIO_NAMES, ExperimentConfig, config_from_dict, load_config
from engine.errors import PainLensError
from engine.experiment import now, prepare_data, write_manifest, write_samples

log = logging.getLogger(__name__)


@dataclass
class RunReport:
    experiment: str
    store: Path
    grid: dict
    seconds: dict = field(default_factory=dict)
    summary: pd.DataFrame = field(default_factory=pd.DataFrame)
    notes: list[str] = field(default_factory=list)

    def render(self) -> Table:
        table = Table(title=f"{self.experiment}: {self.grid['ran']} runs trained, {self.grid['skipped']} already done "
                            f"(artifacts in {self.store})")
        for column in ("model", "scenario", "runs", "accuracy", "F1 (macro)"):
            table.add_column(column)
        if len(self.summary):
            macro = self.summary[self.summary["class"] == "macro"]
            for row in macro.itertuples():
                table.add_row(row.model, row.scenario, str(row.runs),
                              _mean_std(row.accuracy_mean, row.accuracy_std), _mean_std(row.f1_mean, row.f1_std))
        return table


def _mean_std(mean: float, std: float) -> str:
    return f"{mean:.3f}" if pd.isna(std) else f"{mean:.3f} ± {std:.3f}"


def resolve_selection(config: ExperimentConfig, models: list[str] | None, scenarios: list[str] | None):
    from engine.models.registry import MODELS

    chosen_models = list(models or config.training.models or MODELS)
    unknown = [m for m in chosen_models if m not in MODELS]
    if unknown:
        raise PainLensError(f"Unknown network(s) {', '.join(unknown)}; choose from {', '.join(MODELS)}.")
    chosen_scenarios = list(scenarios or config.scenarios.names)
    bad = [s for s in chosen_scenarios if s not in SCENARIO_NAMES]
    if bad:
        raise PainLensError(f"Unknown scenario(s) {', '.join(bad)}; choose from {', '.join(SCENARIO_NAMES)}.")
    return chosen_models, chosen_scenarios


def run_experiment(config_path: str | Path, models=None, scenarios=None, out=None, force=False,
                   progress=True, engine=None, address=None) -> RunReport:
    from engine.training.runner import run_grid

    config = with_execution(load_config(config_path), engine, address)
    chosen_models, chosen_scenarios = resolve_selection(config, models, scenarios)
    store = ExperimentStore.for_config(config, out)
    started, seconds = now(), {}
    previous = _previous_config(store)  # before the manifest below replaces it: what older runs were trained with

    clock = time.perf_counter()
    data = prepare_data(config, progress=progress)
    seconds["prepare"] = time.perf_counter() - clock
    write_samples(store, data)
    plan = {"models": chosen_models, "scenarios": chosen_scenarios}
    write_manifest(store, config, data, started, plan=plan, status="training")

    clock = time.perf_counter()
    grid = run_grid(config, store, data.paindb, data.cppain, chosen_models, chosen_scenarios,
                    force=force, progress=progress, after_run=explain_hook(config, store), previous=previous)
    seconds["train"] = time.perf_counter() - clock

    notes = [grid["changed"]] if grid.get("changed") else []
    clock = time.perf_counter()
    notes.extend(run_action_units_step(config, store))  # before the answer: its PSPI is one of the answer's inputs
    seconds["action_units"] = time.perf_counter() - clock
    clock = time.perf_counter()
    notes.extend(run_answer_step(config, store))
    seconds["answer"] = time.perf_counter() - clock
    clock = time.perf_counter()
    from engine.evaluation.remedies import refresh_remedies

    # The person's baseline and cp_adapt against the external scenario on CP-PAIN (after the AU step: its PSPI too)
    refresh_remedies(store)
    seconds["remedies"] = time.perf_counter() - clock
    if config.explain.enabled:
        from engine.explain.experiment_stage import explain_experiment

        clock = time.perf_counter()
        explained = explain_experiment(config, store, progress=progress)
        seconds["explain"] = time.perf_counter() - clock
        notes.extend(explained["notes"])
    notes.extend(run_ratings_step(config, store))
    write_manifest(store, config, data, started, plan=plan, status="finished", grid=grid, seconds=seconds)
    summary = store.table("summary")
    return RunReport(config.name, store.root, grid, seconds, summary if summary is not None else pd.DataFrame(), notes)


def _previous_config(store: ExperimentStore) -> ExperimentConfig | None:
    """The config of the store's last `painlens run`, None for a new store (or a manifest no longer valid)."""
    try:
        return store.config()
    except PainLensError:
        return None


def with_execution(config: ExperimentConfig, engine: str | None, address: str | None) -> ExperimentConfig:
    """The config with ``--engine``/``--address`` in [execution], checked like the file's own values."""
    changes = {"engine": engine} if engine else {}
    if address:
        changes.update(address=address, engine=engine or "ray")  # an address is a Ray cluster's
    elif engine == "local":
        changes["address"] = ""
    if not changes:
        return config
    execution = dataclasses.replace(config.execution, **changes)
    config_from_dict({"execution": dataclasses.asdict(execution)}, source="painlens run")  # the file's checks
    return dataclasses.replace(config, execution=execution)


def explain_hook(config: ExperimentConfig, store: ExperimentStore):
    """What the training child does with each run's model before it is dropped: its LIME masks
    (picklable: it crosses into the child process). None when explanations are off."""
    if not config.explain.enabled:
        return None
    from engine.explain.run_stage import explain_run

    return functools.partial(explain_run, config=config, store=store)


def run_answer_step(config: ExperimentConfig, store: ExperimentStore) -> list[str]:
    """Fit the served answer's parameters on the development data (``answer.json``) and evaluate the answer as
    served on CP-PAIN (``answer_evaluation``); returns notes."""
    from engine.evaluation.answer import AnswerBasis
    from engine.evaluation.answer_evaluation import evaluate_answer
    from engine.evaluation.answer_fit import refresh_answer

    notes = []
    if config.evaluation.serve_cp_adapt:  # research: the served models are the external ones adapted on all of CP-PAIN
        from engine.evaluation.adapted_answer import refresh_served_adaptation

        notes = refresh_served_adaptation(config, store)
    parameters = refresh_answer(store, config.evaluation)
    basis = AnswerBasis.from_store(store)
    table = evaluate_answer(store, basis, seed=config.experiment.seed)
    videos = config.dataset_path("videos")
    if parameters.get("used") and not table.empty and (videos / "clips.csv").is_file():
        table = pd.concat([table, pd.DataFrame(answer_test_retest(store, videos, config.experiment.seed))],
                          ignore_index=True)
    store.write_table("answer_evaluation", table)
    if not parameters.get("used"):
        return [*notes, "No network learned on PAIN-DB's subject-wise held-out faces with its fold models kept, so the "
                "served answer gives no number (answer.json says why per network)."]
    return notes


def run_action_units_step(config: ExperimentConfig, store: ExperimentStore) -> list[str]:
    """The action-unit estimator: fitted on UNBC, evaluated subject-wise, the model as a third rater on
    CP-PAIN (``engine.evaluation.action_units``; skipped when its artifacts match); returns notes."""
    from engine.evaluation.action_units import run_action_units

    return run_action_units(config, store)


def answer_test_retest(store: ExperimentStore, videos: Path, seed: int) -> list[dict]:
    """The served answer's test-retest ICC on the synthetic clips (``engine.evaluation.answer_evaluation``):
    the same person in the same state about a second apart should get the same answer; and how often it
    calls their calm stretches and their pain segments pain."""
    from engine.evaluation.answer_evaluation import clip_answers, clip_state_rows, retest_pairs, retest_rows
    from engine.native_log import import_tensorflow_quietly
    from engine.predict import Predictor

    import_tensorflow_quietly()
    predictor = Predictor(store.root, warm_up=False, learned_first=True)
    frames = clip_answers(predictor, videos)
    return retest_rows(retest_pairs(frames), seed) + clip_state_rows(frames, seed)


def run_ratings_step(config: ExperimentConfig, store: ExperimentStore) -> list[str]:
    """Inter-rater agreement of the CP-PAIN ratings, and models versus clinicians; returns notes."""
    from engine.ratings import rate_experiment

    report = rate_experiment(config, store)
    if report is None:
        return ["CP-PAIN has no ratings.csv: the rater agreement step was skipped."]
    return list(report.notes)
