"""The action-unit estimator: the six pain AUs (0-5, AU43 0/1) and PSPI from a face crop and its 68 landmarks.

What it looks at: the regions where each AU shows, cut from the same face crop the pain networks see and
placed by its 68 landmarks (both eyes with the brows' lower edge: AU4, AU6, AU7, AU43; both cheeks: AU6; the
nose: AU9; the nose base and upper lip: AU10). Each region is resampled to a fixed small patch and described
by its HOG and its centred grey values, the appearance features of OpenFace's AU intensity models
(Baltrušaitis et al. 2015), which pair HOG on aligned faces with linear regressors.

The head: one multi-output ridge regression for the five graded AUs (features standardised; its penalty
chosen by ridge's own leave-one-out over the training faces) and, because UNBC codes AU43 only as
present or absent, a class-balanced logistic regression on the eye regions for AU43. PSPI is never
regressed: it is AU4 + max(AU6, AU7) + max(AU9, AU10) + AU43 of the estimates (``engine.scales.pspi``).

Why this design and not a small network or a pain network's descriptor: measured on the demo's synthetic
UNBC with leave-one-subject-out folds (README, "Which facial movements"), PSPI ICC(3,1) was 0.90 with these
regions (0.92 with the eyes alone, which lose the cheeks' AU6 on faces where it moves alone) against 0.75-0.80
for HOG of the whole face and 0.68 for the landmarks' geometry, in a few milliseconds per face and well under
a second to fit; a network would add training time to `painlens run` and a forward pass to every photo answer.

The fitted estimator is plain arrays (``to_arrays`` / ``from_arrays``), stored by ``ExperimentStore``
without pickle.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.scales import pspi

PAIN_AUS = ("AU4", "AU6", "AU7", "AU9", "AU10", "AU43")
GRADED_AUS = PAIN_AUS[:-1]  # 0-5; AU43 is 0/1
PLAIN_NAMES = {"AU4": "brow lowering", "AU6": "cheek raising", "AU7": "lid tightening", "AU9": "nose wrinkling",
               "AU10": "upper lip raising", "AU43": "eyes closed", "PSPI": "pain intensity (PSPI)"}
PSPI_MAX = 16.0
FEATURES_VERSION = "au-regions-v1"  # changes whenever the features below change: a stored estimator is refitted

# region name -> (68-point landmark indices it is placed on, patch width, height, width as a multiple of the
# points' horizontal extent, height as a share of the width)
REGIONS = {
    "left_eye": (tuple(range(36, 42)), 24, 12, 1.8, 0.5),
    "right_eye": (tuple(range(42, 48)), 24, 12, 1.8, 0.5),
    "left_cheek": ((1, 2, 3, 31, 48, 39, 40, 41), 16, 16, 1.0, 0.6),
    "right_cheek": ((13, 14, 15, 35, 54, 42, 46, 47), 16, 16, 1.0, 0.6),
    "nose": (tuple(range(27, 36)), 24, 24, 1.6, 0.5),
    "upper_lip": (tuple(range(31, 36)) + tuple(range(48, 55)), 32, 16, 1.4, 0.25),
}
EYE_REGIONS = ("left_eye", "right_eye")


def region_patch(grey: np.ndarray, landmarks: np.ndarray, region: str) -> np.ndarray:
    """The region's patch (h, w) in [0, 1], bilinear from the grey crop around its landmarks' centre."""
    from PIL import Image

    indices, width, height, across, tall = REGIONS[region]
    points = np.asarray(landmarks, dtype=float)[list(indices)]
    centre = points.mean(axis=0)
    half_w = max(float(np.ptp(points[:, 0])), 6.0) * across / 2
    half_h = half_w * tall
    pad = int(np.ceil(max(half_w, half_h))) + 2  # a region may reach past the crop's edge: PIL refuses such a box
    padded = np.pad(grey, pad, mode="edge")
    box = (centre[0] - half_w + pad, centre[1] - half_h + pad, centre[0] + half_w + pad, centre[1] + half_h + pad)
    patch = Image.fromarray(padded).resize((width, height), box=box, resample=Image.Resampling.BILINEAR)
    return np.asarray(patch, dtype=float) / 255.0


def face_features(crop: np.ndarray, landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(all regions' features, the eye regions' features) of one face: per region its HOG (9 orientations,
    4-px cells, 2x2 blocks), its grey values minus their mean, and its contrast (max - median, std)."""
    from PIL import Image
    from skimage.feature import hog

    grey = np.asarray(Image.fromarray(np.asarray(crop, dtype=np.uint8)).convert("L"))
    parts = {}
    for region in REGIONS:
        patch = region_patch(grey, landmarks, region)
        parts[region] = np.concatenate([hog(patch, orientations=9, pixels_per_cell=(4, 4), cells_per_block=(2, 2)),
                                        (patch - patch.mean()).ravel(),
                                        [patch.max() - np.median(patch), patch.std()]])
    return np.concatenate([parts[r] for r in REGIONS]), np.concatenate([parts[r] for r in EYE_REGIONS])


