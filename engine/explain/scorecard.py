"""The faithfulness scorecard of an experiment, built while the explain step warps every map onto the template.

Per explained image and explainer (table ``faithfulness``; explainer ``lime`` or ``gradcam``):
model, scenario, fold, image_id, dataset, subject, label (the explained class), p_pain, baseline (LIME's,
which also fills the own-fill curves), the curves' AUCs with ROAD's imputation (``deletion_auc``,
``insertion_auc``, ``deletion_auc_random``, ``insertion_auc_random``) and with the explainer's own fill
(the same names ending ``_own``; both explainers on the same superpixels, see ``faithfulness.py``),
``agreement`` (Spearman's rho between the image's LIME and Grad-CAM maps on the template face) and the
pain-region scores of ``pain_regions.score_map`` (the planted ones only for maps of the pain class: what a
frame's planted AUs are evidence for).

Per (network, scenario, dataset, explainer, metric) (table ``faithfulness_summary``): the value over the
images and a 95 % interval from a bootstrap over *subjects* (frames of one person are not independent);
``dataset`` is each source dataset and "all". Metrics: the four AUCs, ``insertion_gain`` (insertion
minus random) and ``deletion_gain`` (random minus deletion; both above 0 for a faithful map), the same
for the own fill (``*_own``),
``density_<region>`` (share of the mass / share of the face area), ``pain_vs_rest`` and
``planted_vs_rest`` (mass per unit area in the pain / planted regions against the reference),
``pointing_hit`` with its chance level ``pointing_chance`` (pooled, and per explained class:
``pointing_hit_pain``, ``pointing_hit_no_pain``; likewise ``pain_vs_rest_pain`` / ``_no_pain``: a map
explaining "no pain" has no reason to point at the pain regions), ``pointing_hit_planted`` with
``planted_area_share``, and ``agreement``. ``fill_ranking`` ranks every (network, explainer) by its curves'
gain under each fill and says how far the ranking moves between them. Ratios are ratios of means (defined where one image's
reference holds no mass).

Per network and explainer (table ``sanity_checks``): the randomisation check's median rank correlations
and SSIMs per stage, its null reference and its verdict with its n (``sanity.py``). Per network (table
``lime_stability``): LIME's rank correlation and top-5 overlap between sampling seeds, and ``unstable``.
"""

from __future__ import annotations

import time
import zlib

import numpy as np
import pandas as pd

from engine.artifacts import ExperimentStore, RunKey
from engine.explain.faithfulness import AUC_COLUMNS, CURVE_SETS, FILLS, auc_columns
from engine.explain.heatmaps import HeatmapAccumulator
from engine.explain.mask_store import RunMasks
from engine.explain.pain_regions import ALL_REGIONS, PAIN_REGION_AUS, REFERENCE, SCORE_COLUMNS, area_shares, \
    pain_region_map, planted_regions, score_map
from engine.explain.regions import OUTSIDE
from engine.explain.sanity import rank_correlation, stability_verdicts, verdicts

EXPLAINERS = ("lime", "gradcam")
RESAMPLES = 1000
CONFIDENCE = 0.95
ALL_AUC_COLUMNS = tuple(c for fill in FILLS for c in auc_columns(fill))
CLASSES = {0: "no_pain", 1: "pain"}  # suffixes of the per-class metrics
IMAGE_COLUMNS = ["model", "scenario", "fold", "image_id", "dataset", "subject", "label", "p_pain", "explainer",
                 "baseline", *ALL_AUC_COLUMNS, "agreement", *SCORE_COLUMNS]
SUMMARY_COLUMNS = ["model", "scenario", "dataset", "explainer", "metric", "value", "low", "high", "images", "subjects"]
_NUMERIC = (*ALL_AUC_COLUMNS, "agreement", *(c for c in SCORE_COLUMNS if c != "planted_regions"),
            *(f"{c}_{name}" for name in CLASSES.values() for c in ("pointing_hit", f"share_{REFERENCE}")))
_AU_COLUMNS = sorted({au for aus in PAIN_REGION_AUS.values() for au in aus})


