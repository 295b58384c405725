"""Per class: precision and recall per class on CP-PAIN per network (Figure 5), confusion matrices, ROC curves."""

from __future__ import annotations

import streamlit as st

from dashboard import charts, loaders, tables, widgets
from engine.datasets.table import CLASS_NAMES
from engine.evaluation.bootstrap import FEW_DATA_NOTE

experiment = widgets.experiment_or_stop()
st.title("Per class")
metrics = loaders.load_metrics(experiment.root)
predictions = loaders.load_predictions(experiment.root)
if metrics.empty or predictions.empty:
    widgets.missing("No finished runs yet: `painlens run CONFIG` trains the networks; precision, recall, confusion "
                    "matrices and ROC curves appear here as runs finish.")
    st.stop()
models = experiment.models or sorted(metrics["model"].unique())
scenarios = [s for s in charts.SCENARIO_ORDER if s in set(metrics["scenario"])]
verdicts = widgets.network_notes(experiment, models=models)

st.header("Precision and recall per class")
scenario = st.segmented_control("Scenario", scenarios, default="external" if "external" in scenarios else scenarios[0],
                                format_func=lambda s: charts.SCENARIO_TITLES.get(s, s), key="fig5-scenario") or scenarios[0]
if scenario != "external":
    st.caption("The paper's Figure 5 is the external scenario (trained on PAIN-DB, tested on CP-PAIN).")
rows = metrics[metrics["scenario"] == scenario]
runs = rows["fold"].nunique()
figure = charts.class_metrics(rows, models, f"Precision and recall per class · {charts.SCENARIO_TITLES[scenario]}",
                              widgets.provenance(experiment, f"mean ± std over {runs} runs"), verdicts)
widgets.chart(figure, f"{experiment.name}-{scenario}-per-class", "fig5")
per_class = (rows[rows["class"] != "macro"].groupby(["model", "class"])[["precision", "recall", "f1", "n"]].mean()
             .reset_index().rename(columns={"model": "network", "n": "test images per run"}))
# Each class's n: its test images and the subjects they come from, per run (mean over the runs).
tested = predictions[predictions["scenario"] == scenario]
subjects = (tested.groupby(["model", "fold", "true_label"])["subject"].nunique().groupby(["model", "true_label"]).mean()
            .rename("subjects per run").reset_index())
subjects["class"] = subjects["true_label"].map(dict(enumerate(CLASS_NAMES)))
per_class = per_class.merge(subjects.drop(columns="true_label").rename(columns={"model": "network"}),
                            on=["network", "class"], how="left")
per_class["n per run"] = tables.sizes(per_class["test images per run"], per_class["subjects per run"])
per_class["class"] = per_class["class"].map(charts.class_title)
widgets.table(per_class.drop(columns="subjects per run").round(3), f"{experiment.name}-{scenario}-per-class",
              "per-class-table")
st.caption(f"n per run: a class's test images in one run and the subjects they come from (mean over the runs); "
           f"{FEW_DATA_NOTE}.")

st.header("Confusion matrix")
left, right = st.columns(2)
model = left.selectbox("Network", [m for m in models if m in set(predictions["model"])], key="cm-model")
cm_scenario = right.selectbox("Scenario", scenarios, index=scenarios.index(scenario), key="cm-scenario",
                              format_func=lambda s: charts.SCENARIO_TITLES.get(s, s))
chosen = predictions[(predictions["model"] == model) & (predictions["scenario"] == cm_scenario)]
if chosen.empty:
    widgets.missing(f"{model} has no finished {cm_scenario} run yet.")
else:
    folds = chosen["fold"].nunique()
    verdict = verdicts[(verdicts["model"] == model) & (verdicts["scenario"] == cm_scenario)]
    if len(verdict) and not bool(verdict["learned"].iloc[0]):
        st.caption(f":material/block: **{model} did not learn** in this scenario ({verdict['reason'].iloc[0]}): its "
                   "confusion matrix shows what a network without a signal does.")
    figure = charts.confusion_matrix(chosen, f"{model} · {charts.SCENARIO_TITLES[cm_scenario]}",
                                     widgets.provenance(experiment, f"test images of {folds} runs, summed"))
    widgets.chart(figure, f"{experiment.name}-{model}-{cm_scenario}-confusion", "confusion")

st.header("ROC curves")
st.caption("Each curve counts every test image once, as the comparison's AUC does (folds pooled; external: each "
           "image's p(pain) averaged over the seeds); dashed: chance; grey: the network did not learn there.")
figure = charts.roc_curves(predictions, models, "ROC curves per network", widgets.provenance(experiment), verdicts)
widgets.chart(figure, f"{experiment.name}-roc", "roc")
