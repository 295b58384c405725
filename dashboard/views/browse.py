"""Images: browse the test images (CP-PAIN by default) with every network's p(pain) and its LIME overlay.

Other pages open it on one subject's images: ``widgets.open_images`` (session state, then st.switch_page), or a
link with ``?dataset=...&scenario=...&subject=...`` in its address."""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from dashboard import charts, images, loaders, tables, widgets

DATASET_TITLES = {"cppain": "CP-PAIN", "unbc": "UNBC-McMaster", "mintpain": "MIntPAIN", "delaware": "Delaware"}
ALL_SUBJECTS = "every subject"


def network_probabilities(rows: pd.DataFrame, models: list[str]) -> pd.DataFrame:
    """Per network: mean p(pain) over the runs that tested the image, low / high when several did."""
    grouped = rows.groupby("model")["p_pain"]
    frame = pd.DataFrame({"p_pain": grouped.mean(), "low": grouped.min(), "high": grouped.max(), "runs": grouped.size()})
    frame.loc[frame["runs"] < 2, ["low", "high"]] = np.nan
    order = [m for m in models if m in frame.index] + [m for m in frame.index if m not in models]
    return frame.loc[order].reset_index()


def apply_focus(datasets: list[str]) -> None:
    """Preset the page's selectors from a subject page's request (session state) or the address's query
    parameters, before the widgets exist; the request is used once."""
    focus = st.session_state.pop(widgets.BROWSE_FOCUS_KEY, None)
    if focus is None:  # a link's request, used once: later choices on the page must stick
        focus = {k: st.query_params.get(k) for k in ("dataset", "scenario", "subject")}
        for key in ("dataset", "scenario", "subject"):
            st.query_params.pop(key, None)
    if focus.get("dataset") in datasets:
        st.session_state["img-dataset"] = focus["dataset"]
        if focus.get("scenario") in charts.SCENARIO_ORDER:
            st.session_state["img-scenario"] = focus["scenario"]
        if focus.get("subject"):
            st.session_state["img-subject"] = str(focus["subject"])
            st.session_state["img-position"] = 1


def lime_tiles(experiment, image_id: str, scenario: str, models: list[str], face: np.ndarray | None, opacity: float,
               verdicts):
    """(tile, caption) per network whose explained runs include the image (first such run)."""
    out = []
    explained = loaders.explained_runs(experiment.root)
    for model in models:
        for m, s, fold in explained:
            if m != model or s != scenario:
                continue
            masks = loaders.load_masks(experiment.root, m, s, fold)
            if masks is None:
                continue
            hits = np.flatnonzero(masks.image_id == image_id)
            if len(hits):
                i = int(hits[0])
                mask = images.lime_mask(masks.weights[i], masks.segments[i])
                size = mask.shape[0]
                base = images.resize(face, size) if face is not None else np.full((size, size, 3), 255, np.uint8)
                tile = images.resize(images.overlay(base, mask, opacity), 224)
                label = "pain" if int(masks.label[i]) == 1 else "no pain"
                failed = tables.failure(verdicts, model, scenario)
                mark = f" · explains a network that did not learn ({failed})" if failed else ""
                out.append((tile, f"{model} · fold {fold} · explains '{label}' · p(pain) {float(masks.p_pain[i]):.2f}{mark}"))
                break
    return out


experiment = widgets.experiment_or_stop()
st.title("Images")
predictions = loaders.load_predictions(experiment.root)
if predictions.empty:
    widgets.missing("No finished runs yet: `painlens run CONFIG` trains the networks; their test images appear here.")
    st.stop()
models = experiment.models or sorted(predictions["model"].unique())
verdicts = widgets.network_notes(experiment, models=models)
datasets = [d for d in DATASET_TITLES if d in set(predictions["dataset"])]
apply_focus(datasets)
c1, c2, c3, c4 = st.columns([1, 1, 1, 1])
dataset = c1.selectbox("Test images of", datasets, format_func=DATASET_TITLES.get, key="img-dataset")
scenarios = [s for s in charts.SCENARIO_ORDER if s in set(predictions.loc[predictions["dataset"] == dataset, "scenario"])]
if st.session_state.get("img-scenario") not in scenarios:
    st.session_state.pop("img-scenario", None)
scenario = c2.selectbox("Scenario", scenarios, format_func=lambda s: charts.SCENARIO_TITLES[s], key="img-scenario")
tested = predictions[(predictions["dataset"] == dataset) & (predictions["scenario"] == scenario)]
subjects = [ALL_SUBJECTS, *sorted(tested["subject"].astype(str).unique())] if "subject" in tested else [ALL_SUBJECTS]
if st.session_state.get("img-subject") not in subjects:
    st.session_state.pop("img-subject", None)
subject = c3.selectbox("Subject", subjects, key="img-subject")
opacity = c4.slider("LIME overlay opacity", 0.0, 1.0, 0.55, 0.05, key="img-opacity")
if subject != ALL_SUBJECTS:
    tested = tested[tested["subject"].astype(str) == subject]
image_ids = sorted(tested["image_id"].unique())
label_of = tested.groupby("image_id")["true_label"].first()
if st.session_state.get("img-position", 1) > len(image_ids):
    st.session_state["img-position"] = 1
position = st.number_input(f"Image (1 to {len(image_ids)})", 1, len(image_ids), key="img-position") - 1
image_id = image_ids[int(position)]
st.caption(f"**{image_id}** · true label: **{'pain' if label_of[image_id] == 1 else 'no pain'}**")

samples = loaders.load_samples(experiment.root)
face = None
if samples is not None and "cache_key" in samples:
    keys = samples.loc[samples["image_id"] == image_id, "cache_key"]
    face = loaders.load_face(experiment, keys.iloc[0]) if len(keys) else None
left, right = st.columns([1, 2])
with left:
    if face is None:
        st.info("The face crop is not on this machine (the engine's face cache is missing); probabilities and "
                "explanations are still shown.")
    else:
        widgets.picture(images.resize(face, 256), f"{experiment.name}-face", "face", caption="preprocessed face (model input)")
with right:
    probs = network_probabilities(tested[tested["image_id"] == image_id], models)
    figure = charts.probabilities(probs, "p(pain) from every network",
                                  widgets.provenance(experiment, charts.SCENARIO_TITLES[scenario],
                                                     "band: lowest to highest over the runs that tested it"),
                                  verdicts[verdicts["scenario"] == scenario])
    widgets.chart(figure, f"{experiment.name}-image-probabilities", "img-probs")

st.header("LIME explanations")
tiles = lime_tiles(experiment, image_id, scenario, models, face, opacity, verdicts)
if not tiles:
    widgets.missing("No LIME explanation of this image: the explain step explains a sample of each run's test images "
                    "(`painlens explain CONFIG`); try another image or scenario.")
else:
    cols = st.columns(min(4, len(tiles)))
    for i, (tile, caption) in enumerate(tiles):
        with cols[i % len(cols)]:
            st.image(tile, caption=caption)
    st.caption("Yellow: superpixels that raised the network's probability of the class it predicted most (positive "
               "LIME weights, scaled to the largest).")
