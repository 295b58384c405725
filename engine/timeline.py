"""A clip in, a pain timeline out: the video path of the one predictor (CLI, upload page, HTTP API).

    bytes ──engine.video──► sampled frames (upright, at --fps, first MAX_SECONDS)       in batches of BATCH
          ──FaceDetector──► the faces per frame, one MTCNN pass per batch on reduced frames: the whole frame
             (``detect_batch``) once per ``KEYFRAME_SECONDS`` and until someone is followed; in between only
             near the followed face (``near``: MTCNN's refinement networks on squares around its last box),
             and the whole frame again wherever that finds no face that continues the track
          ──engine.tracking──► the followed person's face per frame, or a gap
          ──engine.preprocess.pipeline.preprocess_face──► crop, background, 68 landmarks (as for a photo)
          ──Predictor.probabilities_many──► p(pain) per network and frame (one predict call per model and batch;
             only the networks that learned, when some did: the others are in no frame's answer)
          ──Predictor.answer (engine.evaluation.answer)──► the frame's one p(pain), and the band: lowest to
             highest calibrated seed of the networks the answer averages
    ──► peak (the highest frame), score (mean, mean of the top 10 %, share above 0.5), notes; LIME of the peak on request

Frames where the face is not followed keep ``face=False`` and no value: the timeline shows a gap there,
never an interpolated value. Memory stays flat with the clip's length: frames are dropped after their
batch; only a small crop and thumbnail per frame are kept (``keep_pictures``, for the upload page).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

import numpy as np

from engine.errors import BadVideoError
from engine.evaluation.answer import unlike_training_faces
from engine.tracking import FaceTracker
from engine.video import DEFAULT_FPS, MAX_SECONDS, SampledFrame, VideoInfo, VideoReader

if TYPE_CHECKING:
    import pandas as pd

    from engine.predict import Predictor

BATCH = 16  # frames per detection and inference batch
DETECT_SIDE = 180  # px: MTCNN sees video frames with this shorter side: faces of at least 20 px there (a
# ninth of the frame) are found, and detection costs half of what it does at 240 px (bench/video_throughput.py)
# Every face in the frame (other people, a face that moved far) is searched for in one analysed frame
# per KEYFRAME_SECONDS; the frames between are searched near the followed face only, a third of the
# cost (bench/video_throughput.py), and searched whole where that finds no face continuing the track.
KEYFRAME_SECONDS = 1.0
THUMBNAIL_SIDE = 320  # px: longer side of the frame pictures kept for the upload page's slider
TOP_SHARE = 0.10  # the score's "top10": mean of the highest 10 % of frames
WITHHELD_NOTE = "The answer withheld its number in"  # the face alone's count; a page with a calm reference drops it
STEPS = ("decode", "detection", "tracking", "landmarks", "inference", "action_units")


@dataclass
class FrameResult:
    """One analysed frame. Boxes are in the analysed frame's pixels; landmarks in the crop's."""

    index: int
    t: float
    face: bool  # True where the followed face was found (and judged)
    p_pain: float | None = None  # the frame's one answer (Predictor.answer); None in a gap, withheld or without one
    abstained: bool = False  # the answer withheld its number for this frame's face (unlike the training faces, uncertain)
    abstain_reason: str | None = None
    ood_score: float | None = None
    appearance_score: float | None = None  # the answer's second check of unlike, on the crop's pixels
    p_served: float | None = None  # the frame's answer before abstention (a calm reference compares it)
    low: float = float("nan")  # band: lowest calibrated seed of the networks the answer averages
    high: float = float("nan")
    probabilities: "pd.DataFrame | None" = None  # model, p_pain, low, high, seeds, input_size
    box: tuple[float, float, float, float] | None = None
    confidence: float | None = None
    faces_found: int = 0  # faces MTCNN found, followed or not (near the person only, in frames not searched whole)
    crop: np.ndarray | None = None  # kept with keep_pictures
    landmarks: np.ndarray | None = None  # (68, 2) crop pixels of the followed face
    aus: dict[str, float] | None = None  # the face's pain AUs and PSPI (Predictor.action_units); None: not estimated
    thumbnail: np.ndarray | None = None  # the frame reduced to THUMBNAIL_SIDE, kept with keep_pictures
    thumbnail_scale: float = 1.0  # thumbnail pixels per analysed-frame pixel


@dataclass
class VideoAnalysis:
    info: VideoInfo
    fps: float
    frames: list[FrameResult]
    notes: list[str]
    timings: dict[str, float]  # seconds per STEPS
    background_method: str
    peak: int | None = None  # index into ``frames`` of the highest p(pain)
    peak_crop: np.ndarray | None = None  # the peak frame's crop (always kept: LIME explains it)
    explanations: dict = field(default_factory=dict)  # network -> (label, Explanation), after explain_peak
    rule: str = ""  # how a frame's answer is made (Predictor.answer's words)
    reason: str = ""  # why the frames have no answer, when they have none (no network learned...)

    @property
    def peak_t(self) -> float | None:
        return None if self.peak is None else self.frames[self.peak].t

    @property
    def score(self) -> dict | None:
        """{"mean", "top10", "above_half"} over the frames with an answer; None when there is none."""
        return clip_score([f.p_pain for f in self.frames if f.p_pain is not None])

    @property
    def p_pain(self) -> float | None:
        """The clip's one number: the mean of its frames' answers (``score["mean"]``)."""
        score = self.score
        return None if score is None else score["mean"]

    def curve(self) -> "pd.DataFrame":
        """One row per analysed frame: t, face, p_pain and its band (low, high); NaN in gaps."""
        import pandas as pd

        rows = [{"t": f.t, "face": f.face, "p_pain": np.nan if f.p_pain is None else f.p_pain, "low": f.low,
                 "high": f.high} for f in self.frames]
        return pd.DataFrame(rows, columns=["t", "face", "p_pain", "low", "high"])

    def network_curves(self) -> "pd.DataFrame":
        """Long table t, model, p_pain (raw: mean over its seeds, not calibrated) for frames with a face."""
        import pandas as pd

        parts = [frame.probabilities[["model", "p_pain"]].dropna().assign(t=frame.t) for frame in self.frames
                 if frame.probabilities is not None]  # dropna: networks not run on the frames
        if not parts:
            return pd.DataFrame(columns=["t", "model", "p_pain"])
        return pd.concat(parts, ignore_index=True)[["t", "model", "p_pain"]]

    def action_unit_curves(self) -> "pd.DataFrame":
        """Long table t, target (AU4... AU43, PSPI), value for the frames whose AUs were estimated (gaps: none)."""
        import pandas as pd

        rows = [{"t": f.t, "target": target, "value": value} for f in self.frames if f.aus for target, value in f.aus.items()]
        return pd.DataFrame(rows, columns=["t", "target", "value"])


def clip_score(values: list[float]) -> dict | None:
    """The video score over frame answers: mean, mean of the top ``TOP_SHARE``, share above 0.5."""
    if not values:
        return None
    ordered = np.sort(np.asarray(values, dtype=float))[::-1]
    top = ordered[: max(1, math.ceil(TOP_SHARE * len(ordered)))]
    return {"mean": float(ordered.mean()), "top10": float(top.mean()), "above_half": float((ordered > 0.5).mean())}


Progress = Callable[[int, "int | None"], None]  # (frames analysed, frames expected or None)


def analyse_video(predictor: "Predictor", data: bytes, fps: float = DEFAULT_FPS, max_seconds: float = MAX_SECONDS,
                  keep_pictures: bool = True, progress: Progress | None = None) -> VideoAnalysis:
    """The timeline of a clip's bytes (BadVideoError for a clip that cannot be read or shows no face)."""
    reader = VideoReader(data, fps=fps, max_seconds=max_seconds)
    run = _Run(predictor, reader.info, keep_pictures, reader.fps)
    expected = reader.expected_frames()
    batches = reader.batches(BATCH)
    while True:
        clock = time.perf_counter()
        batch = next(batches, None)
        run.timings["decode"] += time.perf_counter() - clock
        if batch is None:
            break
        run.analyse(batch)
        if progress is not None:
            progress(len(run.frames), expected)
    return run.finish(reader.notes, reader.fps)


