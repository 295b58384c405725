"""Landmark normalization: every face and mask warped onto one template face.

    68 dlib landmarks on the model-input face (S x S pixels)
      + forehead points (jaw points 1-15 mirrored upward, the chin's mirror on the top edge)
      + the 4 image corners
    ──piecewise-affine map over a Delaunay triangulation of the template's points──► template (T x T)

Coordinates are (x, y) pixels with integer values at pixel centres (scikit-image's convention).
The template is one fixed, symmetric face drawn from proportions (below), shared by every network,
dataset and experiment, so heatmaps are comparable everywhere. Because the template and thus its
triangulation never change, each template pixel's triangle and barycentric coordinates are computed
once; warping one image is then a gather and a bilinear resampling (``skimage.transform.warp``),
the same map as ``skimage.transform.PiecewiseAffineTransform`` (tests check this) but without its
per-image triangle fitting (~90 ms per image here).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

N_LANDMARKS = 68
FOREHEAD_FROM_JAW = tuple(range(1, 16))  # jaw 0 and 16 lie on the mirror line: their mirrors add nothing
N_ANCHORS = N_LANDMARKS + len(FOREHEAD_FROM_JAW) + 4
TEMPLATE_SIZE = 128
FOLD_LIMIT = 0.03  # faces whose landmarks flip more of the facial mesh than this are not warped

# iBUG 300-W groups (dlib's 68-point order).
JAW = slice(0, 17)
BROW_RIGHT, BROW_LEFT = slice(17, 22), slice(22, 27)  # image left / image right
NOSE_BRIDGE, NOSE_BASE = slice(27, 31), slice(31, 36)
EYE_RIGHT, EYE_LEFT = slice(36, 42), slice(42, 48)
MOUTH_OUTER, MOUTH_INNER = slice(48, 60), slice(60, 68)


def _arc(x0: float, x1: float, y_ends: float, y_mid: float, n: int) -> np.ndarray:
    """n points from x0 to x1 on a parabola through (x0, y_ends), ((x0+x1)/2, y_mid), (x1, y_ends)."""
    x = np.linspace(x0, x1, n)
    t = (x - (x0 + x1) / 2) / ((x1 - x0) / 2)
    return np.stack([x, y_mid + (y_ends - y_mid) * t ** 2], axis=1)


def _eye(x_outer: float, x_inner: float, y: float, half_height: float) -> np.ndarray:
    """Six eye points in dlib order for the image-left eye (outer corner first, clockwise)."""
    a, b = x_outer + (x_inner - x_outer) / 3, x_outer + 2 * (x_inner - x_outer) / 3
    return np.array([[x_outer, y], [a, y - half_height], [b, y - half_height], [x_inner, y],
                     [b, y + half_height], [a, y + half_height]])


def unit_template() -> np.ndarray:
    """(68, 2) landmarks of the template face in a unit square: x in [0.08, 0.92], eye line at y 0.345,
    chin at y 1. Proportions of an average adult frontal face (jaw an ellipse from ear level to chin,
    eyes one eye-width apart, nose tip at 0.6, mouth at 0.82); the face is mirror-symmetric."""
    angle = np.linspace(0, np.pi, 17)
    jaw = np.stack([0.5 - 0.42 * np.cos(angle), 0.34 + 0.66 * np.sin(angle) ** 0.8], axis=1)
    brow_r = _arc(0.15, 0.44, 0.235, 0.19, 5)
    brow_l = np.stack([1 - brow_r[::-1, 0], brow_r[::-1, 1]], axis=1)
    bridge = np.stack([np.full(4, 0.5), np.linspace(0.35, 0.58, 4)], axis=1)
    base = np.array([[0.41, 0.645], [0.45, 0.66], [0.5, 0.67], [0.55, 0.66], [0.59, 0.645]])
    eye_r = _eye(0.22, 0.41, 0.345, 0.03)
    eye_l = np.stack([1 - eye_r[[3, 2, 1, 0, 5, 4], 0], eye_r[[3, 2, 1, 0, 5, 4], 1]], axis=1)
    upper = _arc(0.34, 0.66, 0.82, 0.775, 7)  # 48..54, corners included
    upper[3, 1] = 0.785  # the philtrum dip at the top centre of the upper lip
    lower = _arc(0.34, 0.66, 0.82, 0.89, 7)[1:-1][::-1]  # 55..59, right to left
    inner_top = _arc(0.36, 0.64, 0.82, 0.805, 5)  # 60..64
    inner_bottom = _arc(0.36, 0.64, 0.82, 0.84, 5)[1:-1][::-1]  # 65..67
    points = np.concatenate([jaw, brow_r, brow_l, bridge, base, eye_r, eye_l, upper, lower, inner_top, inner_bottom])
    assert points.shape == (N_LANDMARKS, 2)
    return points


def template_landmarks(size: int = TEMPLATE_SIZE) -> np.ndarray:
    """(68, 2) template landmarks in a size x size image: the unit face scaled by 0.73 about the
    image's vertical midline, brows at 30 % and the chin at 90 % of the height, which leaves the top
    30 % for the forehead, as in a face crop with a margin."""
    unit = unit_template()
    scale = 0.73
    x = 0.5 + scale * (unit[:, 0] - 0.5)
    y = 0.90 - scale * (1.0 - unit[:, 1])
    return np.stack([x, y], axis=1) * (size - 1)


def anchor_points(landmarks: np.ndarray, size: int) -> np.ndarray:
    """(N_ANCHORS, 2): the 68 landmarks, 15 forehead points and the 4 corners of a size x size image.

    Forehead points mirror jaw points 1-15 about the line through jaw points 0 and 16 (ear level),
    compressed so that the chin's mirror lands on the top edge: the forehead reaches the image top
    whatever the face's size in the crop."""
    points = np.asarray(landmarks, dtype=np.float64)
    top = size - 1.0
    y_ref = (points[0, 1] + points[16, 1]) / 2
    depth = points[8, 1] - y_ref  # ear line to chin
    if depth <= 1e-6:
        raise ValueError("the chin is not below the ear line")
    jaw = points[list(FOREHEAD_FROM_JAW)]
    squeeze = y_ref / depth  # chin mirror at y = 0
    forehead = np.stack([jaw[:, 0], y_ref - (jaw[:, 1] - y_ref) * squeeze], axis=1)
    corners = np.array([[0.0, 0.0], [top, 0.0], [0.0, top], [top, top]])
    return np.concatenate([points, forehead, corners])


