"""The UNBC-McMaster tree: subjects' sequences of 320x240 frames with FACS codes, PSPI, AAM points and
observer ratings, in the distributed layout (``Images/``, ``Frame_Labels/{PSPI,FACS}``, ``AAM_landmarks/``,
``Sequence_Labels/{AFF,OPR,SEN,VAS}``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.scales import pspi
from engine.synth.action_units import PAIN_AUS, Expresser, facs_coding, visible_intensities
from engine.synth.background import render_background
from engine.synth.files import label_counts, save_png, scientific
from engine.synth.identity import random_identity
from engine.synth.motion import HeadMotion, episode, random_pose, smooth_noise
from engine.synth.projection import Pose
from engine.synth.seeding import derived_rng
from engine.synth.shading import random_light
from engine.synth.sitting import Sitting
from engine.synth.sizes import SizeSpec

FRAME_SIZE = (320, 240)
_FRAME_FOLDERS = ("Images", "Frame_Labels/PSPI", "Frame_Labels/FACS", "AAM_landmarks")
# Observer ratings of a sequence: scale top and rating noise (standard deviation), in the files' order.
_OBSERVERS = (("AFF", 15, 1.5), ("OPR", 5, 0.7), ("SEN", 15, 1.5), ("VAS", 10, 1.0))


@dataclass(frozen=True)
class UnbcJob:
    """One subject to render (a picklable job for the process pool)."""

    seed: int
    root: Path  # the unbc/ folder being written
    index: int  # the subject's position, 0-based
    spec: SizeSpec
    low_pain_frames: int | None  # this subject's few pain frames in all; None: plenty


@dataclass(frozen=True)
class _Frame:
    coded: dict[str, int]  # FACS codes (empty for a black frame)
    image: np.ndarray
    landmarks: np.ndarray  # (68, 2) pixels


def render_unbc_subject(job: UnbcJob) -> dict:
    """One UNBC subject: its sequences of frames with coded AUs, PSPI, AAM landmarks and sequence labels.

    Returns the subject's counts (sequences, images, black frames, frames per label) and identity.
    """
    rng = derived_rng(job.seed, "unbc", job.index)
    number = 40 + job.index * 3 + int(rng.integers(0, 3))  # unique and increasing with the index
    code = "".join(chr(ord("a") + int(letter)) for letter in rng.integers(0, 26, 2)) + f"{number:03d}"
    sitting = Sitting(identity=random_identity(rng), expresser=Expresser.draw(rng, strength=float(rng.uniform(0.6, 1.0))),
                      background=render_background(FRAME_SIZE, rng), light=random_light(rng))
    resting = random_pose(rng, (0.19, 0.24), (0.38, 0.45))
    spec = job.spec
    stats = {"subject": code, "sequences": 0, "images": 0, "black_frames": 0, "no_pain": 0, "pain": 0}
    few_pain = _few_pain_frames_per_sequence(job.low_pain_frames, spec.unbc_sequences, spec.unbc_frames)
    for sequence in range(spec.unbc_sequences):
        srng = derived_rng(job.seed, "unbc", job.index, "seq", sequence)
        name = _sequence_name(code, sequence, spec.unbc_sequences)
        pain = _pain_curve(srng, spec.unbc_frames, few_pain[sequence])
        first_of_all = sequence == 0 and job.index == 0  # so that every tree has black frames
        black = int(srng.integers(1, 4)) if first_of_all or srng.random() < 0.12 else 0
        frames = _render_sequence(sitting, resting, pain, black, srng)
        counts = _write_sequence(job.root, f"{number:03d}-{code}", name, frames, black, srng)
        stats["sequences"] += 1
        for key in ("images", "black_frames", "no_pain", "pain"):
            stats[key] += counts[key]
    stats["identity"] = sitting.identity.as_dict()
    return stats


def _sequence_name(code: str, sequence: int, n_sequences: int) -> str:
    """UNBC's sequence name: subject code, session (1 or 2), two letters, and whether the affected side moves."""
    session = 1 + (sequence * 2) // max(1, n_sequences)
    letters = f"{chr(97 + sequence // 26)}{chr(97 + sequence % 26)}"
    return f"{code}t{session}{letters}{'aff' if sequence % 2 == 0 else 'unaff'}"


def _few_pain_frames_per_sequence(low_pain_frames: int | None, n_sequences: int, n_frames: int) -> list[int | None]:
    """How a low-pain subject's pain frames spread over its sequences (the first has none), or all None."""
    left, out = low_pain_frames, []
    for sequence in range(n_sequences):
        frames = None if left is None else (min(left, n_frames - 2) if sequence >= 1 else 0)
        left = None if left is None else left - frames
        out.append(frames)
    return out


