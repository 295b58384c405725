"""The CP-PAIN tree (this project's format): ``images/`` with one pain and one calm frame from each usable
video of adults with CP-like traits (asymmetric, weaker expressions, a habitual head tilt, hands passing,
an atypical resting face), ``manifest.csv`` and the two raters' ``ratings.csv``.

The resting face: adults with CP often hold some muscles tense at rest (spasticity), so each subject gets a
stable pattern of tonic action units (``resting_pattern``: a lowered brow, tightened lids, a raised upper
lip or a wrinkled nose, drawn from the subject's seed) that every frame shows and pain adds to. The raters
judge the change from the person's usual face, so the ratings (and the labels) follow the pain alone, as
before; the pattern is written in ``SYNTHETIC.json`` (``resting_patterns``)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from engine.scales import FACS_ITEMS, PAIN_SOURCES, SCALES, facs_pain_score
from engine.synth.action_units import Expresser
from engine.synth.background import render_background
from engine.synth.files import save_jpeg, write_csv
from engine.synth.identity import random_identity
from engine.synth.motion import random_pose
from engine.synth.occluder import Occluder
from engine.synth.projection import Pose
from engine.synth.ratings import RATERS, rate_video, rated_no_pain_by_both
from engine.synth.seeding import derived_rng
from engine.synth.shading import random_light
from engine.synth.sitting import Sitting
from engine.synth.sizes import SizeSpec

FRAME_SIZE = (640, 480)
MANIFEST_COLUMNS = ["image", "video_id", "subject", "frame", "label", "pain_source"]
RATINGS_COLUMNS = ["video_id", "pain_source", "rater", "scale", "item", "score"]
_SOURCE_P = (0.42, 0.4, 0.18)  # injection, stretching, other
_NO_PAIN_SHARE = 0.15
# Tonic action units a CP resting face may hold (pain-like ones: the point is that a network trained on
# typical faces reads them as pain) and how strong (coded intensity 0-5; pain AUs are drawn doubled).
REST_AUS = ("AU4", "AU7", "AU9", "AU10")
_REST_RANGE = (1.0, 2.2)


def cp_plan(seed: int, spec: SizeSpec) -> list[dict]:
    """Videos: id, subject, pain source, true pain level (0-1), and how many frames go to the manifest (0: unusable)."""
    rng = derived_rng(seed, "cppain", "plan")
    subjects = [f"CP{k + 1:02d}" for k in range(spec.cp_subjects)]
    # Every subject has at least one video; the rest are spread at random.
    owners = subjects + [subjects[int(i)] for i in rng.integers(0, len(subjects), spec.cp_videos - len(subjects))]
    owners.sort()
    usable = set(rng.choice(spec.cp_videos, (spec.cp_images + 1) // 2, replace=False).tolist())
    # An exact share of videos without pain, so the "rated no pain" counts do not swing with the seed.
    quiet = set(rng.choice(spec.cp_videos, round(_NO_PAIN_SHARE * spec.cp_videos), replace=False).tolist())
    single = sorted(usable)[0] if spec.cp_images % 2 else None  # the video that gives one frame when the count is odd
    videos = []
    for v, subject in enumerate(owners):
        source = str(rng.choice(PAIN_SOURCES, p=_SOURCE_P))
        pain = 0.0 if v in quiet else float(rng.uniform(0.2, 1.0))
        frames = 0 if v not in usable else (1 if v == single else 2)
        videos.append({"video_id": f"V{v + 1:03d}", "subject": subject, "pain_source": source, "pain": pain, "frames": frames})
    return videos


def resting_pattern(seed: int, subject: str) -> dict[str, float]:
    """The subject's tonic action units at rest: one or two of ``REST_AUS`` at 1.0-2.2, from its own seeded
    stream (so adding it changed no other draw: counts and every other file stay as they were)."""
    rng = derived_rng(seed, "cppain", subject, "rest")
    chosen = rng.choice(len(REST_AUS), int(rng.integers(1, 3)), replace=False)
    return {REST_AUS[int(i)]: round(float(rng.uniform(*_REST_RANGE)), 3) for i in sorted(chosen)}


def on_top_of_rest(rest: dict[str, float], aus: dict[str, float]) -> dict[str, float]:
    """What a frame shows: the resting pattern plus the moment's action units (capped at 5)."""
    return {au: min(5.0, rest.get(au, 0.0) + aus.get(au, 0.0)) for au in {*rest, *aus}}


def _true_aus(pain: float, expresser: Expresser, rng: np.random.Generator) -> dict[str, float]:
    """The pain moment's AUs (0-5); CP expressions are weaker, AU43 graded (eyes squeezed shut)."""
    aus = expresser.intensities(pain, rng)
    aus["AU43"] = float(np.clip(5 * pain * rng.uniform(0.3, 1.0) - 1, 0, 5)) if expresser.closes_eyes and pain > 0.5 else 0.0
    return aus


@dataclass(frozen=True)
class CpJob:
    """One subject's videos to rate and render (a picklable job for the process pool)."""

    seed: int
    root: Path  # the cppain/ folder being written
    subject: str
    videos: list[dict]  # this subject's part of cp_plan


