"""The answer record: what a person gets for one photo or one video, built here and nowhere else.

``PhotoAnswer`` and ``VideoAnswer`` are typed records (pydantic models) with one ``to_json()``. The command
line (``painlens predict``: its JSON, table and CSV), the HTTP API (its responses and its OpenAPI schema)
and the dashboard's upload page all get them from the builders below and only render them:

    bytes ──answer_bytes──► PhotoAnswer (photo_answer: engine.predict.Prediction → record)
                         └► VideoAnswer (video_answer: engine.timeline.VideoAnalysis → record)
    a sentence ──failed──► the same record with ``error`` set and no number

New facts about an answer (abstention, action units, a person's baseline...) are added as fields of these
records, never as a parallel dict. Numbers are rounded to 4 digits; NaN becomes null.
"""

from __future__ import annotations

import base64
import io
import math
import time
from typing import TYPE_CHECKING, Callable, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

from engine.errors import PainLensError
from engine.evaluation.answer import RULE, unlike_training_faces
from engine.preprocess.decode import is_picture, media_kind
from engine.video import DEFAULT_FPS

if TYPE_CHECKING:
    from engine.predict import Prediction, Predictor
    from engine.timeline import VideoAnalysis

EXPLAIN_SAMPLES = 300  # LIME samples per network for an explanation (the upload page's choice)
DIGITS = 4

Progress = Callable[[float], None]  # share of the current file done, 0..1


# --- the records -------------------------------------------------------------------------------------

class Record(BaseModel):
    """A part of an answer; serialised by its field names (``class`` where Python needs another name)."""

    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)


class Band(Record):
    low: float | None = Field(description="Lowest p(pain) over the models (null with one)")
    high: float | None = Field(description="Highest p(pain) over the models (null with one)")
    seeds: int | None = Field(None, description="How many models: a network's folds or kept seeds")


class FaceFound(Record):
    box: list[float] = Field(description="The face used: x1, y1, x2, y2 in pixels of image_size")
    confidence: float | None = Field(description="MTCNN's confidence in that face")
    faces_found: int
    background: str = Field(description="How the background was removed (u2net, fallback or none)")
    image_size: list[int] = Field(description="Width and height of the (possibly reduced) photo the box refers to")


class ActionUnitInRegion(Record):
    """An action unit that moved most, beside the share of a LIME map in the face region where it shows."""

    au: str
    name: str = Field(description="Its plain name (\"brow lowering\"...)")
    intensity: float = Field(description="Estimated intensity, 0-5 (AU43: 1 eyes closed)")
    region: str = Field(description="The pain region where it shows (engine.explain.pain_regions)")
    lime_share: float | None = Field(description="Share of the LIME map's positive weight on the face in that region")
    area_share: float = Field(description="That region's share of the face's area (what the share would be by chance)")
    sentence: str


class NetworkExplanation(Record):
    """One network's LIME explanation of the class it chose."""

    label: int = Field(description="The class explained: 1 pain, 0 no pain")
    class_name: str = Field(alias="class")
    samples: int = Field(description="LIME's perturbed copies of the face")
    fit_r2: float | None = Field(description="R² of LIME's local linear fit")
    superpixel_weights: list[float]
    heatmap_png: str = Field(description="8-bit greyscale PNG (base64) at the network's input size: each pixel its "
                                         "superpixel's positive weight, 255 for the strongest")
    action_units: list[ActionUnitInRegion] = Field(
        default_factory=list, description="The action units that moved most, each beside the LIME weight in its region")


AUS_DESCRIPTION = ("The six pain action units (AU4 brow lowering, AU6 cheek raising, AU7 lid tightening, AU9 nose "
                   "wrinkling, AU10 upper lip raising: 0-5; AU43 eyes closed: 0/1) and PSPI = AU4 + max(AU6, AU7) + "
                   "max(AU9, AU10) + AU43 (0-16), estimated by the experiment's UNBC-trained estimator; null where the "
                   "face was not analysed or the experiment has no estimator")


