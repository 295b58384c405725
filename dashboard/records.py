"""The dashboard's side of the assessment records (``engine.records``): the save form under a photo's answer on
the upload page, and the chart of a person's history (a pure function, for the history page and tests).

Saving is opt-in and never stands between a clinician and the answer: the answer is on the page before the
form, and a database that fails gets one sentence ("...; nothing was saved"), never a traceback.
"""

from __future__ import annotations

import io
import logging

import streamlit as st

from dashboard import access
from engine.records.assessments import RATING_SCALES
from engine.records.settings import RecordsSettings

log = logging.getLogger(__name__)
KEEP_PHOTO = ("Keep this photo with the record. It is a face, health data about this person: it is stored in the "
              "records database (not as a file), shown to every clinician who opens their history, and deleted only "
              "when their records are erased.")


def database():
    from engine.records.database import open_database

    return open_database(RecordsSettings.from_environment().database_url)


_WARMED: list[bool] = []


def warm_in_background() -> None:
    """Connect and check the schema on a thread, once per process, while the clinician reads the answer: the first
    save of a server process then costs what every save costs (importing Alembic and the first connection took
    0.1-0.9 s, bench/records_save.py). A failure here is only logged; the save says it."""
    import threading

    if _WARMED:
        return
    _WARMED.append(True)

    def warm() -> None:
        try:
            database().warm()
        except Exception as exc:  # noqa: BLE001  the save itself reports a database that fails
            log.info("the records database could not be warmed up: %s", type(exc).__name__)

    threading.Thread(target=warm, name="records-warm-up", daemon=True).start()


def offer_save(prediction, experiment, data: bytes) -> None:
    """Under a photo's answer: save it as an assessment of a person (clinicians and this machine's user)."""
    user = access.current()
    if user.role not in ("clinician", "local"):
        return
    warm_in_background()
    with st.expander("Save this assessment in the person's records", icon=":material/save:"):
        save_form(prediction, experiment, data, user)


@st.fragment
def save_form(prediction, experiment, data: bytes, user) -> None:
    """The form, rerun on its own when submitted (a fragment): saving does not redraw the answer, its charts
    and the explanation above and below it."""
    with st.form("save-assessment", clear_on_submit=False, border=False):
        code = st.text_input("Person code (pseudonymous, never a name)", key="save-code", max_chars=40,
                             placeholder="for example P-0042")
        scale = st.radio("Your own rating (optional)", ["none", *RATING_SCALES], key="save-scale", horizontal=True,
                         format_func=lambda key: "no rating" if key == "none" else RATING_SCALES[key][0])
        score = st.number_input("Score on that scale", min_value=0.0, max_value=54.0, step=1.0, value=None,
                                key="save-score")
        note = st.text_area("Note (optional)", key="save-note", max_chars=2000)
        keep = st.checkbox(KEEP_PHOTO, key="save-photo")
        if st.form_submit_button("Save assessment", type="primary"):
            _save(prediction, experiment, data, user, code, scale, score, note, keep)


def answer_record(prediction, experiment):
    """The photo's answer record as the page gave it: with its comparison with the person's calm face when one was
    added above (``dashboard.upload_baseline``; that calm face's numbers are in this session, never its picture)."""
    from dashboard import loaders, upload_baseline
    from engine.answers import compare_with_baseline, photo_answer

    record = photo_answer(prediction)
    calm = st.session_state.get("baseline-photo")
    cached = st.session_state.get(upload_baseline.REFERENCE_KEY)
    if calm is not None and cached and cached[0] == calm.file_id and not isinstance(cached[1], str):
        record = compare_with_baseline(record, cached[1], (loaders.load_answer(experiment.root) or {}).get("baseline"))
    return record


def _save(prediction, experiment, data, user, code, scale, score, note, keep) -> None:
    from engine.errors import PainLensError
    from engine.records.assessments import experiment_version, save_assessment

    try:
        number = save_assessment(database(), code, answer_record(prediction, experiment), user.name, experiment.name,
                                 experiment_version(experiment.manifest),
                                 rating_scale=None if scale == "none" else scale, rating_score=score, note=note,
                                 image=data if keep else None, media_type=_media_type(data) if keep else "")
    except PainLensError as exc:
        st.error(str(exc), icon=":material/error:")
        return
    except Exception as exc:  # a bug, not the clinician's doing: its type in the log, never the record
        log.error("saving an assessment failed: %s", type(exc).__name__)
        st.error(f"The assessment could not be saved ({type(exc).__name__}); nothing was saved.", icon=":material/error:")
        return
    st.success(f"Saved as assessment {number} of {code.strip()}.", icon=":material/check:")


