"""Seeded synthetic datasets: UNBC-McMaster, MIntPAIN, Delaware and CP-PAIN trees from one face model.

``generate(out, seed, size)`` writes ``out/unbc``, ``out/mintpain``, ``out/delaware`` and ``out/cppain``
in the native layouts of ``DATASETS.md`` and ``out/SYNTHETIC.json``, a record of what was written
(subjects, sequences, images per binary label, black frames...) that tests compare adapters against.
Every random choice comes from an RNG derived from (seed, dataset, subject, ...), so the same seed and
size give byte-identical files whatever the number of worker processes.

Sizes: ``tiny`` (seconds, a handful of subjects), ``demo`` (a few hundred PAIN-DB images after
sampling 10 frames per subject and class) and ``paper`` (the paper's counts: UNBC 25 subjects,
MIntPAIN 20, Delaware 240 subjects and 803 photos, CP-PAIN 53 subjects, 127 rated videos, 109 images).
"""

from __future__ import annotations

import csv
import json
import math
import os
import shutil
import zlib
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image

from engine.datasets.synth_faces import Occluder, Pose, random_identity, render_background, render_face
from engine.errors import PainLensError
from engine.scales import FACS_ITEMS, NCAPC_COMPONENTS, PAIN_SOURCES, SCALES, facs_pain_score, pspi

GENERATOR_VERSION = 2  # 2: pain AUs drawn twice as strongly (synth_faces.PAIN_VISUAL_GAIN)
DATASETS = ("unbc", "mintpain", "delaware", "cppain")
RECORD_NAME = "SYNTHETIC.json"
JPEG_QUALITY = 90


@dataclass(frozen=True)
class SizeSpec:
    unbc_subjects: int
    unbc_sequences: int  # per subject
    unbc_frames: int  # per sequence (before black frames)
    unbc_low_pain: tuple[int, ...]  # pain frames of the subjects that have few (the rest have plenty)
    mint_subjects: int
    mint_trials: int
    mint_sweeps: int  # per trial; each gives a level-0 and a stimulus segment
    mint_frames: int  # per segment
    delaware_subjects: int
    delaware_images: int
    cp_subjects: int
    cp_videos: int
    cp_images: int  # images in the manifest (two per usable video; one video gives one when odd)


SIZES: dict[str, SizeSpec] = {
    "tiny": SizeSpec(3, 2, 12, (), 3, 1, 2, 3, 6, 20, 3, 6, 8),
    "demo": SizeSpec(6, 3, 20, (), 5, 2, 2, 3, 40, 134, 10, 20, 24),
    # Table 2 of the paper: 20 frames per subject and class give 980 UNBC images from 25 subjects,
    # so two subjects have fewer than 20 pain frames (8 + 12 = 20 short).
    "paper": SizeSpec(25, 8, 12, (8, 12), 20, 2, 4, 3, 240, 803, 53, 127, 109),
}

_NAME_SYLLABLES = ("ka", "lo", "ve", "ri", "mo", "sa", "ten", "dru", "fi", "nal", "qu", "zo", "ber", "mi", "ta", "lun", "ore", "vi")


def _rng(seed: int, *keys: object) -> np.random.Generator:
    """An independent generator for (seed, keys...): stable across runs, processes and Python versions."""
    words = [int(seed) & 0xFFFFFFFF] + [zlib.crc32(str(k).encode()) for k in keys]
    return np.random.default_rng(np.random.SeedSequence(words))


def _save_png(img: np.ndarray, path: Path) -> None:
    Image.fromarray(img).save(path, format="PNG", compress_level=6)


def _save_jpeg(img: np.ndarray, path: Path) -> None:
    Image.fromarray(img).save(path, format="JPEG", quality=JPEG_QUALITY, subsampling=2, optimize=False)


def _sci(value: float) -> str:
    return f"{value:.7e}"


def _smooth_noise(rng: np.random.Generator, n: int, scale: float, smooth: int = 4) -> np.ndarray:
    """A slowly varying random walk of length n (for head motion)."""
    raw = rng.normal(0, 1, n + 2 * smooth)
    kernel = np.hanning(2 * smooth + 3)[1:-1]
    kernel /= kernel.sum()
    out = np.convolve(raw, kernel, mode="same")[smooth : smooth + n]
    return out * scale / np.sqrt(np.sum(kernel**2))  # unit variance before scaling, whatever n


def _bump(n: int, start: int, length: int, amplitude: float) -> np.ndarray:
    """A raised-cosine pain episode over frames [start, start+length)."""
    t = np.arange(n, dtype=np.float64)
    x = (t - start) / max(1, length)
    inside = (x >= 0) & (x <= 1)
    return np.where(inside, amplitude * np.sin(np.pi * np.clip(x, 0, 1)) ** 0.7, 0.0)