class BaselineComparison(Record):
    """The face judged against the same person's calm face (``engine.evaluation.baseline``)."""

    p_absolute: float | None = Field(description="The answer's p(pain) for the face, as without a baseline")
    p_baseline: float | None = Field(description="The answer's p(pain) for the person's calm face (the reference)")
    p_change: float | None = Field(description="p(pain) given the change from the calm face (the rule below); null "
                                               "when the face's number is withheld or the rule is not fitted")
    leads_with: Literal["absolute", "change"] = Field(description="Which number leads")
    why: str = Field(description="Why it leads, in one sentence")
    baseline_frames: int = Field(description="Faces the reference is from (1 for a photo)")
    rule: str = Field(description="How the change becomes p(pain), and what it was fitted on")
    aus_baseline: dict[str, float] | None = Field(None, description="The calm face's action units and PSPI (null: no "
                                                                    "estimator in this experiment)")
    aus_change: dict[str, float] | None = Field(None, description="Each action unit and PSPI of the face (a video: its "
                                                                  "peak frame) minus the calm face's: what moved, not what "
                                                                  "the person always shows")
    absolute_abstain_reason: str | None = Field(None, description="Why the answer without the reference withheld its "
                                                                  "number (null: it gave one, p_absolute)")
    reference_from: Literal["photo", "clip", "calm_seconds"] = Field(
        "photo", description="Where the reference came from: a calm photo, a calm clip, or seconds of this clip itself "
                             "(calm_seconds: --calm-seconds, the API's field calm_seconds, the upload page's range)")
    calm_seconds: list[float] | None = Field(None, description="[start, end) seconds of this clip that are its reference "
                                                               "(reference_from calm_seconds; null otherwise): its frames "
                                                               "there are marked reference in frames")

    def source(self) -> str:
        """Where the reference came from, in words a page, a table or a report prints beside a number."""
        return reference_source(self.reference_from, self.calm_seconds)


def reference_source(reference_from: str | None, calm_seconds: list[float] | None = None) -> str:
    """``BaselineComparison.reference_from`` and ``calm_seconds`` in words ("a calm photo of the person", "this clip's
    own calm seconds 0-2 s"); also for a saved answer's JSON, whose older records lack them (a calm photo then)."""
    if reference_from == "calm_seconds" and calm_seconds:
        return f"this clip's own calm seconds {calm_seconds[0]:g}-{calm_seconds[1]:g} s"
    return {"clip": "a calm clip of the person", "calm_seconds": "this clip's own calm seconds"}.get(
        reference_from or "photo", "a calm photo of the person")


