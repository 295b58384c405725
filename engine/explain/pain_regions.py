"""Where pain shows: the regions of the pain action units on the template face, and how a map scores on them.

The regions come from the template's 68 landmarks (``normalize.template_landmarks``), so every heatmap
that is warped onto the template is scored against the same pixels:

    brow_lowerer  AU4        the brows and the glabella between them (brows drawn down and together, furrows)
    orbit         AU6, AU7   around each eye: the lids, crow's feet and the upper cheek the cheek raiser lifts
    eye_closure   AU43       the eye openings, which the lids close over
    nose_lip      AU9, AU10  the nose (wrinkles on its bridge and sides) and the upper lip up to the nostrils
    reference     -          the rest of the face (forehead, lower cheeks, mouth, jaw, chin)

They are painted in the order orbit, brow_lowerer, nose_lip, eye_closure (a later one wins a shared pixel)
and clipped to the face outline of ``regions.region_polygons``, so they and the reference partition the
face. ``bench/pain_regions_figure.py`` draws them on the template and on a warped synthetic face.

Scores of one non-negative map on the template (a warped LIME mask or Grad-CAM map):

    share_<region>      the region's share of the map's mass on the face
    pain_vs_rest        mass per unit area in the four pain regions together / in the reference
    pointing_hit        is the hottest point in a pain region? The hottest *plateau* counts: a LIME map is
                        flat on each superpixel, so the score is the share of the maximal pixels that lie
                        in a pain region (1 or 0 for a single hottest pixel). Chance: the regions' area share.
    planted_*           the same against only the regions whose action units were active in that frame
                        (coded AUs of the sample table: UNBC's FACS files, the synthetic generator's codes):
                        their mass share, area share, mass per unit area against the reference, pointing game

Summaries average per image shares and divide the means (``share / area share``), which stays defined
where one image's reference holds no mass.

A stored mean heatmap of the pain class *points at the pain regions* when they get at least
``POINTS_AT_PAIN`` times the reference's mass per unit area (``heatmap_pain_ratio``); one below looks
mostly elsewhere and is marked so wherever it is shown. A perturbation explainer credits what hiding
changes: a part the network needs intact (the outline of the face, at a coarse network's resolution) gets
weight even where it carries no sign of pain; ``bench/pain_cues.py`` asks the networks without an explainer.
"""

from __future__ import annotations

import numpy as np

from engine.explain.normalize import EYE_LEFT, EYE_RIGHT, N_LANDMARKS, TemplateWarp
from engine.explain.regions import OUTSIDE, region_polygons

PAIN_REGIONS = ("brow_lowerer", "orbit", "eye_closure", "nose_lip")
REFERENCE = "reference"
ALL_REGIONS = (*PAIN_REGIONS, REFERENCE)  # index in the region map
PAIN_REGION_AUS = {"brow_lowerer": ("au4",), "orbit": ("au6", "au7"), "eye_closure": ("au43",),
                   "nose_lip": ("au9", "au10")}
_PAINT_ORDER = ("orbit", "brow_lowerer", "nose_lip", "eye_closure")
POINTS_AT_PAIN = 2.0  # pain regions' mass per unit area / the reference's, at or above which a pain map points at them
SCORE_COLUMNS = (*(f"share_{r}" for r in ALL_REGIONS), "pain_vs_rest", "pointing_hit", "planted_regions",
                 "planted_share", "planted_area_share", "planted_vs_rest", "pointing_hit_planted")


def _hull(points: np.ndarray) -> np.ndarray:
    from scipy.spatial import ConvexHull

    return points[ConvexHull(points).vertices]


def _around(points: np.ndarray, sx: float, sy: float, dy: float = 0.0) -> np.ndarray:
    """The convex hull of ``points`` scaled about their centre and shifted down by ``dy``."""
    centre = points.mean(axis=0)
    return _hull(centre + (points - centre) * np.array([sx, sy]) + np.array([0.0, dy]))


def pain_polygons(anchors: np.ndarray) -> dict[str, list[np.ndarray]]:
    """x-y polygons of each pain region (several parts each) from the template's anchor points."""
    lm = anchors[:N_LANDMARKS]
    base = region_polygons(anchors)
    eyes = (lm[EYE_RIGHT], lm[EYE_LEFT])
    width = float(np.mean([np.ptp(eye[:, 0]) for eye in eyes]))
    return {
        # Lids, crow's feet at the outer corners and the upper cheek below: wider than the eye, and more below it.
        "orbit": [_around(eye, 1.75, 4.2, dy=0.18 * width) for eye in eyes],
        "brow_lowerer": [base["brows"], base["glabella"]],
        # The nose, and the upper lip from the nostrils down to the lip line (philtrum and the lip itself).
        "nose_lip": [base["nose"], _hull(np.concatenate([lm[31:36], lm[48:55]]))],
        "eye_closure": [_around(eye, 1.15, 1.7) for eye in eyes],
    }