@dataclass(frozen=True)
class _Expresser:
    """How a subject shows pain: per-AU gains (0-1), and whether eyes close in strong pain."""

    gains: dict[str, float]
    closes_eyes: bool

    @staticmethod
    def draw(rng: np.random.Generator, strength: float = 1.0) -> "_Expresser":
        gains = {
            "AU4": rng.uniform(0.5, 1.0),
            "AU6": rng.uniform(0.4, 1.0),
            "AU7": rng.uniform(0.5, 1.0),
            "AU9": rng.uniform(0.1, 0.8),
            "AU10": rng.uniform(0.2, 0.9),
        }
        return _Expresser({k: v * strength for k, v in gains.items()}, bool(rng.random() < 0.6))

    def aus(self, pain: float, rng: np.random.Generator) -> dict[str, float]:
        """Continuous AU intensities for a pain level in [0, 1]."""
        out = {}
        for au, gain in self.gains.items():
            value = 5 * gain * pain + (rng.normal(0, 0.3) if pain > 0 else 0.0)
            out[au] = float(np.clip(value, 0, 5)) if pain > 0 else 0.0
        out["AU43"] = 1.0 if self.closes_eyes and pain > 0.6 else 0.0
        return out


def _coded(aus: dict[str, float]) -> dict[str, int]:
    """FACS coding of continuous intensities: whole numbers 0-5 (AU43 0/1)."""
    return {au: int(min(5, max(0, round(v)))) if au != "AU43" else int(v > 0) for au, v in aus.items()}


def _visible(aus: dict[str, float], coded: dict[str, int]) -> dict[str, float]:
    """What the face shows: the continuous value where the coder saw the AU, nothing where not."""
    return {au: (v if coded.get(au, 0) > 0 else 0.0) for au, v in aus.items()}


def _pose(rng: np.random.Generator, scale: tuple[float, float], cy: tuple[float, float], roll: float = 6.0) -> Pose:
    return Pose(
        yaw=float(rng.uniform(-12, 12)),
        pitch=float(rng.uniform(-5, 5)),
        roll=float(rng.uniform(-roll, roll)),
        scale=float(rng.uniform(*scale)),
        cx=float(rng.uniform(0.42, 0.58)),
        cy=float(rng.uniform(*cy)),
    )


def _jitter(base: Pose, i: int, walk: dict[str, np.ndarray]) -> Pose:
    return Pose(
        yaw=float(base.yaw + walk["yaw"][i]),
        pitch=float(base.pitch + walk["pitch"][i]),
        roll=float(base.roll + walk["roll"][i]),
        scale=float(base.scale * (1 + walk["scale"][i])),
        cx=float(base.cx + walk["cx"][i]),
        cy=float(base.cy + walk["cy"][i]),
    )