def _pain_curve(rng: np.random.Generator, n_frames: int, few_pain_frames: int | None) -> np.ndarray:
    """Pain level (0-1) per frame: one or two rising and falling episodes, or, for a subject with few
    pain frames, one flat episode of ``few_pain_frames`` frames (0: none)."""
    curve = np.zeros(n_frames)
    if few_pain_frames is None:
        for _ in range(int(rng.integers(1, 3))):
            length = int(rng.integers(max(4, n_frames // 4), max(5, n_frames // 2 + 1)))
            start = int(rng.integers(0, max(1, n_frames - length)))
            curve = np.maximum(curve, episode(n_frames, start, length, float(rng.uniform(0.45, 1.0))))
    elif few_pain_frames > 0:
        length = min(n_frames - 2, few_pain_frames)
        start = int(rng.integers(1, n_frames - length))
        curve[start : start + length] = float(rng.uniform(0.75, 0.95))  # strong enough that every frame is coded
    return curve


def _render_sequence(sitting: Sitting, resting: Pose, pain: np.ndarray, black: int, rng: np.random.Generator) -> list[_Frame]:
    """The sequence's frames after its ``black`` leading black frames: pain AUs, a smile now and then, talking."""
    n_frames = len(pain)
    motion = HeadMotion.draw(rng, n_frames + black)
    if rng.random() < 0.4:
        smile = episode(n_frames, int(rng.integers(0, n_frames)), int(rng.integers(3, 8)), float(rng.uniform(0.3, 0.8)))
    else:
        smile = np.zeros(n_frames)
    talk = np.clip(smooth_noise(rng, n_frames, 1.0), 0, None)
    frames = []
    for i in range(n_frames):
        aus = sitting.expresser.intensities(float(pain[i]), rng)
        aus.update(AU12=float(5 * smile[i]), AU20=0.0, AU25=float(min(5, 2 * talk[i])),
                   AU26=float(min(5, 1.2 * talk[i])) if talk[i] > 0.8 else 0.0)
        coded = facs_coding(aus)
        face = sitting.render(visible_intensities(aus, coded), motion.pose_at(resting, i + black), rng)
        frames.append(_Frame(coded, face.image, face.landmarks))
    return frames


def _write_sequence(root: Path, subject: str, name: str, frames: list[_Frame], black: int, rng: np.random.Generator) -> dict:
    """Write the black frames (no AU coded; the tracker's points kept), the frames, and the observers' ratings."""
    folders = {key: root / key / subject / name for key in _FRAME_FOLDERS}
    for folder in folders.values():
        folder.mkdir(parents=True, exist_ok=True)
    black_frame = _Frame({}, np.zeros((FRAME_SIZE[1], FRAME_SIZE[0], 3), np.uint8), frames[0].landmarks)
    counts = {"images": len(frames) + black, "black_frames": black, "no_pain": 0, "pain": 0}
    max_pspi = 0.0
    for k, frame in enumerate([black_frame] * black + frames):
        value = _write_frame(folders, f"{name}{k + 1:03d}", frame)
        if k >= black:
            counts["pain" if value > 0 else "no_pain"] += 1
        max_pspi = max(max_pspi, value)
    _write_observer_ratings(root, subject, name, max_pspi / 16, rng)
    return counts


def _write_frame(folders: dict[str, Path], stem: str, frame: _Frame) -> float:
    """The frame's PNG, PSPI file, FACS file (one row per active AU) and 66 AAM points; returns the PSPI."""
    save_png(frame.image, folders["Images"] / f"{stem}.png")
    value = pspi(*(frame.coded.get(au, 0) for au in PAIN_AUS))
    (folders["Frame_Labels/PSPI"] / f"{stem}_facs.txt").write_text(f"   {scientific(value)}\n")
    rows = sorted((int(au[2:]), code) for au, code in frame.coded.items() if code > 0)
    facs = "".join(f"   {scientific(au)}   {scientific(code)}   {scientific(0)}   {scientific(0)}\n" for au, code in rows)
    (folders["Frame_Labels/FACS"] / f"{stem}_facs.txt").write_text(facs)
    aam = np.delete(frame.landmarks, [60, 64], axis=0)  # UNBC's AAM has 66 points: no inner-mouth corners
    (folders["AAM_landmarks"] / f"{stem}_aam.txt").write_text("".join(f"   {scientific(x)}   {scientific(y)}\n" for x, y in aam))
    return value


def _write_observer_ratings(root: Path, subject: str, name: str, level: float, rng: np.random.Generator) -> None:
    """Each observer scale's rating of the sequence: its peak pain ``level`` (0-1) on the scale, plus noise."""
    for observer, top, noise in _OBSERVERS:
        value = round(float(np.clip(level * top + rng.normal(0, noise), 0, top)))
        folder = root / "Sequence_Labels" / observer / subject
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{name}.txt").write_text(f"   {scientific(value)}\n")


def unbc_record(results: list[dict]) -> dict:
    """What SYNTHETIC.json says about the UNBC tree."""
    return {
        "subjects": len(results),
        "sequences": sum(r["sequences"] for r in results),
        "images": sum(r["images"] for r in results),
        "black_frames": sum(r["black_frames"] for r in results),
        "labels": label_counts(results),  # black frames excluded (all are no pain)
        "per_subject": {r["subject"]: {"no_pain": r["no_pain"], "pain": r["pain"], "black_frames": r["black_frames"]} for r in results},
        "frame_size": list(FRAME_SIZE),
        "landmarks": "aam66 written (x, y)",
        "identities": {r["subject"]: r["identity"] for r in results},
    }
