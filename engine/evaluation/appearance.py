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
- a second cue, the face's fine texture (``texture``): the median over the 90th percentile of the brightness
  gradient's magnitude inside the face (away from its outline), at ``TEXTURE_SIZE`` px. A drawn face is flat
  patches and sharp lines (a low ratio); a photograph's skin shades continuously (a high one), even dimmed,
  blurred, compressed or grey. It has nothing to fit, only a threshold;
- ``appearance_score``: the larger of the two cues, each over its threshold; both thresholds sit at the same
  quantile of PAIN-DB's held-out faces (each by the PCA of the fold that never saw its subject), the lowest that
  lets ``ood_pass`` of them through both cues together, as the feature check lets them through. Above 1: unlike.

Why this descriptor (``bench/real_faces.py`` prints the figures): on the demo, of normalised pixels at 24-64 px
(colour or grey), HOG, gradient maps and LBP histograms, each scored by PCA reconstruction error, a Mahalanobis
distance in PCA space or k nearest neighbours, normalised colour pixels at 48 px with 5 components separated the
real photograph's variants from PAIN-DB's held-out faces best (ROC-AUC 0.999; LBP and gradient statistics put the
photograph among the training faces) while withholding the fewest CP-PAIN faces beside it. Alone it still let 121
of 2,042 real-face photos through (scikit-image's LFW faces and astronaut, matplotlib's Grace Hopper, varied as
phone photos vary; warm-tinted grey faces and an old colour photograph above all); the texture cue sets aside all
but 6 of them and no CP-PAIN face; together, fitted to the same pass share, all but one (which the networks'
features withhold), and fewer CP-PAIN faces than the PCA alone (its threshold sits a little higher).

CP-PAIN is never read to fit it. The arrays (per fold: ``mean`` and ``components``; ``texture_scale``: the PCA's
threshold over the texture's, so that the one distance is the larger cue in the PCA's units) live in the store beside
``answer.json`` (``ExperimentStore.write_answer_appearance``), which holds the thresholds and what they were fitted on.
Arrays without ``texture_scale`` (fitted before the texture cue) give the PCA's distance alone.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from PIL import Image
from scipy import ndimage

SIZE = 48  # px: the crop is reduced to this before the check
COMPONENTS = 5  # PCA components per fold
BACKGROUND_LEVEL = 250  # a pixel with every channel at or above this is the whitened background
MIN_FACE_PIXELS = 20  # fewer face pixels than this: the whole crop is normalised (no face hull to speak of)
TEXTURE_SIZE = 96  # px: the texture cue is measured on the crop at this size (the crops' own size in the demo)
TEXTURE_MARGIN = 6  # px at TEXTURE_SIZE: the face's outline (the hull's sharp edge against white) is left out
SCORE = ("root-mean-square error of the face crop's reconstruction by a PCA of PAIN-DB training faces (crop reduced "
         f"to {SIZE} px, face pixels normalised to mean 0 and standard deviation 1, {COMPONENTS} components per "
         "subject-wise fold, averaged over the folds) over its threshold, or the face's texture (median over 90th "
         "percentile of the brightness gradient inside the face) over its threshold, whichever is larger; above 1: "
         "unlike the training faces")


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


def texture(crops: np.ndarray | list[np.ndarray]) -> np.ndarray:
    """(N,) each crop's texture cue: the median over the 90th percentile of the brightness gradient's magnitude on
    the face's pixels ``TEXTURE_MARGIN`` px inside its outline (all face pixels when that leaves too few). The
    ratio ignores brightness and contrast."""
    values = []
    for crop in crops:
        crop = np.asarray(crop, dtype=np.uint8)
        if crop.shape[0] != TEXTURE_SIZE or crop.shape[1] != TEXTURE_SIZE:
            crop = np.asarray(Image.fromarray(crop).resize((TEXTURE_SIZE, TEXTURE_SIZE), Image.Resampling.LANCZOS))
        face = (crop < BACKGROUND_LEVEL).any(axis=-1)
        inner = ndimage.binary_erosion(face, iterations=TEXTURE_MARGIN)
        if inner.sum() < MIN_FACE_PIXELS:
            inner = face if face.sum() >= MIN_FACE_PIXELS else np.ones_like(face)
        grey = crop.astype(np.float32).mean(axis=-1)
        gradient = np.hypot(ndimage.sobel(grey, 0), ndimage.sobel(grey, 1))[inner]
        median, high = np.quantile(gradient, [0.5, 0.9])
        values.append(float(median / high) if high > 0 else 0.0)  # a face of one flat colour: as drawn as can be
    return np.asarray(values, dtype=np.float64)


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
    """(N,) the faces' appearance distance: the mean over the stored folds' PCAs of the reconstruction error, or
    the texture cue in the PCA threshold's units (``texture_scale``), whichever is larger."""
    x = descriptors(crops)
    shape = np.mean([reconstruction_error(x, mean, components)
                     for mean, components in zip(arrays["mean"], arrays["components"])], axis=0)
    if "texture_scale" not in arrays:  # fitted before the texture cue
        return shape
    return np.maximum(shape, texture(crops) * float(arrays["texture_scale"]))


