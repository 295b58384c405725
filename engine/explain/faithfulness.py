"""Is a map faithful to the network? Deletion and insertion curves against a random order, for LIME and
Grad-CAM on the same images, with a fill neither explainer was fitted on.

For one explained image with K superpixels (LIME's SLIC segments) and an *order* of them (decreasing
LIME weight; for Grad-CAM, decreasing mean Grad-CAM value over the superpixel):

    deletion   (most relevant first, MoRF)   hide the superpixels in that order: p(class) falls fast if faithful
    insertion  (least relevant first, LeRF,  hide them from the other end, read from the end: the image with
               read backwards)               only the top h shown; p(class) rises fast if faithful

Each curve is read at the points x = h / K, h = round(j K / steps), j = 0..steps (every superpixel when
K <= steps), and its area is the trapezoid rule over x in [0, 1]: a faithful map has a high insertion AUC
and a low deletion AUC.

What a hidden superpixel shows (the *fill*) decides what the curves measure. Hiding with the fill LIME was
fitted on (its baseline) is nearly circular: LIME's weights are, by construction, the effect of exactly
that hiding, so a LIME map is almost bound to win. The default fill is therefore ROAD's noisy linear
imputation (Rong et al., 2022, "A consistent and efficient evaluation strategy for attribution methods"):
every hidden pixel becomes the weighted mean of its eight neighbours (1/6 for the four direct ones, 1/12
for the diagonal ones), all hidden pixels at once as one sparse linear system, plus a little Gaussian noise
(``ROAD_NOISE``), so the hidden region carries no new edges and its shape leaks little. The explainer's own
fill (LIME's baseline; Grad-CAM hides nothing, so its maps are read with LIME's fill too) is the second
column. ``CURVE_SETS`` names the four: ``lime/road``, ``lime/own``, ``gradcam/road``, ``gradcam/own``.

The reference is the same curve for a *random* order of the same superpixels, one per fill (it does not
depend on the explainer). With the own fill it reuses LIME's perturbations: each LIME sample hides a
uniformly random subset, so the samples that hide exactly h of them are draws of the random order's image
after h deletions (equally, after K - h insertions), at no extra model call; only the points LIME's samples
miss get ``RANDOM_DRAWS`` fresh random subsets. With ROAD every interior point gets fresh subsets.

The rows the curves need are queued over a run's images (``CurveQueue``) and go through the model in full
batches of LIME's own size: the compiled predict function is LIME's, and only a run's last batch is padded.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from engine.explain.lime_masks import Explanation, ProbaFn, perturb

# A map "beats" the random order when the lower end of the 95 % interval of its gain over it (insertion area
# above the random order's, deletion area below it; areas under p(class) curves in [0, 1]) is above this. A
# consistent but negligible gain, as of a network whose output hardly moves (0.001 for the demo's networks
# that predict one class), says nothing about the map.
MIN_GAIN = 0.01
RANDOM_DRAWS = 1  # fresh random subsets per grid point (one, like a sparse LIME bin; averaged over images)
CURVE_NAMES = ("deletion", "insertion", "deletion_random", "insertion_random")
AUC_COLUMNS = ("deletion_auc", "insertion_auc", "deletion_auc_random", "insertion_auc_random")
FILLS = ("road", "own")  # the default first
FILL_TITLES = {"road": "ROAD imputation", "own": "the explainer's own fill"}
EXPLAINERS = ("lime", "gradcam")
CURVE_SETS = tuple(f"{e}/{f}" for e in EXPLAINERS for f in FILLS)
# ROAD's noise: standard deviation of the Gaussian added to imputed pixels, as a share of the 0-255 range.
ROAD_NOISE = 0.01
_NEIGHBOURS = (((0, 1), 1 / 6), ((0, -1), 1 / 6), ((1, 0), 1 / 6), ((-1, 0), 1 / 6),
               ((1, 1), 1 / 12), ((1, -1), 1 / 12), ((-1, 1), 1 / 12), ((-1, -1), 1 / 12))
_OFFSETS = np.array([offset for offset, _ in _NEIGHBOURS])  # (8, 2) dy, dx
_WEIGHTS = np.array([weight for _, weight in _NEIGHBOURS])


def auc_columns(fill: str) -> tuple[str, ...]:
    """The AUC column names of one fill: plain for the default (ROAD), suffixed ``_own`` for the own fill."""
    return AUC_COLUMNS if fill == FILLS[0] else tuple(f"{c}_{fill}" for c in AUC_COLUMNS)


def noisy_linear_imputation(image: np.ndarray, hidden: np.ndarray, rng: np.random.Generator,
                            noise: float = ROAD_NOISE) -> np.ndarray:
    """ROAD's fill: ``image`` (S, S, C) uint8 with the pixels where ``hidden`` (S, S) bool is true replaced by
    the solution of x_p = sum_n w_n x_n / sum_n w_n over p's neighbours inside the image (known neighbours
    enter as constants), plus Gaussian noise of ``noise`` * 255; uint8. ``hidden`` (R, S, S) gives R images.
    With every pixel hidden the system has no anchor: the image's mean colour (plus the noise) is its limit."""
    hidden = np.asarray(hidden, dtype=bool)
    single = hidden.ndim == 2
    hidden = hidden[None] if single else hidden
    out = np.repeat(np.asarray(image)[None], len(hidden), axis=0)
    values = image.astype(np.float64)
    with _one_thread():  # tiny banded solves: BLAS threads only fight over a shared CPU (100x slower)
        _fill_rows(out, values, hidden, rng, noise)
    return out[0] if single else out