class Answer(Record):
    """What every answer has, photo or video."""

    path: str | None = Field(None, description="The file's name as given (null for a body without one)")
    kind: Literal["image", "video"] = "image"
    error: str | None = Field(None, description="Why there is no answer for this input, in one sentence; null when analysed")
    p_pain: float | None = Field(None, description="The one answer (the rule below); null when withheld or when there is none")
    band: Band | None = Field(None, description="Lowest and highest calibrated fold model of the networks averaged "
                                                "(each put through the answer's rule)")
    abstained: bool = Field(False, description="The answer withheld its number: the face is unlike the training faces, "
                                               "or the answer cannot decide")
    abstain_reason: str | None = Field(None, description="Why the number was withheld, in one sentence")
    ood_score: float | None = Field(None, description="How unlike the training faces the face is in the networks' "
                                                      "features (1 = the threshold; above 1: withheld)")
    appearance_score: float | None = Field(None, description="How unlike the training faces the face looks, measured "
                                                             "on its pixels (brightness and contrast normalised), not by "
                                                             "the networks (1 = the threshold; above 1: withheld; null: "
                                                             "not measured, or an answer fitted before this check)")
    prediction_set: list[str] | None = Field(None, description="The conformal prediction set (\"pain\", \"no pain\")")
    rule: str = Field(RULE, description="How the networks' probabilities were made into the one answer")
    reason: str | None = Field(None, description="Why there is no single answer although the input was analysed")
    networks: dict[str, float | None] = Field(default_factory=dict,
                                              description="Raw p(pain) per network (mean over its kept seeds); null: not run")
    notes: list[str] = Field(default_factory=list, description="What changed what the networks saw, and other remarks")
    timings: dict[str, float] = Field(default_factory=dict, description="Seconds per step")
    explanations: dict[str, NetworkExplanation] | None = Field(None, description="LIME per network, when asked for")
    aus: dict[str, float] | None = Field(None, description=AUS_DESCRIPTION + " (a video: at its peak frame)")
    seconds: float | None = Field(None, description="Wall seconds this input took (batch prediction)")
    baseline: BaselineComparison | None = Field(None, description="The face (a video: its answered frames) against the "
                                                                  "person's calm face, when one was given (--reference, "
                                                                  "the API's field reference, the upload page)")
    answer_kind: Literal["absolute", "with_reference"] = Field(
        "absolute", description="Which answer p_pain, band, abstained, abstain_reason and prediction_set are: the face "
                                "alone (absolute), or the answer with the person's calm reference (with_reference: a calm "
                                "photo or clip was given and the answer has a rule for it)")
    _served: tuple[float, float, float] | None = PrivateAttr(None)  # a photo's answer and band before abstention

    def to_json(self) -> dict:
        """Plain JSON types (what ``painlens predict --json`` prints and the API sends)."""
        return self.model_dump(mode="json")


class PhotoAnswer(Answer):
    kind: Literal["image"] = "image"
    calibrated: dict[str, float | None] = Field(default_factory=dict, description="Calibrated p(pain) per network")
    learned: dict[str, bool] = Field(default_factory=dict, description="Whether each network learned (external scenario)")
    used: list[str] = Field(default_factory=list, description="The networks the answer averages")
    bands: dict[str, Band] = Field(default_factory=dict)
    face: FaceFound | None = None


class Frame(Record):
    t: float = Field(description="Seconds from the clip's start")
    p_pain: float | None = Field(description="The frame's answer; null in a gap (no face), withheld or without an answer")
    face: bool
    abstained: bool = Field(False, description="The face was found but the answer withheld its number")
    ood_score: float | None = None
    appearance_score: float | None = None
    aus: dict[str, float] | None = Field(None, description="The frame's action units and PSPI; null in a gap")
    reference: bool = Field(False, description="The frame is in the calm seconds that are this clip's own reference: "
                                               "it is the reference, not evidence, so it has no number (p_pain null) and "
                                               "is left out of the score and the peak")
    p_absolute: float | None = Field(None, description="The face alone's answer for the frame, when p_pain is the answer "
                                                       "with the person's calm reference (answer_kind with_reference); "
                                                       "null otherwise, and in a gap or where it was withheld")
    _served: float | None = PrivateAttr(None)  # the frame's answer before abstention (a calm reference uses it)
    _networks: dict[str, float] | None = PrivateAttr(None)  # each network's raw p(pain) here (None: no face)


class ClipScore(Record):
    mean: float | None
    top10: float | None = Field(description="Mean of the highest 10 % of the frames' answers")
    above_half: float | None = Field(description="Share of answered frames above 0.5")


class VideoFacts(Record):
    width: int
    height: int
    rotation: int
    seconds: float | None
    codec: str | None


class VideoAnswer(Answer):
    kind: Literal["video"] = "video"
    frames: list[Frame] = Field(default_factory=list)
    peak_t: float | None = Field(None, description="Time of the frame with the highest answer")
    score: ClipScore | None = None
    fps: float | None = Field(None, description="Frames analysed per second of video")
    seconds_analysed: float = 0.0
    answered_frames: int = Field(0, description="Frames with a number: the score is over these only")
    video: VideoFacts | None = None


