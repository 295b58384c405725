"""Person history: one person's saved assessments over time (chart, table, CSV), their baseline, and the
erasure of all their records. Every view is written to the audit table (once per person and session), as
is every erasure; a database that fails gets one sentence."""

from __future__ import annotations

import streamlit as st

from dashboard import access, records, widgets
from engine.errors import PainLensError
from engine.records import assessments

AUDITED_KEY = "history-audited"  # the codes whose history this session has already logged as viewed


def load(code: str, user):
    seen = st.session_state.setdefault(AUDITED_KEY, set())
    history = assessments.person_history(records.database(), code, user.name, audit=code not in seen)
    seen.add(code)
    return history


def show_history(history, user) -> None:
    table = assessments.history_table(history)
    n, answered = len(table), int(table["p_pain"].notna().sum())
    referenced = int((table["answer_kind"] == "with_reference").sum())
    widgets.chart(records.history_chart(table, history.baseline_p_pain), f"history-{history.person_code}", "history-chart")
    if referenced:  # the two kinds of number are not on the same footing: say so before anyone reads a trend
        st.warning(f"{referenced} of these {n} assessments give the answer with the person's calm reference (purple "
                   "squares, their own line; answer_kind with_reference in the table), the others the face alone's "
                   "(blue circles). The two are different answers, each with its own calibration: read a change within "
                   "one line, not from one line to the other.", icon=":material/compare_arrows:")
    st.caption(f"{n} assessment{'s' if n != 1 else ''} of {history.person_code}, {answered} with a number. Each p(pain) "
               "is the answer on the day with its band (lowest to highest calibrated model the answer averages); red "
               "marks at the top are assessments where the answer withheld its number (hover for why); orange diamonds "
               "are your ratings as a share of their scale's maximum; green dots the person's calm face that day, when one was "
               "compared; the dashed line is the baseline, when set. "
               "A single answer's band is not a confidence interval for the person: compare a change with the "
               "person's own course and baseline.")
    shown = table.drop(columns=["baseline_p_pain"])
    widgets.table(shown, f"painlens-history-{history.person_code}", "history")
    kept = [item for item in history.assessments if item.image_kept]
    if kept:
        chosen = st.selectbox("Kept photo of assessment", [item.id for item in kept], key="history-photo")
        if st.button("Show the kept photo", key="history-photo-show"):
            found = assessments.stored_image(records.database(), chosen)
            if found:
                st.image(found[1], width=320)


def baseline_form(history, user) -> None:
    with st.form("history-baseline", border=False):
        value = st.number_input("Baseline p(pain) (this person at rest; empty clears it)", 0.0, 1.0,
                                value=history.baseline_p_pain, step=0.01, key="history-baseline-value")
        if st.form_submit_button("Set the baseline"):
            assessments.set_baseline(records.database(), history.person_code, value, user.name)
            st.rerun()


def erase_form(code: str, user) -> None:
    with st.expander("Delete this person's records", icon=":material/delete_forever:"):
        st.caption("Deletes every assessment of this person, every kept photo and their baseline from the database, "
                   "for good. The audit keeps that you did it, when, and how many records went.")
        typed = st.text_input(f"Type {code} to confirm", key="history-erase-confirm")
        if st.button(f"Delete all records of {code}", type="primary", disabled=typed.strip() != code,
                     key="history-erase"):
            count = assessments.erase_person(records.database(), code, user.name)
            st.session_state["history-erased"] = (code, count)
            st.rerun()


user = access.current()
st.title("Person history")
st.caption(f"{widgets.RESEARCH_NOTE} Saved assessments are kept under a pseudonymous code, never a name.")
erased = st.session_state.pop("history-erased", None)
if erased:
    st.success(f"Deleted {erased[1]} assessment{'s' if erased[1] != 1 else ''} of {erased[0]}: nothing of theirs is "
               "left in the records database.", icon=":material/check:")
code = st.text_input("Person code", key="history-code", max_chars=40, placeholder="for example P-0042").strip()
if not code:
    st.info("Type a person's code to see their assessments.")
    st.stop()
try:
    history = load(code, user)
    if not history.assessments and history.baseline_p_pain is None:
        st.info(f"No assessment of {code} is saved.")
        st.stop()
    if history.assessments:
        show_history(history, user)
    baseline_form(history, user)
    erase_form(code, user)
except PainLensError as exc:
    st.error(str(exc), icon=":material/error:")