class _Run:
    """One clip's analysis in progress: the tracker and what the frames gave so far."""

    def __init__(self, predictor: "Predictor", info: VideoInfo, keep_pictures: bool, fps: float):
        self.predictor, self.info, self.keep = predictor, info, keep_pictures
        self.tracker = FaceTracker()
        self.frames: list[FrameResult] = []
        self.timings = {step: 0.0 for step in STEPS}
        self.too_small = 0
        self.peak_crop: np.ndarray | None = None
        self.peak_value = -1.0
        self.rule, self.reason = "", ""
        self.keyframe_every = max(1, round(fps * KEYFRAME_SECONDS))
        # What the answer rule knows (learned, temperatures), read once per clip: the experiment's
        # results do not change in the seconds a clip takes, and reading them per frame cost more than the answers.
        self.basis = predictor.answer_basis()
        self.networks = predictor.learned_networks(self.basis) or None  # None: none learned, every network's own p

    def analyse(self, batch: list[SampledFrame]) -> None:
        clock = time.perf_counter()
        faces, whole = self._search(batch)
        self.timings["detection"] += time.perf_counter() - clock
        results, crops = [], []
        for i, frame in enumerate(batch):
            if not whole[i] and not self.tracker.continues(faces[i], frame.t):
                clock = time.perf_counter()  # not where the person was: search the whole frame before calling it a gap
                faces[i], whole[i] = self._whole([frame])[0], True
                self.timings["detection"] += time.perf_counter() - clock
            result, crop = self._follow(frame, faces[i], whole[i])
            results.append(result)
            if crop is not None:
                crops.append((result, crop))
        if crops:
            # Only the networks the answer averages, when some learned: the others' p(pain) is in no
            # frame's answer, and on the demo they were most of the inference time (pretrained bases).
            tables, seconds = self.predictor.probabilities_many([crop for _, crop in crops], only=self.networks)
            self.timings["inference"] += seconds
            for (result, crop), table in zip(crops, tables):
                answer = self.predictor.answer(table, self.basis, result.aus)
                result.probabilities, result.p_pain = table, answer.p_pain
                result.abstained, result.abstain_reason, result.ood_score, result.appearance_score = \
                    answer.abstained, answer.abstain_reason, answer.ood_score, answer.appearance_score
                result.p_served = answer.p_served
                result.low, result.high = (answer.low, answer.high) if not answer.abstained else (np.nan, np.nan)
                self.rule, self.reason = answer.rule, answer.reason
                if result.p_pain is not None and result.p_pain > self.peak_value:
                    self.peak_value, self.peak_crop = result.p_pain, crop
        self.frames.extend(results)

    def _search(self, batch: list[SampledFrame]) -> tuple[list[list], list[bool]]:
        """Each frame's confident faces (largest first) and whether the whole frame was searched: the whole
        frame in keyframes, elsewhere near the followed face's last box (near the batch's first frame's
        largest face before anyone is followed; every frame whole while nobody was ever found), and the
        whole frame too where nothing confident is near."""
        whole = [frame.index % self.keyframe_every == 0 for frame in batch]
        faces: list[list | None] = [None] * len(batch)
        anchor = self.tracker.track.box if self.tracker.track is not None else None
        if anchor is None:  # nobody followed yet: the largest face of the first frame is who will be
            faces[0], whole[0] = self._whole(batch[:1])[0], True
            anchor = faces[0][0] if faces[0] else None
        if anchor is None:
            whole = [True] * len(batch)
        near = [i for i, searched in enumerate(whole) if not searched]
        if near:
            detector, minimum = self.predictor.face_models.detector, self.predictor.params.min_confidence
            found = detector.near([batch[i].rgb for i in near], [anchor] * len(near), max_side=DETECT_SIDE)
            for i, detection in zip(near, found):
                faces[i] = detection.confident(minimum)
                whole[i] = not faces[i]
                faces[i] = faces[i] or None
        searched = [i for i, face_list in enumerate(faces) if face_list is None]
        for i, found_faces in zip(searched, self._whole([batch[i] for i in searched])):
            faces[i] = found_faces
        return faces, whole

    def _whole(self, frames: list[SampledFrame]) -> list[list]:
        """The confident faces of each frame, searched over the whole frame (one MTCNN pass)."""
        if not frames:
            return []
        detections = self.predictor.face_models.detector.detect_batch([f.rgb for f in frames], max_side=DETECT_SIDE)
        return [d.confident(self.predictor.params.min_confidence) for d in detections]

    def _follow(self, frame: SampledFrame, faces, whole_frame: bool) -> tuple[FrameResult, np.ndarray | None]:
        """The frame's result (no probabilities yet) and the followed face's crop, or None in a gap."""
        from engine.predict import MIN_FACE_SIDE
        from engine.preprocess.pipeline import preprocess_face

        clock = time.perf_counter()
        face = self.tracker.follow(faces, frame.t, whole_frame)
        self.timings["tracking"] += time.perf_counter() - clock
        result = FrameResult(frame.index, frame.t, face=False, faces_found=len(faces))
        if self.keep:
            result.thumbnail, result.thumbnail_scale = _thumbnail(frame.rgb)
        if face is None:
            return result, None
        if max(face.width, face.height) < MIN_FACE_SIDE:
            self.too_small += 1
            return result, None
        clock = time.perf_counter()
        done = preprocess_face(frame.rgb, face, self.predictor.params, self.predictor.face_models)
        self.tracker.seen(done.crop_box.from_crop(done.landmarks, self.predictor.params.crop_size))
        self.timings["landmarks"] += time.perf_counter() - clock
        result.face, result.box, result.confidence = True, (face.x1, face.y1, face.x2, face.y2), face.confidence
        result.landmarks = done.landmarks  # small, always kept: the peak's explanation lays the AU regions on it
        if self.keep:
            result.crop = done.crop
        clock = time.perf_counter()
        result.aus = self.predictor.action_units(done.crop, done.landmarks)
        self.timings["action_units"] += time.perf_counter() - clock
        return result, done.crop

    def finish(self, reader_notes: list[str], fps: float) -> VideoAnalysis:
        followed = [f for f in self.frames if f.face]
        if not followed:
            if self.too_small:
                raise BadVideoError(f"The face is too small in every analysed frame (under {_min_side()} pixels); "
                                    "film closer to the face.")
            raise BadVideoError("No face was found in any analysed frame of the video; film the person's face from the "
                                "front, well lit.")
        notes = list(reader_notes)
        if self.networks is not None and len(self.networks) < len(self.predictor.networks):
            notes.append(f"Only the networks that learned ({', '.join(self.networks)}) were run on the frames: the answer "
                         "averages those, and the others' p(pain) would be in no frame's answer.")
        if self.info.rotation:
            notes.append(f"The video was turned upright as its rotation flag asks ({self.info.rotation} degrees).")
        if self.tracker.note():
            notes.append(f"{self.tracker.note()} (Other faces are looked for in one analysed frame a second and "
                         "wherever the person is lost.)")
        gaps = len(self.frames) - len(followed)
        if gaps:
            share = gaps / len(self.frames)
            notes.append(f"The face was not followed in {gaps} of {len(self.frames)} analysed frames ({share:.0%}"
                         + (", half the clip or more" if share >= 0.5 else "")
                         + "): the timeline has gaps there, with no values made up." +
                         (f" In {self.too_small} of them the face was under {_min_side()} pixels." if self.too_small else ""))
        answered = [i for i, f in enumerate(self.frames) if f.p_pain is not None]
        withheld = [f for f in self.frames if f.abstained]
        if withheld:
            unlike = sum(1 for f in withheld if unlike_training_faces(f.ood_score, f.appearance_score))
            notes.append(f"{WITHHELD_NOTE} {len(withheld)} of {len(followed)} frames with the face "
                         f"({unlike} unlike the training faces, {len(withheld) - unlike} uncertain): they are gaps in the "
                         f"timeline, and the video score is over the {len(answered)} answered frames.")
        peak = max(answered, key=lambda i: self.frames[i].p_pain) if answered else None
        if not answered and self.reason:
            notes.append(f"{self.reason} The timeline shows each network's own p(pain) instead.")
        return VideoAnalysis(info=self.info, fps=fps, frames=self.frames, notes=notes, timings=self.timings,
                             background_method=self.predictor.params.background, peak=peak, peak_crop=self.peak_crop,
                             rule=self.rule, reason="" if answered else self.reason)


def explain_peak(predictor: "Predictor", analysis: VideoAnalysis, network: str, samples: int,
                 progress: Callable[[float], None] | None = None):
    """LIME explanation (engine.explain.lime_masks.Explanation) of ``network``'s answer on the peak frame."""
    if analysis.peak is None or analysis.peak_crop is None:
        return None
    table = analysis.frames[analysis.peak].probabilities.set_index("model")
    label = int(float(table.loc[network, "p_pain"]) >= 0.5)
    explanation = predictor.explain(analysis.peak_crop, network, label, seed=0, num_samples=samples, progress=progress)
    analysis.explanations[network] = (label, explanation)
    return label, explanation


def _thumbnail(rgb: np.ndarray) -> tuple[np.ndarray, float]:
    from PIL import Image

    scale = min(1.0, THUMBNAIL_SIDE / max(rgb.shape[:2]))
    if scale == 1.0:
        return rgb.copy(), 1.0
    size = (max(1, round(rgb.shape[1] * scale)), max(1, round(rgb.shape[0] * scale)))
    return np.asarray(Image.fromarray(rgb).resize(size, Image.Resampling.BILINEAR)), scale


def _min_side() -> int:
    from engine.predict import MIN_FACE_SIDE

    return MIN_FACE_SIDE