class ExplanationAnswer(Record):
    """One network's LIME explanation of one photo (``POST /v1/explain``)."""

    path: str | None
    network: str
    label: int
    class_name: str = Field(alias="class")
    p_pain: float | None = Field(description="The network's raw p(pain) for the photo")
    samples: int
    fit_r2: float | None
    superpixel_weights: list[float]
    seconds: float
    notes: list[str]
    heatmap_png: str | None = Field(None, description="The heatmap PNG, base64 (omitted when sent as image/png)")

    def to_json(self) -> dict:
        return self.model_dump(mode="json")


AnyAnswer = PhotoAnswer | VideoAnswer


# --- the builders ------------------------------------------------------------------------------------

def failed(path: str | None, kind: str, sentence: str) -> AnyAnswer:
    """The record of an input that could not be analysed: ``error`` says why, and there is no number."""
    return (VideoAnswer if kind == "video" else PhotoAnswer)(path=path, error=sentence)


def photo_answer(prediction: "Prediction", path: str | None = None, notes: list[str] | None = None) -> PhotoAnswer:
    """A photo's record from its ``engine.predict.Prediction`` (face, every network's p(pain), the rule's answer)."""
    probs, face, answer = prediction.probabilities, prediction.face, prediction.answer
    record = PhotoAnswer(
        path=path, p_pain=rounded(prediction.p_pain),
        networks={row.model: rounded(row.p_pain) for row in probs.itertuples()},
        bands={row.model: Band(low=rounded(row.low), high=rounded(row.high), seeds=int(row.seeds))
               for row in probs.itertuples()},
        face=FaceFound(box=[round(v, 1) for v in face.boxes[0]], confidence=rounded(face.confidence),
                       faces_found=len(face.boxes), background=face.background_method,
                       image_size=[int(face.rgb.shape[1]), int(face.rgb.shape[0])]),
        notes=list(notes or []) + list(prediction.notes), aus=rounded_aus(prediction.action_units),
        timings={step: round(seconds, DIGITS) for step, seconds in prediction.timings.items()})
    if answer is not None:  # the rule's own words, its reason when there is no answer, calibrated values
        rows = list(answer.networks.itertuples())
        record.rule, record.reason = answer.rule, answer.reason or None
        record.calibrated = {row.model: rounded(row.p_calibrated) for row in rows}
        record.learned = {row.model: bool(row.learned) for row in rows}
        record.used = [row.model for row in rows if row.used]
        record.abstained, record.abstain_reason = answer.abstained, answer.abstain_reason
        record.ood_score, record.appearance_score = rounded(answer.ood_score), rounded(answer.appearance_score)
        record._served = None if answer.p_served is None else (answer.p_served, answer.low, answer.high)
        record.prediction_set = list(answer.prediction_set) if answer.ood_score is not None and not _ood(answer) else None
        if record.p_pain is not None:
            record.band = Band(low=rounded(answer.low), high=rounded(answer.high),
                               seeds=sum(record.bands[name].seeds or 0 for name in record.used))
    return record


