"""Global heatmaps: the mean of warped LIME masks per (network, scenario, dataset, class), and differences.

A *group* is one network, one scenario, one dataset side ("paindb" for UNBC/MIntPAIN/Delaware test
images, "cppain") and one explained class. Its heatmap is the sum of the group's warped masks divided
by the number of images that went in (images whose landmarks failed are counted apart and left out);
the *stretched* map is that mean min-max scaled to [0, 1] for display, as in the paper. Each group
also keeps the mean warped face, to lay the heatmap over.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from engine.datasets.table import CLASS_NAMES

PAINDB, CPPAIN = "paindb", "cppain"
GROUP_COLUMNS = ("model", "scenario", "dataset", "label")


def dataset_side(dataset: str) -> str:
    """The heatmap's dataset side of one image's source dataset."""
    return CPPAIN if dataset == CPPAIN else PAINDB


def stretch(heatmap: np.ndarray) -> np.ndarray:
    """Min-max scaled copy in [0, 1] (float32); a constant map becomes all zeros."""
    heat = np.asarray(heatmap, dtype=np.float32)
    low, high = float(heat.min()), float(heat.max())
    return (heat - low) / (high - low) if high > low else np.zeros_like(heat)


@dataclass
class _Group:
    mask_sum: np.ndarray  # (T, T) float64
    face_sum: np.ndarray  # (T, T, 3) float64
    used: int = 0
    failed: dict[str, int] = field(default_factory=dict)  # landmark problem -> images


class HeatmapAccumulator:
    """Sums warped masks and faces per group; ``frame()`` and ``arrays()`` give the results."""

    def __init__(self, size: int):
        self.size = size
        self._groups: dict[tuple, _Group] = {}

    def _group(self, key: tuple) -> _Group:
        if key not in self._groups:
            self._groups[key] = _Group(np.zeros((self.size, self.size)), np.zeros((self.size, self.size, 3)))
        return self._groups[key]

    def add(self, key: tuple, mask: np.ndarray, face: np.ndarray) -> None:
        """One image: ``mask`` (T, T) warped positive LIME weights, ``face`` (T, T, 3) warped image 0-255."""
        group = self._group(key)
        group.mask_sum += mask
        group.face_sum += face
        group.used += 1

    def fail(self, key: tuple, reason: str) -> None:
        failed = self._group(key).failed
        failed[reason] = failed.get(reason, 0) + 1

    def keys(self) -> list[tuple]:
        return sorted(self._groups)

    def frame(self) -> pd.DataFrame:
        """One row per group, in ``keys()`` order: its ``index`` into the arrays and its image counts."""
        rows = []
        for index, key in enumerate(self.keys()):
            group = self._groups[key]
            failed = sum(group.failed.values())
            rows.append({"index": index, **dict(zip(GROUP_COLUMNS, key)), "class_name": CLASS_NAMES[key[3]],
                         "n_images": group.used, "n_landmark_failed": failed, "n_explained": group.used + failed,
                         "landmark_failures": "; ".join(f"{k}: {v}" for k, v in sorted(group.failed.items()))})
        return pd.DataFrame(rows, columns=["index", *GROUP_COLUMNS, "class_name", "n_images", "n_landmark_failed",
                                           "n_explained", "landmark_failures"])

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """Mean heatmaps (G, T, T) float32 (unstretched; NaN for a group with no usable image) and mean
        faces (G, T, T, 3) uint8 (white when empty)."""
        count = len(self._groups)
        heat = np.full((count, self.size, self.size), np.nan, dtype=np.float32)
        faces = np.full((count, self.size, self.size, 3), 255, dtype=np.uint8)
        for index, key in enumerate(self.keys()):
            group = self._groups[key]
            if group.used:
                heat[index] = group.mask_sum / group.used
                faces[index] = np.clip(np.round(group.face_sum / group.used), 0, 255).astype(np.uint8)
        return heat, faces


def difference_maps(groups: pd.DataFrame, heatmaps: np.ndarray) -> tuple[pd.DataFrame, np.ndarray]:
    """CP-PAIN minus PAIN-DB stretched heatmaps, per network and class, against each PAIN-DB scenario.

    The CP-PAIN side is the external scenario (trained on all of PAIN-DB); the PAIN-DB side is each
    scenario that tested on PAIN-DB. Values in [-1, 1]: positive where CP-PAIN faces drew more weight."""
    usable = groups[groups["n_images"] > 0]
    cp = usable[usable["dataset"] == CPPAIN]
    pdb = usable[usable["dataset"] == PAINDB]
    rows, maps = [], []
    for c in cp.itertuples():
        for p in pdb[(pdb["model"] == c.model) & (pdb["label"] == c.label)].itertuples():
            maps.append(stretch(heatmaps[c.index]) - stretch(heatmaps[p.index]))
            rows.append({"index": len(rows), "model": c.model, "label": c.label, "class_name": c.class_name,
                         "cppain_scenario": c.scenario, "paindb_scenario": p.scenario,
                         "n_cppain": c.n_images, "n_paindb": p.n_images})
    columns = ["index", "model", "label", "class_name", "cppain_scenario", "paindb_scenario", "n_cppain", "n_paindb"]
    size = heatmaps.shape[1] if heatmaps.ndim == 3 else 0
    stacked = np.stack(maps).astype(np.float32) if maps else np.zeros((0, size, size), dtype=np.float32)
    return pd.DataFrame(rows, columns=columns), stacked
