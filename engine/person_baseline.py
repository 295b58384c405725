"""A person's calm face as the reference for their other faces (the served side of ``engine.evaluation.baseline``).

A clinician gives a calm photo of the person, or a calm clip (the upload page, ``painlens predict --reference
FILE``, the API's multipart field ``reference``). Its reference is the served answer's p(pain) of that face before abstention (a clip: the mean logit over
its frames like the training faces), and its action units where the experiment has the estimator (a clip: their mean over the
frames that have them). A calm face the networks find unlike their training faces gives no reference (its number
would have no basis); a face without a detectable face neither. Nothing of it is kept: the reference lives as
long as the command, the request or the page session.

Every front door goes through the two functions here: ``person_baseline`` (the calm file's bytes to its
reference, or ``NoBaselineError`` with a sentence that names the calm reference) and ``answer_with_reference``
(a record to the answer with that reference, under the experiment's own rule in ``answer.json``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from engine.errors import PainLensError
from engine.evaluation.baseline import logit, sigmoid
from engine.preprocess.decode import media_kind


class NoBaselineError(PainLensError):
    """The calm photo or clip gives no usable reference (one sentence says why)."""


@dataclass(frozen=True)
class PersonBaseline:
    p_pain: float  # the calm face's p(pain): the answer before abstention (a clip: over its frames, in logit)
    frames: int  # faces it is from (1 for a photo)
    kind: str  # "image" or "video"
    notes: list[str] = field(default_factory=list)
    aus: dict[str, float] | None = None  # the calm face's pain AUs and PSPI (None: no estimator)


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
    from engine.answers import compare_with_baseline

    return compare_with_baseline(record, reference, predictor.answer_basis().parameters.get("baseline"))


def _from_photo(predictor, data: bytes) -> PersonBaseline:
    from engine.predict import predict_bytes

    prediction = predict_bytes(predictor, data)
    answer = prediction.answer
    if answer is None or answer.p_served is None or not math.isfinite(answer.p_served):
        raise NoBaselineError("The calm photo gives no reference: " + (answer.reason if answer is not None and answer.reason
                                                                        else "the served answer has no number for it."))
    if answer.ood_score is not None and answer.ood_score > 1.0:
        raise NoBaselineError(f"The calm photo gives no reference: it is unlike the faces the networks were trained on "
                              f"(out-of-distribution score {answer.ood_score:.2f}, above 1).")
    return PersonBaseline(float(answer.p_served), 1, "image", list(prediction.notes), prediction.action_units)


def _from_clip(predictor, data: bytes, fps: float, progress=None) -> PersonBaseline:
    from engine.timeline import analyse_video

    analysis = analyse_video(predictor, data, fps=fps, keep_pictures=False, progress=progress)
    # Every frame whose face is like the training faces, answered or "uncertain": an atypical resting face is often
    # uncertain on its own, and the development reference (reference_answer) took every such calm frame.
    usable = [f for f in analysis.frames if f.p_served is not None and math.isfinite(f.p_served)
              and (f.ood_score is None or f.ood_score <= 1.0)]
    answered = np.array([f.p_served for f in usable], dtype=float)
    if not len(answered):
        raise NoBaselineError("The calm clip gives no reference: none of its frames has a face like the training faces "
                              f"({len(analysis.frames)} frames looked at).")
    p = float(sigmoid(np.mean(logit(answered))))
    note = (f"The reference is the mean over {len(answered)} frames of {len(analysis.frames)} (in logit; frames unlike "
            "the training faces left out).")
    measured = [f.aus for f in usable if f.aus]
    aus = {name: float(np.mean([a[name] for a in measured])) for name in measured[0]} if measured else None
    return PersonBaseline(p, int(len(answered)), "video", [note], aus)
