"""The randomisation sanity check (Adebayo et al., 2018, "Sanity checks for saliency maps").

A map that explains the network must change when the network does. For a few images, each explainer's
map with the trained weights is compared with its map after the weights are randomised cumulatively
from the top (cascading randomisation): first the top weighted layer, then the rest of the top half of
the weighted layers, then the rest of them (each weight is redrawn once, and stays redrawn for the
later stages). The comparison is Spearman's rank correlation over the pixels; it must fall.
An explainer whose maps still correlate at ``SANITY_LIMIT`` or more with every layer randomised is
*flagged*: its maps say more about the image than about the network.

Randomised means: every trainable weight is redrawn from a normal distribution with that weight's own
mean and standard deviation (the scale is kept, so activations neither vanish nor explode and a map
cannot change merely by going flat; a weight that is constant, e.g. a zero bias, stays). Non-trainable
state (batch-norm statistics) is kept. The trained weights are restored afterwards, whatever happens.

An explainer is a function ``(model, images (n, S, S, 3) uint8, labels (n,)) -> maps (n, S, S)``; LIME's
is called with the same seed per image as the original map, so its superpixels and samples are the same
and only the network differs.
"""

from __future__ import annotations

import warnings
from contextlib import contextmanager
from typing import Callable, Iterator

import numpy as np
import pandas as pd

SANITY_LIMIT = 0.5  # median rank correlation with every layer randomised at or above this: flagged
STAGES = ("top_layer", "top_half", "all_layers")

Explainer = Callable[[object, np.ndarray, np.ndarray], np.ndarray]


def weighted_layers(model) -> list[list]:
    """The model's trainable variables grouped by the layer that owns them, from the input up."""
    groups: dict[str, list] = {}
    for variable in model.trainable_variables:
        owner = variable.path.rsplit("/", 1)[0] if "/" in variable.path else variable.path
        groups.setdefault(owner, []).append(variable)
    return list(groups.values())


def stage_layers(n_layers: int) -> dict[str, int]:
    """How many weighted layers (counted from the top) each stage randomises."""
    return {"top_layer": min(1, n_layers), "top_half": max(1, (n_layers + 1) // 2), "all_layers": n_layers}


@contextmanager
def randomised(model, top_layers: int, rng: np.random.Generator) -> Iterator[None]:
    """The model with its ``top_layers`` highest weighted layers redrawn; restored on exit."""
    layers = weighted_layers(model)
    with _restored(model):
        for group in layers[len(layers) - top_layers:] if top_layers else []:
            for variable in group:
                _redraw(variable, rng)
        yield


@contextmanager
def _restored(model) -> Iterator[None]:
    """Every trainable weight as it is now, put back on exit whatever happens."""
    variables = list(model.trainable_variables)
    saved = [np.array(v.numpy()) for v in variables]
    try:
        yield
    finally:
        for variable, value in zip(variables, saved):
            variable.assign(value)


def _redraw(variable, rng: np.random.Generator) -> None:
    """Redraw one weight from a normal distribution with its own mean and standard deviation (float32
    draws: the weights are float32, and drawing float64 first took twice as long on a 38 M-weight network)."""
    value = np.asarray(variable.numpy())
    mean, std = float(value.mean()), float(value.std())
    drawn = rng.standard_normal(value.shape, dtype=np.float32)
    drawn *= np.float32(std)
    drawn += np.float32(mean)
    variable.assign(drawn.astype(value.dtype, copy=False))


def rank_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rho between two maps over their pixels; NaN when either is constant."""
    from scipy.stats import spearmanr

    a, b = np.ravel(a), np.ravel(b)
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(spearmanr(a, b).statistic)


def sanity_check(model, images: np.ndarray, labels: np.ndarray, explainers: dict[str, Explainer],
                 originals: dict[str, np.ndarray] | None = None, seed: int = 0) -> pd.DataFrame:
    """One row per (explainer, stage, image): ``layers_randomised`` (of ``layers``) and ``rank_correlation``
    between the image's map under that stage and its map with the trained weights (``originals`` when
    given, else computed here)."""
    originals = dict(originals or {})
    for name, explain in explainers.items():
        if name not in originals:
            originals[name] = explain(model, images, labels)
    layers = weighted_layers(model)
    n_layers = len(layers)
    rows = []
    with _restored(model):
        done = 0  # the cascade: each stage redraws only the layers below those already redrawn
        for stage, count in stage_layers(n_layers).items():
            rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, count])
            for group in layers[n_layers - count:n_layers - done]:
                for variable in group:
                    _redraw(variable, rng)
            done = count
            maps = {name: explain(model, images, labels) for name, explain in explainers.items()}
            rows += _stage_rows(maps, originals, stage, count, n_layers)
    return pd.DataFrame(rows, columns=["explainer", "stage", "layers_randomised", "layers", "image", "rank_correlation"])


def _stage_rows(maps: dict[str, np.ndarray], originals: dict[str, np.ndarray], stage: str, count: int,
                n_layers: int) -> list[dict]:
    rows = []
    for name, stage_maps in maps.items():
        for i, (before, after) in enumerate(zip(originals[name], stage_maps)):
            rows.append({"explainer": name, "stage": stage, "layers_randomised": count, "layers": n_layers,
                         "image": i, "rank_correlation": _map_change(before, after)})
    return rows


def _map_change(before: np.ndarray, after: np.ndarray) -> float:
    """Rank correlation of a map before and after randomisation; a map that went flat kept none of its
    ranking (0), a map that was flat to begin with cannot be judged (NaN)."""
    if np.ptp(before) == 0:
        return float("nan")
    return 0.0 if np.ptp(after) == 0 else rank_correlation(before, after)


def verdicts(checks: pd.DataFrame, keys: tuple[str, ...] = ("explainer",)) -> pd.DataFrame:
    """Per ``keys``: median rank correlation at each stage and ``flagged`` (with all layers randomised
    still at SANITY_LIMIT or more); ``verdict`` in words."""
    columns = [*keys, *(f"rho_{s}" for s in STAGES), "flagged", "verdict", "images"]
    if checks is None or checks.empty:
        return pd.DataFrame(columns=columns)
    medians = checks.groupby([*keys, "stage"])["rank_correlation"].median().unstack("stage")  # NaN groups kept
    images = checks[checks["stage"] == "all_layers"].groupby(list(keys)).size()
    rows = []
    for index, row in medians.iterrows():
        rho = {s: float(row.get(s, np.nan)) for s in STAGES}
        final = rho["all_layers"]
        flagged = bool(np.isfinite(final) and final >= SANITY_LIMIT)
        verdict = ("undefined: the trained network's maps are flat" if not np.isfinite(final) else
                   "flagged: maps do not change when the network does" if flagged else "passes")
        keyed = dict(zip(keys, index if isinstance(index, tuple) else (index,)))
        rows.append({**keyed, **{f"rho_{s}": v for s, v in rho.items()},
                     "flagged": flagged,
                     "verdict": verdict, "images": int(images.get(index, 0))})
    return pd.DataFrame(rows, columns=columns)