def features_many(crops, landmarks) -> tuple[np.ndarray, np.ndarray]:
    """``face_features`` of several faces, stacked: ((N, D), (N, D_eyes))."""
    pairs = [face_features(c, p) for c, p in zip(crops, landmarks)]
    return np.stack([a for a, _ in pairs]), np.stack([b for _, b in pairs])


@dataclass
class ActionUnitModel:
    """A fitted estimator: standardisation and ridge for the graded AUs, standardisation and logistic for AU43."""

    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray  # (5, D)
    intercept: np.ndarray  # (5,)
    eye_mean: np.ndarray
    eye_scale: np.ndarray
    eye_coef: np.ndarray  # (D_eyes,)
    eye_intercept: float
    alpha: float  # the ridge penalty chosen

    @classmethod
    def fit(cls, features: np.ndarray, eye_features: np.ndarray, targets: np.ndarray) -> "ActionUnitModel":
        """Fit on (N, D), (N, D_eyes) features and (N, 6) coded AUs in ``PAIN_AUS`` order."""
        import warnings

        from sklearn.exceptions import ConvergenceWarning
        from sklearn.linear_model import LogisticRegression, RidgeCV

        targets = np.asarray(targets, dtype=float)
        mean, scale = features.mean(axis=0), features.std(axis=0) + 1e-6
        ridge = RidgeCV(alphas=np.logspace(-1, 4, 12)).fit((features - mean) / scale, targets[:, :5])
        eye_mean, eye_scale = eye_features.mean(axis=0), eye_features.std(axis=0) + 1e-6
        closed = targets[:, 5] > 0
        if closed.all() or not closed.any():  # one class only: a constant answer, the training share
            eye_coef, eye_intercept = np.zeros(eye_features.shape[1]), 10.0 if closed.all() else -10.0
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                logistic = LogisticRegression(C=0.01, class_weight="balanced", max_iter=2000)
                logistic.fit((eye_features - eye_mean) / eye_scale, closed)
            eye_coef, eye_intercept = logistic.coef_[0], float(logistic.intercept_[0])
        return cls(mean, scale, np.asarray(ridge.coef_), np.asarray(ridge.intercept_), eye_mean, eye_scale,
                   np.asarray(eye_coef, dtype=float), float(eye_intercept), float(ridge.alpha_))

    def predict(self, features: np.ndarray, eye_features: np.ndarray) -> np.ndarray:
        """(N, 7): the six AUs in ``PAIN_AUS`` order (graded 0-5, AU43 0/1) and PSPI from them."""
        graded = np.clip((features - self.mean) / self.scale @ self.coef.T + self.intercept, 0.0, 5.0)
        p_closed = 1.0 / (1.0 + np.exp(-((eye_features - self.eye_mean) / self.eye_scale @ self.eye_coef
                                         + self.eye_intercept)))
        closed = (p_closed >= 0.5).astype(float)
        aus = np.column_stack([graded, closed])
        return np.column_stack([aus, [pspi(*row) for row in aus]])

    def estimate(self, crop: np.ndarray, landmarks: np.ndarray) -> dict[str, float]:
        """One face's AUs and PSPI, {"AU4": ..., "AU43": ..., "PSPI": ...}."""
        features, eyes = face_features(crop, landmarks)
        row = self.predict(features[None], eyes[None])[0]
        return {name: float(value) for name, value in zip((*PAIN_AUS, "PSPI"), row)}

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {"mean": self.mean, "scale": self.scale, "coef": self.coef, "intercept": self.intercept,
                "eye_mean": self.eye_mean, "eye_scale": self.eye_scale, "eye_coef": self.eye_coef,
                "eye_intercept": np.array(self.eye_intercept), "alpha": np.array(self.alpha)}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> "ActionUnitModel":
        return cls(arrays["mean"], arrays["scale"], arrays["coef"], arrays["intercept"], arrays["eye_mean"],
                   arrays["eye_scale"], arrays["eye_coef"], float(arrays["eye_intercept"]), float(arrays["alpha"]))


def occurred(values: np.ndarray) -> np.ndarray:
    """Occurrence of estimated intensities: FACS codes a whole number, so an estimate that rounds to 1 or more
    (>= 0.5) is an AU present (the coded truth: intensity >= 1)."""
    return np.asarray(values, dtype=float) >= 0.5
