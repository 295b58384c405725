"""Short clips of the generated CP-PAIN subjects, for the video timeline: ``OUT/videos/*.mp4`` and ``clips.csv``.

Each clip is one subject filmed for a few seconds (head drift, talking, now and then a smile). A pain clip
has one planted segment [pain_start_s, pain_end_s) inside which the pain AUs rise and fall (a raised
cosine, as in the UNBC sequences) on top of the subject's resting face (its CP-PAIN ``resting_pattern``: the
same tonic AUs as in its CP-PAIN frames, in every frame); outside it, and in the no-pain clips, nothing but
that resting pattern is drawn. Some clips
carry what phone videos bring: a second, smaller person (in a no-pain clip that person shows pain, so a
tracker that follows the wrong face is caught), a rotation flag (frames stored sideways with the display
rotation that turns them upright), or the face leaving the frame for a while.

clips.csv has the columns of ``CLIP_COLUMNS``; what happens in each clip (second face, rotation, when the
face is away) is in the record (``SYNTHETIC.json``, ``videos``). H.264 in MP4 through PyAV with one
encoder thread: the same seed gives the same bytes.
"""

from __future__ import annotations

import io
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from engine.synth.action_units import Expresser
from engine.synth.background import render_background
from engine.synth.cppain import on_top_of_rest
from engine.synth.files import write_csv
from engine.synth.identity import Identity, random_identity
from engine.synth.motion import HeadMotion, episode, random_pose, smooth_noise
from engine.synth.projection import Pose
from engine.synth.render import render_face
from engine.synth.seeding import derived_rng
from engine.synth.shading import random_light

CLIP_COLUMNS = ["clip", "subject", "fps", "seconds", "label", "pain_start_s", "pain_end_s"]
FOLDER = "videos"


@dataclass(frozen=True)
class ClipSize:
    clips: int
    frame_size: tuple[int, int]  # (width, height) as shown (upright)
    seconds: float
    fps: int


CLIP_SIZES = {
    "tiny": ClipSize(clips=4, frame_size=(256, 192), seconds=3.0, fps=5),
    "demo": ClipSize(clips=12, frame_size=(320, 240), seconds=8.0, fps=8),
    "paper": ClipSize(clips=24, frame_size=(640, 480), seconds=10.0, fps=10),
}
# (pain?, event) for clips 0, 1, 2...: every kind of clip comes early, so tiny (4 clips) has each event.
_PATTERN = ((True, ""), (False, "second_face"), (True, "rotation"), (False, "leaves"),
            (True, "leaves"), (False, "rotation"), (True, "second_face"), (False, ""))


@dataclass(frozen=True)
class ClipSpec:
    """What one clip shows; times in seconds from its start."""

    clip: str  # file stem, e.g. "C01"
    subject: str
    fps: int
    seconds: float
    frame_size: tuple[int, int]
    pain: float  # peak pain level 0-1 of the planted segment (0: no pain)
    pain_start_s: float | None
    pain_end_s: float | None
    second_face: bool = False
    rotation: int = 0  # display rotation, counter-clockwise degrees (the frames are stored turned the other way)
    away_start_s: float | None = None  # the face is outside the frame from here...
    away_end_s: float | None = None  # ...to here

    @property
    def label(self) -> str:
        return "pain" if self.pain > 0 else "no_pain"

    @property
    def frames(self) -> int:
        return int(round(self.seconds * self.fps))


