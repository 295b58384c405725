"""Metrics and summary that are never older than the predictions they describe.

Every metric row carries the digest of the predictions it was computed from (``done.json`` records
the digest of the predictions a run finished with). ``refresh_results`` rewrites ``metrics`` and
``summary`` after every finished run; ``current_results`` is what readers show: the stored rows whose
digest matches the run's current predictions, and a fresh computation for any run that was redone
(or interrupted mid-refresh) since, so a stale metric is never shown.
"""

from __future__ import annotations

import hashlib

import pandas as pd

from engine.artifacts import ExperimentStore, RunKey, frame_digest
from engine.evaluation.metrics import RUN_KEYS, run_metrics, summarize

DIGEST = "predictions_digest"


def run_digest(store: ExperimentStore, key: RunKey, predictions: pd.DataFrame | None = None) -> str:
    """The digest of a finished run's predictions (from ``done.json``; computed for older runs)."""
    digest = store.run_record(key).get(DIGEST)
    if digest:
        return str(digest)
    predictions = store.predictions(key) if predictions is None else predictions
    return frame_digest(predictions) if predictions is not None else ""


def _metrics_of(store: ExperimentStore, keys: list[RunKey]) -> pd.DataFrame:
    frames = []
    for key in keys:
        predictions = store.predictions(key)
        if predictions is not None and len(predictions):
            frames.append(run_metrics(predictions).assign(**{DIGEST: run_digest(store, key, predictions)}))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def _summary_stamp(metrics: pd.DataFrame) -> pd.Series:
    """Per (model, scenario): one digest of the run digests the group's summary comes from."""
    macro = metrics[metrics["class"] == "macro"].sort_values("fold")
    return macro.groupby(["model", "scenario"])[DIGEST].agg(
        lambda d: hashlib.sha256(",".join(d).encode()).hexdigest()[:16]).rename(DIGEST)


def summarize_stamped(metrics: pd.DataFrame) -> pd.DataFrame:
    summary = summarize(metrics)
    if summary.empty:
        return summary
    return summary.merge(_summary_stamp(metrics).reset_index(), on=["model", "scenario"], how="left")


def refresh_results(store: ExperimentStore) -> pd.DataFrame:
    """Recompute ``metrics`` and ``summary`` from every finished run's stored predictions and write
    them (atomically). Returns the metrics."""
    metrics = _metrics_of(store, store.finished_runs())
    store.write_table("metrics", metrics)
    store.write_table("summary", summarize_stamped(metrics) if len(metrics) else pd.DataFrame())
    return metrics


def current_results(store: ExperimentStore) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(metrics, summary) of the finished runs as their predictions are now.

    Stored rows are used where their digest matches the run's current predictions; runs that are new,
    redone or missing from the stored table are computed from their predictions."""
    finished = store.finished_runs()
    if not finished:
        return pd.DataFrame(), pd.DataFrame()
    stored = store.table("metrics")
    current = {(k.model, k.scenario, k.fold): run_digest(store, k) for k in finished}
    if stored is not None and len(stored) and DIGEST in stored:
        keys = list(zip(*(stored[c] for c in RUN_KEYS)))
        fresh = [current.get((m, s, int(f))) == d for (m, s, f), d in zip(keys, stored[DIGEST])]
        stored = stored[fresh]
        have = {(m, s, int(f)) for m, s, f in zip(*(stored[c] for c in RUN_KEYS))}
    else:
        stored, have = pd.DataFrame(), set()
    missing = [k for k in finished if (k.model, k.scenario, k.fold) not in have]
    metrics = pd.concat([f for f in (stored, _metrics_of(store, missing)) if len(f)], ignore_index=True)
    if metrics.empty:
        return metrics, pd.DataFrame()
    metrics = metrics.sort_values(RUN_KEYS, kind="stable").reset_index(drop=True)
    return metrics, _current_summary(store, metrics)


def _current_summary(store: ExperimentStore, metrics: pd.DataFrame) -> pd.DataFrame:
    """The stored summary's groups whose stamp matches the current metrics; the rest recomputed."""
    stamps = _summary_stamp(metrics)
    stored = store.table("summary")
    if stored is None or stored.empty or DIGEST not in stored:
        return summarize_stamped(metrics)
    expected = stored.set_index(["model", "scenario"]).index.map(stamps.to_dict())
    fresh = stored[expected.to_numpy() == stored[DIGEST].to_numpy()]
    done = set(zip(fresh["model"], fresh["scenario"]))
    stale = metrics[[(m, s) not in done for m, s in zip(metrics["model"], metrics["scenario"])]]
    parts = [fresh] + ([summarize_stamped(stale)] if len(stale) else [])
    return pd.concat(parts, ignore_index=True).sort_values(["model", "scenario", "class"]).reset_index(drop=True)
