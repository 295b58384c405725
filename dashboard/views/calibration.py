"""Calibration: how far each network's p(pain) reads as a probability. Reliability diagrams and the expected
calibration error of the subject-wise out-of-fold and the external (CP-PAIN) predictions, before and after
temperature scaling (fitted on the out-of-fold predictions only)."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import charts, loaders, tables, widgets
from engine.evaluation.bootstrap import FEW_DATA_NOTE


def calibration_table(calibration: pd.DataFrame, verdicts: pd.DataFrame, summary: pd.DataFrame) -> pd.DataFrame:
    """Per network its temperature, ECE and log loss; each prediction set's n (the pooled images of its
    scenario, from the summary) beside its numbers, marked when few."""
    external = verdicts[verdicts["scenario"] == "external"].set_index("model")["learned"]
    oof_n, external_n = tables.scenario_sizes(summary, "subject"), tables.scenario_sizes(summary, "external")
    return pd.DataFrame({
        "network": calibration["model"], "learned (external)": calibration["model"].map(external).fillna(False).astype(bool),
        "temperature": calibration["temperature"], "out-of-fold n": calibration["model"].map(oof_n).fillna(""),
        "ECE out-of-fold raw": calibration["ece_oof_before"], "ECE out-of-fold scaled": calibration["ece_oof_after"],
        "log loss raw": calibration["nll_oof_before"], "log loss scaled": calibration["nll_oof_after"],
        "external n": calibration["model"].map(external_n).fillna(""), "ECE external raw": calibration["ece_external_before"],
        "ECE external scaled": calibration["ece_external_after"], "note": calibration["note"].fillna("")})


experiment = widgets.experiment_or_stop()
st.title("Calibration")
calibration, reliability = loaders.load_calibration(experiment.root)
if calibration.empty:
    widgets.missing("No calibration yet: it needs finished subject-wise or external runs, which `painlens run CONFIG` "
                    "trains; the engine computes it after every finished run.")
    st.stop()
models = [m for m in (experiment.models or sorted(calibration["model"])) if m in set(calibration["model"])]
verdicts = widgets.network_notes(experiment, models=models)
external = verdicts[verdicts["scenario"] == "external"]
st.markdown("A network is **well calibrated** when, of the faces it gives p(pain) = 0.7, about 70 % show pain. "
            "**ECE** (expected calibration error, 10 equal bins of p(pain)): the gap between the two, averaged over "
            "the images. **Temperature scaling** divides each network's logit by one number T, **fitted on its "
            "subject-wise out-of-fold predictions only** (every PAIN-DB image predicted by the fold that did not train "
            "on its subject); the external (CP-PAIN) predictions are scored before and after but never used to fit. "
            "This page judges each network on its own. The answer a clinician gets calibrates the networks it uses "
            "separately (temperature or Platt scaling, whichever has the lower held-out log-loss; see the model card's "
            "'One answer for a face'), and the upload page shows that calibrated p(pain) beside the raw one.")
figure = charts.ece_by_network(calibration, models, "Expected calibration error per network",
                               widgets.provenance(experiment, "lower is better"), external)
widgets.chart(figure, f"{experiment.name}-ece", "ece")
widgets.table(calibration_table(calibration, verdicts, loaders.load_results(experiment.root)[1]).round(4),
              f"{experiment.name}-calibration", "calibration-table")
st.caption(f"n: the images and subjects each ECE and log loss is computed on; {FEW_DATA_NOTE}.")

st.header("Reliability diagram")
model = st.selectbox("Network", models, key="calibration-network")
row = calibration[calibration["model"] == model].iloc[0]
failed = tables.failure(verdicts, model, "external")
if failed:
    st.caption(f":material/block: **{model} did not learn** in the external scenario ({failed}): a well-calibrated "
               "p(pain) of a network without a signal is just the share of pain images.")
if row["note"]:
    st.caption(row["note"])
own = reliability[reliability["model"] == model]
if own.empty:
    widgets.missing(f"{model} has no reliability bins yet.")
else:
    figure = charts.reliability_diagram(own, f"{model}: reliability, raw and temperature-scaled (T = {row['temperature']:.2f})",
                                        widgets.provenance(experiment, "dashed: perfect calibration; dot size: images"),
                                        external)
    widgets.chart(figure, f"{experiment.name}-{model}-reliability", "reliability")
