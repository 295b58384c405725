"""One face image from an identity and action-unit intensities: the renderer every synthetic image comes from.

The 68 landmarks (``engine.synth.landmarks``) are projected with the head pose; the body is drawn behind the
head at the output resolution, the head (skin, shading, eyes, brows, nose, mouth, hair, glasses, a hand) on
a supersampled patch around it, then the camera's softness and sensor noise are added. Needs only NumPy
and PIL: no downloads, no real people.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from engine.synth.background import render_background
from engine.synth.face_parts import draw_brows, draw_ears_and_skin, draw_eyes, draw_glasses, draw_mouth, draw_nose
from engine.synth.hair_and_body import draw_body, draw_hair_front
from engine.synth.identity import Identity
from engine.synth.landmarks import face_landmarks3d, head_outline
from engine.synth.occluder import Occluder, draw_occluder
from engine.synth.projection import SUPERSAMPLE, HeadPatch, Pose, Projector
from engine.synth.shading import random_light, shade_head


@dataclass
class RenderedFace:
    image: np.ndarray  # (H, W, 3) uint8 RGB
    landmarks: np.ndarray  # (68, 2) float32, (x, y) pixels, dlib 68-point order
    box: tuple[float, float, float, float]  # face box x0, y0, x1, y1 in pixels (brows to chin, jaw to jaw)


def render_face(
    identity: Identity,
    au_intensities: dict[str, float],
    pose: Pose,
    canvas_size: tuple[int, int],
    rng: np.random.Generator,
    background: np.ndarray | None = None,
    occluder: Occluder | None = None,
    light: tuple[float, float] | None = None,
) -> RenderedFace:
    """Draw one person showing the given action units (name -> intensity 0-5, see ``engine.synth.action_units``).

    canvas_size is (width, height). ``background`` (H, W, 3) uint8 is reused when given (a video keeps its
    scene); otherwise one is drawn from ``rng``. ``light`` is the (x, y) direction of the key light
    (defaults to one drawn from ``rng``). ``rng`` also draws the sensor noise. Returns the image, the 68
    landmarks (x, y) and the face box.
    """
    if background is None:
        background = render_background(canvas_size, rng)
    if light is None:
        light = random_light(rng)
    points3d, strengths = face_landmarks3d(identity, au_intensities)
    projector = Projector(pose, canvas_size)
    landmarks = projector.head(points3d)
    outline = projector.head(head_outline(identity, points3d[:17]))

    scene = Image.fromarray(background).copy()
    draw_body(ImageDraw.Draw(scene), identity, projector, points3d)
    patch = _head_patch(identity, projector, outline, occluder, canvas_size)
    head = _draw_head(identity, patch, landmarks, outline, strengths, light, occluder)
    scene.paste(head, (patch.x0, patch.y0), head)
    image = _through_the_camera(scene, projector.pixels_per_unit, rng)
    return RenderedFace(image=image, landmarks=landmarks.astype(np.float32), box=_face_box(landmarks))


def _draw_head(identity: Identity, patch: HeadPatch, landmarks: np.ndarray, outline: np.ndarray, strengths: dict[str, float],
               light: tuple[float, float], occluder: Occluder | None) -> Image.Image:
    """The head (and a hand over it) drawn supersampled, then reduced to the patch's size in image pixels (RGBA)."""
    layer = Image.new("RGBA", (patch.width * SUPERSAMPLE, patch.height * SUPERSAMPLE), (0, 0, 0, 0))
    outline_px = patch.to_patch(outline)
    draw_ears_and_skin(ImageDraw.Draw(layer), identity, patch, outline_px)
    points, unit = patch.to_patch(landmarks), patch.unit_px
    shade_head(layer, identity, points, outline_px, strengths, unit, light)
    draw = ImageDraw.Draw(layer)
    draw_eyes(draw, layer, identity, points, unit)
    draw_brows(draw, identity, points, unit)
    draw_nose(draw, identity, points, unit)
    draw_mouth(draw, identity, points, unit, strengths["teeth"])
    draw_hair_front(draw, identity, patch)
    if identity.glasses:
        draw_glasses(draw, identity, points, unit)
    if occluder is not None:
        draw_occluder(draw, identity, patch, occluder)
    return layer.resize((patch.width, patch.height), Image.BOX)


def _head_patch(identity: Identity, projector: Projector, outline: np.ndarray, occluder: Occluder | None,
                canvas_size: tuple[int, int]) -> HeadPatch:
    """The image region the head (ears, hair cap, a hand) can reach, clipped to the canvas."""
    width, height = canvas_size
    reach = [outline, projector.head(np.array([[-1.45, 0.3, 0.1], [1.45, 0.3, 0.1], [0.0, -identity.forehead * 1.15, 0.2],
                                               [0.0, identity.chin_length + 0.25, 0.5]]))]
    if occluder is not None:
        fingers = np.array([[-2.2, -2.2], [2.2, 2.2]]) * occluder.radius * projector.pixels_per_unit
        reach.append(projector.head(occluder.palm_centre()) + fingers)
    span = np.concatenate(reach)
    x0 = int(max(0, math.floor(span[:, 0].min() - 2)))
    x1 = int(min(width, math.ceil(span[:, 0].max() + 2)))
    y0 = int(max(0, math.floor(span[:, 1].min() - 2)))
    y1 = int(min(height, math.ceil(span[:, 1].max() + 2)))
    return HeadPatch(x0, y0, max(1, x1 - x0), max(1, y1 - y0), projector)


def _through_the_camera(scene: Image.Image, pixels_per_unit: float, rng: np.random.Generator) -> np.ndarray:
    """A little blur (the same softness at any face size) and sensor noise; (H, W, 3) uint8."""
    soft = scene.filter(ImageFilter.GaussianBlur(0.45 * max(1.0, pixels_per_unit / 50)))
    image = np.asarray(soft, dtype=np.float32)
    image += rng.standard_normal(image.shape, dtype=np.float32) * 2.2
    return np.clip(image + 0.5, 0, 255).astype(np.uint8)


def _face_box(landmarks: np.ndarray) -> tuple[float, float, float, float]:
    """x0, y0, x1, y1: jaw to jaw, from a little above the brows to the chin."""
    brow_top = landmarks[17:27, 1].min()
    chin = landmarks[8, 1]
    return (float(landmarks[:17, 0].min()), float(brow_top - 0.12 * (chin - brow_top)), float(landmarks[:17, 0].max()), float(chin))
