"""The upload page's comparison with the person's calm face: a clinician adds a calm photo or clip of the same
person, and the photo's (or the clip's, frame by frame) answer is the one with that calm reference (its own
conformal thresholds), the face alone's beside it. The engine reads the calm file and applies the answer's rule
(``engine.person_baseline``: ``person_baseline``, ``answer_with_reference``), as for ``painlens predict
--reference`` and the API's ``reference`` field; this module only shows it.

The calm photo stays in memory like every upload: only its numbers (the reference p(pain), how many faces) are
kept in this session's state, replaced by the next one.
"""

from __future__ import annotations

import logging

import streamlit as st

from dashboard import admission, loaders, widgets
from engine.preprocess.decode import IMAGE_TYPES
from engine.video import VIDEO_TYPES

log = logging.getLogger(__name__)
REFERENCE_KEY = "baseline-reference"  # session state: (file id, PersonBaseline or the sentence why there is none)


def calm_reference(model, file_id: str, data: bytes):
    """The PersonBaseline of the calm photo or clip, or the sentence why it gives none (this session only)."""
    from engine.errors import PainLensError
    from engine.person_baseline import person_baseline

    cached = st.session_state.get(REFERENCE_KEY)
    if cached and cached[0] == file_id:
        return cached[1]
    try:
        with st.spinner("Reading the calm face…"):
            result = admission.run(person_baseline, model, data)  # the busy sentence and a stop when full
    except PainLensError as exc:
        result = str(exc)
    except Exception as exc:  # a bug, not the user's doing: say so without a traceback or the photo
        log.error("baseline analysis failed: %s", type(exc).__name__)
        result = f"The calm photo could not be analysed ({type(exc).__name__}); try another one."
    st.session_state[REFERENCE_KEY] = (file_id, result)
    return result


def with_given_reference(model, experiment: loaders.Experiment, record):
    """``record`` compared with the calm face already uploaded in this session (its answer then the one with the
    person's calm reference, ``engine.person_baseline.answer_with_reference``); as it is without one or without a
    model."""
    from engine.person_baseline import answer_with_reference

    upload = st.session_state.get("baseline-photo")
    if model is None or upload is None or record.error:
        return record
    reference = calm_reference(model, upload.file_id, upload.getvalue())
    if isinstance(reference, str):
        return record
    return answer_with_reference(model, record, reference)


def show_baseline(model, experiment: loaders.Experiment, answered) -> None:
    """The section: an uploader for the calm face, then both numbers and which leads, and why. ``answered``: the
    photo's ``Prediction``, or a clip's record (``VideoAnswer``: compared frame by frame)."""
    from engine.answers import Answer, photo_answer
    from engine.person_baseline import answer_with_reference

    st.subheader("Compared with this person's calm face")
    st.caption("People with cerebral palsy often hold an atypical face at rest (a lowered brow, a raised lip, an open "
               "mouth) that a network trained on typical faces can read as pain. Add a calm photo or clip of the same "
               "person and the answer judges the face against it (the headline above then gives that answer).")
    upload = st.file_uploader("A calm photo or short clip of the same person", key="baseline-photo",
                              type=list(IMAGE_TYPES) + list(VIDEO_TYPES))
    if upload is None:
        return
    reference = calm_reference(model, upload.file_id, upload.getvalue())
    if isinstance(reference, str):
        st.warning(reference, icon=":material/info:")
        return
    record = answer_with_reference(model, answered if isinstance(answered, Answer) else photo_answer(answered), reference)
    b, clip = record.baseline, " (mean over the clip's frames)" if record.kind == "video" else ""
    absolute, change, calm = st.columns(3)
    lead = " (leads)"
    absolute.metric(f"p(pain), absolute{clip}{lead if b.leads_with == 'absolute' else ''}",
                    "no number" if b.p_absolute is None else f"{b.p_absolute:.2f}")
    served = record.answer_kind == "with_reference"  # the number is the answer with the calm reference
    change.metric(f"p(pain) {'with the calm face, the answer' if served else 'from the change'}{clip}"
                  f"{lead if b.leads_with == 'change' else ''}", "no number" if b.p_change is None else f"{b.p_change:.2f}")
    faces = f"{b.baseline_frames} face{'s' if b.baseline_frames != 1 else ''}"
    calm.metric(f"calm face, p(pain) ({faces})", f"{b.p_baseline:.2f}")
    st.info(b.why, icon=":material/compare:")
    if served:
        if record.abstained:
            st.warning(record.abstain_reason, icon=":material/block:")
        from engine.evaluation.answer_evaluation import served_sentence

        sentence = served_sentence(loaders.load_table(experiment.root, "answer_evaluation"),
                                   loaders.load_answer(experiment.root), with_reference=True)
        if sentence:
            st.caption(sentence)
    if b.aus_change:
        moved = ", ".join(f"{name} {value:+.1f}" for name, value in b.aus_change.items())
        st.caption(f"**Action units, change from the calm face**{' at the peak frame' if clip else ''} (the experiment's "
                   f"estimator; a movement the person "
                   f"holds at rest is not a change): {moved}.")
    st.caption(f"**The rule:** {b.rule.rstrip('.')}. " + widgets.provenance(experiment))
