"""The upload page's comparison with the person's calm face: a clinician adds a calm photo or clip of the same
person, or (for a clip) marks the seconds of the clip itself in which the person is at rest, and the photo's (or
the clip's, frame by frame) answer is the one with that calm reference (its own conformal thresholds), the face
alone's beside it. The engine reads the calm file and applies the answer's rule
(``engine.person_baseline``: ``person_baseline``, ``answer_with_reference``), as for ``painlens predict
--reference`` and the API's ``reference`` field; this module only shows it.

The calm photo stays in memory like every upload: only its numbers (the reference p(pain), how many faces) are
kept in this session's state, replaced by the next one.
"""

from __future__ import annotations

import logging

import streamlit as st

from dashboard import admission, loaders, widgets
from engine.errors import PainLensError
from engine.preprocess.decode import IMAGE_TYPES
from engine.video import VIDEO_TYPES

log = logging.getLogger(__name__)
REFERENCE_KEY = "baseline-reference"  # session state: (file id, PersonBaseline or the sentence why there is none)
STRETCH_KEY = "baseline-calm-seconds"  # session state: the clip's calm seconds (start, end) while the range is on


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


def show_baseline(model, experiment: loaders.Experiment, answered):
    """The section: an uploader for the calm face, then both numbers and which leads, and why. ``answered``: the
    photo's ``Prediction``, or a clip's record (``VideoAnswer``: compared frame by frame). Returns the record judged
    against the calm reference (its ``baseline`` set; for a clip, what the headline and the timeline then show), or
    None while no reference is given or the one given cannot be used."""
    from engine.answers import Answer, photo_answer
    from engine.person_baseline import answer_with_calm_seconds, answer_with_reference

    st.subheader("Compared with this person's calm face")
    clip = isinstance(answered, Answer) and answered.kind == "video"
    st.caption("People with cerebral palsy often hold an atypical face at rest (a lowered brow, a raised lip, an open "
               "mouth) that a network trained on typical faces can read as pain. Add a calm photo or clip of the same "
               "person" + (", or mark the seconds of this clip in which the person is at rest," if clip else "") +
               " and the answer judges the face against it (the headline above then gives that answer).")
    st.session_state.pop(STRETCH_KEY, None)  # set again below while the clip's own calm seconds are its reference
    stretch = calm_seconds_input(answered) if clip else None
    upload = st.file_uploader("A calm photo or short clip of the same person", key="baseline-photo",
                              type=list(IMAGE_TYPES) + list(VIDEO_TYPES), disabled=stretch is not None)
    if stretch is not None:  # the clip's own calm seconds: no photo's light, pose or camera between them
        record = answer_with_calm_seconds(model, answered.model_copy(deep=True), stretch)
        if record.baseline is None:
            st.warning(record.notes[-1], icon=":material/info:")
            return None
        st.session_state[STRETCH_KEY] = tuple(record.baseline.calm_seconds)
        _show_comparison(experiment, record)
        return record
    if upload is None:
        return None
    reference = calm_reference(model, upload.file_id, upload.getvalue())
    if isinstance(reference, str):
        st.warning(reference, icon=":material/info:")
        return None
    answered = answered.model_copy(deep=True) if isinstance(answered, Answer) else photo_answer(answered)
    record = answer_with_reference(model, answered, reference)
    _show_comparison(experiment, record)
    return record


def calm_seconds_input(record):
    """The range of the clip at rest (``engine.person_baseline.CalmSeconds``), or None while the switch is off: a
    clinician who filmed the person resting first marks those seconds, and they become the clip's own reference."""
    length = (record.frames[-1].t + 1.0 / record.fps) if record.frames and record.fps else 0.0
    if not st.toggle("Use seconds of this clip in which the person is at rest as the calm reference", key="calm-seconds-on",
                     help="Those frames become the reference: they are marked on the timeline and left out of the "
                          "score, since they cannot be evidence against themselves."):
        return None
    start, end = st.slider("Seconds of the clip at rest", 0.0, max(length, 0.1), (0.0, min(2.0, length)), step=0.1,
                           format="%.1f s", key="calm-seconds")
    try:
        from engine.person_baseline import calm_seconds

        return calm_seconds(f"{start:g}-{end:g}")  # the same checks as the CLI and the API (an empty range: a sentence)
    except PainLensError as exc:
        st.warning(str(exc), icon=":material/info:")
        return None


def chosen_calm_seconds() -> tuple[float, float] | None:
    """The clip's calm seconds chosen on this page (for the timeline to mark them), or None."""
    return st.session_state.get(STRETCH_KEY)


def _show_comparison(experiment: loaders.Experiment, record) -> None:
    """Both numbers, which leads and why, for a record judged against the person's calm reference."""
    b, clip = record.baseline, " (mean over the clip's frames)" if record.kind == "video" else ""
    absolute, change, calm = st.columns(3)
    lead = " (leads)"
    absolute.metric(f"p(pain), absolute{clip}{lead if b.leads_with == 'absolute' else ''}",
                    "no number" if b.p_absolute is None else f"{b.p_absolute:.2f}")
    served = record.answer_kind == "with_reference"  # the number is the answer with the calm reference
    change.metric(f"p(pain) {'with the calm face, the answer' if served else 'from the change'}{clip}"
                  f"{lead if b.leads_with == 'change' else ''}", "no number" if b.p_change is None else f"{b.p_change:.2f}")
    faces = f"{b.baseline_frames} face{'s' if b.baseline_frames != 1 else ''}"
    where = (f"calm seconds {b.calm_seconds[0]:g}-{b.calm_seconds[1]:g}" if b.calm_seconds else
             "calm clip" if b.reference_from == "clip" else "calm photo")
    calm.metric(f"{where}, p(pain) ({faces})", f"{b.p_baseline:.2f}")
    st.info(f"{b.why} The reference: {b.source()}.", icon=":material/compare:")
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
