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

The rows the sorted curves need (2 (steps - 1) + 1, and a few random fills) go through the model in
batches of a fixed size (``curve_batch``: one call per image as a rule), so the compiled predict function
is reused and little is padded.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.explain.lime_masks import Explanation, ProbaFn, perturb

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


def curve_batch(steps: int) -> int:
    """Rows per model call for one image's curves: the sorted curves' rows, the all-hidden row and room
    for two random fills (LIME's samples leave one or two grid points without a draw as a rule; more
    take a second call)."""
    return 2 * (int(steps) - 1) + 1 + 2


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


def explanation_curves(image: np.ndarray, explanation: Explanation, classifier: ProbaFn, steps: int,
                       rng: np.random.Generator) -> Curves:
    """The curves of one explanation; ``classifier`` takes (B, S, S, 3) uint8 batches (given in chunks of
    ``curve_batch(steps)`` rows, e.g. a ``BatchedModel`` of that size)."""
    plan = plan_curves(explanation.weights, explanation.samples, steps, rng)
    probs, size = [], curve_batch(steps)
    for start in range(0, len(plan.rows), size):
        batch = perturb(image, explanation.segments, plan.rows[start:start + size], explanation.fill)
        probs.append(classifier(batch)[:, explanation.label])
    return assemble(plan, np.concatenate(probs), explanation.samples, explanation.probs)
