"""The figure of the pain action-unit regions (engine/explain/pain_regions.py), and their area shares.

Left: the regions on the template face (the 68 template landmarks as dots). Right: a synthetic face in
pain (AU4, AU6, AU7, AU9, AU10 and AU43 planted; no real person) warped onto the template, with the
regions' outlines. Prints each region's share of the face area.

    .venv/bin/python bench/pain_regions_figure.py [--out pain_regions.png] [--size 384]

The figure is generated, not committed: run this to see it (the README's "Faithfulness" section
describes it).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
from PIL import Image, ImageDraw, ImageFont  # noqa: E402

# Colour-vision-deficiency safe (Okabe-Ito), one per pain region; the reference stays light grey.
COLOURS = {"brow_lowerer": (230, 159, 0), "orbit": (86, 180, 233), "eye_closure": (0, 114, 178),
           "nose_lip": (0, 158, 115), "reference": (225, 225, 225)}
AUS = {"brow_lowerer": "AU4", "orbit": "AU6 AU7", "eye_closure": "AU43", "nose_lip": "AU9 AU10", "reference": "rest"}


def pain_face(size: int) -> tuple[np.ndarray, np.ndarray]:
    """A synthetic face crop in pain (size x size) and its 68 landmarks in dlib order."""
    from engine.explain.normalize import scale_landmarks
    from engine.synth import Pose, random_identity, render_face

    rng = np.random.default_rng(3)
    aus = {"AU4": 4.0, "AU6": 3.0, "AU7": 3.0, "AU9": 2.0, "AU10": 2.0, "AU43": 1.0}
    face = render_face(random_identity(rng), aus, Pose(scale=0.3), (160, 160), rng)
    x0, y0, x1, y1 = face.box
    side = int(round(1.4 * max(x1 - x0, y1 - y0)))
    left, top = int(round((x0 + x1 - side) / 2)), int(round((y0 + y1 - side) / 2))
    crop = Image.fromarray(face.image).crop((left, top, left + side, top + side)).resize((size, size), Image.Resampling.LANCZOS)
    points = scale_landmarks(face.landmarks - [left, top], side, size)
    for brow in (slice(17, 22), slice(22, 27)):  # dlib numbers each brow's points left to right
        points[brow] = points[brow][np.argsort(points[brow][:, 0])]
    return np.asarray(crop), points


def outlines(labels: np.ndarray) -> np.ndarray:
    """(T, T) bool: pixels on the border between two regions (or a region and the outside)."""
    edge = np.zeros(labels.shape, dtype=bool)
    edge[:-1] |= labels[:-1] != labels[1:]
    edge[:, :-1] |= labels[:, :-1] != labels[:, 1:]
    return edge


def figure(size: int) -> tuple[np.ndarray, dict[str, float]]:
    from engine.explain.normalize import TEMPLATE_SIZE, TemplateWarp, anchor_points
    from engine.explain.pain_regions import ALL_REGIONS, area_shares, pain_region_map
    from engine.explain.regions import OUTSIDE

    warp = TemplateWarp.build(TEMPLATE_SIZE)
    labels = pain_region_map(warp)
    coloured = np.full((*labels.shape, 3), 255, dtype=np.uint8)
    for index, name in enumerate(ALL_REGIONS):
        coloured[labels == index] = COLOURS[name]
    coloured[outlines(labels) & (labels != OUTSIDE)] = 60
    face, points = pain_face(96)
    warped = np.clip(warp.warp(face, warp.coordinates(anchor_points(points, 96))), 0, 255).astype(np.uint8)
    for index, name in enumerate(ALL_REGIONS[:-1]):
        warped[outlines(labels == index)] = COLOURS[name]
    scale = size / TEMPLATE_SIZE
    panels = [Image.fromarray(p).resize((size, size), Image.Resampling.NEAREST) for p in (coloured, warped)]
    draw = ImageDraw.Draw(panels[0])
    for x, y in warp.landmarks * scale:
        draw.ellipse((x - 2, y - 2, x + 2, y + 2), fill=(0, 0, 0))
    legend_h = 28
    canvas = Image.new("RGB", (2 * size + 24, size + legend_h * len(ALL_REGIONS) + 16), "white")
    canvas.paste(panels[0], (8, 8))
    canvas.paste(panels[1], (size + 16, 8))
    draw = ImageDraw.Draw(canvas)
    font = _font(16)
    shares = area_shares(labels)
    for i, name in enumerate(ALL_REGIONS):
        y = size + 16 + i * legend_h
        draw.rectangle((8, y, 28, y + 18), fill=COLOURS[name], outline=(60, 60, 60))
        draw.text((36, y), f"{name} ({AUS[name]}): {shares[name]:.1%} of the face area", fill="black", font=font)
    return np.asarray(canvas), shares


def _font(size: int):
    try:
        return ImageFont.truetype("DejaVuSans.ttf", size)
    except OSError:
        return ImageFont.load_default(size)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="pain_regions.png", help="PNG file to write")
    parser.add_argument("--size", type=int, default=384, help="side of each panel in pixels")
    args = parser.parse_args()
    image, shares = figure(args.size)
    Image.fromarray(image).save(args.out)
    print(f"wrote {args.out}")
    for name, share in shares.items():
        print(f"{name:14s} {AUS[name]:9s} {share:6.1%} of the face area")
    print(f"{'pain regions':14s} {'':9s} {1 - shares['reference']:6.1%} of the face area (the pointing game's chance level)")


if __name__ == "__main__":
    main()