class ScoreCollector:
    """Scores every warped map as ``aggregate`` produces it; also averages the Grad-CAM maps per heatmap group."""

    def __init__(self, region_labels: np.ndarray, samples: pd.DataFrame | None, baseline: str = ""):
        """``region_labels``: ``pain_region_map`` of the template; ``samples``: image_id, subject, AU columns."""
        self.labels = region_labels
        self.face = region_labels != OUTSIDE
        self.baseline = baseline
        self.gradcam = HeatmapAccumulator(region_labels.shape[0])
        self.rows: list[dict] = []
        self.seconds = 0.0  # time the scorecard added to the heatmaps step (its callers add theirs)
        known = samples.drop_duplicates("image_id").set_index("image_id") if samples is not None else pd.DataFrame()
        self._subjects = known["subject"].astype(str).to_dict() if "subject" in known else {}
        present = [c for c in _AU_COLUMNS if c in known]
        self._aus = known[present].to_dict("index") if present else {}

    def add(self, key: RunKey, masks: RunMasks, i: int, lime_map: np.ndarray, gradcam_map: np.ndarray | None,
            group: tuple, face: np.ndarray, baseline: str = "") -> None:
        """One explained image: its warped positive LIME mask and (when there is one) its warped Grad-CAM map;
        ``baseline``: the LIME baseline of the run's masks (else the collector's)."""
        clock = time.perf_counter()
        image_id = str(masks.image_id[i])
        # The planted regions are the pain class's evidence: only maps of the pain class are scored on them.
        planted = planted_regions(self._aus.get(image_id, {})) if int(masks.label[i]) == 1 else None
        base = {"model": key.model, "scenario": key.scenario, "fold": key.fold, "image_id": image_id,
                "dataset": str(masks.dataset[i]), "subject": self._subjects.get(image_id, image_id),
                "label": int(masks.label[i]), "p_pain": float(masks.p_pain[i]), "baseline": baseline or self.baseline}
        agreement = np.nan
        if gradcam_map is not None:
            agreement = rank_correlation(lime_map[self.face], gradcam_map[self.face])
            self.gradcam.add(group, gradcam_map, face)
            self.rows.append({**base, "explainer": "gradcam", **_aucs(masks, i, "gradcam"), "agreement": agreement,
                              **score_map(gradcam_map, self.labels, planted)})
        self.rows.append({**base, "explainer": "lime", **_aucs(masks, i, "lime"), "agreement": agreement,
                          **score_map(lime_map, self.labels, planted)})
        self.seconds += time.perf_counter() - clock

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.rows, columns=IMAGE_COLUMNS)

    def gradcam_arrays(self, keys: list[tuple]) -> np.ndarray:
        """(G, T, T) mean Grad-CAM maps aligned with the LIME heatmap groups ``keys`` (NaN where none)."""
        heat, _ = self.gradcam.arrays()
        index = {k: i for i, k in enumerate(self.gradcam.keys())}
        out = np.full((len(keys), *self.labels.shape), np.nan, dtype=np.float32)
        for g, key in enumerate(keys):
            if key in index:
                out[g] = heat[index[key]]
        return out


def _aucs(masks: RunMasks, i: int, explainer: str) -> dict[str, float]:
    """One image's curve AUCs of one explainer, both fills (NaN where its curves were not computed)."""
    out = {}
    aucs = masks.aucs[i] if masks.aucs.ndim == 3 else np.full((len(CURVE_SETS), len(AUC_COLUMNS)), np.nan)
    for fill in FILLS:
        out.update(zip(auc_columns(fill), aucs[CURVE_SETS.index(f"{explainer}/{fill}")].astype(float)))
    return out


def run_gradcam(store: ExperimentStore, key: RunKey, fingerprint: str) -> dict[str, np.ndarray]:
    """A run's Grad-CAM maps by image id, when they belong to its current masks."""
    stored = store.gradcam(key)
    if not stored or str(stored.get("fingerprint", "")) != fingerprint:
        return {}
    return {str(i): m.astype(np.float32) for i, m in zip(stored["image_id"], stored["maps"])}


# --- summaries with intervals over subjects ----------------------------------------------------------

def summarise(faith: pd.DataFrame, labels: np.ndarray, seed: int = 0) -> pd.DataFrame:
    """The ``faithfulness_summary`` table of the per-image table (see the module doc)."""
    if faith.empty:
        return pd.DataFrame(columns=SUMMARY_COLUMNS)
    areas = area_shares(labels)
    rows = []
    for (model, scenario, explainer), frame in faith.groupby(["model", "scenario", "explainer"], sort=True):
        for dataset in [*sorted(frame["dataset"].unique()), "all"]:
            part = frame if dataset == "all" else frame[frame["dataset"] == dataset]
            rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, zlib.crc32(f"{model}/{scenario}/{dataset}/{explainer}".encode())])
            keys = {"model": model, "scenario": scenario, "dataset": dataset, "explainer": explainer}
            rows += [{**keys, **metric} for metric in _metrics(part, areas, rng)]
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)


