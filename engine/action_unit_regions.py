"""Which facial movements, where LIME looked: the AUs that moved most, beside the LIME weight in their regions.

An answer's explanation (a network's LIME map of one face) says where; the action-unit estimate says which
movements. This joins them on the face itself: the pain regions of ``engine.explain.pain_regions`` (brows and
glabella for AU4, around the eyes for AU6/AU7, the eye openings for AU43, nose and upper lip for AU9/AU10) are
laid on the explained face by its own 68 landmarks (not warped to the template), and for each AU that moved
most the share of the LIME map's positive weight in its region is given beside that region's share of the
face's area (a share above the area share: LIME's weight is denser there than on the face on average).
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from engine.models.action_units import PLAIN_NAMES

REGION_OF_AU = {"AU4": "brow_lowerer", "AU6": "orbit", "AU7": "orbit", "AU9": "nose_lip", "AU10": "nose_lip",
                "AU43": "eye_closure"}
REGION_NAMES = {"brow_lowerer": "brows and the skin between them", "orbit": "area around the eyes",
                "eye_closure": "eye openings", "nose_lip": "nose and upper lip"}
MOVED = 0.5  # an estimate that FACS would code as 1 or more
TOP = 3


def moved_most(aus: dict[str, float] | None, top: int = TOP) -> list[str]:
    """The AUs (not PSPI) estimated at 0.5 or more, strongest first, at most ``top``."""
    if not aus:
        return []
    found = [(value, name) for name, value in aus.items() if name in REGION_OF_AU and value is not None and value >= MOVED]
    return [name for _, name in sorted(found, key=lambda pair: (-pair[0], list(REGION_OF_AU).index(pair[1])))[:top]]


def region_labels(landmarks: np.ndarray, size: int) -> np.ndarray | None:
    """(size, size) index into ``pain_regions.ALL_REGIONS`` (OUTSIDE off the face) for a face whose 68 landmarks
    are given in ``size``-pixel coordinates; None when the landmarks cannot outline a face."""
    from engine.explain.normalize import anchor_points, landmarks_problem
    from engine.explain.pain_regions import pain_region_map

    if landmarks_problem(landmarks, size):
        return None
    try:
        return pain_region_map(SimpleNamespace(size=size, anchors=anchor_points(landmarks, size)))
    except ValueError:
        return None


def action_units_in_regions(aus: dict[str, float] | None, lime_mask: np.ndarray, landmarks: np.ndarray | None,
                            crop_size: int, network: str = "the network") -> list[dict]:
    """One record per AU that moved most: au, name, intensity, region, lime_share, area_share and a sentence.
    ``lime_mask``: (S, S) positive LIME weights at the network's input size; ``landmarks``: (68, 2) in the
    pixels of the ``crop_size`` crop. [] when no AU moved or the regions cannot be laid on the face."""
    from engine.explain.normalize import scale_landmarks
    from engine.explain.pain_regions import ALL_REGIONS, OUTSIDE

    names = moved_most(aus)
    if not names or landmarks is None:
        return []
    size = int(lime_mask.shape[0])
    labels = region_labels(scale_landmarks(landmarks, crop_size, size), size)
    if labels is None:
        return []
    face = labels != OUTSIDE
    mass = float(np.maximum(lime_mask, 0)[face].sum())
    out = []
    for name in names:
        region = REGION_OF_AU[name]
        inside = labels == ALL_REGIONS.index(region)
        share = float(np.maximum(lime_mask, 0)[inside].sum() / mass) if mass > 0 else float("nan")
        area = float(inside.sum() / max(1, face.sum()))
        where = (f"{share:.0%} of {network}'s LIME weight lies in the {REGION_NAMES[region]} ({area:.0%} of the face)"
                 if np.isfinite(share) else f"{network}'s LIME map has no positive weight on the face")
        out.append({"au": name, "name": PLAIN_NAMES[name], "intensity": float(aus[name]), "region": region,
                    "lime_share": share, "area_share": area,
                    "sentence": f"{PLAIN_NAMES[name].capitalize()} ({name}, {_intensity(name, aus[name])}): {where}."})
    return out


def _intensity(name: str, value: float) -> str:
    return "present" if name == "AU43" else f"{value:.1f} of 5"  # UNBC codes AU43 present or absent
