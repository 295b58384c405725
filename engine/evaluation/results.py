"""Metrics and summary that are never older than the predictions they describe.

Every metric row carries the digest of the predictions it was computed from (a run's finish record holds
the digest of the predictions a run finished with). ``refresh_results`` brings ``metrics`` and
``summary`` up to date after every finished run; ``current_results`` is what readers show: the stored
rows whose digest matches the run's current predictions, and a fresh computation for any run that was
redone (or interrupted mid-refresh) since, so a stale metric is never shown.

The summary's rows of one (network, scenario) carry one stamp: the digest of that group's run digests
and of the bootstrap settings. Besides the mean and spread over folds it holds the pooled AUC and
accuracy with bootstrap intervals over subjects, the p-value of "AUC <= 0.5" and the ``learned``
verdict (``engine.evaluation.bootstrap``). Only what changed is recomputed: a refresh after one finished
run computes that run's metrics and bootstraps its group. The verdicts are Holm-corrected over the
networks of a scenario, so they are judged again over the whole summary every time it is assembled
(cheap: from the stored p-values): a network's verdict may change when another network's run finishes.
``refresh_results`` also brings the calibration and per-subject tables up to date
(``engine.evaluation.calibration``, ``engine.evaluation.subjects``).
"""

from __future__ import annotations

import hashlib

import pandas as pd

from engine.artifacts import ExperimentStore
from engine.errors import PainLensError
from engine.evaluation.bootstrap import BootstrapSettings, group_intervals, scenario_verdicts
from engine.evaluation.calibration import refresh_calibration
from engine.evaluation.freshness import DIGEST, GROUP, FinishedRuns, fresh_and_stale
from engine.evaluation.metrics import RUN_KEYS, run_metrics, summarize
from engine.evaluation.subjects import refresh_subjects


def bootstrap_settings(store: ExperimentStore) -> BootstrapSettings:
    """The experiment's bootstrap settings (``[evaluation] bootstrap_resamples``, seeded by the
    experiment's seed); the defaults for a store without a readable config."""
    try:
        config = store.config()
    except PainLensError:
        return BootstrapSettings()
    evaluation = getattr(config, "evaluation", None)
    resamples = getattr(evaluation, "bootstrap_resamples", BootstrapSettings.resamples)
    return BootstrapSettings(resamples=int(resamples), seed=int(config.experiment.seed))


def _summary_stamps(metrics: pd.DataFrame, settings: BootstrapSettings) -> dict[tuple[str, str], str]:
    """Per (model, scenario): one digest of the run digests the group's summary comes from and of
    the bootstrap settings (new settings make every interval stale)."""
    macro = metrics[metrics["class"] == "macro"].sort_values("fold")
    stamps = macro.groupby(GROUP)[DIGEST].agg(
        lambda d: hashlib.sha256(",".join([settings.tag(), *d]).encode()).hexdigest()[:16])
    return dict(stamps.items())


def summarize_stamped(metrics: pd.DataFrame, predictions: pd.DataFrame,
                      settings: BootstrapSettings = BootstrapSettings()) -> pd.DataFrame:
    """``summarize`` per (model, scenario, class) plus the group's intervals and ``learned``
    (repeated on its class rows) and its stamp. ``predictions``: every finished run of the groups."""
    summary = summarize(metrics)
    if summary.empty:
        return summary
    summary = summary.merge(group_intervals(predictions, settings), on=GROUP, how="left")
    stamps = _summary_stamps(metrics, settings)
    summary[DIGEST] = [stamps.get(g, "") for g in zip(summary["model"], summary["scenario"])]
    return summary


def refresh_results(store: ExperimentStore) -> pd.DataFrame:
    """Bring ``metrics``, ``summary``, calibration and the per-subject table up to date with every
    finished run's stored predictions (recomputing what changed) and write them, each atomically.
    Called after every finished run. Returns the metrics."""
    runs = FinishedRuns(store)
    metrics, summary = _current(runs)
    store.write_table("metrics", metrics)
    store.write_table("summary", summary)
    refresh_calibration(store, runs)
    refresh_subjects(store, runs)
    return metrics


def current_results(store: ExperimentStore) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(metrics, summary) of the finished runs as their predictions are now (readers: nothing is written).

    Stored rows are used where their digest matches the run's current predictions; runs that are new,
    redone or missing from the stored table are computed from their predictions, and so is the
    summary of every (network, scenario) whose runs changed."""
    return _current(FinishedRuns(store))


def _current(runs: FinishedRuns) -> tuple[pd.DataFrame, pd.DataFrame]:
    metrics = _current_metrics(runs)
    if metrics.empty:
        return metrics, pd.DataFrame()
    return metrics, _current_summary(runs, metrics)


def _current_metrics(runs: FinishedRuns) -> pd.DataFrame:
    stamps = {(k.model, k.scenario, k.fold): runs.digest(k) for k in runs.keys}
    stored = runs.store.table("metrics")
    if stored is not None and "fold" in stored:
        stored = stored.astype({"fold": int})
    fresh, stale = fresh_and_stale(stored, RUN_KEYS, stamps)
    computed = []
    for key in (k for k in runs.keys if (k.model, k.scenario, k.fold) in stale):
        predictions = runs.predictions([key])
        if len(predictions):
            computed.append(run_metrics(predictions).assign(**{DIGEST: runs.digest(key)}))
    parts = [f for f in (fresh, *computed) if len(f)]
    if not parts:
        return pd.DataFrame()
    return pd.concat(parts, ignore_index=True).sort_values(RUN_KEYS, kind="stable").reset_index(drop=True)


def _current_summary(runs: FinishedRuns, metrics: pd.DataFrame) -> pd.DataFrame:
    """The stored summary's groups whose stamp matches the current metrics; the rest recomputed; then
    every verdict judged again with all networks of its scenario (Holm)."""
    settings = bootstrap_settings(runs.store)
    fresh, stale = fresh_and_stale(runs.store.table("summary"), GROUP, _summary_stamps(metrics, settings))
    parts = [fresh] if len(fresh) else []
    if stale:
        in_stale = [(m, s) in stale for m, s in zip(metrics["model"], metrics["scenario"])]
        parts.append(summarize_stamped(metrics[in_stale], runs.of_groups(stale), settings))
    summary = pd.concat(parts, ignore_index=True).sort_values([*GROUP, "class"]).reset_index(drop=True)
    return scenario_verdicts(summary)