def compare_with_baseline(record: AnyAnswer, reference, rule: dict | None) -> AnyAnswer:
    """``record`` with ``baseline`` set from the person's calm face ``reference`` (``engine.person_baseline``) and
    the answer's baseline rule (``answer.json``'s ``baseline``, fitted on development data). A clip is compared
    frame by frame: its p(pain) from the change is the mean over its answered frames of each frame's, as its
    absolute p(pain) is the mean of the frames' answers. Failed inputs are returned as they are."""
    from engine.evaluation.baseline import change_probability, is_fitted, lead

    if record.error:
        return record
    video = isinstance(record, VideoAnswer)
    p_base = float(reference.p_pain)
    fitted = is_fitted(rule)
    text = (f"p(pain) = sigmoid({rule['slope']:.2f} x (logit p(face) - logit p(calm face)) {rule['intercept']:+.2f}), "
            f"fitted on {rule.get('images')} {rule.get('faces', 'PAIN-DB held-out faces')} of {rule.get('subjects')} "
            f"subjects against their own calm frames; {rule.get('cppain', 'CP-PAIN never read')}" if fitted else
            "No rule: " + ((rule or {}).get("reason") or "the answer's parameters have no baseline rule (run `painlens run` "
                                                          "again to fit it)."))
    if video and fitted:
        text = f"Each answered frame: {text}; the clip's is the mean over those frames"
    calm_aus = getattr(reference, "aus", None)
    absolute, absolute_reason = record.p_pain, record.abstain_reason
    served = _with_reference(record, reference, (rule or {}).get("answer"))
    if served:
        from engine.evaluation.reference_answer import rule_sentence

        leads, why, p_change, text = "change", served, record.p_pain, rule_sentence(rule["answer"])
    elif record.p_pain is None:
        leads, why, p_change = "absolute", (f"The {'clip' if video else 'face'}'s number is withheld (see why), so there is "
                                            "no change from the calm face to report."), None
    else:
        leads, why = lead(p_base, rule or {}) if fitted else ("absolute", "Without a fitted rule the change cannot be "
                                                              "turned into p(pain): the absolute number leads.")
        answered = [f.p_pain for f in record.frames if f.p_pain is not None] if video else [record.p_pain]
        p_change = float(np.mean(change_probability(np.asarray(answered, dtype=float), p_base, rule))) if fitted else None
    change = ({name: rounded(value - calm_aus[name]) for name, value in record.aus.items()
               if value is not None and calm_aus.get(name) is not None} if record.aus and calm_aus else None)
    record.baseline = BaselineComparison(p_absolute=rounded(absolute), p_baseline=rounded(p_base),
                                         p_change=rounded(p_change), leads_with=leads, why=why,
                                         baseline_frames=int(reference.frames), rule=text, aus_baseline=rounded_aus(calm_aus),
                                         aus_change=change, absolute_abstain_reason=absolute_reason,
                                         reference_from=REFERENCE_FROM.get(getattr(reference, "kind", ""), "photo"),
                                         calm_seconds=_seconds(getattr(reference, "seconds", None)))
    return record


REFERENCE_FROM = {"image": "photo", "video": "clip", "stretch": "calm_seconds"}  # PersonBaseline.kind -> reference_from


def _seconds(stretch) -> list[float] | None:
    return None if stretch is None else [round(float(stretch.start), DIGITS), round(float(stretch.end), DIGITS)]


