"""Model comparison: ROC AUC and accuracy per network and scenario with 95 % intervals from a bootstrap over
subjects (Figure 4 with intervals), which networks learned, and the spread over folds and seeds."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import charts, loaders, tables, widgets
from engine.evaluation.adapted_answer import serving_sentence
from engine.evaluation.bootstrap import FEW_DATA_NOTE, LEARNED_RULE

METRICS = {"auc": "ROC AUC", "accuracy": "Accuracy"}
NUMBERS = ("ROC AUC", "AUC low", "AUC high", "accuracy", "accuracy low", "accuracy high", "AUC sd over seeds",
           "F1 (mean over runs)", "F1 std")
P_VALUES = ("p (AUC ≤ 0.5)", "p, Holm")


def highlight(frame: pd.DataFrame):
    """Bold vermillion for the best network of each scenario (by AUC, among those that learned), grey
    text for networks that did not learn; the table stays sortable."""
    def colour(row: pd.Series) -> list[str]:
        if not row["learned"]:
            return ["color: #8a8a8a"] * len(row)
        best = "font-weight: bold; color: #B34700"
        return [best if row["best AUC"] and c in ("network", "ROC AUC") else "" for c in row.index]

    formats = {**{c: "{:.3f}" for c in NUMBERS}, **{c: "{:.4f}" for c in P_VALUES}}
    return frame.style.apply(colour, axis=1).format(formats, na_rep="–")


def method_note(experiment: loaders.Experiment, summary: pd.DataFrame) -> str:
    """How the intervals were drawn, in the experiment's own numbers."""
    macro = summary[summary["class"] == "macro"]
    resamples = int(macro["bootstrap_resamples"].max()) if "bootstrap_resamples" in macro and len(macro) else 0
    seeds = experiment.runs_per_scenario("external")
    return (f"**Error bars: 95 % intervals from a bootstrap over subjects** ({resamples or 'the configured number of'} "
            "resamples, each drawing whole subjects with replacement: frames of one person are not independent). "
            "Bars: the pooled value, every test image counted once (image- and subject-wise: the folds pooled, each "
            f"image tested by one fold). **External scenario: each CP-PAIN image's p(pain) is averaged over the "
            f"{seeds or 'several'} seeds first**; the spread over seeds (standard deviation of each seed's own AUC) "
            "is in the table's *AUC sd over seeds*. Dots: each run's own value. " + LEARNED_RULE)


experiment = widgets.experiment_or_stop()
st.title("Model comparison")
metrics, summary = loaders.load_results(experiment.root)
if metrics.empty:
    widgets.missing("No finished runs yet, so there is nothing to compare: `painlens run CONFIG` trains the networks "
                    "and this page fills in as runs finish.")
    st.stop()
macro = metrics[metrics["class"] == "macro"]
models = experiment.models or sorted(macro["model"].unique())
verdicts = widgets.network_notes(experiment, models=models)
st.markdown(method_note(experiment, summary))
finished = len(macro.groupby(["model", "scenario", "fold"]))
if finished < experiment.planned_runs:
    st.caption(f"{finished} of {experiment.planned_runs} planned runs have finished; the figures use those.")
rows = summary[summary["class"] == "macro"]
for metric, label in METRICS.items():
    figure = charts.metric_by_network(rows, macro, metric, models, f"{label} per network and scenario",
                                      widgets.provenance(experiment, "95 % intervals: bootstrap over subjects"), verdicts)
    widgets.chart(figure, f"{experiment.name}-{metric}-by-network", f"fig4-{metric}")

st.header("All networks and scenarios")
table = tables.comparison(summary, models)
st.caption("Click a column header to sort. Bold: the best network of its scenario by ROC AUC among those that "
           "learned; grey: networks that did not learn (*why* says why). *n*: the test images and subjects each row's "
           f"numbers rest on; {FEW_DATA_NOTE}.")
st.dataframe(highlight(table), hide_index=True, column_config={"best AUC": None})
st.download_button("CSV", data=table.to_csv(index=False).encode("utf-8"), file_name=f"{experiment.name}-comparison.csv",
                   mime="text/csv", key="comparison-csv", icon=":material/download:", on_click="ignore")

remedies = loaders.load_table(experiment.root, "remedies")
if remedies is not None and len(remedies):
    st.header("CP faces: the person's baseline and few-shot adaptation")
    st.markdown("Per network on CP-PAIN: **external** (trained on PAIN-DB only), **+ baseline** (each face judged "
                "against the same person's calm frames of their other videos: the change in the network's logit, "
                "turned into p(pain) by a rule fitted on PAIN-DB's subject-wise held-out faces only; a face whose person "
                "has no other video keeps its absolute p(pain)), **cp_adapt** (the external model fine-tuned on the "
                "other CP-PAIN subjects, tested on the one left out) and both. *PSPI (AU estimator)*: the action-unit "
                "estimator's PSPI, alone and against the calm frames, each through a logistic rule fitted on UNBC. "
                f"{serving_sentence(loaders.load_answer(experiment.root))} Error bars: 95 % intervals from "
                "a bootstrap over CP-PAIN subjects.")
    source = widgets.provenance(experiment, "95 % intervals: bootstrap over CP-PAIN subjects")
    for metric, label in METRICS.items():
        widgets.chart(charts.remedies(remedies, metric, models, f"{label} on CP-PAIN: external, baseline, adaptation",
                                      source), f"{experiment.name}-remedies-{metric}", f"remedies-{metric}")
    shown = tables.remedies(remedies, models)
    st.dataframe(shown.style.format({c: "{:.3f}" for c in NUMBERS if c in shown}, na_rep="–"), hide_index=True)
    curve = loaders.load_table(experiment.root, "adapt_curve")
    if curve is not None and len(curve):
        widgets.chart(charts.adapt_curve(curve, "accuracy", "cp_adapt: accuracy against the CP-PAIN subjects adapted on",
                                         source), f"{experiment.name}-adapt-curve", "adapt-curve")
