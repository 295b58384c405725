"""Images that are not PAIN-DB-like faces, built at test time from what installed packages ship (no real face
is stored in this repository): the answer must withhold its number on them.

- real photographs of people: scikit-image's ``astronaut`` and ``camera``, and the first faces of its
  ``lfw_subset`` (Labeled Faces in the Wild, 25 x 25 grey), enlarged onto a grey card;
- an animal: scikit-image's ``chelsea`` (a cat);
- drawings and strong transformations of a synthetic face: its edges drawn as a pen sketch, its colours
  inverted, its hues turned, and a coarse mosaic of it.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

LFW_FACES = 30  # lfw_subset's first 100 images are faces


def _rgb(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.dtype != np.uint8:
        image = np.clip(image * 255 if image.max() <= 1.0 else image, 0, 255).astype(np.uint8)
    return np.stack([image] * 3, axis=-1) if image.ndim == 2 else image[..., :3]


def _on_card(face: np.ndarray, side: int = 200, card: int = 320) -> np.ndarray:
    """A small grey face enlarged to ``side`` pixels in the middle of a plain grey card."""
    enlarged = np.asarray(Image.fromarray(_rgb(face)).resize((side, side), Image.Resampling.BICUBIC))
    out = np.full((card, card, 3), 128, np.uint8)
    start = (card - side) // 2
    out[start:start + side, start:start + side] = enlarged
    return out


def unlike_faces(synthetic_face: np.ndarray) -> dict[str, np.ndarray]:
    """Name -> (H, W, 3) uint8 image; ``synthetic_face``: one face of the synthetic generator to transform."""
    from skimage import data, feature

    images = {"astronaut (photograph)": data.astronaut(), "cameraman (photograph)": _rgb(data.camera()),
              "cat (photograph)": data.chelsea()}
    faces = data.lfw_subset()[:LFW_FACES]
    images.update({f"LFW face {i} (photograph)": _on_card(face) for i, face in enumerate(faces)})
    grey = np.asarray(Image.fromarray(synthetic_face).convert("L"), dtype=float) / 255
    sketch = np.where(feature.canny(grey, sigma=2.0), 20, 250).astype(np.uint8)
    images["synthetic face as a pen sketch"] = _rgb(sketch)
    images["synthetic face, colours inverted"] = 255 - synthetic_face
    hues = np.asarray(Image.fromarray(synthetic_face).convert("HSV")).copy()
    hues[..., 0] = (hues[..., 0].astype(int) + 110) % 256
    images["synthetic face, hues turned"] = np.asarray(Image.fromarray(hues, "HSV").convert("RGB"))
    small = Image.fromarray(synthetic_face).resize((synthetic_face.shape[1] // 12, synthetic_face.shape[0] // 12),
                                                   Image.Resampling.BOX)
    images["synthetic face as a coarse mosaic"] = np.asarray(small.resize(synthetic_face.shape[1::-1], Image.Resampling.NEAREST))
    return images
