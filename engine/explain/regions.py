"""Named face regions on the template, and how a heatmap's mass falls into them.

The regions are polygons built from the template's landmarks and painted in priority order (a pixel
claimed by two regions goes to the later one), then clipped to the face outline (jaw below, forehead
points above). They partition the face, so the region shares of a heatmap sum to 1:

    share(r)        = heatmap mass in r / heatmap mass inside the face
    area_share(r)   = pixels of r / pixels of the face
    ratio(r)        = share(r) / area_share(r)     (1: no preference; 3: three times denser than average)

Each region is tied to the pain action units whose movement shows there (PSPI / FACS pain score).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from engine.explain.normalize import (BROW_LEFT, BROW_RIGHT, EYE_LEFT, EYE_RIGHT, MOUTH_OUTER, NOSE_BASE,
                                      NOSE_BRIDGE, N_LANDMARKS, TemplateWarp)

# Painted in this order; later regions win where polygons overlap.
REGIONS = ("cheeks", "forehead", "jaw_chin", "mouth", "nose", "brows", "eyes")
REGION_AUS = {
    "brows": "AU4",
    "eyes": "AU6 AU7 AU43",
    "nose": "AU9 AU10",
    "mouth": "AU10",  # the upper lip lies in the mouth region
    "cheeks": "AU6",
    "forehead": "",
    "jaw_chin": "",
}
OUTSIDE = -1
_PARTS = {"eyes": ("eyes_right", "eyes_left"), "brows": ("brows", "glabella")}


def _scaled(points: np.ndarray, sx: float, sy: float) -> np.ndarray:
    centre = points.mean(axis=0)
    return centre + (points - centre) * np.array([sx, sy])


def _hull(points: np.ndarray) -> np.ndarray:
    from scipy.spatial import ConvexHull

    return points[ConvexHull(points).vertices]


def region_polygons(anchors: np.ndarray) -> dict[str, np.ndarray]:
    """(K, 2) x-y polygons of every region (and "face", the outline) from template anchor points."""
    lm = anchors[:N_LANDMARKS]
    forehead = anchors[N_LANDMARKS:N_LANDMARKS + 15]
    brows = np.concatenate([lm[BROW_RIGHT], lm[BROW_LEFT]])
    eye_level = np.concatenate([lm[EYE_RIGHT], lm[EYE_LEFT]])[:, 1].mean()
    band = 0.4 * (eye_level - brows[:, 1].mean())  # half the brow band's height
    nose = np.concatenate([lm[NOSE_BRIDGE], lm[NOSE_BASE]])
    nose_half = 0.5 * (lm[42, 0] - lm[39, 0])  # the bridge is as wide as the gap between the eyes
    nose_sides = np.array([[lm[27, 0] - 0.6 * nose_half, lm[27, 1]], [lm[27, 0] + 0.6 * nose_half, lm[27, 1]],
                           [lm[31, 0] - 0.5 * nose_half, lm[31, 1] - 0.5 * band],
                           [lm[35, 0] + 0.5 * nose_half, lm[35, 1] - 0.5 * band]])
    return {
        "face": np.concatenate([lm[0:17], forehead[::-1]]),
        "cheeks": np.concatenate([lm[0:17], forehead[::-1]]),
        "forehead": np.concatenate([lm[[0]], forehead, lm[[16]], (brows - [0, band])[::-1]]),
        "jaw_chin": np.concatenate([lm[3:14], lm[[54, 48]]]),
        "mouth": _hull(np.concatenate([_scaled(lm[MOUTH_OUTER], 1.15, 1.25), lm[NOSE_BASE]])),
        "nose": _hull(np.concatenate([nose, nose_sides])),
        "brows": np.concatenate([brows - [0, band], (brows + [0, band])[::-1]]),
        # Between the brows down to the nose root: where AU4 draws the brows together into furrows.
        "glabella": _hull(lm[[20, 21, 22, 23, 39, 42, 27]]),
        "eyes_right": _hull(_scaled(lm[EYE_RIGHT], 1.45, 2.8)),
        "eyes_left": _hull(_scaled(lm[EYE_LEFT], 1.45, 2.8)),
    }


def region_map(warp: TemplateWarp) -> np.ndarray:
    """(T, T) int8: index into REGIONS for every template pixel of the face, OUTSIDE elsewhere."""
    from skimage.draw import polygon

    size = warp.size
    polygons = region_polygons(warp.anchors)
    labels = np.full((size, size), OUTSIDE, dtype=np.int8)

    def paint(name: str, value: int, target: np.ndarray) -> None:
        rows, cols = polygon(polygons[name][:, 1], polygons[name][:, 0], shape=(size, size))
        target[rows, cols] = value

    face = np.zeros((size, size), dtype=np.int8)
    paint("face", 1, face)
    for index, name in enumerate(REGIONS):
        for part in _PARTS.get(name, (name,)):
            paint(part, index, labels)
    labels[face == 0] = OUTSIDE
    return labels


def region_scores(heatmap: np.ndarray, labels: np.ndarray) -> pd.DataFrame:
    """One row per region: share of the heatmap's in-face mass, share of the face area, their ratio.

    ``heatmap`` (T, T) non-negative (the unstretched mean mask). A heatmap with no mass on the face
    gets NaN shares and ratios rather than a made-up distribution."""
    heat = np.clip(np.asarray(heatmap, dtype=np.float64), 0, None)
    face = labels != OUTSIDE
    mass_face = heat[face].sum()
    area_face = face.sum()
    rows = []
    for index, name in enumerate(REGIONS):
        inside = labels == index
        area_share = inside.sum() / area_face
        share = heat[inside].sum() / mass_face if mass_face > 0 else np.nan
        rows.append({"region": name, "aus": REGION_AUS[name], "share": share, "area_share": area_share,
                     "ratio": share / area_share if area_share > 0 else np.nan})
    return pd.DataFrame(rows)


def face_mass_share(heatmap: np.ndarray, labels: np.ndarray) -> float:
    """Share of a heatmap's total mass that lies on the face (the rest is hair, ears, background)."""
    heat = np.clip(np.asarray(heatmap, dtype=np.float64), 0, None)
    total = heat.sum()
    return float(heat[labels != OUTSIDE].sum() / total) if total > 0 else float("nan")
