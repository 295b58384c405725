"""Is a LIME map faithful to the network? Deletion and insertion curves against a random order.

For one explained image with K superpixels, ordered by decreasing LIME weight:

    deletion   start from the image, hide the superpixels in that order   p(explained class) falls fast if faithful
    insertion  start from the baseline (all hidden), show them in order   p(explained class) rises fast if faithful

Each curve is read at the points x = h / K, h = round(j K / steps), j = 0..steps (every superpixel when
K <= steps), and its area is the trapezoid rule over x in [0, 1]: a faithful map has a high insertion AUC
and a low deletion AUC. Hidden superpixels show the explanation's own baseline (black, mean, blur).

The reference is the same curve for a *random* order of the same superpixels. It reuses LIME's own
perturbations: each LIME sample hides a uniformly random subset of the superpixels, so the samples that
hide exactly h of them are draws of the random order's image after h deletions (equally, after K - h
insertions). The mean p over them is the expected random-order curve at h, at no extra model call; only
the points where LIME drew no sample with that h (the extremes) get ``RANDOM_DRAWS`` fresh random
subsets. Because a random order reads the same curve from either end, its deletion and insertion AUCs
are estimates of one number (they differ only where the grid is not symmetric).

The rows the curves need (2 (steps - 1) + 1 for the sorted order, one or two random fills) are queued
over a run's images (``CurveQueue``) and go through the model in full batches of LIME's own size: the
compiled predict function is LIME's, and only a run's last batch is padded (a call of ten rows costs
almost what a call of a hundred does when the network is small).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.explain.lime_masks import Explanation, ProbaFn, perturb

# A map "beats" the random order when the lower end of the 95 % interval of its gain over it (insertion area
# above the random order's, deletion area below it; areas under p(class) curves in [0, 1]) is above this. A
# consistent but negligible gain, as of a network whose output hardly moves (0.001 for the demo's networks
# that predict one class), says nothing about the map.
MIN_GAIN = 0.01
RANDOM_DRAWS = 1  # fresh random subsets per grid point LIME's samples miss (one, like a sparse LIME bin)
CURVE_NAMES = ("deletion", "insertion", "deletion_random", "insertion_random")
AUC_COLUMNS = ("deletion_auc", "insertion_auc", "deletion_auc_random", "insertion_auc_random")


@dataclass
class CurvePlan:
    """The rows (R, K) in {0, 1} to classify for one image, and where each curve point comes from."""

    hidden: np.ndarray  # (P,) superpixels hidden at each grid point, 0..K
    rows: np.ndarray  # (R, K) uint8 extra samples: sorted deletions, sorted insertions, all hidden, random fills
    deletion_row: dict[int, int]  # h -> row index (interior h only)
    insertion_row: dict[int, int]  # h shown -> row index (interior h only)
    all_hidden_row: int
    random_rows: dict[int, list[int]]  # h hidden -> row indices of fresh random subsets


@dataclass
class Curves:
    """One image's four curves at the fractions ``x`` (of the superpixels hidden or shown)."""

    x: np.ndarray  # (P,)
    values: np.ndarray  # (4, P) in CURVE_NAMES order

    def aucs(self) -> dict[str, float]:
        return {name: float(np.trapezoid(curve, self.x)) for name, curve in zip(AUC_COLUMNS, self.values)}

    def resampled(self, points: int) -> np.ndarray:
        """(4, points) float32: the curves at x = 0, 1/(points-1), ..., 1 (for storing and averaging)."""
        grid = np.linspace(0.0, 1.0, points)
        return np.stack([np.interp(grid, self.x, curve) for curve in self.values]).astype(np.float32)


def grid(n_superpixels: int, steps: int) -> np.ndarray:
    """Superpixels hidden (or shown) at each point of the curves, 0..K, increasing."""
    return np.unique(np.round(np.linspace(0, n_superpixels, min(steps, n_superpixels) + 1)).astype(int))