_POOLS = []  # one ThreadpoolController: building one scans the loaded libraries (6 ms, a third of an image's fill)


def _one_thread():
    """A context with every thread pool (BLAS, OpenMP) limited to one thread."""
    if not _POOLS:
        import scipy.linalg  # noqa: F401  (its BLAS loaded before the controller looks for libraries)
        from threadpoolctl import ThreadpoolController

        _POOLS.append(ThreadpoolController())
    return _POOLS[0].limit(limits=1)


def _fill_rows(out: np.ndarray, values: np.ndarray, hidden: np.ndarray, rng: np.random.Generator, noise: float) -> None:
    """Each row's hidden pixels solved and noised, written into ``out`` (R, S, S, C) in place."""
    channels = values.shape[-1]
    for r, mask in enumerate(hidden):
        n = int(mask.sum())
        if n == 0:
            continue
        if n == mask.size:
            solved = np.broadcast_to(values.reshape(-1, channels).mean(axis=0), (n, channels))
        else:
            solved = _solve(values, mask)
        solved = solved + rng.normal(0.0, noise * 255.0, size=(n, channels))
        out[r][mask] = np.clip(np.round(solved), 0, 255).astype(out.dtype)


def _solve(values: np.ndarray, hidden: np.ndarray) -> np.ndarray:
    """(n, C): the hidden pixels' values solving ROAD's neighbour-mean system, every channel at once.

    The matrix is symmetric and diagonally dominant, strictly so next to every known pixel (every hidden
    region of an image that is not all hidden touches one), hence positive definite. Numbered row by row,
    a pixel's neighbours are at most one image row plus one away, so the matrix is banded: a banded Cholesky
    (LAPACK's pbsv, n x width^2) took 3-7x less than a sparse LU (SuperLU) on the demo's 32 px faces, and
    conjugate gradients far more (their BLAS calls fought over the shared CPU)."""
    from scipy.linalg import solveh_banded

    height, width, _ = values.shape
    n = int(hidden.sum())
    index = np.full(hidden.shape, -1, dtype=np.int64)
    index[hidden] = np.arange(n)
    ys, xs = np.nonzero(hidden)
    ny, nx = ys[None] + _OFFSETS[:, :1], xs[None] + _OFFSETS[:, 1:]  # (8, n): every neighbour at once
    inside = (ny >= 0) & (ny < height) & (nx >= 0) & (nx < width)
    ny, nx = np.clip(ny, 0, height - 1), np.clip(nx, 0, width - 1)
    neighbour = np.where(inside, index[ny, nx], -2)  # -2: outside the image, -1: a known pixel
    weights = np.broadcast_to(_WEIGHTS[:, None], neighbour.shape)
    diagonal = (weights * inside).sum(axis=0)
    rhs = np.einsum("kn,knc->nc", weights * (neighbour == -1), values[ny, nx])
    rows = np.broadcast_to(np.arange(n)[None], neighbour.shape)
    above = neighbour > rows  # each symmetric pair once, from its lower index
    band = int((neighbour - rows)[above].max()) if above.any() else 0
    upper = np.zeros((band + 1, n))
    upper[band] = diagonal
    upper[band + rows[above] - neighbour[above], neighbour[above]] = -weights[above]
    return solveh_banded(upper, rhs, check_finite=False)


def superpixel_order(values: np.ndarray) -> np.ndarray:
    """Superpixels from the most relevant to the least (stable on ties)."""
    return np.argsort(-np.asarray(values, dtype=np.float64), kind="stable")


