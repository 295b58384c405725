"""The randomisation sanity check (Adebayo et al., 2018, "Sanity checks for saliency maps"), and LIME's
stability over its sampling seed.

A map that explains the network must change when the network does. For each image (at least
``MIN_IMAGES`` per network for a verdict that counts), each explainer's map with the trained weights is
compared with its map after the weights are randomised cumulatively from the top (cascading
randomisation): first the top weighted layer, then the rest of the top half of the weighted layers, then
the rest of them (each weight is redrawn once, and stays redrawn for the later stages). As the paper does,
two comparisons: Spearman's rank correlation of the *absolute* maps (a map that only flips its sign has
not changed what it points at) and SSIM of the maps normalized to [0, 1] (absolute value over its maximum).
Both must fall. The *null reference* is the same two numbers between the maps of two independently
randomised networks (the cascade's last stage and a second full randomisation with another seed): the
similarity two maps reach from the image alone, whatever the network. An explainer whose maps still
correlate at ``SANITY_LIMIT`` or more with every layer randomised is *flagged*: its maps say more about
the image than about the network; the verdict says on how many images it rests.

Randomised means: every trainable weight is redrawn from a normal distribution with that weight's own
mean and standard deviation (the scale is kept, so activations neither vanish nor explode and a map
cannot change merely by going flat; a weight that is constant, e.g. a zero bias, stays). Non-trainable
state (batch-norm statistics) is kept. The trained weights are restored afterwards, whatever happens.

An explainer is a function ``(model, images (n, S, S, 3) uint8, labels (n,)) -> maps (n, S, S)``; LIME's
is called with the same seed per image as the original map, so its superpixels and samples are the same
and only the network differs.

What it costs: LIME's cost is the forward passes of its perturbed images, and the check needs a LIME pass of
every image per stage. The first two stages keep the bottom half of the weighted layers as trained, so their
networks compute, on LIME's perturbed images, the same activations below the first redrawn layer as the trained
network, which computes them anyway in the run's own LIME pass: ``CascadeTap`` runs the redrawn layers of both
stages on those activations in that pass, so a stage costs its redrawn layers' share of a forward pass (for the
demo's scratch networks at 32 px: WeiNet 66 %, AlexNet 67 %, SilNet 38 %, SongNet 7 % for the second stage, under
1 % for the first) instead of a LIME pass, and the check pays full LIME passes only for the two fully randomised
networks (all layers, the null); the trained maps are the run's own.
"""

from __future__ import annotations

import warnings
from contextlib import contextmanager
from typing import Callable, Iterator

import numpy as np
import pandas as pd

from engine.explain.lime_masks import BatchedModel

SANITY_LIMIT = 0.5  # median rank correlation with every layer randomised at or above this: flagged
MIN_IMAGES = 10  # Adebayo et al. judge over many images; fewer gives a verdict marked as resting on too few
STAGES = ("top_layer", "top_half", "all_layers")
NULL = "null"  # the stage comparing two independently randomised networks
CHECK_COLUMNS = ["explainer", "stage", "layers_randomised", "layers", "image", "rank_correlation", "ssim"]

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
    """Redraw one weight in place (``redrawn``)."""
    variable.assign(redrawn(np.asarray(variable.numpy()), rng))


