"""A person's calm face as the reference for their other faces (the served side of ``engine.evaluation.baseline``).

A clinician gives a calm photo of the person, or a calm clip (the upload page, ``painlens predict --reference
FILE``, the API's multipart field ``reference``), or says which seconds of the clip itself show the person at rest
(``--calm-seconds A-B``, the API's form field ``calm_seconds``, the upload page's range): a photo differs from the
clip's own frames (light, pose, camera), the clip's own calm stretch does not. Its reference is the served answer's p(pain) of that face before abstention (a clip: the mean logit over
its frames like the training faces), and its action units where the experiment has the estimator (a clip: their mean over the
frames that have them). A calm face the networks find unlike their training faces gives no reference (its number
would have no basis); a face without a detectable face neither. Nothing of it is kept: the reference lives as
long as the command, the request or the page session.

Every front door goes through the functions here: ``person_baseline`` (the calm file's bytes to its
reference, or ``NoBaselineError`` with a sentence that names the calm reference), ``calm_seconds`` and
``stretch_baseline`` (the text "A-B" to a stretch, and a clip's answer record to the reference of its frames in that
stretch) and ``answer_with_reference`` (a record to the answer with that reference, under the experiment's own rule
in ``answer.json``); ``answer_with_calm_seconds`` is the last two together, the face alone's answer kept with a
sentence when the stretch gives no reference.

The frames of a calm stretch are the reference, so they cannot be evidence against it: in the answer record they
are marked (``Frame.reference``), have no number of their own and are left out of the score, the peak and the
comparison; the timeline shows them as a span marked "calm reference".
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import numpy as np

from engine.evaluation.answer import unlike_training_faces

from engine.errors import PainLensError
from engine.evaluation.baseline import logit, sigmoid
from engine.preprocess.decode import media_kind


class NoBaselineError(PainLensError):
    """The calm photo or clip gives no usable reference (one sentence says why)."""


# Faces a calm stretch needs (each like the training faces, with a number): one or two frames of a clip are a
# blink or a word away from rest; three are a second and a half at the API's 2 frames a second.
MIN_STRETCH_FACES = 3
_SECONDS = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*s?\s*(?:-|–|to)\s*(\d+(?:\.\d*)?|\.\d+)\s*s?\s*$")


@dataclass(frozen=True)
class CalmSeconds:
    """Seconds of a clip at rest: from ``start`` (included) to ``end`` (not), from the clip's start."""

    start: float
    end: float

    def __str__(self) -> str:
        return f"{self.start:g}-{self.end:g} s"


def calm_seconds(text: str) -> CalmSeconds:
    """"A-B" (seconds from the clip's start, "0-3", "1.5-4 s", "2 to 5") as a ``CalmSeconds``; ``NoBaselineError``
    with a sentence for text that is not such a range, an empty one, or one that ends before it starts."""
    found = _SECONDS.match(text or "")
    if found is None:
        shown = (text or "").strip()[:40]
        raise NoBaselineError(f"The calm seconds {shown!r} cannot be read: give the stretch of the clip at rest as A-B, "
                              "seconds from the clip's start (for example 0-3).")
    start, end = float(found.group(1)), float(found.group(2))
    if not (math.isfinite(start) and math.isfinite(end)):
        raise NoBaselineError("The calm seconds are too large to be seconds of a clip: give them as A-B (for example 0-3).")
    if end < start:
        raise NoBaselineError(f"The calm seconds {start:g}-{end:g} end before they start: give the start first "
                              f"(for example {end:g}-{start:g}).")
    if end == start:
        raise NoBaselineError(f"The calm seconds {start:g}-{end:g} are an empty stretch: give a start before the end "
                              f"(for example {start:g}-{start + 2:g}).")
    return CalmSeconds(start, end)


@dataclass(frozen=True)
class PersonBaseline:
    p_pain: float  # the calm face's p(pain): the answer before abstention (a clip: over its frames, in logit)
    frames: int  # faces it is from (1 for a photo)
    kind: str  # "image" (a calm photo), "video" (a calm clip) or "stretch" (seconds of the judged clip itself)
    notes: list[str] = field(default_factory=list)
    aus: dict[str, float] | None = None  # the calm face's pain AUs and PSPI (None: no estimator)
    seconds: CalmSeconds | None = None  # kind "stretch": the seconds of the judged clip itself it is from