def _walk(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    return {
        "yaw": _smooth_noise(rng, n, 3.0),
        "pitch": _smooth_noise(rng, n, 1.5),
        "roll": _smooth_noise(rng, n, 1.5),
        "scale": _smooth_noise(rng, n, 0.02),
        "cx": _smooth_noise(rng, n, 0.01),
        "cy": _smooth_noise(rng, n, 0.008),
    }


# ---------------------------------------------------------------------------------------------- UNBC


def _unbc_subject(args: tuple) -> dict:
    """One UNBC subject: its sequences of frames with coded AUs, PSPI, AAM landmarks and sequence labels."""
    seed, root, index, spec, low_pain = args
    rng = _rng(seed, "unbc", index)
    number = 40 + index * 3 + int(rng.integers(0, 3))  # unique and increasing with the index
    code = "".join(chr(ord("a") + int(c)) for c in rng.integers(0, 26, 2)) + f"{number:03d}"
    person = {
        "identity": random_identity(rng),
        "expresser": _Expresser.draw(rng, strength=float(rng.uniform(0.6, 1.0))),
        "background": render_background((320, 240), rng),
        "light": (float(rng.uniform(-0.6, 0.6)), float(rng.uniform(-0.7, -0.2))),
        "pose": _pose(rng, (0.19, 0.24), (0.38, 0.45)),
    }
    stats = {"subject": code, "sequences": 0, "images": 0, "black_frames": 0, "no_pain": 0, "pain": 0}
    left = low_pain  # a low-pain subject's few pain frames go into its second sequence onward
    for s in range(spec.unbc_sequences):
        srng = _rng(seed, "unbc", index, "seq", s)
        session = 1 + (s * 2) // max(1, spec.unbc_sequences)
        name = f"{code}t{session}{chr(97 + s // 26)}{chr(97 + s % 26)}{'aff' if s % 2 == 0 else 'unaff'}"
        episode = None if left is None else (min(left, spec.unbc_frames - 2) if s >= 1 else 0)
        left = None if left is None else left - episode
        pain = _unbc_pain_curve(srng, spec.unbc_frames, episode)
        black = int(srng.integers(1, 4)) if (s == 0 and index == 0) or srng.random() < 0.12 else 0
        counts = _unbc_sequence(root, f"{number:03d}-{code}", name, person, pain, black, srng)
        stats["sequences"] += 1
        for key in ("images", "black_frames", "no_pain", "pain"):
            stats[key] += counts[key]
    stats["identity"] = person["identity"].as_dict()
    return stats


def _unbc_pain_curve(rng: np.random.Generator, n: int, low_pain: int | None) -> np.ndarray:
    """Pain level (0-1) per frame: one or two rising and falling episodes, or, for a subject with few
    pain frames, one flat episode of ``low_pain`` frames (0: none)."""
    curve = np.zeros(n)
    if low_pain is None:
        for _ in range(int(rng.integers(1, 3))):
            length = int(rng.integers(max(4, n // 4), max(5, n // 2 + 1)))
            start = int(rng.integers(0, max(1, n - length)))
            curve = np.maximum(curve, _bump(n, start, length, float(rng.uniform(0.45, 1.0))))
    elif low_pain > 0:
        length = min(n - 2, low_pain)
        start = int(rng.integers(1, n - length))
        curve[start : start + length] = float(rng.uniform(0.75, 0.95))  # strong enough that every frame is coded
    return curve


def _unbc_sequence(root: Path, subject: str, name: str, person: dict, pain: np.ndarray, black: int,
                   rng: np.random.Generator) -> dict:
    """Render and write one sequence (``black`` pure black frames first, as some UNBC sequences have)."""
    n = len(pain)
    walk = _walk(rng, n + black)
    smile = _bump(n, int(rng.integers(0, n)), int(rng.integers(3, 8)), float(rng.uniform(0.3, 0.8))) if rng.random() < 0.4 else np.zeros(n)
    talk = np.clip(_smooth_noise(rng, n, 1.0), 0, None)
    folders = {key: root / key / subject / name for key in ("Images", "Frame_Labels/PSPI", "Frame_Labels/FACS", "AAM_landmarks")}
    for folder in folders.values():
        folder.mkdir(parents=True, exist_ok=True)
    frames = []
    for i in range(n):
        aus = person["expresser"].aus(float(pain[i]), rng)
        aus.update(AU12=float(5 * smile[i]), AU20=0.0, AU25=float(min(5, 2 * talk[i])),
                   AU26=float(min(5, 1.2 * talk[i])) if talk[i] > 0.8 else 0.0)
        coded = _coded(aus)
        face = render_face(person["identity"], _visible(aus, coded), _jitter(person["pose"], i + black, walk), (320, 240), rng,
                           person["background"], light=person["light"])
        frames.append((coded, face.image, face.landmarks))
    black_frame = ({}, np.zeros((240, 320, 3), np.uint8), frames[0][2])  # coded as no AU; the tracker's points kept
    counts = {"images": n + black, "black_frames": black, "no_pain": 0, "pain": 0}
    max_pspi = 0.0
    for k, (coded, img, lm) in enumerate([black_frame] * black + frames):
        value = _write_unbc_frame(folders, f"{name}{k + 1:03d}", coded, img, lm)
        if k >= black:
            counts["pain" if value > 0 else "no_pain"] += 1
        max_pspi = max(max_pspi, value)
    level = max_pspi / 16
    labels = {
        "AFF": round(float(np.clip(level * 15 + rng.normal(0, 1.5), 0, 15))),
        "OPR": round(float(np.clip(level * 5 + rng.normal(0, 0.7), 0, 5))),
        "SEN": round(float(np.clip(level * 15 + rng.normal(0, 1.5), 0, 15))),
        "VAS": round(float(np.clip(level * 10 + rng.normal(0, 1.0), 0, 10))),
    }
    for key, value in labels.items():
        folder = root / "Sequence_Labels" / key / subject
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{name}.txt").write_text(f"   {_sci(value)}\n")
    return counts


def _write_unbc_frame(folders: dict[str, Path], stem: str, coded: dict[str, int], img: np.ndarray, lm: np.ndarray) -> float:
    """The frame's PNG, PSPI file, FACS file (one row per active AU) and 66 AAM points; returns the PSPI."""
    _save_png(img, folders["Images"] / f"{stem}.png")
    value = pspi(*(coded.get(a, 0) for a in ("AU4", "AU6", "AU7", "AU9", "AU10", "AU43")))
    (folders["Frame_Labels/PSPI"] / f"{stem}_facs.txt").write_text(f"   {_sci(value)}\n")
    rows = sorted((int(au[2:]), v) for au, v in coded.items() if v > 0)
    (folders["Frame_Labels/FACS"] / f"{stem}_facs.txt").write_text("".join(f"   {_sci(au)}   {_sci(v)}   {_sci(0)}   {_sci(0)}\n" for au, v in rows))
    aam = np.delete(lm, [60, 64], axis=0)  # UNBC's AAM has 66 points: no inner-mouth corners
    (folders["AAM_landmarks"] / f"{stem}_aam.txt").write_text("".join(f"   {_sci(x)}   {_sci(y)}\n" for x, y in aam))
    return value


# ---------------------------------------------------------------------------------------------- MIntPAIN


def _fake_name(rng: np.random.Generator) -> str:
    def word() -> str:
        return "".join(str(rng.choice(_NAME_SYLLABLES)) for _ in range(int(rng.integers(2, 4)))).capitalize()

    return f"{word()} {word()}"


def _clock(ms: int) -> str:
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, milli = divmod(rest, 1000)
    return f"{h:02d}-{m:02d}-{s:02d}-{milli:03d}"


def _mint_subject(args: tuple) -> dict:
    """One MIntPAIN subject: per trial and sweep a level-0 segment and a stimulus segment (level 1-4)."""
    seed, root, index, spec = args
    rng = _rng(seed, "mintpain", index)
    sub = f"Sub{index + 1:02d}"
    name = _fake_name(rng)
    identity = random_identity(rng)
    expresser = _Expresser.draw(rng, strength=float(rng.uniform(0.7, 1.0)))
    stats = {"subject": sub, "name": name, "trials": 0, "segments": 0, "images": 0, "no_pain": 0, "pain": 0,
             "levels": {str(level): 0 for level in range(5)}}
    for trial in range(1, spec.mint_trials + 1):
        trng = _rng(seed, "mintpain", index, "trial", trial)
        stats["trials"] += 1
        scene = {
            "identity": identity,
            "expresser": expresser,
            "background": render_background((640, 480), trng),
            "light": (float(trng.uniform(-0.6, 0.6)), float(trng.uniform(-0.7, -0.2))),
            "pose": _pose(trng, (0.12, 0.16), (0.36, 0.44)),
        }
        clock = int(trng.integers(9, 17)) * 3_600_000 + int(trng.integers(0, 3_000_000))  # ms since midnight
        trial_dir = root / f"{sub} {name}" / f"Annotated_data_{sub}_Trial{trial:02d}"
        for sweep in range(1, spec.mint_sweeps + 1):
            level = int(trng.integers(1, 5))
            for label in (0, level):
                seg = trial_dir / f"{sub}_Trial{trial:02d}_Sweep{sweep:02d}_Label{label}"
                seg_rng = _rng(seed, "mintpain", index, trial, sweep, label)
                # Depth and thermal frames for the first sweep only: the layout is realistic, PainLens ignores them.
                clock = _mint_segment(seg, scene, label, spec.mint_frames, clock, seg_rng, with_d_and_t=sweep == 1)
                stats["segments"] += 1
                stats["images"] += spec.mint_frames
                stats["levels"][str(label)] += spec.mint_frames
                stats["pain" if label > 0 else "no_pain"] += spec.mint_frames
                clock += int(trng.integers(5_000, 20_000))
    stats["identity"] = identity.as_dict()
    return stats


def _mint_segment(seg: Path, scene: dict, label: int, n: int, clock: int, rng: np.random.Generator, with_d_and_t: bool) -> int:
    """Write n frames of one segment named by their time stamps; pain grows with the level. Returns the clock."""
    (seg / "RGB").mkdir(parents=True, exist_ok=True)
    if with_d_and_t:
        (seg / "D").mkdir(exist_ok=True)
        (seg / "T").mkdir(exist_ok=True)
    walk = _walk(rng, n)
    for i in range(n):
        pain = label / 4 * (0.75 + 0.25 * math.sin(math.pi * (i + 0.5) / n)) if label else 0.0
        aus = scene["expresser"].aus(pain, rng)
        aus["AU25"] = float(rng.uniform(0, 1.5)) if rng.random() < 0.3 else 0.0
        face = render_face(scene["identity"], aus, _jitter(scene["pose"], i, walk), (640, 480), rng, scene["background"],
                           light=scene["light"])
        clock += int(rng.integers(90, 400))
        stamp = _clock(clock)
        _save_jpeg(face.image, seg / "RGB" / f"RGB-{stamp}.jpg")
        if with_d_and_t:
            grey = np.asarray(Image.fromarray(face.image).convert("L").resize((160, 120), Image.BILINEAR))
            Image.fromarray(255 - grey).save(seg / "D" / f"D-{stamp}.png", format="PNG", compress_level=6)
            Image.fromarray(grey).save(seg / "T" / f"T-{stamp}.jpg", format="JPEG", quality=JPEG_QUALITY)
    return clock


# ---------------------------------------------------------------------------------------------- Delaware


def _delaware_counts(spec: SizeSpec) -> list[tuple[int, int]]:
    """(neutral, pain) photos per subject, summing to spec.delaware_images (at least one of each)."""
    n = spec.delaware_subjects
    counts = [[1, 1] for _ in range(n)]
    extra = spec.delaware_images - 2 * n
    k = 0
    while extra > 0:
        counts[k % n][(k // n + k) % 2] += 1
        extra -= 1
        k += 1
    return [tuple(c) for c in counts]


def _delaware_subject(args: tuple) -> dict:
    seed, root, index, counts = args
    rng = _rng(seed, "delaware", index)
    identity = random_identity(rng)
    expresser = _Expresser.draw(rng, strength=1.0)
    number = 1000 + index * 4 + int(rng.integers(0, 4))
    n_neutral, n_pain = counts
    labels = [0] * n_neutral + [1] * n_pain
    order = rng.permutation(len(labels))  # photo numbers do not reveal the label
    rows = []
    for photo, k in enumerate(order):
        label = labels[k]
        prng = _rng(seed, "delaware", index, photo)
        if label:
            aus = expresser.aus(float(prng.uniform(0.6, 1.0)), prng)
            aus["AU43"] = 1.0 if prng.random() < 0.3 else 0.0
            aus["AU25"] = float(prng.uniform(0, 3))
            aus["AU26"] = float(prng.uniform(0, 2)) if prng.random() < 0.5 else 0.0
        else:
            aus = {"AU12": float(prng.uniform(0, 1.0))} if prng.random() < 0.3 else {}
        pose = Pose(yaw=float(prng.uniform(-6, 6)), pitch=float(prng.uniform(-3, 3)), roll=float(prng.uniform(-4, 4)),
                    scale=float(prng.uniform(0.17, 0.21)), cx=float(prng.uniform(0.46, 0.54)), cy=float(prng.uniform(0.34, 0.4)))
        face = render_face(identity, aus, pose, (400, 500), prng)
        stem = f"DPD{number:04d}_{photo + 1:02d}"
        folder = root / ("pain" if label else "neutral")
        _save_jpeg(face.image, folder / f"{stem}.jpg")
        # An OpenFace-like estimate: the true intensities with estimation noise.
        est = {au: float(np.clip(aus.get(au, 0.0) + prng.normal(0, 0.35), 0, 5)) for au in ("AU4", "AU6", "AU7", "AU9", "AU10", "AU12", "AU25", "AU26")}
        pain_index = est["AU4"] + max(est["AU6"], est["AU7"]) + max(est["AU9"], est["AU10"])
        rows.append({"Target": stem, "Subject": f"DPD{number:04d}", "label": label, "est": est, "OpenFace_PainIndex": pain_index})
    return {"subject": f"DPD{number:04d}", "rows": rows, "no_pain": n_neutral, "pain": n_pain, "images": len(labels),
            "identity": identity.as_dict()}


def _write_delaware_csv(root: Path, results: list[dict]) -> None:
    aus = ("AU4", "AU6", "AU7", "AU9", "AU10", "AU12", "AU25", "AU26")
    header = ["Target", "Subject", "OpenFace_PainIndex"] + [f"OpenFace_AU{int(a[2:]):02d}_r" for a in aus]
    with open(root / "DelawarePainDatabase_StimulusCharacterization_forOSF.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        for result in results:
            for row in sorted(result["rows"], key=lambda r: r["Target"]):
                writer.writerow([row["Target"], row["Subject"], f"{row['OpenFace_PainIndex']:.3f}"] + [f"{row['est'][a]:.3f}" for a in aus])


# ---------------------------------------------------------------------------------------------- CP-PAIN

# Rater noise. Each rater has, per video and scale, an impression offset (standard deviation in item
# points, times a factor of the pain source) shared by all items of the scale, plus item noise. Stretching
# is the easiest source to judge and injection the hardest, as in the paper's Table 4; the offsets are set
# so that the ICCs come out near the paper's (FACS 0.75 > Wong-Baker 0.64 > NCAPC 0.55).
_OFFSET_SD = {"facs": 0.4, "wong_baker": 2.9, "ncapc": 0.5}
_ITEM_SD = {"facs": 0.45, "wong_baker": 0.0, "ncapc": 0.35}
_SOURCE_FACTOR = {"stretching": 0.55, "other": 1.0, "injection": 1.3}
_SOURCE_P = (0.42, 0.4, 0.18)  # injection, stretching, other
_NO_PAIN_SHARE = 0.15
_NCAPC_WEIGHT = {"facial": 0.9, "vocal": 0.5, "emotional": 0.45, "body": 0.5, "protective": 0.7, "physiological": 0.5}


def _cp_plan(seed: int, spec: SizeSpec) -> list[dict]:
    """Videos: subject, pain source, true pain level, usable or not, how many frames go to the manifest."""
    rng = _rng(seed, "cppain", "plan")
    subjects = [f"CP{k + 1:02d}" for k in range(spec.cp_subjects)]
    # Every subject has at least one video; the rest are spread at random.
    owners = subjects + [subjects[int(i)] for i in rng.integers(0, len(subjects), spec.cp_videos - len(subjects))]
    owners.sort()
    n_usable = (spec.cp_images + 1) // 2
    usable = set(rng.choice(spec.cp_videos, n_usable, replace=False).tolist())
    # An exact share of videos without pain, so the "rated no pain" counts do not swing with the seed.
    quiet = set(rng.choice(spec.cp_videos, round(_NO_PAIN_SHARE * spec.cp_videos), replace=False).tolist())
    videos = []
    single = sorted(usable)[0] if spec.cp_images % 2 else None
    for v, subject in enumerate(owners):
        source = str(rng.choice(PAIN_SOURCES, p=_SOURCE_P))
        pain = 0.0 if v in quiet else float(rng.uniform(0.2, 1.0))
        frames = 0 if v not in usable else (1 if v == single else 2)
        videos.append({"video_id": f"V{v + 1:03d}", "subject": subject, "pain_source": source, "pain": pain, "frames": frames})
    return videos


def _cp_true_aus(pain: float, expresser: _Expresser, rng: np.random.Generator) -> dict[str, float]:
    """The pain moment's AUs (0-5); CP expressions are weaker, AU43 graded (eyes squeezed shut)."""
    aus = expresser.aus(pain, rng)
    aus["AU43"] = float(np.clip(5 * pain * rng.uniform(0.3, 1.0) - 1, 0, 5)) if expresser.closes_eyes and pain > 0.5 else 0.0
    return aus


def _cp_ratings(video: dict, truth: dict[str, float], rng: np.random.Generator) -> list[dict]:
    """Two raters, three scales: the truth plus a rater's impression offset plus item noise (see _OFFSET_SD)."""
    rows = []
    source, pain = video["pain_source"], video["pain"]
    factor = _SOURCE_FACTOR[source]

    def noisy(mean: float, scale: str, offset: float, top: int) -> int:
        return round(float(np.clip(mean + offset + rng.normal(0, _ITEM_SD[scale]), 0, top)))

    for rater in ("rater_1", "rater_2"):
        offset = {scale: rng.normal(0, sd * factor) for scale, sd in _OFFSET_SD.items()}
        # A video without pain is mostly rated 0; NCAPC least often, having the most items.
        quiet = {scale: pain == 0 and rng.random() < p for scale, p in (("facs", 0.97), ("wong_baker", 0.95), ("ncapc", 0.88))}
        for au in FACS_ITEMS:
            rows.append((rater, "facs", au, 0 if quiet["facs"] else noisy(truth.get(au, 0.0), "facs", offset["facs"], 5)))
        rows.append((rater, "wong_baker", "", 0 if quiet["wong_baker"] else noisy(10 * pain, "wong_baker", offset["wong_baker"], 10)))
        for component, items in NCAPC_COMPONENTS.items():
            weight = 0.9 if component == "protective" and source == "stretching" else _NCAPC_WEIGHT[component]
            for item in items:
                mean = 3 * weight * pain * rng.uniform(0.6, 1.0)
                rows.append((rater, "ncapc", item, 0 if quiet["ncapc"] else noisy(mean, "ncapc", offset["ncapc"], 3)))
    return [{"video_id": video["video_id"], "pain_source": source, "rater": r, "scale": s, "item": i, "score": int(v)} for r, s, i, v in rows]


def _cp_subject(args: tuple) -> dict:
    seed, root, subject, videos = args
    rng = _rng(seed, "cppain", subject)
    identity = random_identity(rng, cp_like=True)
    expresser = _Expresser.draw(rng, strength=float(rng.uniform(0.45, 0.85)))
    background = render_background((640, 480), rng)
    light = (float(rng.uniform(-0.6, 0.6)), float(rng.uniform(-0.7, -0.2)))
    manifest, ratings, truths = [], [], []
    for video in videos:
        vrng = _rng(seed, "cppain", video["video_id"])
        truth = _cp_true_aus(video["pain"], expresser, vrng)
        rows = _cp_ratings(video, truth, vrng)
        ratings.extend(rows)
        both_zero = {
            scale: all(sum(r["score"] for r in rows if r["rater"] == rater and r["scale"] == scale) == 0 for rater in ("rater_1", "rater_2"))
            for scale in SCALES
        }
        truths.append({"video_id": video["video_id"], "pain": round(video["pain"], 4), "true_facs_score": round(facs_pain_score(*(truth.get(a, 0.0) for a in FACS_ITEMS)), 3),
                       "no_pain_by_both": both_zero, "usable": video["frames"] > 0})
        if video["frames"] == 0:
            continue
        n_total = int(vrng.integers(300, 1800))
        pain_frame = int(vrng.integers(n_total // 3, n_total - 10))
        calm_frame = int(vrng.integers(0, max(1, pain_frame - 60)))
        pose = _pose(vrng, (0.13, 0.18), (0.36, 0.44), roll=0.0)
        tilt = float(vrng.uniform(8, 22)) * (1 if vrng.random() < 0.5 else -1)  # CP: a habitual head tilt
        pose = Pose(pose.yaw, pose.pitch, tilt, pose.scale, pose.cx, pose.cy)
        shots = [(pain_frame, "pain" if not both_zero["facs"] else "no_pain", truth), (calm_frame, "no_pain", {})]
        for frame, label, aus in shots[: video["frames"]]:  # a one-frame video keeps its pain frame
            frng = _rng(seed, "cppain", video["video_id"], frame)
            occluder = None
            if frng.random() < 0.12:  # a hand passing over part of the face (usable frames keep the eyes free)
                occluder = Occluder(float(frng.uniform(-0.7, 0.7)), float(frng.uniform(1.1, 1.7)), float(frng.uniform(0.25, 0.35)), float(frng.uniform(-130, -50)))
            face = render_face(identity, aus, pose, (640, 480), frng, background, occluder=occluder, light=light)
            name = f"{video['video_id']}_{frame:05d}.jpg"
            _save_jpeg(face.image, root / "images" / name)
            manifest.append({"image": name, "video_id": video["video_id"], "subject": subject, "frame": frame,
                             "label": label, "pain_source": video["pain_source"]})
    return {"subject": subject, "manifest": manifest, "ratings": ratings, "truths": truths, "identity": identity.as_dict()}


# ---------------------------------------------------------------------------------------------- driver


def _run_all(tasks: dict[str, tuple[Callable, list]], workers: int, tick: Callable[[], None]) -> dict[str, list]:
    """Run every job of every dataset, in one process pool; results per dataset in job order.

    Each job draws its randomness from its own seeded RNG and writes its own files, so neither the
    number of workers nor the completion order changes a byte.
    """
    flat = [(name, i, fn, job) for name, (fn, jobs) in tasks.items() for i, job in enumerate(jobs)]
    results: dict[str, list] = {name: [None] * len(jobs) for name, (_, jobs) in tasks.items()}
    if workers <= 1:
        for name, i, fn, job in flat:
            results[name][i] = fn(job)
            tick()
        return results
    with ProcessPoolExecutor(max_workers=workers) as pool:
        futures = {pool.submit(fn, job): (name, i) for name, i, fn, job in flat}
        for future in as_completed(futures):
            name, i = futures[future]
            results[name][i] = future.result()
            tick()
    return results


def _prepare(out: Path) -> Path:
    """Make ``out`` ready; refuse a folder that holds other things than an earlier synthetic run."""
    out.mkdir(parents=True, exist_ok=True)
    ours = set(DATASETS) | {RECORD_NAME, ".partial"}
    foreign = [p.name for p in out.iterdir() if p.name not in ours and not p.name.startswith(".")]
    present = [p for p in out.iterdir() if p.name in DATASETS]
    if foreign or (present and not (out / RECORD_NAME).is_file()):
        raise PainLensError(
            f"{out} already holds files that are not synthetic PainLens data; give an empty or new folder for synth."
        )
    partial = out / ".partial"
    if partial.exists():
        shutil.rmtree(partial)
    partial.mkdir()
    return partial


def generate(out: Path, seed: int, size: str, progress: bool = False, workers: int | None = None) -> dict:
    """Write the four synthetic datasets under ``out`` and return the record also saved as SYNTHETIC.json.

    ``size`` is tiny, demo or paper. ``workers`` processes render in parallel (default: up to 2);
    the files do not depend on it. With ``progress`` a rich progress bar is shown.
    """
    if size not in SIZES:
        raise PainLensError(f"Unknown synthetic size '{size}'; choose tiny, demo or paper.")
    spec = SIZES[size]
    out = Path(out)
    partial = _prepare(out)
    workers = workers if workers is not None else max(1, min(2, os.cpu_count() or 1))
    roots = {name: partial / name for name in DATASETS}
    for root in roots.values():
        root.mkdir()
    (roots["delaware"] / "pain").mkdir()
    (roots["delaware"] / "neutral").mkdir()
    (roots["cppain"] / "images").mkdir()

    low_index = {}
    if spec.unbc_low_pain:  # which subjects have few pain frames: drawn from the seed
        picks = _rng(seed, "unbc", "low").choice(spec.unbc_subjects, len(spec.unbc_low_pain), replace=False)
        low_index = {int(p): n for p, n in zip(picks, spec.unbc_low_pain)}
    unbc_jobs = [(seed, roots["unbc"], i, spec, low_index.get(i)) for i in range(spec.unbc_subjects)]
    mint_jobs = [(seed, roots["mintpain"], i, spec) for i in range(spec.mint_subjects)]
    delaware_jobs = [(seed, roots["delaware"], i, c) for i, c in enumerate(_delaware_counts(spec))]
    plan = _cp_plan(seed, spec)
    by_subject: dict[str, list[dict]] = {}
    for video in plan:
        by_subject.setdefault(video["subject"], []).append(video)
    cp_jobs = [(seed, roots["cppain"], subject, videos) for subject, videos in sorted(by_subject.items())]

    total = len(unbc_jobs) + len(mint_jobs) + len(delaware_jobs) + len(cp_jobs)
    bar = _Progress(total, progress)
    with bar:
        # The heaviest jobs (640x480 videos) first, so the workers finish together.
        tasks = {"mintpain": (_mint_subject, mint_jobs), "cppain": (_cp_subject, cp_jobs),
                 "unbc": (_unbc_subject, unbc_jobs), "delaware": (_delaware_subject, delaware_jobs)}
        done = _run_all(tasks, workers, bar.tick)
    unbc, mint, delaware, cp = done["unbc"], done["mintpain"], done["delaware"], done["cppain"]
    _write_delaware_csv(roots["delaware"], delaware)
    cp_record = _write_cp_tables(roots["cppain"], cp, plan)

    record = {
        "generator": "painlens.synth",
        "version": GENERATOR_VERSION,
        "seed": int(seed),
        "size": size,
        "datasets": {
            "unbc": _unbc_record(unbc),
            "mintpain": _mint_record(mint),
            "delaware": _delaware_record(delaware),
            "cppain": cp_record,
        },
    }
    for name in DATASETS:
        target = out / name
        if target.exists():
            shutil.rmtree(target)
        roots[name].rename(target)
    shutil.rmtree(partial)
    _write_json(out / RECORD_NAME, record)
    return record


def _write_json(path: Path, data: dict) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    tmp.replace(path)


def _labels(results: list[dict]) -> dict[str, int]:
    return {"no_pain": sum(r["no_pain"] for r in results), "pain": sum(r["pain"] for r in results)}


def _unbc_record(results: list[dict]) -> dict:
    return {
        "subjects": len(results),
        "sequences": sum(r["sequences"] for r in results),
        "images": sum(r["images"] for r in results),
        "black_frames": sum(r["black_frames"] for r in results),
        "labels": _labels(results),  # black frames excluded (all are no pain)
        "per_subject": {r["subject"]: {"no_pain": r["no_pain"], "pain": r["pain"], "black_frames": r["black_frames"]} for r in results},
        "frame_size": [320, 240],
        "landmarks": "aam66 written (x, y)",
        "identities": {r["subject"]: r["identity"] for r in results},
    }


def _mint_record(results: list[dict]) -> dict:
    levels = {str(k): sum(r["levels"][str(k)] for r in results) for k in range(5)}
    return {
        "subjects": len(results),
        "trials": sum(r["trials"] for r in results),
        "segments": sum(r["segments"] for r in results),
        "images": sum(r["images"] for r in results),
        "labels": _labels(results),
        "levels": levels,
        "per_subject": {r["subject"]: {"no_pain": r["no_pain"], "pain": r["pain"]} for r in results},
        # The made-up names after "SubNN", so privacy tests can check they never leak; whatever copies this
        # record into artifacts must leave this key out.
        "free_text_in_subject_folders": [r["name"] for r in results],
        "frame_size": [640, 480],
        "identities": {r["subject"]: r["identity"] for r in results},
    }


def _delaware_record(results: list[dict]) -> dict:
    return {
        "subjects": len(results),
        "images": sum(r["images"] for r in results),
        "labels": _labels(results),
        "layout": "pain/ and neutral/ folders; subject = file name up to '_' and the CSV's Subject column",
        "frame_size": [400, 500],
        "identities": {r["subject"]: r["identity"] for r in results},
    }


def _write_cp_tables(root: Path, results: list[dict], plan: list[dict]) -> dict:
    manifest = sorted((row for r in results for row in r["manifest"]), key=lambda row: (row["video_id"], row["frame"]))
    ratings = sorted((row for r in results for row in r["ratings"]), key=lambda row: row["video_id"])
    with open(root / "manifest.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, ["image", "video_id", "subject", "frame", "label", "pain_source"], lineterminator="\n")
        writer.writeheader()
        writer.writerows(manifest)
    with open(root / "ratings.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, ["video_id", "pain_source", "rater", "scale", "item", "score"], lineterminator="\n")
        writer.writeheader()
        writer.writerows(ratings)
    truths = sorted((t for r in results for t in r["truths"]), key=lambda t: t["video_id"])
    no_pain = {scale: sum(t["no_pain_by_both"][scale] for t in truths) for scale in SCALES}
    return {
        "subjects": len(results),
        "manifest_subjects": len({row["subject"] for row in manifest}),
        "videos": len(plan),
        "usable_videos": sum(1 for v in plan if v["frames"] > 0),
        "images": len(manifest),
        "labels": {"no_pain": sum(r["label"] == "no_pain" for r in manifest), "pain": sum(r["label"] == "pain" for r in manifest)},
        "ratings_rows": len(ratings),
        "raters": ["rater_1", "rater_2"],
        "videos_rated_no_pain_by_both": no_pain,
        "pain_sources": {s: sum(v["pain_source"] == s for v in plan) for s in PAIN_SOURCES},
        "videos_truth": truths,
        "frame_size": [640, 480],
        "identities": {r["subject"]: r["identity"] for r in results},
    }


class _Progress:
    """A rich progress bar over work units, or nothing."""

    def __init__(self, total: int, show: bool):
        self.total, self.show, self._bar, self._task = total, show, None, None

    def __enter__(self) -> "_Progress":
        if self.show:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self._bar = Progress(TextColumn("Rendering subjects"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
            self._bar.__enter__()
            self._task = self._bar.add_task("synth", total=self.total)
        return self

    def tick(self) -> None:
        if self._bar is not None:
            self._bar.advance(self._task)

    def __exit__(self, *exc) -> None:
        if self._bar is not None:
            self._bar.__exit__(*exc)
