"""Photos and a shared Predictor for the serving tests (a helper module, not a test file).

``crowd_photo(i)``: photo number ``i`` of ``len(LAYOUTS)``, each with its own number of rendered people
(one to three, never real faces) at its own positions, so every photo has different face boxes.
``shared_predictor(base)``: one ``engine.predict.Predictor`` per test process on the tiny experiment of
tests/dashboard_fixtures.py (built once per session under ``base``), shared by every test module.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from dashboard_fixtures import face_image, tiny_experiment

# Per photo: (tile side, left, top) of each person's tile on a 640 x 480 canvas, largest first.
LAYOUTS = (
    ((300, 20, 60),),
    ((280, 340, 190),),
    ((300, 0, 0), (200, 420, 260)),
    ((260, 360, 20), (190, 40, 270)),
    ((240, 200, 120),),
    ((270, 30, 200), (200, 330, 10), (170, 460, 300)),
    ((310, 320, 160), (180, 20, 20)),
    ((250, 100, 30), (200, 400, 100), (160, 20, 310)),
)


def crowd_photo(index: int) -> np.ndarray:
    """(480, 640, 3) uint8: the people of ``LAYOUTS[index]`` on a grey gradient."""
    canvas = np.empty((480, 640, 3), np.uint8)
    canvas[:] = np.linspace(150, 215, 640, dtype=np.uint8)[None, :, None]
    for person, (side, left, top) in enumerate(LAYOUTS[index]):
        tile = face_image(100 + 10 * index + person, (320, 320), scale=0.24)
        canvas[top:top + side, left:left + side] = np.asarray(Image.fromarray(tile).resize((side, side), Image.LANCZOS))
    return canvas


_PREDICTORS: dict[str, object] = {}


def shared_predictor(base: Path):
    """The Predictor on the tiny experiment under ``base`` (built and loaded once per process)."""
    from engine.predict import Predictor

    key = str(base)
    if key not in _PREDICTORS:
        _PREDICTORS[key] = Predictor(tiny_experiment(base))
    return _PREDICTORS[key]
