"""Model card: what this experiment's networks are for and how far their numbers can be trusted, generated from
the store (``dashboard.model_card``; the report carries the same card)."""

from __future__ import annotations

import datetime as dt

import streamlit as st

from dashboard import model_card, widgets

experiment = widgets.experiment_or_stop()
st.title(f"Model card: {experiment.name}")
widgets.network_notes(experiment)
st.caption("Generated from the experiment's store: every number below is the engine's own, as the runs are now.")
for section in model_card.model_card(experiment, widgets.from_scratch(experiment)):
    st.header(section.title)
    for paragraph in section.paragraphs:
        st.markdown(paragraph)
    if section.bullets:
        st.markdown("\n".join(f"- {bullet}" for bullet in section.bullets))
    for i, (caption, frame) in enumerate(section.tables):
        if caption:
            st.caption(caption)
        widgets.table(frame, f"{experiment.name}-card-{section.title.split()[0].lower()}-{i}", f"card-{section.title}-{i}",
                      height=35 * (len(frame) + 1) + 3)  # every row shown: a card is read, not scrolled
card = model_card.provenance(experiment, dt.date.today().isoformat())
st.header(card.title)
st.markdown("\n".join(f"- {bullet}" for bullet in card.bullets))
with st.expander("The experiment's config"):
    st.code(card.code, language="json")