def clip_plan(seed: int, size: str, subjects: list[str]) -> list[ClipSpec]:
    """The clips of a synthetic run: half with a planted pain segment, each event in turn, subjects in turn."""
    spec = CLIP_SIZES[size]
    rng = derived_rng(seed, "clips", "plan")
    plan = []
    for i in range(spec.clips):
        pain, event = _PATTERN[i % len(_PATTERN)]
        start = length = None
        if pain:
            start = round(float(rng.uniform(0.3, 0.5)) * spec.seconds * spec.fps) / spec.fps
            length = round(float(rng.uniform(0.3, 0.4)) * spec.seconds * spec.fps) / spec.fps
        away = (None, None)
        if event == "leaves":  # before any pain segment, so the segment stays in view
            begin = round(0.05 * spec.seconds, 2)
            away = (begin, round(begin + 0.15 * spec.seconds, 2))
        plan.append(ClipSpec(
            clip=f"C{i + 1:02d}", subject=subjects[i % len(subjects)], fps=spec.fps, seconds=spec.seconds,
            frame_size=spec.frame_size, pain=float(rng.uniform(0.8, 1.0)) if pain else 0.0,
            pain_start_s=start, pain_end_s=None if start is None else round(start + length, 4),
            second_face=event == "second_face", rotation=(90 if (i // len(_PATTERN)) % 2 == 0 else 270) if event == "rotation" else 0,
            away_start_s=away[0], away_end_s=away[1]))
    return plan


@dataclass(frozen=True)
class ClipJob:
    """One clip to render and write (a picklable job for the process pool)."""

    seed: int
    folder: Path  # OUT/videos being written
    spec: ClipSpec
    identity: dict  # the subject's traits (Identity.as_dict)
    rest: dict  # the subject's resting pattern (cppain.resting_pattern): AU -> tonic intensity


def clip_jobs(seed: int, size: str, folder: Path, identities: dict[str, dict],
              rests: dict[str, dict[str, float]]) -> list[ClipJob]:
    """The clips of a synthetic run as jobs, filming the given subjects (name -> Identity.as_dict) with their
    resting patterns (name -> tonic AUs)."""
    subjects = sorted(identities)
    return [ClipJob(seed, folder, spec, identities[spec.subject], rests.get(spec.subject, {}))
            for spec in clip_plan(seed, size, subjects)]


def render_clip_job(job: ClipJob) -> dict:
    """Render, encode and write one clip; returns its clips.csv row and its record entry."""
    data = render_clip(job.spec, identity_from_dict(job.identity), job.seed, job.rest)
    (job.folder / f"{job.spec.clip}.mp4").write_bytes(data)
    return {"row": clip_row(job.spec), "record": {**asdict(job.spec), "frame_size": list(job.spec.frame_size),
                                                   "bytes": len(data)}}


def clip_row(spec: ClipSpec) -> dict:
    return {"clip": f"{spec.clip}.mp4", "subject": spec.subject, "fps": spec.fps, "seconds": spec.seconds,
            "label": spec.label, "pain_start_s": "" if spec.pain_start_s is None else spec.pain_start_s,
            "pain_end_s": "" if spec.pain_end_s is None else spec.pain_end_s}


def write_clip_table(folder: Path, results: list[dict]) -> dict:
    """clips.csv from the rendered clips; returns what SYNTHETIC.json says about them."""
    write_csv(folder / "clips.csv", CLIP_COLUMNS, [result["row"] for result in results])
    clips = [result["record"] for result in results]
    return {"clips": len(clips), "pain": sum(c["pain"] > 0 for c in clips), "no_pain": sum(c["pain"] == 0 for c in clips),
            "list": clips}


def identity_from_dict(traits: dict) -> Identity:
    return Identity(**{k: tuple(v) if isinstance(v, list) else v for k, v in traits.items()})


# --- rendering --------------------------------------------------------------------------------------

def render_clip(spec: ClipSpec, identity: Identity, seed: int, rest: dict[str, float] | None = None) -> bytes:
    """The clip as MP4 bytes (H.264); every random choice from (seed, clip)."""
    return encode_clip(clip_frames(spec, identity, seed, rest), spec.fps, spec.rotation)


def clip_frames(spec: ClipSpec, identity: Identity, seed: int, rest: dict[str, float] | None = None):
    """The clip's upright RGB frames, (H, W, 3) uint8, one per 1/fps; ``rest``: the tonic AUs the face holds in
    every frame (none: a typical resting face)."""
    rng = derived_rng(seed, "clips", spec.clip)
    expresser = Expresser.draw(rng, strength=float(rng.uniform(0.85, 1.0)))
    background, light = render_background(spec.frame_size, rng), random_light(rng)
    resting = random_pose(rng, (0.2, 0.25), (0.4, 0.46))
    n = spec.frames
    motion = HeadMotion.draw(rng, n)
    pain = np.zeros(n)
    if spec.pain > 0:
        start, end = int(round(spec.pain_start_s * spec.fps)), int(round(spec.pain_end_s * spec.fps))
        pain = episode(n, start, end - start, spec.pain)
        pain[end:] = 0.0  # the raised cosine touches 0 at the end frame: no pain AU drawn from there on
    talk = np.clip(smooth_noise(rng, n, 1.2), 0, None)
    smile = episode(n, int(rng.integers(0, n)), max(2, n // 5), float(rng.uniform(0.4, 1.0))) if rng.random() < 0.5 else np.zeros(n)
    away = _away_offsets(spec, n)
    other = _SecondPerson.draw(derived_rng(seed, "clips", spec.clip, "second"), spec) if spec.second_face else None
    if other is not None:  # the tracked person stands left of centre, the other one right
        resting = replace(resting, cx=0.36)
    for k in range(n):
        frame_rng = derived_rng(seed, "clips", spec.clip, k)
        pose = motion.pose_at(resting, k)
        pose = replace(pose, cx=pose.cx + float(away[k]))
        aus = on_top_of_rest(rest or {}, expresser.intensities(float(pain[k]), frame_rng))
        aus.update(AU25=float(min(3.0, talk[k] * 2)), AU26=float(min(2.0, talk[k])), AU12=float(5 * smile[k]))
        scene = background if other is None else other.render(k, background, light, frame_rng)
        if _out_of_view(pose, spec.frame_size):  # the renderer needs some of the head inside the frame
            yield _empty_room(scene, frame_rng)
            continue
        yield render_face(identity, aus, pose, spec.frame_size, frame_rng, background=scene, light=light).image


def _out_of_view(pose: Pose, frame_size: tuple[int, int]) -> bool:
    """True when even the head's nearest edge (at least 0.8 face units from its centre) is right of the frame."""
    width, height = frame_size
    return pose.cx * width - 0.8 * pose.scale * height > width - 2


def _empty_room(scene: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The room without the person, with the same sensor noise as a rendered frame."""
    noisy = scene.astype(np.float32) + rng.standard_normal(scene.shape, dtype=np.float32) * 2.2
    return np.clip(noisy + 0.5, 0, 255).astype(np.uint8)


def _away_offsets(spec: ClipSpec, n: int) -> np.ndarray:
    """How far right of its place the head is pushed per frame (in frame widths): out of view while away."""
    offsets = np.zeros(n)
    if spec.away_start_s is None:
        return offsets
    t = np.arange(n) / spec.fps
    ramp = 0.4  # seconds to walk out and back in
    out = np.clip((t - spec.away_start_s + ramp) / ramp, 0, 1) * np.clip((spec.away_end_s + ramp - t) / ramp, 0, 1)
    return 1.1 * (0.5 - 0.5 * np.cos(np.pi * out))


@dataclass(frozen=True)
class _SecondPerson:
    """A smaller person behind, right of the tracked one; in a no-pain clip they are in pain."""

    identity: Identity
    expresser: Expresser
    pose: Pose
    pain: float

    @staticmethod
    def draw(rng: np.random.Generator, spec: ClipSpec) -> "_SecondPerson":
        identity = random_identity(rng)
        expresser = Expresser.draw(rng)
        pose = random_pose(rng, (0.13, 0.15), (0.36, 0.4))
        pose = replace(pose, cx=0.8)
        return _SecondPerson(identity, expresser, pose, 0.0 if spec.pain > 0 else 0.9)

    def render(self, k: int, background: np.ndarray, light, rng: np.random.Generator) -> np.ndarray:
        aus = self.expresser.intensities(self.pain, rng)
        height, width = background.shape[:2]
        return render_face(self.identity, aus, self.pose, (width, height), rng, background=background, light=light).image


def encode_clip(frames, fps: int, rotation: int = 0, crf: int = 20) -> bytes:
    """Upright RGB frames (any iterable: streamed, never all held) to MP4 bytes (H.264, yuv420p, one encoder
    thread and x264's plain C code: deterministic; on a CPU with AVX-512 x264's assembly gave the portrait
    (rotated) clip other bytes from run to run). With ``rotation`` the frames are stored turned clockwise by
    it and flagged to be shown turned back."""
    import av

    turns = (rotation // 90) % 4
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp4") as container:
        stream = None
        for frame in frames:
            image = np.ascontiguousarray(np.rot90(frame, -turns)) if turns else frame
            if stream is None:
                stream = _h264_stream(container, fps, image.shape[:2], crf)
                if turns:
                    stream.set_display_rotation(rotation)
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return buffer.getvalue()


def _h264_stream(container, fps: int, shape: tuple[int, int], crf: int):
    stream = container.add_stream("libx264", rate=fps, options={"crf": str(crf), "preset": "veryfast", "threads": "1",
                                                              "x264-params": "no-asm=1"})
    stream.codec_context.thread_count = 1
    stream.height, stream.width = shape
    stream.pix_fmt = "yuv420p"
    return stream