def superpixel_means(heatmap: np.ndarray, segments: np.ndarray) -> np.ndarray:
    """(K,) the mean of a pixel map (e.g. Grad-CAM's) over each superpixel: its order on LIME's superpixels."""
    k = int(segments.max()) + 1
    sums = np.bincount(segments.ravel(), weights=np.asarray(heatmap, dtype=np.float64).ravel(), minlength=k)
    counts = np.bincount(segments.ravel(), minlength=k)
    return sums / np.maximum(counts, 1)


def grid(n_superpixels: int, steps: int) -> np.ndarray:
    """Superpixels hidden (or shown) at each point of the curves, 0..K, increasing."""
    return np.unique(np.round(np.linspace(0, n_superpixels, min(steps, n_superpixels) + 1)).astype(int))


@dataclass
class Curves:
    """One image's four curves at the fractions ``x`` (of the superpixels hidden or shown)."""

    x: np.ndarray  # (P,)
    values: np.ndarray  # (4, P) in CURVE_NAMES order

    def aucs(self) -> dict[str, float]:
        return {name: float(np.trapezoid(curve, self.x)) for name, curve in zip(AUC_COLUMNS, self.values)}

    def resampled(self, points: int) -> np.ndarray:
        """(4, points) float32: the curves at x = 0, 1/(points-1), ..., 1 (for storing and averaging)."""
        grid_ = np.linspace(0.0, 1.0, points)
        return np.stack([np.interp(grid_, self.x, curve) for curve in self.values]).astype(np.float32)


@dataclass
class CurvePlan:
    """The rows (R, K) in {0, 1} to classify for one image, each with its fill, and where each point comes from."""

    hidden: np.ndarray  # (P,) superpixels hidden at each grid point, 0..K
    rows: list = field(default_factory=list)  # (K,) uint8 bit rows (0: hidden)
    fills: list = field(default_factory=list)  # the fill of each row
    sorted_rows: dict = field(default_factory=dict)  # (explainer, fill, "deletion" | "insertion", h) -> row
    all_hidden_row: dict = field(default_factory=dict)  # fill -> row
    random_rows: dict = field(default_factory=dict)  # (fill, h hidden) -> rows of fresh random subsets
    _seen: dict = field(default_factory=dict)

    def row(self, bits: np.ndarray, fill: str) -> int:
        """The index of a row (one row for equal bits and fill: LIME and Grad-CAM orders often share some)."""
        key = (fill, bits.tobytes())
        if key not in self._seen:
            self._seen[key] = len(self.rows)
            self.rows.append(bits)
            self.fills.append(fill)
        return self._seen[key]


def plan_curves(orders: dict[str, np.ndarray], lime_samples: np.ndarray, steps: int, rng: np.random.Generator,
                fills: tuple[str, ...] = FILLS) -> CurvePlan:
    """The extra rows one image's curves need, given each explainer's superpixel values (K,) (LIME's weights,
    Grad-CAM's superpixel means) and LIME's samples (N, K)."""
    k = np.asarray(lime_samples).shape[1]
    hidden = grid(k, steps)
    interior = [int(h) for h in hidden if 0 < h < k]
    plan = CurvePlan(hidden)
    for fill in fills:
        for explainer, values in orders.items():
            order = superpixel_order(values)
            for h in interior:
                bits = np.ones(k, dtype=np.uint8)
                bits[order[:h]] = 0
                plan.sorted_rows[(explainer, fill, "deletion", h)] = plan.row(bits, fill)
            for h in interior:
                bits = np.zeros(k, dtype=np.uint8)
                bits[order[:h]] = 1
                plan.sorted_rows[(explainer, fill, "insertion", h)] = plan.row(bits, fill)
        plan.all_hidden_row[fill] = plan.row(np.zeros(k, dtype=np.uint8), fill)
        drawn = set((k - np.asarray(lime_samples).sum(axis=1)).tolist()) if fill == "own" else set()
        for h in sorted(set(interior) | {k - h for h in interior}):
            if h in drawn:
                continue
            plan.random_rows[(fill, h)] = []
            for _ in range(RANDOM_DRAWS):
                bits = np.ones(k, dtype=np.uint8)
                bits[rng.choice(k, size=h, replace=False)] = 0
                plan.random_rows[(fill, h)].append(len(plan.rows))
                plan.rows.append(bits)  # never shared: each draw counts once
                plan.fills.append(fill)
    return plan


