"""One run's LIME masks in the store, resumable like the runs: numbered parts of up to PART_SIZE
images each, written atomically, and a record written last (every chosen image is explained). Where
they live is the store's business (``ExperimentStore.mask_part_path`` / ``masks_done_path``).

A part holds, per image: ``image_id``, ``dataset``, ``label`` (the class explained), ``p_pain``,
``score`` (R² of LIME's local fit), ``n_superpixels``, ``weights`` (float16, one per superpixel, zero
padded to the part's widest), ``segments`` (uint8 superpixel map at the model's input size),
``seconds`` (segment, perturb, predict, fit), and the faithfulness curves (``engine.explain.faithfulness``)
of each curve set (``CURVE_SETS``: LIME and Grad-CAM, each with ROAD's fill and the explainer's own):
``aucs`` (set, deletion / insertion / both for a random order) and ``curves`` (set, the four curves at
``curve_points`` evenly spaced fractions of the superpixels, float16). No pickles: every array is plain
numeric or unicode.

Every part and the final record carry the run's *fingerprint*: a digest of the LIME parameters, the
chosen images and the run's stored p(pain) for them. A retrained model that predicts differently, or
other parameters, give another fingerprint, and parts with a stale one are deleted on resume rather
than mixed with the new model's masks.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.artifacts import ExperimentStore, RunKey
from engine.explain.faithfulness import AUC_COLUMNS, CURVE_NAMES, CURVE_SETS, Curves
from engine.explain.lime_masks import Explanation
from engine.files import atomic_path, write_json

PART_SIZE = 16
STEPS = ("segment", "perturb", "predict", "fit")


def run_fingerprint(params: dict, image_ids: list[str], p_pain: np.ndarray, labels: np.ndarray) -> str:
    digest = hashlib.sha256(json.dumps(params, sort_keys=True).encode())
    digest.update("\n".join(image_ids).encode("utf-8"))
    digest.update(np.ascontiguousarray(p_pain, dtype="<f4").tobytes())
    digest.update(np.ascontiguousarray(labels, dtype="<i1").tobytes())
    return digest.hexdigest()[:20]


@dataclass
class RunMasks:
    """All masks of one run, stacked: arrays of length N (or N x ...)."""

    image_id: np.ndarray  # (N,) str
    dataset: np.ndarray  # (N,) str
    label: np.ndarray  # (N,) int8, the class explained
    p_pain: np.ndarray  # (N,) float32
    score: np.ndarray  # (N,) float32
    weights: list[np.ndarray]  # N arrays (K_i,) float32
    segments: list[np.ndarray]  # N arrays (S, S) uint8
    seconds: np.ndarray  # (N, 4) float32, per STEPS
    aucs: np.ndarray  # (N, len(CURVE_SETS), 4) float32 per AUC_COLUMNS, NaN where no curves were computed
    curves: np.ndarray  # (N, len(CURVE_SETS), 4, P) float32 per CURVE_NAMES at x = 0 .. 1, NaN where none

    def __len__(self) -> int:
        return len(self.image_id)

    def mask(self, i: int) -> np.ndarray:
        """(S, S) float32 positive LIME weights of image i painted on its superpixels."""
        return np.maximum(self.weights[i], 0.0)[self.segments[i]]


class MaskWriter:
    """Writes one run's parts as images are explained; resumes from the parts already there."""

    def __init__(self, store: ExperimentStore, key: RunKey, fingerprint: str, curve_points: int = 11):
        self.store, self.key = store, key
        self.fingerprint = fingerprint
        self.curve_points = int(curve_points)
        self._rows: list[dict] = []
        self._next_part = 0

    @property
    def done_path(self) -> Path:
        return self.store.masks_done_path(self.key)

    def finished(self) -> bool:
        return self.store.masks_record(self.key).get("fingerprint") == self.fingerprint

    def resume(self) -> set[str]:
        """Ids already explained under this fingerprint; stale or unreadable parts are deleted."""
        if self.done_path.exists() and not self.finished():
            self.done_path.unlink()
        done: set[str] = set()
        for index, path in self.store.mask_parts(self.key):
            part = _read_part(path)
            if part is None or str(part["fingerprint"]) != self.fingerprint:
                path.unlink()
                continue
            done.update(str(i) for i in part["image_id"])
            self._next_part = max(self._next_part, index + 1)
        return done

    def add(self, image_id: str, dataset: str, p_pain: float, explanation: Explanation,
            curves: dict[str, Curves] | None = None) -> None:
        self._rows.append({"image_id": image_id, "dataset": dataset, "p_pain": p_pain, "exp": explanation,
                           "curves": curves})
        if len(self._rows) >= PART_SIZE:
            self.flush()

    def flush(self) -> None:
        if not self._rows:
            return
        exps = [row["exp"] for row in self._rows]
        width = max(len(e.weights) for e in exps)
        weights = np.zeros((len(exps), width), dtype=np.float16)
        for i, e in enumerate(exps):
            weights[i, :len(e.weights)] = e.weights
        arrays = {
            "fingerprint": np.array(self.fingerprint),
            "image_id": np.array([row["image_id"] for row in self._rows], dtype=str),
            "dataset": np.array([row["dataset"] for row in self._rows], dtype=str),
            "label": np.array([e.label for e in exps], dtype=np.int8),
            "p_pain": np.array([row["p_pain"] for row in self._rows], dtype=np.float32),
            "score": np.array([e.score for e in exps], dtype=np.float32),
            "n_superpixels": np.array([len(e.weights) for e in exps], dtype=np.int16),
            "weights": weights,
            "segments": np.stack([e.segments for e in exps]),
            "seconds": np.array([[e.seconds[s] for s in STEPS] for e in exps], dtype=np.float32),
            **self._curve_arrays([row["curves"] for row in self._rows]),
        }
        target = self.store.mask_part_path(self.key, self._next_part)
        with atomic_path(target) as tmp:
            with open(tmp, "wb") as handle:
                np.savez_compressed(handle, **arrays)
        self._next_part += 1
        self._rows = []

    def _curve_arrays(self, curves: list[dict[str, Curves] | None]) -> dict[str, np.ndarray]:
        nan_curves = np.full((len(CURVE_NAMES), self.curve_points), np.nan, dtype=np.float32)
        nan_aucs = [np.nan] * len(AUC_COLUMNS)
        sets = [c or {} for c in curves]
        return {"aucs": np.array([[[c[s].aucs()[k] for k in AUC_COLUMNS] if s in c else nan_aucs for s in CURVE_SETS]
                                  for c in sets], dtype=np.float32),
                "curves": np.stack([np.stack([c[s].resampled(self.curve_points) if s in c else nan_curves
                                              for s in CURVE_SETS]) for c in sets]).astype(np.float16)}

    def finish(self, summary: dict) -> None:
        self.flush()
        write_json(self.done_path, {"fingerprint": self.fingerprint, **summary})