def landmarks_problem(landmarks: np.ndarray | None, size: int) -> str:
    """"" when a face's 68 landmarks can be warped, else a short reason (the image is counted as failed).

    Checks: present and finite, inside a generous band around the image, a face of plausible size,
    and an upright layout (brows above eyes above nose tip above mouth above chin)."""
    if landmarks is None:
        return "no landmarks"
    points = np.asarray(landmarks, dtype=np.float64)
    if points.shape != (N_LANDMARKS, 2) or not np.all(np.isfinite(points)):
        return "landmarks malformed"
    if points.min() < -0.25 * size or points.max() > 1.25 * size:
        return "landmarks far outside the image"
    eye_r, eye_l = points[EYE_RIGHT].mean(axis=0), points[EYE_LEFT].mean(axis=0)
    if eye_l[0] - eye_r[0] < 0.1 * size:
        return "eyes too close or swapped"
    brows, eyes, mouth = points[17:27, 1].mean(), (eye_r[1] + eye_l[1]) / 2, points[MOUTH_OUTER, 1].mean()
    levels = [brows, eyes, points[30, 1], mouth, points[8, 1]]
    if not all(a < b for a, b in zip(levels, levels[1:])):
        return "face not upright"
    y_ref = (points[0, 1] + points[16, 1]) / 2
    if points[8, 1] - y_ref <= 0.1 * size or y_ref <= 0:
        return "jaw outline implausible"
    return ""