def person_baseline(predictor, data: bytes, fps: float = 2.0, progress=None) -> PersonBaseline:
    """The reference from a calm photo's or clip's bytes, read and checked as any photo or clip is (decoding, size,
    the face); ``NoBaselineError`` when it gives none, its sentence naming the calm reference (a bad file: the
    reader's own sentence after it). ``progress(frames done, expected)``: a clip's, as ``analyse_video``'s."""
    if not data:
        raise NoBaselineError("The calm reference is empty: give a calm photo or clip of the same person.")
    try:
        if media_kind(data) == "video":
            return _from_clip(predictor, data, fps, progress)
        return _from_photo(predictor, data)
    except NoBaselineError:
        raise
    except PainLensError as exc:  # the reader's sentence is about "the photo": say which one
        raise NoBaselineError(f"The calm reference cannot be used: {exc}") from None


def answer_with_reference(predictor, record, reference: PersonBaseline):
    """``record`` (``engine.answers``) judged against the person's calm ``reference``: the answer with the calm
    reference where the experiment's answer has a rule for it (``answer_kind`` with_reference), the face alone's
    kept in ``baseline`` (``engine.answers.compare_with_baseline``, the rule of the served ``answer.json``)."""
    return judged_against(record, reference, predictor.answer_basis().parameters.get("baseline"))


def judged_against(record, reference: PersonBaseline, rule: dict | None):
    """``answer_with_reference`` under a given baseline ``rule`` (``answer.json``'s ``baseline``). A reference of the
    clip's own calm seconds first makes its frames the reference (``Frame.reference``: no number, out of the score)."""
    from engine.answers import compare_with_baseline

    if reference.seconds is not None and record.kind == "video" and not record.error:
        _mark_reference_frames(record, reference.seconds)
        record.notes.extend(reference.notes)
    return compare_with_baseline(record, reference, rule)


def answer_with_calm_seconds(predictor, record, seconds: CalmSeconds):
    """``record`` (a clip's, ``engine.answers.VideoAnswer``) judged against its own frames in ``seconds``
    (``stretch_baseline``, ``answer_with_reference``); when they give no reference, the face alone's answer with the
    sentence why in its notes. A failed record is returned as it is."""
    if record.error:
        return record
    try:
        reference = stretch_baseline(record, seconds)
    except NoBaselineError as exc:
        record.notes.append(f"{exc} So the answer is the face alone's (answer_kind absolute), without a calm reference.")
        return record
    return answer_with_reference(predictor, record, reference)


def stretch_baseline(record, seconds: CalmSeconds) -> PersonBaseline:
    """The reference from the clip's own frames in ``seconds`` (``record``: its ``VideoAnswer`` as analysed, before
    any reference): as for a calm clip, the mean logit of the frames' answers before abstention and their mean AUs,
    over the frames whose face is like the training faces. ``NoBaselineError`` with a sentence for a photo, seconds
    outside the analysed clip, fewer than ``MIN_STRETCH_FACES`` such faces, or a stretch that leaves no frame to judge."""
    if record.kind != "video":
        raise NoBaselineError(f"Calm seconds ({seconds}) mark a stretch of a clip, and this is a photo: give a calm photo "
                              "of the person as its reference instead.")
    step = 1.0 / record.fps if record.fps else 0.0
    length = (record.frames[-1].t + step) if record.frames else 0.0  # the analysed part: its last frame lasts a step
    if record.frames and record.video is not None and record.video.seconds:  # ...but not past the clip's own end
        length = min(length, max(float(record.video.seconds), record.frames[-1].t))
    if seconds.start >= length:
        raise NoBaselineError(f"The calm seconds {seconds} are outside the clip: its analysed part is 0-{length:g} s.")
    inside = [f for f in record.frames if seconds.start <= f.t < seconds.end]
    if not inside:
        raise NoBaselineError(f"No analysed frame falls in the calm seconds {seconds} (frames every {step:g} s): give a "
                              "longer stretch.")
    faces = [f for f in inside if f.face]
    answered = [f for f in faces if f._served is not None and math.isfinite(f._served)]
    usable = [f for f in answered if not unlike_training_faces(f.ood_score, f.appearance_score)]
    if len(usable) < MIN_STRETCH_FACES:
        said = f"The calm seconds {seconds} give no reference: "
        if faces and not answered:
            raise NoBaselineError(said + (record.reason or "the served answer has no number for their faces."))
        unlike = len(answered) - len(usable)
        if len(answered) >= MIN_STRETCH_FACES and unlike > len(usable):  # enough faces, but mostly unlike the training's
            raise NoBaselineError(said + f"{unlike} of their {len(faces)} faces are unlike the faces the networks were "
                                  "trained on (a check of unlike the training faces scored them above 1).")
        raise NoBaselineError(said + f"{len(usable)} of their {len(inside)} analysed frames have a usable face (the face "
                              f"was followed in {len(faces)}" + (f", {unlike} of them unlike the training faces" if unlike
                                                                 else "") +
                              f"), and at least {MIN_STRETCH_FACES} are needed: choose a longer stretch where the face "
                              "is in view.")
    if not any(f.face and f._served is not None for f in record.frames if not seconds.start <= f.t < seconds.end):
        raise NoBaselineError(f"The calm seconds {seconds} cover every frame with the face: nothing of the clip is left "
                              "to judge against them.")
    end = min(seconds.end, length)
    p, aus = _mean_reference([f._served for f in usable], [f.aus for f in usable])
    cut = f" (cut at the end of the analysed clip, {length:g} s)" if seconds.end > length else ""
    note = (f"The reference is this clip's own seconds {seconds.start:g}-{end:g}{cut}: the mean over {len(usable)} of its "
            f"{len(inside)} frames there (in logit; frames without a face or unlike the training faces left out). Those "
            "frames are the reference, not evidence: they have no number of their own and are left out of the score.")
    return PersonBaseline(p, len(usable), "stretch", [note], aus, CalmSeconds(seconds.start, end))


