"""The MIntPAIN tree: per subject, trial and sweep a level-0 segment and a stimulus segment (level 1-4) of
640x480 frames named by their time stamps, in the distributed layout
``Sub<NN> <name>/Annotated_data_Sub<NN>_Trial<TT>/Sub<NN>_Trial<TT>_Sweep<SS>_Label<L>/{RGB,D,T}/``.

The made-up name after ``SubNN`` stands for the participant names real folders may hold.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from engine.synth.action_units import Expresser
from engine.synth.background import render_background
from engine.synth.files import JPEG_QUALITY, label_counts, save_jpeg, save_png
from engine.synth.identity import Identity, random_identity
from engine.synth.motion import HeadMotion, random_pose
from engine.synth.projection import Pose
from engine.synth.seeding import derived_rng
from engine.synth.shading import random_light
from engine.synth.sitting import Sitting
from engine.synth.sizes import SizeSpec

FRAME_SIZE = (640, 480)
LEVELS = range(5)
_NAME_SYLLABLES = ("ka", "lo", "ve", "ri", "mo", "sa", "ten", "dru", "fi", "nal", "qu", "zo", "ber", "mi", "ta", "lun", "ore", "vi")


@dataclass(frozen=True)
class MintJob:
    """One subject to render (a picklable job for the process pool)."""

    seed: int
    root: Path  # the mintpain/ folder being written
    index: int  # the subject's position, 0-based
    spec: SizeSpec


def render_mint_subject(job: MintJob) -> dict:
    """One MIntPAIN subject, every trial. Returns its counts (trials, segments, images per label and level),
    its made-up name and identity."""
    rng = derived_rng(job.seed, "mintpain", job.index)
    subject = f"Sub{job.index + 1:02d}"
    name = _made_up_name(rng)
    identity = random_identity(rng)
    expresser = Expresser.draw(rng, strength=float(rng.uniform(0.7, 1.0)))
    stats = {"subject": subject, "name": name, "trials": 0, "segments": 0, "images": 0, "no_pain": 0, "pain": 0,
             "levels": {str(level): 0 for level in LEVELS}}
    for trial in range(1, job.spec.mint_trials + 1):
        _render_trial(job, trial, f"{subject} {name}", identity, expresser, stats)
    stats["identity"] = identity.as_dict()
    return stats


def _made_up_name(rng: np.random.Generator) -> str:
    def word() -> str:
        return "".join(str(rng.choice(_NAME_SYLLABLES)) for _ in range(int(rng.integers(2, 4)))).capitalize()

    return f"{word()} {word()}"


def _render_trial(job: MintJob, trial: int, subject_folder: str, identity: Identity, expresser: Expresser, stats: dict) -> None:
    """One trial (its own room, light and resting pose): every sweep's two segments, counted into ``stats``."""
    trng = derived_rng(job.seed, "mintpain", job.index, "trial", trial)
    stats["trials"] += 1
    sitting = Sitting(identity, expresser, background=render_background(FRAME_SIZE, trng), light=random_light(trng))
    resting = random_pose(trng, (0.12, 0.16), (0.36, 0.44))
    clock_ms = int(trng.integers(9, 17)) * 3_600_000 + int(trng.integers(0, 3_000_000))  # ms since midnight
    subject = stats["subject"]
    trial_dir = job.root / subject_folder / f"Annotated_data_{subject}_Trial{trial:02d}"
    frames = job.spec.mint_frames
    for sweep in range(1, job.spec.mint_sweeps + 1):
        level = int(trng.integers(1, 5))
        for label in (0, level):
            folder = trial_dir / f"{subject}_Trial{trial:02d}_Sweep{sweep:02d}_Label{label}"
            segment_rng = derived_rng(job.seed, "mintpain", job.index, trial, sweep, label)
            # Depth and thermal frames for the first sweep only: the layout is realistic, PainLens ignores them.
            clock_ms = _render_segment(folder, sitting, resting, label, frames, clock_ms, segment_rng,
                                       with_depth_and_thermal=sweep == 1)
            stats["segments"] += 1
            stats["images"] += frames
            stats["levels"][str(label)] += frames
            stats["pain" if label > 0 else "no_pain"] += frames
            clock_ms += int(trng.integers(5_000, 20_000))


def _render_segment(folder: Path, sitting: Sitting, resting: Pose, label: int, n_frames: int, clock_ms: int,
                    rng: np.random.Generator, with_depth_and_thermal: bool) -> int:
    """Write ``n_frames`` frames of one segment; pain grows with the level (``label``). Returns the clock after it."""
    (folder / "RGB").mkdir(parents=True, exist_ok=True)
    if with_depth_and_thermal:
        (folder / "D").mkdir(exist_ok=True)
        (folder / "T").mkdir(exist_ok=True)
    motion = HeadMotion.draw(rng, n_frames)
    for i in range(n_frames):
        pain = label / 4 * (0.75 + 0.25 * math.sin(math.pi * (i + 0.5) / n_frames)) if label else 0.0
        aus = sitting.expresser.intensities(pain, rng)
        aus["AU25"] = float(rng.uniform(0, 1.5)) if rng.random() < 0.3 else 0.0
        face = sitting.render(aus, motion.pose_at(resting, i), rng)
        clock_ms += int(rng.integers(90, 400))
        _write_frame(folder, _time_stamp(clock_ms), face.image, with_depth_and_thermal)
    return clock_ms


def _time_stamp(clock_ms: int) -> str:
    """HH-MM-SS-mmm, as in MIntPAIN's file names."""
    hours, rest = divmod(clock_ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    seconds, milli = divmod(rest, 1000)
    return f"{hours:02d}-{minutes:02d}-{seconds:02d}-{milli:03d}"


def _write_frame(folder: Path, stamp: str, image: np.ndarray, with_depth_and_thermal: bool) -> None:
    """The RGB frame, and stand-ins for the depth and thermal frames (grey images of the right size and names)."""
    save_jpeg(image, folder / "RGB" / f"RGB-{stamp}.jpg")
    if with_depth_and_thermal:
        grey = np.asarray(Image.fromarray(image).convert("L").resize((160, 120), Image.BILINEAR))
        save_png(255 - grey, folder / "D" / f"D-{stamp}.png")
        Image.fromarray(grey).save(folder / "T" / f"T-{stamp}.jpg", format="JPEG", quality=JPEG_QUALITY)


def mint_record(results: list[dict]) -> dict:
    """What SYNTHETIC.json says about the MIntPAIN tree."""
    levels = {str(level): sum(r["levels"][str(level)] for r in results) for level in LEVELS}
    return {
        "subjects": len(results),
        "trials": sum(r["trials"] for r in results),
        "segments": sum(r["segments"] for r in results),
        "images": sum(r["images"] for r in results),
        "labels": label_counts(results),
        "levels": levels,
        "per_subject": {r["subject"]: {"no_pain": r["no_pain"], "pain": r["pain"]} for r in results},
        # The made-up names after "SubNN", so privacy tests can check they never leak; whatever copies this
        # record into artifacts must leave this key out.
        "free_text_in_subject_folders": [r["name"] for r in results],
        "frame_size": list(FRAME_SIZE),
        "identities": {r["subject"]: r["identity"] for r in results},
    }