def subject_counts(n_subjects: int, rng: np.random.Generator) -> np.ndarray:
    """(RESAMPLES, n_subjects): how often each subject is drawn in each bootstrap resample."""
    draws = rng.integers(0, n_subjects, size=(RESAMPLES, n_subjects)) + (np.arange(RESAMPLES) * n_subjects)[:, None]
    return np.bincount(draws.ravel(), minlength=RESAMPLES * n_subjects).reshape(RESAMPLES, n_subjects).astype(np.float64)


def _means(frame: pd.DataFrame, weights: np.ndarray) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Per numeric column: its weighted mean over the finite values under each row of ``weights`` (R, n),
    and which images have a value; ``planted_reference`` is the reference's share on images with planted AUs."""
    columns = [c for c in _NUMERIC if c in frame]
    values = frame[columns].to_numpy(dtype=np.float64)
    planted = np.isfinite(frame["planted_share"].to_numpy(dtype=np.float64))
    reference = frame[f"share_{REFERENCE}"].to_numpy(dtype=np.float64)
    values = np.column_stack([values, np.where(planted, reference, np.nan)])
    columns.append("planted_reference")
    valid = np.isfinite(values)
    with np.errstate(invalid="ignore", divide="ignore"):
        means = (weights @ np.where(valid, values, 0.0)) / (weights @ valid.astype(np.float64))
    return dict(zip(columns, means.T)), dict(zip(columns, valid.T))


def _metrics(frame: pd.DataFrame, areas: dict[str, float], rng: np.random.Generator) -> list[dict]:
    labels = frame["label"].to_numpy(dtype=int)
    frame = frame.assign(**{f"{c}_{name}": frame[c].where(labels == cls) for cls, name in CLASSES.items()
                            for c in ("pointing_hit", f"share_{REFERENCE}")})
    codes, subjects = pd.factorize(frame["subject"].astype(str))
    weights = np.vstack([np.ones((1, len(frame))), subject_counts(len(subjects), rng)[:, codes]])  # row 0: the estimate
    m, valid = _means(frame, weights)
    ref_area = areas[REFERENCE]
    with np.errstate(invalid="ignore", divide="ignore"):
        values = {name: (m[name], name) for name in ALL_AUC_COLUMNS}
        for fill in FILLS:
            deletion, insertion, deletion_random, insertion_random = auc_columns(fill)
            suffix = "" if fill == FILLS[0] else f"_{fill}"
            values[f"insertion_gain{suffix}"] = (m[insertion] - m[insertion_random], insertion)
            values[f"deletion_gain{suffix}"] = (m[deletion_random] - m[deletion], deletion)
        for region in ALL_REGIONS:
            values[f"density_{region}"] = (m[f"share_{region}"] / areas[region], f"share_{region}")
        for suffix in ("", *(f"_{name}" for name in CLASSES.values())):
            share_ref = m[f"share_{REFERENCE}{suffix}"]
            values[f"pain_vs_rest{suffix}"] = (((1 - share_ref) / (1 - ref_area)) / (share_ref / ref_area),
                                               f"share_{REFERENCE}{suffix}")
            if suffix:
                values[f"pointing_hit{suffix}"] = (m[f"pointing_hit{suffix}"], f"pointing_hit{suffix}")
        values["planted_vs_rest"] = (m["planted_share"] / m["planted_area_share"] / (m["planted_reference"] / ref_area),
                                     "planted_share")
        for name in ("pointing_hit", "pointing_hit_planted", "planted_area_share", "agreement"):
            values[name] = (m[name], name)
        values["pointing_chance"] = (np.full(len(weights), 1 - ref_area), "pointing_hit")
    names = [n for n, (_, primary) in values.items() if valid[primary].any()]
    series = np.stack([values[n][0] for n in names]) if names else np.zeros((0, len(weights)))
    low, high = _intervals(series[:, 1:])
    return [{"metric": n, "value": float(series[i, 0]), "low": float(low[i]), "high": float(high[i]),
             "images": int(valid[values[n][1]].sum()), "subjects": len(np.unique(codes[valid[values[n][1]]]))}
            for i, n in enumerate(names)]