def _mark_reference_frames(record, seconds: CalmSeconds) -> None:
    """The frames of ``record`` in the calm stretch become the reference: marked, without a number, out of the score,
    the peak and each network's mean (they cannot be evidence against themselves); the clip's number is then over the
    other frames."""
    from engine.answers import ClipScore, network_means, rounded
    from engine.timeline import clip_score

    for frame in record.frames:
        if seconds.start <= frame.t < seconds.end:
            frame.reference, frame.p_pain, frame.abstained, frame._served = True, None, False, None
    answered = [f for f in record.frames if f.p_pain is not None]
    score = clip_score([f.p_pain for f in answered])
    record.score = None if score is None else ClipScore(**{key: rounded(value) for key, value in score.items()})
    record.p_pain, record.answered_frames = (None if score is None else rounded(score["mean"])), len(answered)
    peak = max(answered, key=lambda f: f.p_pain) if answered else None
    record.peak_t, record.aus = (peak.t, peak.aus) if peak is not None else (None, None)
    if any(f._networks for f in record.frames):  # a record built by video_answer knows each network's frame values
        record.networks = network_means(record.frames, list(record.networks))


def _from_photo(predictor, data: bytes) -> PersonBaseline:
    from engine.predict import predict_bytes

    prediction = predict_bytes(predictor, data)
    answer = prediction.answer
    if answer is None or answer.p_served is None or not math.isfinite(answer.p_served):
        raise NoBaselineError("The calm photo gives no reference: " + (answer.reason if answer is not None and answer.reason
                                                                        else "the served answer has no number for it."))
    if answer.unlike:
        raise NoBaselineError(f"The calm photo gives no reference: {answer.abstain_reason or 'it is unlike the faces the networks were trained on.'}")
    return PersonBaseline(float(answer.p_served), 1, "image", list(prediction.notes), prediction.action_units)


def _from_clip(predictor, data: bytes, fps: float, progress=None) -> PersonBaseline:
    from engine.timeline import analyse_video

    analysis = analyse_video(predictor, data, fps=fps, keep_pictures=False, progress=progress)
    # Every frame whose face is like the training faces, answered or "uncertain": an atypical resting face is often
    # uncertain on its own, and the development reference (reference_answer) took every such calm frame.
    usable = [f for f in analysis.frames if f.p_served is not None and math.isfinite(f.p_served)
              and not unlike_training_faces(f.ood_score, f.appearance_score)]
    if not usable:
        raise NoBaselineError("The calm clip gives no reference: none of its frames has a face like the training faces "
                              f"({len(analysis.frames)} frames looked at).")
    p, aus = _mean_reference([f.p_served for f in usable], [f.aus for f in usable])
    note = (f"The reference is the mean over {len(usable)} frames of {len(analysis.frames)} (in logit; frames unlike "
            "the training faces left out).")
    return PersonBaseline(p, len(usable), "video", [note], aus)


def _mean_reference(served: list[float], aus: list[dict | None]) -> tuple[float, dict[str, float] | None]:
    """(p(pain), AUs) of calm frames: the mean of their answers before abstention in logit, and the mean of each AU
    over the frames that have them (None: no estimator)."""
    p = float(sigmoid(np.mean(logit(np.asarray(served, dtype=float)))))
    measured = [a for a in aus if a]

    def mean(name: str) -> float:  # an AU not measured in a frame (None in a record) is left out of its mean
        values = [a[name] for a in measured if a.get(name) is not None]
        return float(np.mean(values)) if values else float("nan")

    return p, ({name: mean(name) for name in measured[0]} if measured else None)