def redrawn(value: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A weight's redrawn value: normal with the weight's own mean and standard deviation (float32 draws: the
    weights are float32, and drawing float64 first took twice as long on a 38 M-weight network)."""
    mean, std = float(value.mean()), float(value.std())
    drawn = rng.standard_normal(value.shape, dtype=np.float32)
    drawn *= np.float32(std)
    drawn += np.float32(mean)
    return drawn.astype(value.dtype, copy=False)


def _stage_rng(seed: int, count: int) -> np.random.Generator:
    """The draws of the cascade's stage that randomises the top ``count`` weighted layers."""
    return np.random.default_rng([int(seed) & 0xFFFFFFFF, count])


def cascade(layers: list[list], seed: int, drawn: dict | None = None) -> Iterator[tuple[str, int, list[tuple]]]:
    """The cascade's stages in order: (stage, weighted layers randomised, [(variable, redrawn value)] the stage
    adds: the layers below those already redrawn, drawn from the stage's own generator), the cascade's own and
    ``CascadeTap``'s one source. Lazy: a stage's values are drawn when it is reached. A stage whose every value
    ``drawn`` (variable path -> value, a ``CascadeTap``'s) already holds takes them from there: the same draws."""
    n_layers, done = len(layers), 0
    for stage, count in stage_layers(n_layers).items():
        variables = [variable for group in layers[n_layers - count:n_layers - done] for variable in group]
        if drawn and all(variable.path in drawn for variable in variables):
            values = [drawn[variable.path] for variable in variables]
        else:
            rng = _stage_rng(seed, count)
            values = [redrawn(np.asarray(variable.numpy()), rng) for variable in variables]
        yield stage, count, list(zip(variables, values))
        done = count


TAPPED = STAGES[:2]  # the stages that keep the bottom layers as trained, read off the trained network's pass


class CascadeTap(BatchedModel):
    """LIME's classifier (``BatchedModel``) on the trained network that also keeps, from the same forward pass, the
    probabilities of the cascade's first two stages (``TAPPED``: top layer, top half redrawn), exactly as the
    cascade redraws them.

    Why: those stages redraw only the top of the network; below the first redrawn layer their networks are the
    trained one, whose activations on LIME's perturbed images the run's own LIME pass of the sanity images computes
    anyway. The tap model feeds those activations to copies of the layers above, carrying the stage's redrawn
    weights, so a stage costs its redrawn layers, not a LIME pass. ``take()`` hands back, per tapped stage, the
    redrawn networks' probabilities of the samples since the last take. ``CascadeTap.of(model, seed, batch_size)``
    taps the stages whose redrawn layers are a chain of plain layers at the top of ``model.layers`` (each fed by
    the one below; true of the scratch networks, not of networks whose top half has branches or a nested model:
    those stages are left to the cascade, ``stages`` says which are tapped); None when none is."""

    def __init__(self, both, batch_size: int, stages: tuple[str, ...], drawn: dict):
        super().__init__(both, batch_size)
        self.stages = stages
        self.drawn = drawn  # variable path -> its redrawn copy: ``sanity_check(drawn=...)`` draws those stages no more
        self._tapped: list[list[np.ndarray]] = []

    @classmethod
    def of(cls, model, seed: int, batch_size: int) -> "CascadeTap | None":
        import keras

        layers = weighted_layers(model)
        counts = stage_layers(len(layers))
        chains = {stage: _top_chain(model, {v.path for group in layers[len(layers) - counts[stage]:] for v in group})
                  for stage in TAPPED if stage in counts}
        stages = tuple(stage for stage, chain in chains.items() if chain is not None)
        if not stages:
            return None
        outputs, values, copies = [model.outputs[0]], {}, {}
        for stage, _, draws in cascade(layers, seed):  # lazy: no stage past the last tapped one is drawn
            values.update((variable.path, value) for variable, value in draws)  # a stage keeps the earlier ones' draws
            if stage in stages:
                output, made = _redrawn_copy(chains[stage], values, stage)
                outputs.append(output)
                copies.update(made)
            if stage == stages[-1]:
                break
        return cls(keras.Model(model.inputs, outputs), batch_size, stages, copies)

    def _predict(self, images: np.ndarray, n: int) -> np.ndarray:
        trained, *redrawn_ = self.model.predict_on_batch(images)
        self._tapped.append([np.asarray(r, dtype=np.float32)[:n] for r in redrawn_])
        return np.asarray(trained, dtype=np.float32)

    def take(self) -> dict[str, np.ndarray]:
        """Tapped stage -> (samples, n_classes): its network's probabilities of the samples classified since the
        last take."""
        tapped, self._tapped = self._tapped, []
        return {stage: np.concatenate([t[i] for t in tapped]) if tapped else np.zeros((0, 2), dtype=np.float32)
                for i, stage in enumerate(self.stages)}


def _top_chain(model, randomised: set[str]) -> list | None:
    """The layers of ``model`` from the lowest one holding a ``randomised`` weight up to the output, when they are a
    chain of plain layers (each fed by the one below, the last giving the model's output); else None."""
    import keras

    owners = [i for i, layer in enumerate(model.layers) if {v.path for v in layer.trainable_variables} & randomised]
    if not owners:
        return None
    chain = model.layers[owners[0]:]
    if any(isinstance(layer, keras.Model) or len(layer._inbound_nodes) != 1 for layer in chain):
        return None  # a nested model or a layer called more than once: not copied layer by layer
    if not isinstance(chain[0].input, keras.KerasTensor) or chain[-1].output is not model.outputs[0]:
        return None
    if any(layer.input is not below.output for below, layer in zip(chain, chain[1:])):
        return None
    return chain


def _redrawn_copy(chain: list, drawn: dict[str, np.ndarray], stage: str) -> tuple[object, dict]:
    """The output tensor of copies of ``chain``'s layers fed by the chain's own input, each weight as ``drawn``
    redrew it (by variable path), else as trained; and the copies' redrawn variables by the original's path."""
    x, copies = chain[0].input, {}
    for layer in chain:
        config = layer.get_config()  # zeros to start with: every weight is assigned below (drawing AlexNet's took 0.3 s)
        config.update({key: "zeros" for key in config if key.endswith("_initializer")}, name=f"{layer.name}_{stage}")
        copy = type(layer).from_config(config)
        x = copy(x)
        if [w.shape for w in copy.weights] != [w.shape for w in layer.weights]:
            raise ValueError(f"the copy of layer {layer.name} does not have its weights")
        for mine, trained in zip(copy.weights, layer.weights):
            if trained.path in drawn:
                mine.assign(drawn[trained.path])
                copies[trained.path] = mine
            else:
                mine.assign(trained.numpy())
    return x, copies


def rank_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rho between two maps over their pixels; NaN when either is constant."""
    from scipy.stats import spearmanr

    a, b = np.ravel(a), np.ravel(b)
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(spearmanr(a, b).statistic)


def normalized(heatmap: np.ndarray) -> np.ndarray:
    """A map's absolute value over its maximum, in [0, 1] (all zeros for a zero map): what SSIM compares."""
    heat = np.abs(np.asarray(heatmap, dtype=np.float64))
    top = heat.max() if heat.size else 0.0
    return heat / top if top > 0 else np.zeros_like(heat)


def structural_similarity(a: np.ndarray, b: np.ndarray) -> float:
    """SSIM of two normalized maps (data range 1); NaN for maps under 7 px a side (SSIM's window)."""
    from skimage.metrics import structural_similarity as ssim

    a, b = normalized(a), normalized(b)
    if min(a.shape) < 7:
        return float("nan")
    return float(ssim(a, b, data_range=1.0))


def sanity_check(model, images: np.ndarray, labels: np.ndarray, explainers: dict[str, Explainer],
                 originals: dict[str, np.ndarray] | None = None, seed: int = 0,
                 made: dict[str, dict[str, np.ndarray]] | None = None, drawn: dict | None = None) -> pd.DataFrame:
    """One row per (explainer, stage, image): ``layers_randomised`` (of ``layers``), ``rank_correlation``
    (Spearman, absolute maps) and ``ssim`` (normalized maps) between the image's map under that stage and
    its map with the trained weights (``originals`` when given, else computed here); stage ``null``
    compares the maps of two independently randomised networks. ``made``: explainer -> stage -> maps
    already made for that stage (LIME's maps of the first stages from a ``CascadeTap``), not made again; ``drawn``:
    the tap's redrawn weights (``CascadeTap.drawn``), not drawn again (``cascade``)."""
    made = made or {}
    originals = dict(originals or {})
    for name, explain in explainers.items():
        if name not in originals:
            originals[name] = explain(model, images, labels)
    layers = weighted_layers(model)
    n_layers = len(layers)
    rows = []
    with _restored(model):
        maps = {}
        for stage, count, draws in cascade(layers, seed, drawn):  # each stage redraws the layers below those redrawn
            for variable, value in draws:
                variable.assign(getattr(value, "value", value))  # a tap's copy is a variable: its value
            maps = {name: made[name][stage] if stage in made.get(name, {}) else explain(model, images, labels)
                    for name, explain in explainers.items()}
            rows += _stage_rows(maps, originals, stage, count, n_layers)
        # The null reference: every layer redrawn again, independently of the cascade's draws.
        rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, n_layers, 1])
        for group in layers:
            for variable in group:
                _redraw(variable, rng)
        other = {name: explain(model, images, labels) for name, explain in explainers.items()}
        rows += _stage_rows(other, maps, NULL, n_layers, n_layers)
    return pd.DataFrame(rows, columns=CHECK_COLUMNS)


