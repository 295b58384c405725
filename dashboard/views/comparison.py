"""Model comparison: accuracy and F1 per network and scenario with the spread over folds (Figure 4)."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import charts, loaders, tables, widgets

METRICS = {"accuracy": "Accuracy", "f1": "F1 (macro)"}


def highlight_best(frame: pd.DataFrame):
    """Bold vermillion cells for the best network of each scenario (the table stays sortable)."""
    def colour(row: pd.Series) -> list[str]:
        style = "font-weight: bold; color: #B34700"
        return [style if (c == "accuracy" and row["best accuracy"]) or (c == "F1" and row["best F1"]) or
                (c == "network" and (row["best F1"] or row["best accuracy"])) else "" for c in row.index]

    return frame.style.apply(colour, axis=1).format({c: "{:.3f}" for c in ("accuracy", "accuracy std", "F1", "F1 std", "ROC AUC")},
                                                    na_rep="–")


experiment = widgets.experiment_or_stop()
st.title("Model comparison")
metrics, summary = loaders.load_results(experiment.root)
if metrics.empty:
    widgets.missing("No finished runs yet, so there is nothing to compare: `painlens run CONFIG` trains the networks "
                    "and this page fills in as runs finish.")
    st.stop()
macro = metrics[metrics["class"] == "macro"]
models = experiment.models or sorted(macro["model"].unique())
runs_per = macro.groupby("scenario")["fold"].nunique()
runs_text = ", ".join(f"{charts.SCENARIO_TITLES[s]}: {runs_per[s]} runs" for s in charts.SCENARIO_ORDER if s in runs_per)
st.markdown("Mean over folds (image-wise, subject-wise) or seeds (external) of each network; the error bar is ± one "
            "standard deviation and each dot one run. **The best network of each scenario is in vermillion.**")
if len(macro.groupby(["model", "scenario", "fold"])) < experiment.planned_runs:
    st.caption(f"{len(macro.groupby(['model', 'scenario', 'fold']))} of {experiment.planned_runs} planned runs have "
               "finished; the figures use those.")
for metric, label in METRICS.items():
    figure = charts.metric_by_network(macro, metric, models, f"{label} per network and scenario",
                                      widgets.provenance(experiment, runs_text))
    widgets.chart(figure, f"{experiment.name}-{metric}-by-network", f"fig4-{metric}")

st.header("All networks and scenarios")
table = tables.comparison(summary, models)
st.caption("Click a column header to sort. Bold: the best network of its scenario by that metric.")
st.dataframe(highlight_best(table), hide_index=True, column_config={"best accuracy": None, "best F1": None})
st.download_button("CSV", data=table.to_csv(index=False).encode("utf-8"), file_name=f"{experiment.name}-comparison.csv",
                   mime="text/csv", key="comparison-csv", icon=":material/download:", on_click="ignore")