def _read_part(path: Path) -> dict | None:
    try:
        with np.load(path, allow_pickle=False) as data:
            return {key: data[key] for key in data.files}
    except (OSError, ValueError, KeyError, EOFError):
        return None  # a damaged part (e.g. disk full): explained again


def load_run_masks(store: ExperimentStore, key: RunKey) -> RunMasks:
    """Every mask of a run whose masks are finished, in part order (KeyError when they are not)."""
    fingerprint = store.masks_record(key)["fingerprint"]
    parts = [p for p in (_read_part(path) for _, path in store.mask_parts(key)) if p is not None
             and str(p["fingerprint"]) == fingerprint]
    weights, segments = [], []
    for part in parts:
        for row, n in enumerate(part["n_superpixels"]):
            weights.append(part["weights"][row, :n].astype(np.float32))
            segments.append(part["segments"][row])

    def stack(key: str, dtype, empty_shape=(0,)) -> np.ndarray:
        return np.concatenate([p[key] for p in parts]).astype(dtype) if parts else np.zeros(empty_shape, dtype)

    return RunMasks(image_id=stack("image_id", str), dataset=stack("dataset", str), label=stack("label", np.int8),
                    p_pain=stack("p_pain", np.float32), score=stack("score", np.float32), weights=weights,
                    segments=segments, seconds=stack("seconds", np.float32, (0, len(STEPS))),
                    aucs=_curve_field(parts, "aucs", (len(CURVE_SETS), len(AUC_COLUMNS))),
                    curves=_curve_field(parts, "curves", (len(CURVE_SETS), len(CURVE_NAMES), 0)))


def _curve_field(parts: list[dict], key: str, shape: tuple) -> np.ndarray:
    """One curve array over the parts, NaN for parts written before curves (of every set) were stored."""
    widths = [p[key].shape[1:] for p in parts if key in p and p[key].ndim == len(shape) + 1]
    shape = widths[0] if widths else shape
    filled = [p[key].astype(np.float32) if key in p and p[key].shape[1:] == shape
              else np.full((len(p["image_id"]), *shape), np.nan, dtype=np.float32) for p in parts]
    return np.concatenate(filled) if filled else np.zeros((0, *shape), dtype=np.float32)