def _intervals(resampled: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Percentile intervals of each row's finite values, linear interpolation as ``np.percentile``
    (NaN for a row without any); one sort for all rows (``nanpercentile`` loops over them)."""
    ordered = np.sort(resampled, axis=1)  # NaN last
    finite = np.isfinite(ordered).sum(axis=1)
    bounds = []
    for q in ((1 - CONFIDENCE) / 2, (1 + CONFIDENCE) / 2):
        position = q * np.maximum(finite - 1, 0)
        below = np.floor(position).astype(int)
        above = np.minimum(below + 1, np.maximum(finite - 1, 0))
        rows = np.arange(len(ordered))
        value = ordered[rows, below] + (position - below) * (ordered[rows, above] - ordered[rows, below]) if len(ordered) \
            else np.zeros(0)
        bounds.append(np.where(finite > 0, value, np.nan))
    return bounds[0], bounds[1]


# --- the sanity check's verdicts ---------------------------------------------------------------------

def stability_table(store: ExperimentStore, keys: list[RunKey], fingerprints: dict[RunKey, str]) -> pd.DataFrame:
    """Per network: LIME's agreement with itself over sampling seeds on its sanity run (current masks only)."""
    frames = []
    for key in keys:
        rows = store.stability(key)
        if rows is not None and len(rows) and (rows["fingerprint"] == fingerprints.get(key)).all():
            frames.append(rows)
    return stability_verdicts(pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(), ("model",))


def fill_ranking(summary: pd.DataFrame) -> pd.DataFrame:
    """Per scenario (all test images): every (network, explainer) with curves, its gain over the random order
    (insertion gain + deletion gain) and its rank under each fill (1: the most faithful), and ``moved``
    (places between the two rankings). ``kendall_tau`` (per scenario) says how alike the rankings are."""
    columns = ["scenario", "model", "explainer", *(f"gain_{f}" for f in FILLS), *(f"rank_{f}" for f in FILLS),
               "moved", "kendall_tau"]
    if summary is None or summary.empty:
        return pd.DataFrame(columns=columns)
    from scipy.stats import kendalltau

    scope = summary[summary["dataset"] == "all"].pivot_table(index=["scenario", "model", "explainer"], columns="metric",
                                                             values="value", aggfunc="first")
    frames = []
    for scenario, part in scope.groupby(level="scenario"):
        table = pd.DataFrame(index=part.index)
        for fill in FILLS:
            suffix = "" if fill == FILLS[0] else f"_{fill}"
            table[f"gain_{fill}"] = part.get(f"insertion_gain{suffix}", np.nan) + part.get(f"deletion_gain{suffix}", np.nan)
        table = table.dropna()
        if table.empty:
            continue
        for fill in FILLS:
            table[f"rank_{fill}"] = table[f"gain_{fill}"].rank(ascending=False, method="min").astype(int)
        table["moved"] = (table[f"rank_{FILLS[0]}"] - table[f"rank_{FILLS[1]}"]).abs()
        table["kendall_tau"] = float(kendalltau(table[f"gain_{FILLS[0]}"], table[f"gain_{FILLS[1]}"]).statistic) \
            if len(table) > 1 else np.nan
        frames.append(table.reset_index())
    return pd.concat(frames, ignore_index=True)[columns] if frames else pd.DataFrame(columns=columns)


def ranking_sentence(ranking: pd.DataFrame, scenario: str) -> str:
    """How far the ranking of (network, explainer) moves between ROAD's fill and the explainers' own, in words."""
    part = ranking[ranking["scenario"] == scenario] if len(ranking) else ranking
    if part is None or len(part) < 2:
        return ""
    moved = part[part["moved"] > 0]
    tau = part["kendall_tau"].iloc[0]
    return (f"Ranked by their gain over the random order, the {len(part)} (network, explainer) pairs keep their places "
            if moved.empty else
            f"Between ROAD's fill and the explainers' own, {len(moved)} of {len(part)} (network, explainer) pairs change "
            f"place (at most {int(part['moved'].max())}); ") + f"Kendall's tau between the two rankings {tau:.2f}."


def sanity_table(store: ExperimentStore, keys: list[RunKey], fingerprints: dict[RunKey, str]) -> pd.DataFrame:
    """Per network and explainer: the verdict of its run's randomisation check (current masks only)."""
    frames = []
    for key in keys:
        checks = store.sanity(key)
        if checks is not None and len(checks) and (checks["fingerprint"] == fingerprints.get(key)).all():
            frames.append(checks)
    if not frames:
        return verdicts(pd.DataFrame(), ("model", "scenario", "fold", "explainer"))
    return verdicts(pd.concat(frames, ignore_index=True), ("model", "scenario", "fold", "explainer"))