def joint_thresholds(shape: np.ndarray, drawn: np.ndarray, pass_share: float) -> tuple[float, float, float]:
    """(quantile, shape threshold, texture threshold): both at the same quantile of the held-out faces' cues, the
    lowest (in steps of 0.0005) that lets ``pass_share`` of them through both."""
    for step in range(int(round((1.0 - pass_share) / 0.0005)) + 1):
        quantile = round(min(1.0, pass_share + 0.0005 * step), 4)
        shape_at, drawn_at = float(np.quantile(shape, quantile)), float(np.quantile(drawn, quantile))
        if np.mean((shape <= shape_at) & (drawn <= drawn_at)) >= pass_share:
            return quantile, shape_at, drawn_at
    return 1.0, float(np.max(shape)), float(np.max(drawn))


def fit_appearance(faces: pd.DataFrame, folds: dict[int, tuple[list[str], list[str]]],
                   pass_share: float) -> tuple[dict, dict[str, np.ndarray], pd.Series]:
    """The check fitted on PAIN-DB's subject-wise folds: ``folds`` maps a fold to its (training, held-out) image
    ids, ``faces`` is the samples table of those faces (``cache_key``, ``cache_dir``; status ok). Returns (its
    parameters for ``answer.json``, its arrays for the store, each held-out face's distance by image_id).
    Raises PainLensError when a crop cannot be read (the face cache is gone)."""
    from engine.preprocess import load_faces

    table = faces.drop_duplicates("image_id").set_index("image_id", drop=False)
    means, components, held_out, drawn = [], [], [], []
    for fold in sorted(folds):
        train_ids, test_ids = folds[fold]
        mean, comps = fit_fold(descriptors(load_faces(table.loc[list(train_ids)], TEXTURE_SIZE)))
        means.append(mean)
        components.append(comps)
        test_crops = load_faces(table.loc[list(test_ids)], TEXTURE_SIZE)
        held_out.append(pd.Series(reconstruction_error(descriptors(test_crops), mean, comps), index=list(test_ids)))
        drawn.append(pd.Series(texture(test_crops), index=list(test_ids)))
    shape, drawn = pd.concat(held_out), pd.concat(drawn)
    quantile, threshold, texture_threshold = joint_thresholds(shape.to_numpy(), drawn.to_numpy(), pass_share)
    # one distance per face, in the PCA threshold's units: the larger cue (as ``distance`` serves it)
    texture_threshold = max(texture_threshold, 1e-9)  # only a set of faces all of one flat colour gives 0
    distances = np.maximum(shape, drawn * (threshold / texture_threshold))
    subjects = table.loc[distances.index]
    parameters = {"used": True, "size": SIZE, "components": int(components[0].shape[0]), "folds": sorted(int(f) for f in folds),
                  "pass_share": pass_share, "threshold": threshold, "texture_threshold": texture_threshold,
                  "texture_size": TEXTURE_SIZE, "quantile": quantile,
                  "passing": {"shape": float(np.mean(shape <= threshold)), "texture": float(np.mean(drawn <= texture_threshold)),
                              "both": float(np.mean(distances <= threshold))},
                  "images": int(len(distances)),
                  "subjects": int((subjects["dataset"].astype(str) + "/" + subjects["subject"].astype(str)).nunique()),
                  "score": SCORE,
                  "fitted_on": "PAIN-DB's subject-wise folds: each fold's PCA on its training faces, the thresholds on "
                               "the held-out faces (each by the PCA of the fold that never saw its subject); CP-PAIN "
                               "never read"}
    return parameters, {"mean": np.stack(means), "components": np.stack(components),
                        "texture_scale": np.asarray(threshold / texture_threshold)}, distances
