"""Freshness: is a stored table still that of the finished runs' current predictions?

A finished run's record holds the digest of the predictions it finished with; every table computed
from predictions (metrics, summary, calibration, per-subject results) stamps its rows with the digests
they came from. ``FinishedRuns`` reads a store's finished runs once for a whole refresh, and
``fresh_and_stale`` splits a stored table into its current rows and the keys to recompute.
"""

from __future__ import annotations

import hashlib

import pandas as pd

from engine.artifacts import ExperimentStore, RunKey, frame_digest

DIGEST = "predictions_digest"
GROUP = ["model", "scenario"]


def run_digest(store: ExperimentStore, key: RunKey, predictions: pd.DataFrame | None = None) -> str:
    """The digest of a finished run's predictions (from its finish record; computed for older runs)."""
    digest = store.run_record(key).get(DIGEST)
    if digest:
        return str(digest)
    predictions = store.predictions(key) if predictions is None else predictions
    return frame_digest(predictions) if predictions is not None else ""


class FinishedRuns:
    """A store's finished runs as they are now: their keys, prediction digests and group stamps, and
    their predictions, each file read at most once (one refresh shares one of these)."""

    def __init__(self, store: ExperimentStore):
        self.store = store
        self.keys = store.finished_runs()
        self._digests: dict[RunKey, str] = {}
        self._predictions: dict[RunKey, pd.DataFrame | None] = {}

    def digest(self, key: RunKey) -> str:
        if key not in self._digests:
            self._digests[key] = run_digest(self.store, key)
        return self._digests[key]

    def predictions(self, keys: list[RunKey]) -> pd.DataFrame:
        """The stored, non-empty predictions of ``keys``, concatenated (empty frame when none)."""
        for key in keys:
            if key not in self._predictions:
                self._predictions[key] = self.store.predictions(key)
        frames = [self._predictions[k] for k in keys if self._predictions[k] is not None and len(self._predictions[k])]
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

    def of_groups(self, groups: set[tuple[str, str]]) -> pd.DataFrame:
        """Predictions of every finished run of the (model, scenario) ``groups``."""
        return self.predictions([k for k in self.keys if (k.model, k.scenario) in groups])

    def group_stamps(self) -> dict[tuple[str, str], str]:
        """Per (model, scenario): a digest of its runs' prediction digests, in fold order. Tables computed
        from a group's predictions carry it, so a reader can tell whether they are current."""
        by_group: dict[tuple[str, str], list[str]] = {}
        for key in self.keys:
            by_group.setdefault((key.model, key.scenario), []).append(self.digest(key))
        return {g: hashlib.sha256(",".join(d).encode()).hexdigest()[:16] for g, d in by_group.items()}


def fresh_and_stale(stored: pd.DataFrame | None, keys: list[str], stamps: dict[tuple, str]) -> tuple[pd.DataFrame, set]:
    """Split a stored stamped table by its key columns ``keys``: (its rows whose ``DIGEST`` equals the
    current stamp of their key, the keys of ``stamps`` with no such rows). Keys are tuples."""
    if stored is None or stored.empty or DIGEST not in stored or any(k not in stored for k in keys):
        return pd.DataFrame(), set(stamps)
    row_keys = list(stored[keys].itertuples(index=False, name=None))
    keep = [stamps.get(k) == d for k, d in zip(row_keys, stored[DIGEST])]
    have = {k for k, ok in zip(row_keys, keep) if ok}
    return stored[keep].reset_index(drop=True), set(stamps) - have