def assemble(plan: CurvePlan, row_probs: np.ndarray, lime_samples: np.ndarray, lime_probs: np.ndarray) -> dict[str, Curves]:
    """Each curve set's four curves (``CURVE_SETS`` names planned) from p(label) of the plan's rows and of
    LIME's samples (row 0: the image)."""
    k = lime_samples.shape[1]
    p_full = float(lime_probs[0])
    lime_hidden = k - np.asarray(lime_samples).sum(axis=1)
    hidden = plan.hidden
    out = {}
    for fill in dict.fromkeys(plan.fills):
        p_empty = float(row_probs[plan.all_hidden_row[fill]])

        def random_at(h: int) -> float:
            if h == 0:
                return p_full
            if h == k:
                return p_empty
            if (fill, h) in plan.random_rows:
                return float(np.mean(row_probs[plan.random_rows[(fill, h)]]))
            return float(lime_probs[lime_hidden == h].mean())

        random = [[random_at(h) for h in hidden], [random_at(k - h) for h in hidden]]
        for explainer in dict.fromkeys(e for e, f, _, _ in plan.sorted_rows if f == fill):
            def sorted_at(h: int, curve: str, start: float, end: float) -> float:
                return start if h == 0 else end if h == k else float(row_probs[plan.sorted_rows[(explainer, fill, curve, h)]])

            values = np.array([[sorted_at(h, "deletion", p_full, p_empty) for h in hidden],
                               [sorted_at(h, "insertion", p_empty, p_full) for h in hidden], *random], dtype=np.float64)
            out[f"{explainer}/{fill}"] = Curves(hidden / k, values)
    return out


def render_rows(image: np.ndarray, segments: np.ndarray, plan: CurvePlan, own_fill, rng: np.random.Generator) -> np.ndarray:
    """(R, S, S, 3) uint8: the plan's rows as images, hidden superpixels filled as each row's fill says."""
    rows = np.stack(plan.rows)
    fills = np.array(plan.fills)
    out = np.empty((len(rows), *image.shape), dtype=np.uint8)
    own = np.flatnonzero(fills == "own")
    if len(own):
        out[own] = perturb(image, segments, rows[own], own_fill)
    road = np.flatnonzero(fills == "road")
    if len(road):
        out[road] = noisy_linear_imputation(image, rows[road][:, segments] == 0, rng)
    return out


class CurveQueue:
    """Curves of many explanations from shared full batches: ``add`` each explanation as it is made and
    get back those whose curves are complete (in the order added); ``finish`` runs what is left.
    ``classifier``: (B, S, S, 3) uint8 -> (B, n_classes), called with ``batch_size`` rows at most."""

    def __init__(self, classifier: ProbaFn, batch_size: int, steps: int, fills: tuple[str, ...] = FILLS):
        self.classifier, self.batch_size, self.steps, self.fills = classifier, int(batch_size), int(steps), tuple(fills)
        self._items: list[dict] = []
        self._rows: list[tuple[dict, np.ndarray]] = []  # (owner, perturbed image) not yet classified

    def add(self, key, image: np.ndarray, explanation: Explanation, rng: np.random.Generator,
            gradcam_map: np.ndarray | None = None) -> list[tuple]:
        """Queue one explanation's curves (and, with ``gradcam_map`` (S, S), Grad-CAM's on the same superpixels)."""
        orders = {"lime": explanation.weights}
        if gradcam_map is not None:
            orders["gradcam"] = superpixel_means(gradcam_map, explanation.segments)
        plan = plan_curves(orders, explanation.samples, self.steps, rng, self.fills)
        item = {"key": key, "explanation": explanation, "plan": plan, "probs": []}
        self._items.append(item)
        self._rows += [(item, row) for row in render_rows(image, explanation.segments, plan, explanation.fill, rng)]
        return self._run(full_batches_only=True)

    def finish(self) -> list[tuple]:
        return self._run(full_batches_only=False)

    def _run(self, full_batches_only: bool) -> list[tuple]:
        """Classify the queued rows (full batches only, or all), then hand back (key, explanation, curves by
        curve set) of every explanation, from the oldest, whose rows all have their probability."""
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
                       rng: np.random.Generator, batch_size: int = 100, gradcam_map: np.ndarray | None = None,
                       fills: tuple[str, ...] = FILLS) -> dict[str, Curves]:
    """The curves of one explanation (a ``CurveQueue`` of one), by curve set."""
    queue = CurveQueue(classifier, batch_size, steps, fills)
    queue.add(None, image, explanation, rng, gradcam_map)
    return queue.finish()[0][2]


def beats_random(gain_low: float) -> bool:
    """Whether a map beats the random order, from the lower end of its gain's interval (see ``MIN_GAIN``)."""
    return bool(gain_low > MIN_GAIN)