def _stage_rows(maps: dict[str, np.ndarray], originals: dict[str, np.ndarray], stage: str, count: int,
                n_layers: int) -> list[dict]:
    rows = []
    for name, stage_maps in maps.items():
        for i, (before, after) in enumerate(zip(originals[name], stage_maps)):
            rho, similarity = _map_change(before, after)
            rows.append({"explainer": name, "stage": stage, "layers_randomised": count, "layers": n_layers,
                         "image": i, "rank_correlation": rho, "ssim": similarity})
    return rows


def _map_change(before: np.ndarray, after: np.ndarray) -> tuple[float, float]:
    """(Spearman of the absolute maps, SSIM of the normalized maps) before and after randomisation; a map
    that went flat kept none of its ranking (0, and SSIM as computed), a map that was flat to begin with
    cannot be judged (NaN, NaN)."""
    before, after = np.abs(np.asarray(before, dtype=np.float64)), np.abs(np.asarray(after, dtype=np.float64))
    if np.ptp(before) == 0:
        return float("nan"), float("nan")
    rho = 0.0 if np.ptp(after) == 0 else rank_correlation(before, after)
    return rho, structural_similarity(before, after)


def verdicts(checks: pd.DataFrame, keys: tuple[str, ...] = ("explainer",)) -> pd.DataFrame:
    """Per ``keys``: median rank correlation and SSIM at each stage and between two randomised networks
    (``rho_null``, ``ssim_null``), ``flagged`` (with all layers randomised still at SANITY_LIMIT or more),
    ``images`` (the n it rests on) and ``verdict`` in words, with its n."""
    columns = [*keys, *(f"rho_{s}" for s in STAGES), "rho_null", *(f"ssim_{s}" for s in STAGES), "ssim_null",
               "flagged", "verdict", "images"]
    if checks is None or checks.empty:
        return pd.DataFrame(columns=columns)
    if "ssim" not in checks:  # a check stored before SSIM and the null reference
        checks = checks.assign(ssim=np.nan)
    grouped = checks.groupby([*keys, "stage"])
    rho, ssim = grouped["rank_correlation"].median().unstack("stage"), grouped["ssim"].median().unstack("stage")
    images = checks[checks["stage"] == "all_layers"].groupby(list(keys))["rank_correlation"].count()
    rows = []
    for index, row in rho.iterrows():
        r = {s: float(row.get(s, np.nan)) for s in (*STAGES, NULL)}
        q = {s: float(ssim.loc[index].get(s, np.nan)) for s in (*STAGES, NULL)}
        n = int(images.get(index, 0))
        final = r["all_layers"]
        flagged = bool(np.isfinite(final) and final >= SANITY_LIMIT)
        rows.append({**dict(zip(keys, index if isinstance(index, tuple) else (index,))),
                     **{f"rho_{s}": v for s, v in r.items()}, **{f"ssim_{s}": v for s, v in q.items()},
                     "flagged": flagged, "verdict": verdict_sentence(final, r[NULL], flagged, n), "images": n})
    return pd.DataFrame(rows, columns=columns)