def scale_landmarks(points: np.ndarray, from_size: int, to_size: int) -> np.ndarray:
    """Landmarks of a from_size crop in a to_size resize of it (pixel-centre coordinates)."""
    return (np.asarray(points, dtype=np.float64) + 0.5) * (to_size / from_size) - 0.5


@dataclass
class TemplateWarp:
    """The piecewise-affine map from the template onto any face, precomputed for the template's pixels."""

    size: int  # template side T
    anchors: np.ndarray  # (N_ANCHORS, 2) template anchor points
    simplices: np.ndarray  # (n_triangles, 3) anchor indices of each Delaunay triangle
    pixel_vertices: np.ndarray  # (T*T, 3) anchor indices of each template pixel's triangle
    pixel_bary: np.ndarray  # (T*T, 3) barycentric coordinates of each template pixel in its triangle

    @classmethod
    def build(cls, size: int = TEMPLATE_SIZE) -> "TemplateWarp":
        from scipy.spatial import Delaunay

        anchors = anchor_points(template_landmarks(size), size)
        triangulation = Delaunay(anchors)
        rows, cols = np.mgrid[0:size, 0:size]
        pixels = np.stack([cols.ravel(), rows.ravel()], axis=1).astype(np.float64)
        simplex = triangulation.find_simplex(pixels)
        # The corners are anchors, so the hull is the whole template: every pixel has a triangle.
        assert np.all(simplex >= 0)
        transform = triangulation.transform[simplex]  # (P, 3, 2): inverse affine + offset per pixel
        partial = np.einsum("pij,pj->pi", transform[:, :2], pixels - transform[:, 2])
        bary = np.concatenate([partial, 1 - partial.sum(axis=1, keepdims=True)], axis=1)
        return cls(size, anchors, triangulation.simplices.copy(), triangulation.simplices[simplex], bary)

    @property
    def landmarks(self) -> np.ndarray:
        return self.anchors[:N_LANDMARKS]

    def coordinates(self, face_anchors: np.ndarray) -> np.ndarray:
        """(2, T, T) row and column in the face image of every template pixel (``warp``'s inverse map)."""
        xy = np.einsum("pk,pkd->pd", self.pixel_bary, np.asarray(face_anchors, dtype=np.float64)[self.pixel_vertices])
        return np.stack([xy[:, 1], xy[:, 0]]).reshape(2, self.size, self.size)

    def folded_share(self, face_anchors: np.ndarray) -> float:
        """Share of the facial mesh's template area whose triangles flip orientation on the face.

        Only triangles between facial landmarks count, and not those touching the inner lip points (a
        closed mouth puts them on one line). A thin sliver such as jaw 0 - brow 17 - eye 36 flips
        with ordinary variation (1.4 % of the area); a broken fit flips much more."""
        facial = self.simplices[np.all(self.simplices < MOUTH_INNER.start, axis=1)]
        template = _signed_areas(self.anchors, facial)
        face = _signed_areas(np.asarray(face_anchors, dtype=np.float64), facial)
        return float(np.abs(template[template * face < 0]).sum() / np.abs(template).sum())

    def warp(self, image: np.ndarray, coordinates: np.ndarray) -> np.ndarray:
        """(T, T) or (T, T, C) float32: an (S, S) or (S, S, C) array resampled bilinearly at ``coordinates``;
        template pixels that fall outside the face image get 0."""
        from skimage.transform import warp

        array = np.asarray(image, dtype=np.float32)
        if array.ndim == 2:
            return warp(array, coordinates, order=1, mode="constant", cval=0.0, preserve_range=True).astype(np.float32)
        channels = [warp(array[..., c], coordinates, order=1, mode="constant", cval=0.0, preserve_range=True)
                    for c in range(array.shape[-1])]
        return np.stack(channels, axis=-1).astype(np.float32)


def _signed_areas(points: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    a, b, c = points[triangles[:, 0]], points[triangles[:, 1]], points[triangles[:, 2]]
    return (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0])