def _media_type(data: bytes) -> str:
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as image:
            return Image.MIME.get(image.format or "", "application/octet-stream")
    except Exception:  # noqa: BLE001  HEIC without its plug-in and the like: the bytes are kept as they are
        return "application/octet-stream"


KIND_COLOURS = {"absolute": "#4c78a8", "with_reference": "#b279a2"}  # the face alone; with the calm reference
KIND_SHAPES = {"absolute": "circle", "with_reference": "square"}  # told apart without colour too


def history_chart(table, baseline: float | None):
    """A person's assessments over time (``engine.records.assessments.history_table``): p(pain) with its band, one
    line per answer kind (the face alone: blue circles; with the person's calm reference: purple squares, a line of
    their own, since the two numbers are not on the same footing), the abstentions (a mark at the top, the reason in
    the tooltip), the clinician's ratings as a share of their scale's maximum, the calm face's p(pain) on the days one
    was compared (green dots), and the person's baseline when set (dashed). An Altair chart."""
    import altair as alt
    import pandas as pd

    frame = table.copy()
    frame["when"] = pd.to_datetime(frame["assessed_at"])
    # a UTC scale (the title says UTC, whatever the browser's time zone), labelled by date: an hour alone ("12 PM"
    # under every tick) does not say which day an assessment was
    x = alt.X("when:T", title="assessed (UTC)", scale=alt.Scale(type="utc"), axis=alt.Axis(format="%d %b %Y"))
    base = alt.Chart(frame).encode(x=x)
    scale = alt.Scale(domain=[0, 1])
    answered = frame[frame["p_pain"].notna()]
    kinds = [kind for kind in KIND_COLOURS if kind in set(frame["answer_kind"])] or ["absolute"]
    # one legend for colour and shape (the same field, title and labels: Vega-Lite merges them)
    legend = alt.Legend(orient="bottom", symbolOpacity=1,
                        labelExpr="datum.label == 'with_reference' ? 'with the calm reference' : 'of the face alone'")
    kind = alt.Color("answer_kind:N", title="p(pain) is the answer", legend=legend,
                     scale=alt.Scale(domain=kinds, range=[KIND_COLOURS[k] for k in kinds]))
    shape = alt.Shape("answer_kind:N", title="p(pain) is the answer", legend=legend,
                      scale=alt.Scale(domain=kinds, range=[KIND_SHAPES[k] for k in kinds]))
    layers = [
        base.transform_filter("datum.band_low != null").mark_area(opacity=0.25).encode(
            y=alt.Y("band_low:Q", scale=scale, title="p(pain) · rating as share of its scale"), y2="band_high:Q",
            color=kind),
        alt.Chart(answered).mark_line(point=False).encode(x=x, y=alt.Y("p_pain:Q", scale=scale), color=kind),
        alt.Chart(answered).mark_point(filled=True, size=60, opacity=1).encode(
            x=x, y=alt.Y("p_pain:Q", scale=scale), color=kind, shape=shape,
            tooltip=["assessed_at", "answer_kind", "p_pain", "band_low", "band_high", "saved_by"]),
        base.transform_filter("datum.abstained").mark_point(shape="triangle-down", size=120, color="#e45756",
                                                            filled=True).encode(
            y=alt.datum(1.0), tooltip=["assessed_at", "answer_kind",
                                       alt.Tooltip("why_no_number", title="no number because")]),
        base.transform_filter("datum.rating_share != null").mark_point(shape="diamond", size=110, color="#f58518",
                                                                         filled=True).encode(
            y=alt.Y("rating_share:Q", scale=scale), tooltip=["assessed_at", "rating_scale", "rating_score"]),
    ]
    calm = frame[frame["calm_face_p_pain"].notna()]
    if len(calm):
        layers.append(alt.Chart(calm).mark_point(shape="circle", size=50, color="#54a24b").encode(
            x=x, y=alt.Y("calm_face_p_pain:Q", scale=scale),
            tooltip=["assessed_at", alt.Tooltip("calm_face_p_pain", title="calm face p(pain)"), "p_pain_from_change"]))
    if baseline is not None:
        layers.append(alt.Chart(pd.DataFrame({"baseline": [baseline]})).mark_rule(strokeDash=[6, 4], color="#54a24b")
                      .encode(y="baseline:Q", tooltip=[alt.Tooltip("baseline", title="baseline p(pain)")]))
    return alt.layer(*layers).properties(width=720, height=320)
