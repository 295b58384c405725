"""The second check of "unlike the training faces": how the face crop looks, without the networks.

The feature-space check (``engine.evaluation.answer``: distances in the networks' penultimate features) depends
on what the networks happened to learn: networks trained on narrow data can map very different faces close
together (the demo's networks, trained on synthetic faces, put a real photograph taken in a dim room among their
training faces and gave it p(pain) 0.99). This check looks at the pixels instead:

- the face crop as the networks see it (aligned by the face detector, background whitened), reduced to
  ``SIZE`` px;
- normalised for brightness and contrast: the face's pixels (not the white background) shifted and scaled to
  mean 0 and standard deviation 1 over all three channels together (colour ratios kept), the background set to
  0, so that lighting alone does not decide;
- per subject-wise fold, a PCA with ``COMPONENTS`` components fitted on that fold's training faces (PAIN-DB);
  a face's distance is its root-mean-square reconstruction error, averaged over the folds' PCAs;
- ``appearance_score``: that distance over the threshold that lets ``ood_pass`` of PAIN-DB's held-out faces
  (each by the PCA of the fold that never saw its subject) through, as the feature check's. Above 1: unlike.

Why this descriptor (``bench/real_faces.py`` prints the figures): on the demo, of normalised pixels at 24-64 px
(colour or grey), HOG, gradient maps and LBP histograms, each scored by PCA reconstruction error, a Mahalanobis
distance in PCA space or k nearest neighbours, normalised colour pixels at 48 px with 5 components separated the
real photograph's variants from PAIN-DB's held-out faces best (ROC-AUC 0.999; LBP and gradient statistics put the
photograph among the training faces) while withholding the fewest CP-PAIN faces beside it.

CP-PAIN is never read to fit it. The arrays (per fold: ``mean`` and ``components``) live in the store beside
``answer.json`` (``ExperimentStore.write_answer_appearance``), which holds the threshold and what it was fitted on.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from PIL import Image

SIZE = 48  # px: the crop is reduced to this before the check
COMPONENTS = 5  # PCA components per fold
BACKGROUND_LEVEL = 250  # a pixel with every channel at or above this is the whitened background
MIN_FACE_PIXELS = 20  # fewer face pixels than this: the whole crop is normalised (no face hull to speak of)
SCORE = ("root-mean-square error of the face crop's reconstruction by a PCA of PAIN-DB training faces (crop reduced "
         f"to {SIZE} px, face pixels normalised to mean 0 and standard deviation 1, {COMPONENTS} components per "
         "subject-wise fold, averaged over the folds) over the threshold; above 1: unlike the training faces")


def descriptors(crops: np.ndarray | list[np.ndarray]) -> np.ndarray:
    """(N, SIZE * SIZE * 3) float32: each (S, S, 3) uint8 crop reduced to ``SIZE`` px, its face pixels normalised
    for brightness and contrast, its background 0."""
    rows = []
    for crop in crops:
        crop = np.asarray(crop, dtype=np.uint8)
        if crop.shape[0] != SIZE or crop.shape[1] != SIZE:
            crop = np.asarray(Image.fromarray(crop).resize((SIZE, SIZE), Image.Resampling.LANCZOS))
        x = crop.astype(np.float32)
        face = (crop < BACKGROUND_LEVEL).any(axis=-1)
        if face.sum() < MIN_FACE_PIXELS:
            face = np.ones_like(face)
        values = x[face]
        out = np.zeros_like(x)
        out[face] = (values - values.mean()) / (values.std() + 1e-3)
        rows.append(out.reshape(-1))
    return np.stack(rows) if rows else np.zeros((0, SIZE * SIZE * 3), np.float32)


def fit_fold(train: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mean, components (COMPONENTS, D)) of a PCA of the training faces' ``descriptors``: the leading
    eigenvectors of the faces' Gram matrix (N x N, a few hundred faces) mapped back to pixels, which is exact and
    far cheaper than the pixels' covariance (D x D: 6912 x 6912 at 48 px)."""
    x = np.asarray(train, dtype=np.float64)
    mean = x.mean(axis=0)
    centred = x - mean
    values, vectors = np.linalg.eigh(centred @ centred.T)  # ascending
    keep = min(COMPONENTS, len(x) - 1)
    values, vectors = values[::-1][:keep], vectors[:, ::-1][:, :keep]
    components = (vectors.T @ centred) / np.sqrt(np.maximum(values, 1e-12))[:, None]  # unit-length rows
    return mean.astype(np.float32), components.astype(np.float32)


def reconstruction_error(x: np.ndarray, mean: np.ndarray, components: np.ndarray) -> np.ndarray:
    """(N,) root-mean-square error of ``descriptors`` rows reconstructed from their PCA projection."""
    centred = np.asarray(x, dtype=np.float32) - mean
    residual = centred - (centred @ components.T) @ components
    return np.sqrt(np.mean(residual ** 2, axis=1))


def distance(crops: np.ndarray | list[np.ndarray], arrays: dict[str, np.ndarray]) -> np.ndarray:
    """(N,) the faces' appearance distance: the mean over the stored folds' PCAs of the reconstruction error."""
    x = descriptors(crops)
    return np.mean([reconstruction_error(x, mean, components)
                    for mean, components in zip(arrays["mean"], arrays["components"])], axis=0)


def fit_appearance(faces: pd.DataFrame, folds: dict[int, tuple[list[str], list[str]]],
                   pass_share: float) -> tuple[dict, dict[str, np.ndarray], pd.Series]:
    """The check fitted on PAIN-DB's subject-wise folds: ``folds`` maps a fold to its (training, held-out) image
    ids, ``faces`` is the samples table of those faces (``cache_key``, ``cache_dir``; status ok). Returns (its
    parameters for ``answer.json``, its arrays for the store, each held-out face's distance by image_id).
    Raises PainLensError when a crop cannot be read (the face cache is gone)."""
    from engine.preprocess import load_faces

    table = faces.drop_duplicates("image_id").set_index("image_id", drop=False)
    means, components, held_out = [], [], []
    for fold in sorted(folds):
        train_ids, test_ids = folds[fold]
        mean, comps = fit_fold(descriptors(load_faces(table.loc[list(train_ids)], SIZE)))
        means.append(mean)
        components.append(comps)
        test = descriptors(load_faces(table.loc[list(test_ids)], SIZE))
        held_out.append(pd.Series(reconstruction_error(test, mean, comps), index=list(test_ids)))
    distances = pd.concat(held_out)
    threshold = float(np.quantile(distances.to_numpy(), pass_share))
    subjects = table.loc[distances.index]
    parameters = {"used": True, "size": SIZE, "components": int(components[0].shape[0]), "folds": sorted(int(f) for f in folds),
                  "pass_share": pass_share, "threshold": threshold, "images": int(len(distances)),
                  "subjects": int((subjects["dataset"].astype(str) + "/" + subjects["subject"].astype(str)).nunique()),
                  "score": SCORE,
                  "fitted_on": "PAIN-DB's subject-wise folds: each fold's PCA on its training faces, the threshold on "
                               "the held-out faces (each by the PCA of the fold that never saw its subject); CP-PAIN "
                               "never read"}
    return parameters, {"mean": np.stack(means), "components": np.stack(components)}, distances