def render_cp_subject(job: CpJob) -> dict:
    """Rate every video of the subject and render the usable ones' frames.

    Returns the subject's manifest rows, rating rows, per-video truths and identity.
    """
    rng = derived_rng(job.seed, "cppain", job.subject)
    sitting = Sitting(identity=random_identity(rng, cp_like=True), expresser=Expresser.draw(rng, strength=float(rng.uniform(0.45, 0.85))),
                      background=render_background(FRAME_SIZE, rng), light=random_light(rng))
    rest = resting_pattern(job.seed, job.subject)
    manifest, ratings, truths = [], [], []
    for video in job.videos:
        video_rng = derived_rng(job.seed, "cppain", video["video_id"])
        truth = _true_aus(video["pain"], sitting.expresser, video_rng)
        rows = rate_video(video, truth, video_rng)
        ratings.extend(rows)
        both_zero = rated_no_pain_by_both(rows)
        truths.append({"video_id": video["video_id"], "pain": round(video["pain"], 4),
                       "true_facs_score": round(facs_pain_score(*(truth.get(au, 0.0) for au in FACS_ITEMS)), 3),
                       "no_pain_by_both": both_zero, "usable": video["frames"] > 0})
        if video["frames"] > 0:
            # The label follows the FACS ratings: "no_pain" when both raters scored every AU 0.
            pain_label = "pain" if not both_zero["facs"] else "no_pain"
            manifest.extend(_render_video_frames(job, sitting, video, truth, pain_label, video_rng, rest))
    return {"subject": job.subject, "manifest": manifest, "ratings": ratings, "truths": truths, "identity": sitting.identity.as_dict(),
            "rest": rest}


def _render_video_frames(job: CpJob, sitting: Sitting, video: dict, truth: dict[str, float], pain_label: str,
                         rng: np.random.Generator, rest: dict[str, float]) -> list[dict]:
    """The video's pain frame (and a calm frame before it, when it gives two), both on top of the subject's
    resting face: written, as manifest rows."""
    n_total = int(rng.integers(300, 1800))
    pain_frame = int(rng.integers(n_total // 3, n_total - 10))
    calm_frame = int(rng.integers(0, max(1, pain_frame - 60)))
    pose = _tilted_pose(rng)
    shots = [(pain_frame, pain_label, truth), (calm_frame, "no_pain", {})]
    rows = []
    for frame, label, aus in shots[: video["frames"]]:  # a one-frame video keeps its pain frame
        frame_rng = derived_rng(job.seed, "cppain", video["video_id"], frame)
        face = sitting.render(on_top_of_rest(rest, aus), pose, frame_rng, occluder=_passing_hand(frame_rng))
        name = f"{video['video_id']}_{frame:05d}.jpg"
        save_jpeg(face.image, job.root / "images" / name)
        rows.append({"image": name, "video_id": video["video_id"], "subject": job.subject, "frame": frame, "label": label,
                     "pain_source": video["pain_source"]})
    return rows


def _tilted_pose(rng: np.random.Generator) -> Pose:
    """A video's head pose with a habitual tilt (roll) of 8-22 degrees to either side, as often in CP."""
    pose = random_pose(rng, (0.13, 0.18), (0.36, 0.44), max_roll=0.0)
    tilt = float(rng.uniform(8, 22)) * (1 if rng.random() < 0.5 else -1)
    return replace(pose, roll=tilt)


def _passing_hand(rng: np.random.Generator) -> Occluder | None:
    """In about one frame in eight a hand passes over the lower face (usable frames keep the eyes free)."""
    if rng.random() >= 0.12:
        return None
    return Occluder(centre_x=float(rng.uniform(-0.7, 0.7)), centre_y=float(rng.uniform(1.1, 1.7)),
                    radius=float(rng.uniform(0.25, 0.35)), finger_angle=float(rng.uniform(-130, -50)))


def write_cp_tables(root: Path, results: list[dict], plan: list[dict]) -> dict:
    """Write manifest.csv and ratings.csv from the subjects' results; returns what SYNTHETIC.json says about CP-PAIN."""
    manifest = sorted((row for r in results for row in r["manifest"]), key=lambda row: (row["video_id"], row["frame"]))
    ratings = sorted((row for r in results for row in r["ratings"]), key=lambda row: row["video_id"])
    write_csv(root / "manifest.csv", MANIFEST_COLUMNS, manifest)
    write_csv(root / "ratings.csv", RATINGS_COLUMNS, ratings)
    truths = sorted((truth for r in results for truth in r["truths"]), key=lambda truth: truth["video_id"])
    return {
        "subjects": len(results),
        "manifest_subjects": len({row["subject"] for row in manifest}),
        "videos": len(plan),
        "usable_videos": sum(1 for v in plan if v["frames"] > 0),
        "images": len(manifest),
        "labels": {label: sum(row["label"] == label for row in manifest) for label in ("no_pain", "pain")},
        "ratings_rows": len(ratings),
        "raters": list(RATERS),
        "videos_rated_no_pain_by_both": {scale: sum(t["no_pain_by_both"][scale] for t in truths) for scale in SCALES},
        "pain_sources": {source: sum(v["pain_source"] == source for v in plan) for source in PAIN_SOURCES},
        "videos_truth": truths,
        "frame_size": list(FRAME_SIZE),
        "identities": {r["subject"]: r["identity"] for r in results},
        "resting_patterns": {r["subject"]: r["rest"] for r in results},
    }