def pain_region_map(warp: TemplateWarp) -> np.ndarray:
    """(T, T) int8: index into ALL_REGIONS for every face pixel of the template, OUTSIDE elsewhere."""
    from skimage.draw import polygon

    size = warp.size
    face_outline = region_polygons(warp.anchors)["face"]
    labels = np.full((size, size), OUTSIDE, dtype=np.int8)
    rows, cols = polygon(face_outline[:, 1], face_outline[:, 0], shape=(size, size))
    labels[rows, cols] = ALL_REGIONS.index(REFERENCE)
    face = labels != OUTSIDE
    parts = pain_polygons(warp.anchors)
    for name in _PAINT_ORDER:
        for part in parts[name]:
            rows, cols = polygon(part[:, 1], part[:, 0], shape=(size, size))
            labels[rows, cols] = ALL_REGIONS.index(name)
    labels[~face] = OUTSIDE
    return labels


def area_shares(labels: np.ndarray) -> dict[str, float]:
    """Each region's share of the face area."""
    face = (labels != OUTSIDE).sum()
    return {name: float((labels == i).sum() / face) for i, name in enumerate(ALL_REGIONS)}


def planted_regions(aus: dict[str, float]) -> tuple[str, ...] | None:
    """The pain regions whose action units are active (> 0) in a frame's coded AUs; None when the frame
    has no AU coding (NaN), () when it is coded and none is active."""
    values = {k: aus.get(k, np.nan) for names in PAIN_REGION_AUS.values() for k in names}
    if all(not np.isfinite(v) for v in values.values()):
        return None
    return tuple(r for r, names in PAIN_REGION_AUS.items() if any(np.nan_to_num(values[k]) > 0 for k in names))


def _density_ratio(heat: np.ndarray, inside: np.ndarray, reference: np.ndarray) -> float:
    """Mass per pixel inside / mass per pixel in the reference (NaN without mass in the reference)."""
    if not inside.any() or not reference.any():
        return float("nan")
    rest = heat[reference].mean()
    return float(heat[inside].mean() / rest) if rest > 0 else float("nan")


def heatmap_pain_ratio(heatmap: np.ndarray, labels: np.ndarray) -> float:
    """Mass per unit area in the four pain regions together / in the reference, of one (T, T) map on the
    region map (negative and missing values count as 0); NaN without mass in the reference."""
    heat = np.clip(np.nan_to_num(np.asarray(heatmap, dtype=np.float64)), 0, None)
    pain = np.isin(labels, [ALL_REGIONS.index(r) for r in PAIN_REGIONS])
    return _density_ratio(heat, pain, labels == ALL_REGIONS.index(REFERENCE))


def _pointing(heat: np.ndarray, face: np.ndarray, inside: np.ndarray) -> float:
    """Share of the face's maximal pixels (the hottest plateau) that lie in ``inside``; NaN for a flat map."""
    values = heat[face]
    top = float(values.max()) if values.size else 0.0
    if top <= 0 or np.ptp(values) == 0:
        return float("nan")
    hottest = face & (heat >= top * (1 - 1e-6))
    return float((hottest & inside).sum() / hottest.sum())


def score_map(heatmap: np.ndarray, labels: np.ndarray, planted: tuple[str, ...] | None = None) -> dict[str, float]:
    """The scores of one (T, T) map (negative values count as 0) on the region map; see the module doc."""
    heat = np.clip(np.nan_to_num(np.asarray(heatmap, dtype=np.float64)), 0, None)
    face = labels != OUTSIDE
    reference = labels == ALL_REGIONS.index(REFERENCE)
    pain = np.isin(labels, [ALL_REGIONS.index(r) for r in PAIN_REGIONS])
    mass = heat[face].sum()
    out = {f"share_{r}": float(heat[labels == i].sum() / mass) if mass > 0 else float("nan")
           for i, r in enumerate(ALL_REGIONS)}
    out["pain_vs_rest"] = _density_ratio(heat, pain, reference)
    out["pointing_hit"] = _pointing(heat, face, pain)
    nan = float("nan")
    out.update(planted_regions=" ".join(planted) if planted else "", planted_share=nan, planted_area_share=nan,
               planted_vs_rest=nan, pointing_hit_planted=nan)
    if planted:
        inside = np.isin(labels, [ALL_REGIONS.index(r) for r in planted])
        out.update(planted_share=float(heat[inside].sum() / mass) if mass > 0 else nan,
                   planted_area_share=float(inside.sum() / face.sum()),
                   planted_vs_rest=_density_ratio(heat, inside, reference), pointing_hit_planted=_pointing(heat, face, inside))
    return out