def _with_reference(record: AnyAnswer, reference, rule: dict | None) -> str:
    """Serve the answer with the person's calm reference in ``record`` (``engine.evaluation.reference_answer``:
    its number, band, conformal set and abstention; a clip frame by frame) and return why, in a sentence; "" (the
    record untouched, ``answer_kind`` absolute) when the answer has no such rule or the face or reference lacks
    an input it needs."""
    from engine.evaluation.answer import prediction_sets
    from engine.evaluation.reference_answer import is_served, reference_p, rule_sentence

    if not is_served(rule):
        return ""
    calm_pspi = (getattr(reference, "aus", None) or {}).get("PSPI")
    calm = (float(reference.p_pain), np.nan if calm_pspi is None else float(calm_pspi))
    level, conformal = rule["conformal"].get("level", 0.9), rule["conformal"]
    uncertain = (f"Uncertain: with the person's calm reference, at the {level:.0%} conformal level the answer fits "
                 "{which}, so no number is given (a clinician's judgement is needed).")

    def one(served: float | None, aus: dict | None, unlike: bool) -> tuple[float, float | None, str | None, list]:
        """(the with-reference p before abstention (NaN: no input), after (None: withheld), why withheld, its set)."""
        pspi = (aus or {}).get("PSPI")
        if served is None:
            return np.nan, None, None, []
        p = float(reference_p(served, np.nan if pspi is None else pspi, *calm, rule))
        if not math.isfinite(p) or unlike:
            return p, None, None, []
        pain, no_pain = (bool(v) for v in prediction_sets(np.asarray([p]), conformal))
        sets = [name for name, inside in (("pain", pain), ("no pain", no_pain)) if inside]
        if pain == no_pain:
            return p, None, uncertain.format(which="both pain and no pain" if sets else "neither class"), sets
        return p, p, None, sets

    why = ("The person's calm reference was given: the number is the answer with it (the face against the calm face, "
           "with its own conformal thresholds), not the face alone.")
    if isinstance(record, VideoAnswer):
        frames = [(f, one(f._served, f.aus, unlike_training_faces(f.ood_score, f.appearance_score)))
                  for f in record.frames if f.face and f._served is not None]
        if not frames or not all(math.isfinite(p) for _, (p, *_) in frames):
            if frames:
                record.notes.append("The answer with the person's calm reference needs the PSPI of every frame with the "
                                    "face and of the calm face; one could not be measured, so the numbers are the face "
                                    "alone's.")
            return ""
        for f in record.frames:  # the face alone's values stay beside the answer (a timeline's second line)
            f.p_absolute = f.p_pain
        for f, (_, p, _, _) in frames:
            if not unlike_training_faces(f.ood_score, f.appearance_score):  # a frame unlike the training faces stays withheld
                f.p_pain, f.abstained = rounded(p), p is None
        answered = [f.p_pain for f in record.frames if f.p_pain is not None]
        from engine.timeline import clip_score

        score = clip_score(answered)
        record.score = None if score is None else ClipScore(**{key: rounded(value) for key, value in score.items()})
        record.p_pain, record.answered_frames = (None if score is None else rounded(score["mean"])), len(answered)
        record.peak_t = max((f for f in record.frames if f.p_pain is not None), key=lambda f: f.p_pain).t if answered else None
        record.abstained = not answered
        record.abstain_reason = None if answered else \
            "With the person's calm reference the answer withheld its number in every frame with the face."
        record.band = None
    else:
        if record._served is None or record.ood_score is None:
            return ""
        served, low, high = record._served
        unlike = unlike_training_faces(record.ood_score, record.appearance_score)
        p, answered, reason, sets = one(served, record.aus, unlike)
        if not math.isfinite(p):
            record.notes.append("The answer with the person's calm reference needs the PSPI of the face and of the calm "
                                "face; one could not be measured, so the number is the face alone's.")
            return ""
        if not unlike:
            record.p_pain, record.abstained, record.abstain_reason = rounded(answered), answered is None, reason
            record.prediction_set = sets
            ends = sorted(float(reference_p(v, (record.aus or {}).get("PSPI", np.nan), *calm, rule)) for v in (low, high))
            record.band = None if answered is None else Band(
                low=rounded(ends[0]), high=rounded(ends[1]), seeds=sum(record.bands[n].seeds or 0 for n in record.used))
    record.answer_kind = "with_reference"
    record.rule = f"{record.rule} {rule_sentence(rule)}"
    return why


def _ood(answer) -> bool:
    return unlike_training_faces(answer.ood_score, answer.appearance_score)