def verdict_sentence(final: float, null: float, flagged: bool, n: int) -> str:
    """The verdict in words, with the null reference and the number of images it rests on."""
    if not np.isfinite(final):
        return f"undefined: the trained network's maps are flat (n = {n} images)"
    null_text = f", {null:.2f} between two randomised networks" if np.isfinite(null) else ""
    few = f"; fewer than {MIN_IMAGES} images, too few to rely on" if n < MIN_IMAGES else ""
    head = "flagged: maps do not change when the network does" if flagged else "passes"
    return f"{head} (rank correlation {final:.2f} with every layer randomised{null_text}; n = {n} images{few})"


# --- LIME's stability over its sampling seed -------------------------------------------------------------

STABILITY_LIMIT = 0.5  # median rank correlation of one image's LIME weights between seeds below this: unstable
TOP_SUPERPIXELS = 5


def seed_agreement(weights: list[np.ndarray]) -> dict[str, float]:
    """Over every pair of one image's LIME weight vectors (K,) from different seeds (same superpixels):
    the mean Spearman correlation and the mean share of the top-5 superpixels (by weight) the two share."""
    from itertools import combinations

    rhos, overlaps = [], []
    for a, b in combinations([np.asarray(w, dtype=np.float64) for w in weights], 2):
        rhos.append(rank_correlation(a, b))
        top = min(TOP_SUPERPIXELS, len(a))
        first, second = set(np.argsort(-a, kind="stable")[:top]), set(np.argsort(-b, kind="stable")[:top])
        overlaps.append(len(first & second) / top if top else np.nan)
    return {"rank_correlation": float(np.nanmean(rhos)) if np.isfinite(rhos).any() else float("nan"),
            "top5_overlap": float(np.mean(overlaps)) if overlaps else float("nan"), "seeds": len(weights)}


def stability_verdicts(rows: pd.DataFrame, keys: tuple[str, ...] = ("model",)) -> pd.DataFrame:
    """Per ``keys``: median rank correlation and top-5 overlap between seeds over the images, ``images``,
    ``seeds`` and ``unstable`` (median rank correlation below STABILITY_LIMIT)."""
    columns = [*keys, "rank_correlation", "top5_overlap", "images", "seeds", "unstable"]
    if rows is None or rows.empty:
        return pd.DataFrame(columns=columns)
    table = rows.groupby(list(keys)).agg(rank_correlation=("rank_correlation", "median"),
                                         top5_overlap=("top5_overlap", "median"), images=("image_id", "size"),
                                         seeds=("seeds", "min")).reset_index()
    table["unstable"] = table["rank_correlation"].lt(STABILITY_LIMIT)
    return table[columns]
