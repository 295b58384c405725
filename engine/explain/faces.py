"""The model-input faces of explained images and their 68 landmarks, read from the face cache.

Landmarks come from the cache entry (dlib ran on the stored crop during preprocessing) and are scaled
to the network's input size, since that image is the same crop resized. Only an entry without them
(e.g. written by an older pipeline) makes dlib run here, on the stored crop, inside the face box the
crop margin implies.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from engine.errors import PainLensError
from engine.explain.normalize import scale_landmarks


class FaceSource:
    """Faces and landmarks by image id, for the rows of a preprocessed sample table."""

    def __init__(self, samples: pd.DataFrame, cache_dir: str | Path, margin: float):
        missing = {"image_id", "cache_key", "status"} - set(samples.columns)
        if missing:
            raise PainLensError(f"The sample table lacks {', '.join(sorted(missing))}: run `painlens run` "
                                "(or preprocess) first so every image has a face-cache entry.")
        ok = samples[samples["status"] == "ok"]
        self.rows = ok.drop_duplicates("image_id").set_index("image_id", drop=False)
        self.cache_dir = Path(cache_dir)
        self.margin = float(margin)
        self._crop_landmarks: dict[str, tuple[np.ndarray | None, int]] = {}
        self._predictor = None
        self.dlib_runs = 0  # landmarks computed here because the cache had none

    def images(self, image_ids: list[str], size: int) -> np.ndarray:
        """(N, size, size, 3) uint8 model-input faces."""
        from engine.preprocess.batch import load_faces

        unknown = [i for i in image_ids if i not in self.rows.index]
        if unknown:
            raise PainLensError(f"{len(unknown)} explained images have no face in the sample table "
                                f"(e.g. {unknown[0]}); run `painlens run` again to rebuild the artifacts.")
        return load_faces(self.rows.loc[list(image_ids)], size, self.cache_dir)

    def landmarks(self, image_id: str, size: int) -> np.ndarray | None:
        """(68, 2) x-y landmarks in the size x size model input, or None when none can be had."""
        if image_id not in self._crop_landmarks:
            self._crop_landmarks[image_id] = self._load(image_id)
        points, crop_size = self._crop_landmarks[image_id]
        return None if points is None else scale_landmarks(points, crop_size, size)

    def _load(self, image_id: str) -> tuple[np.ndarray | None, int]:
        from engine.preprocess import cache

        if image_id not in self.rows.index:
            return None, 0
        key = self.rows.at[image_id, "cache_key"]
        meta = cache.read_meta(self.cache_dir, key, check_png=False)
        if meta is None or meta.get("status") != "ok":
            return None, 0
        crop_size = int(meta["crop_size"])
        if meta.get("landmarks") is not None:
            return np.asarray(meta["landmarks"], dtype=np.float64), crop_size
        return self._detect(cache.read_crop(self.cache_dir, key)), crop_size

    def _detect(self, crop: np.ndarray) -> np.ndarray | None:
        from engine.preprocess.detect import FaceBox
        from engine.preprocess.landmarks import LandmarkPredictor

        if self._predictor is None:
            self._predictor = LandmarkPredictor()
        side = crop.shape[0]
        # The crop is the face box grown by `margin` of its side on each side, so the box is its centre.
        inner = self.margin / (1 + 2 * self.margin) * side
        self.dlib_runs += 1
        return self._predictor.predict(crop, FaceBox(inner, inner, side - inner, side - inner, 1.0))