def video_answer(analysis: "VideoAnalysis", network_names: list[str], path: str | None = None) -> VideoAnswer:
    """A clip's record from its ``engine.timeline.VideoAnalysis``: the mean of the frames' answers, the frames,
    the peak and the score. ``networks``: each network's raw p(pain) averaged over the frames with a face
    (``network_means``; null for a network not run on the frames: only those the answer averages are)."""
    score, info = analysis.score, analysis.info
    record = VideoAnswer(
        path=path, p_pain=rounded(analysis.p_pain),
        rule=f"The mean over the clip's frames of each frame's answer. {analysis.rule or RULE}",
        reason=analysis.reason or None,
        frames=[Frame(t=f.t, p_pain=rounded(f.p_pain), face=f.face, abstained=f.abstained, ood_score=rounded(f.ood_score),
                      appearance_score=rounded(f.appearance_score),
                      aus=rounded_aus(f.aus)) for f in analysis.frames],
        aus=rounded_aus(analysis.frames[analysis.peak].aus) if analysis.peak is not None else None,
        answered_frames=sum(f.p_pain is not None for f in analysis.frames),
        peak_t=analysis.peak_t,
        score=None if score is None else ClipScore(**{key: rounded(value) for key, value in score.items()}),
        fps=analysis.fps, seconds_analysed=analysis.frames[-1].t if analysis.frames else 0.0,
        video=VideoFacts(width=info.width, height=info.height, rotation=info.rotation, seconds=info.seconds,
                         codec=info.codec),
        notes=list(analysis.notes),
        timings={step: round(seconds, DIGITS) for step, seconds in analysis.timings.items()})
    for frame, result in zip(record.frames, analysis.frames):
        frame._served = getattr(result, "p_served", None)
        table = getattr(result, "probabilities", None)
        frame._networks = None if table is None else {row.model: float(row.p_pain) for row in table.itertuples()
                                                      if row.p_pain is not None and math.isfinite(row.p_pain)}
    record.networks = network_means(record.frames, network_names)
    return record


def network_means(frames: list[Frame], network_names: list[str]) -> dict[str, float | None]:
    """Each network's raw p(pain) averaged over the ``frames`` with a face that are evidence: a frame of the clip's
    own calm reference (``Frame.reference``) is left out, as it is of the score. Null: a network run on none."""
    values = {name: [f._networks[name] for f in frames if f._networks and not f.reference and name in f._networks]
              for name in network_names}
    return {name: rounded(np.mean(found)) if found else None for name, found in values.items()}


def answer_bytes(predictor: "Predictor", data: bytes, path: str | None = None, kind: str = "", fps: float = DEFAULT_FPS,
                 explain: bool = False, progress: Progress | None = None,
                 only: list[str] | None = None) -> AnyAnswer:
    """One file's bytes to its record; PainLensError (one sentence) for bad input.

    ``kind``: what the name suggests ("image", "video" or ""); the bytes decide. ``only``: run just these
    networks on a photo (the others keep a null p(pain)); a video runs the answer's networks anyway."""
    from engine.predict import predict_bytes

    found = media_kind(data) if data else (kind or "image")
    notes = []
    if found == "image" and kind == "video" and data and is_picture(data):
        notes.append("The file is named like a video but holds a photo; it was analysed as a photo.")
    elif found == "image" and kind == "video":
        found = "video"  # not a photo either: the video reader says what is wrong with it
    if found == "video":
        return _video_bytes(predictor, data, path, fps, explain, progress)
    prediction = predict_bytes(predictor, data, only)
    record = photo_answer(prediction, path, notes)
    if explain:
        record.explanations = explain_networks(predictor, prediction.face.crop, prediction.probabilities,
                                               prediction.face.landmarks, prediction.action_units)
    return record


def _video_bytes(predictor: "Predictor", data: bytes, path: str | None, fps: float, explain: bool,
                 progress: Progress | None) -> VideoAnswer:
    from engine.timeline import analyse_video

    def frames_done(done: int, expected: int | None) -> None:
        if progress is not None:  # called without a known length too: a server stops a video nobody waits for here
            progress(min(1.0, done / expected) if expected else 0.0)

    analysis = analyse_video(predictor, data, fps=fps, keep_pictures=False, progress=frames_done)
    record = video_answer(analysis, list(predictor.networks), path)
    if explain and analysis.peak is not None:
        peak = analysis.frames[analysis.peak]
        record.explanations = explain_networks(predictor, analysis.peak_crop, peak.probabilities, peak.landmarks, peak.aus)
    return record