def plan_curves(weights: np.ndarray, lime_samples: np.ndarray, steps: int, rng: np.random.Generator) -> CurvePlan:
    """The extra rows one image's curves need, given its LIME weights (K,) and LIME's samples (N, K)."""
    k = len(weights)
    order = np.argsort(-np.asarray(weights, dtype=np.float64), kind="stable")
    hidden = grid(k, steps)
    interior = [int(h) for h in hidden if 0 < h < k]
    rows, deletion_row, insertion_row, random_rows = [], {}, {}, {}
    for h in interior:
        row = np.ones(k, dtype=np.uint8)
        row[order[:h]] = 0
        deletion_row[h] = len(rows)
        rows.append(row)
    for h in interior:
        row = np.zeros(k, dtype=np.uint8)
        row[order[:h]] = 1
        insertion_row[h] = len(rows)
        rows.append(row)
    all_hidden_row = len(rows)
    rows.append(np.zeros(k, dtype=np.uint8))
    drawn = set((k - np.asarray(lime_samples).sum(axis=1)).tolist())
    for h in sorted({h for h in interior} | {k - h for h in interior}):
        if h in drawn:
            continue
        random_rows[h] = []
        for _ in range(RANDOM_DRAWS):
            row = np.ones(k, dtype=np.uint8)
            row[rng.choice(k, size=h, replace=False)] = 0
            random_rows[h].append(len(rows))
            rows.append(row)
    return CurvePlan(hidden, np.stack(rows), deletion_row, insertion_row, all_hidden_row, random_rows)


def assemble(plan: CurvePlan, row_probs: np.ndarray, lime_samples: np.ndarray, lime_probs: np.ndarray) -> Curves:
    """The four curves from p(label) of the plan's rows and of LIME's samples (row 0: the image)."""
    k = lime_samples.shape[1]
    p_full, p_empty = float(lime_probs[0]), float(row_probs[plan.all_hidden_row])
    lime_hidden = k - np.asarray(lime_samples).sum(axis=1)

    def random_at(h: int) -> float:
        if h == 0:
            return p_full
        if h == k:
            return p_empty
        if h in plan.random_rows:
            return float(np.mean(row_probs[plan.random_rows[h]]))
        return float(lime_probs[lime_hidden == h].mean())

    def sorted_at(h: int, rows: dict[int, int], start: float, end: float) -> float:
        return start if h == 0 else end if h == k else float(row_probs[rows[h]])

    hidden = plan.hidden
    values = np.array([
        [sorted_at(h, plan.deletion_row, p_full, p_empty) for h in hidden],
        [sorted_at(h, plan.insertion_row, p_empty, p_full) for h in hidden],
        [random_at(h) for h in hidden],
        [random_at(k - h) for h in hidden],
    ], dtype=np.float64)
    return Curves(hidden / k, values)


class CurveQueue:
    """Curves of many explanations from shared full batches: ``add`` each explanation as it is made and
    get back those whose curves are complete (in the order added); ``finish`` runs what is left.
    ``classifier``: (B, S, S, 3) uint8 -> (B, n_classes), called with ``batch_size`` rows at most."""

    def __init__(self, classifier: ProbaFn, batch_size: int, steps: int):
        self.classifier, self.batch_size, self.steps = classifier, int(batch_size), int(steps)
        self._items: list[dict] = []
        self._rows: list[tuple[dict, np.ndarray]] = []  # (owner, perturbed image) not yet classified

    def add(self, key, image: np.ndarray, explanation: Explanation, rng: np.random.Generator) -> list[tuple]:
        plan = plan_curves(explanation.weights, explanation.samples, self.steps, rng)
        item = {"key": key, "explanation": explanation, "plan": plan, "probs": []}
        self._items.append(item)
        self._rows += [(item, row) for row in perturb(image, explanation.segments, plan.rows, explanation.fill)]
        return self._run(full_batches_only=True)

    def finish(self) -> list[tuple]:
        return self._run(full_batches_only=False)

    def _run(self, full_batches_only: bool) -> list[tuple]:
        """Classify the queued rows (full batches only, or all), then hand back (key, explanation, curves)
        of every explanation, from the oldest, whose rows all have their probability."""
        while len(self._rows) >= self.batch_size or (self._rows and not full_batches_only):
            chunk, self._rows = self._rows[:self.batch_size], self._rows[self.batch_size:]
            probs = self.classifier(np.stack([row for _, row in chunk]))
            for (item, _), p in zip(chunk, probs):
                item["probs"].append(float(p[item["explanation"].label]))
        done = []
        while self._items and len(self._items[0]["probs"]) == len(self._items[0]["plan"].rows):
            item = self._items.pop(0)
            exp = item["explanation"]
            done.append((item["key"], exp, assemble(item["plan"], np.array(item["probs"]), exp.samples, exp.probs)))
        return done


def explanation_curves(image: np.ndarray, explanation: Explanation, classifier: ProbaFn, steps: int,
                       rng: np.random.Generator, batch_size: int = 100) -> Curves:
    """The curves of one explanation (a ``CurveQueue`` of one)."""
    queue = CurveQueue(classifier, batch_size, steps)
    queue.add(None, image, explanation, rng)
    return queue.finish()[0][2]


def beats_random(gain_low: float) -> bool:
    """Whether a map beats the random order, from the lower end of its gain's interval (see ``MIN_GAIN``)."""
    return bool(gain_low > MIN_GAIN)
