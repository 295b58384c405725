"""The synthetic test bed: made-up faces driven by FACS action units, and the four datasets' native trees.

No real person anywhere; NumPy and PIL only. The parts, from a face to the trees:

- ``identity``       who a person is (``Identity``, ``random_identity``)
- ``action_units``   which AUs are drawn, ``PAIN_VISUAL_GAIN``, how a subject expresses pain, FACS coding
- ``landmarks``      the 68 points in face units, moved by traits and AUs
- ``projection``     head pose (``Pose``), face units to pixels, the supersampled head patch
- ``background``, ``shading``, ``face_parts``, ``hair_and_body``, ``occluder``, ``strokes``: the drawing
- ``render``         ``render_face``: one image from an identity and AU intensities
- ``sitting``, ``motion``: one person in one room over many frames (head drift, pain episodes)
- ``unbc``, ``mintpain``, ``delaware``, ``cppain``, ``ratings``: the four trees and CP-PAIN's raters
- ``generator``      ``generate(out, seed, size)``, ``SIZES`` (from ``sizes``), ``GENERATOR_VERSION``
"""

from engine.synth.generator import DATASETS, GENERATOR_VERSION, RECORD_NAME, generate
from engine.synth.identity import Identity, random_identity
from engine.synth.occluder import Occluder
from engine.synth.projection import Pose
from engine.synth.render import RenderedFace, render_face
from engine.synth.background import render_background
from engine.synth.sizes import SIZES, SizeSpec

__all__ = [
    "DATASETS", "GENERATOR_VERSION", "RECORD_NAME", "SIZES", "SizeSpec", "generate",
    "Identity", "Occluder", "Pose", "RenderedFace", "random_identity", "render_background", "render_face",
]