def explain_networks(predictor: "Predictor", crop: np.ndarray, probabilities, landmarks: np.ndarray | None = None,
                     aus: dict[str, float] | None = None) -> dict[str, NetworkExplanation]:
    """LIME of every network's answer on ``crop`` (a network not run on it is left out); with the face's
    ``landmarks`` and ``aus``, each names the AUs that moved most beside its weight in their regions."""
    from engine.action_unit_regions import action_units_in_regions

    out = {}
    table = probabilities.set_index("model")
    for name in predictor.networks:
        p = float(table.loc[name, "p_pain"])
        if not np.isfinite(p):  # a network not run (it did not learn): nothing to explain
            continue
        label = int(p >= 0.5)
        explanation = predictor.explain(crop, name, label, seed=0, num_samples=EXPLAIN_SAMPLES)
        out[name] = NetworkExplanation(label=label, class_name="pain" if label else "no pain", samples=EXPLAIN_SAMPLES,
                                       fit_r2=rounded(explanation.score),
                                       superpixel_weights=[round(float(w), 6) for w in explanation.weights],
                                       heatmap_png=base64.b64encode(heatmap_png(explanation)).decode("ascii"),
                                       action_units=[ActionUnitInRegion(**{**item, "lime_share": rounded(item["lime_share"]),
                                                                           "intensity": rounded(item["intensity"]),
                                                                           "area_share": rounded(item["area_share"])})
                                                     for item in action_units_in_regions(
                                                         aus, explanation.mask(), landmarks, crop.shape[0], name)])
    return out


def explain_photo(predictor: "Predictor", data: bytes, path: str | None, network: str, label: int | None,
                  samples: int, progress: Progress | None = None) -> tuple[ExplanationAnswer, bytes]:
    """(the record, the heatmap PNG) of one network's LIME explanation of one photo; PainLensError for a
    bad photo or a network the experiment does not have. ``progress`` gets the share of LIME's samples done."""
    from engine.predict import predict_bytes

    if network not in predictor.networks:
        raise UnknownNetworkError(f"There is no network called {network!r} in this experiment; GET /v1/models lists them.")
    prediction = predict_bytes(predictor, data, [network])
    p = float(prediction.probabilities.set_index("model").loc[network, "p_pain"])
    label = int(p >= 0.5) if label is None else label
    clock = time.perf_counter()
    explanation = predictor.explain(prediction.face.crop, network, label, seed=0, num_samples=samples, progress=progress)
    record = ExplanationAnswer(path=path, network=network, label=label, class_name="pain" if label else "no pain",
                               p_pain=rounded(p), samples=samples, fit_r2=rounded(explanation.score),
                               superpixel_weights=[round(float(w), 6) for w in explanation.weights],
                               seconds=round(time.perf_counter() - clock, 3), notes=list(prediction.notes))
    return record, heatmap_png(explanation)


class UnknownNetworkError(PainLensError):
    """A network name the experiment does not have."""


def heatmap_png(explanation) -> bytes:
    """An 8-bit greyscale PNG at the network's input size: each pixel its superpixel's positive LIME
    weight for the class explained, 255 for the strongest (0: no support). It lies over the face crop."""
    from PIL import Image

    mask = explanation.mask()
    top = float(mask.max())
    scaled = np.round(mask / top * 255) if top > 0 else np.zeros_like(mask)
    buffer = io.BytesIO()
    Image.fromarray(scaled.astype(np.uint8), "L").save(buffer, format="PNG")
    return buffer.getvalue()


def rounded_aus(aus: dict[str, float] | None) -> dict[str, float] | None:
    """The AU record as sent: each value rounded; None stays None (the face was not analysed), never zeros."""
    return None if aus is None else {name: rounded(value) for name, value in aus.items()}


def rounded(value, digits: int = DIGITS) -> float | None:
    """A JSON-safe float (NaN and None become None)."""
    return None if value is None or not math.isfinite(float(value)) else round(float(value), digits)
