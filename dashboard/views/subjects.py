"""Per subject: whom does a network fail on? Subjects sorted by accuracy, accuracy against how strongly they
express pain, one click to a subject's images, CSV export."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import charts, loaders, tables, widgets
from engine.evaluation.bootstrap import FEW_DATA_NOTE

TABLE_KEY = "subjects-table"


def subject_table(rows: pd.DataFrame) -> pd.DataFrame:
    """One network and scenario's subjects, worst accuracy first."""
    ordered = rows.sort_values(["accuracy", "images", "subject"], ascending=[True, False, True])
    return pd.DataFrame({"subject": ordered["subject"], "dataset": ordered["dataset"], "images": ordered["images"],
                         "pain images": ordered["pain_images"], "accuracy": ordered["accuracy"], "ROC AUC": ordered["auc"],
                         "expressiveness": ordered["expressiveness"],
                         "measure": ordered["expressiveness_measure"]}).reset_index(drop=True)


def default_pair(verdicts: pd.DataFrame, models: list[str], scenarios: list[str]) -> tuple[str, str]:
    """The first network that learned in the external scenario (else in any), else the first network."""
    for scenario in ("external", *scenarios):
        learned = verdicts[(verdicts["scenario"] == scenario) & verdicts["learned"]]
        for model in models:
            if model in set(learned["model"]) and scenario in scenarios:
                return model, scenario
    return models[0], scenarios[-1]


experiment = widgets.experiment_or_stop()
st.title("Per subject")
subjects = loaders.load_subjects(experiment.root)
if subjects.empty:
    widgets.missing("No per-subject results yet: `painlens run CONFIG` trains the networks, and each finished run's "
                    "test subjects appear here.")
    st.stop()
models = [m for m in (experiment.models or sorted(subjects["model"].unique())) if m in set(subjects["model"])]
verdicts = widgets.network_notes(experiment, models=models)
scenarios = [s for s in charts.SCENARIO_ORDER if s in set(subjects["scenario"])]
model_default, scenario_default = default_pair(verdicts, models, scenarios)
left, right = st.columns(2)
model = left.selectbox("Network", models, index=models.index(model_default), key="subjects-model")
scenario = right.segmented_control("Scenario", scenarios, default=scenario_default, key="subjects-scenario",
                                   format_func=lambda s: charts.SCENARIO_TITLES.get(s, s)) or scenario_default
rows = subjects[(subjects["model"] == model) & (subjects["scenario"] == scenario)]
if rows.empty:
    widgets.missing(f"{model} has no finished {charts.SCENARIO_TITLES.get(scenario, scenario)} run yet.")
    st.stop()
failed = tables.failure(verdicts, model, scenario)
if failed:
    st.caption(f":material/block: **{model} did not learn** here ({failed}): its per-subject accuracy shows how often "
               "its one answer happens to match each person's labels, not whom it recognises.")
st.caption("Each image counted once (external: p(pain) averaged over the seeds). Expressiveness: mean PSPI (0-16) of "
           "the subject's pain images where the data has it, mean coded pain level (0-4) for synthetic MIntPAIN; "
           f"blank elsewhere. Each row is one subject (n: its *images*): few data by construction ({FEW_DATA_NOTE}), "
           "so read it to find whom a network fails on, not as a measure of the network.")
table = subject_table(rows)
st.markdown("**Click a subject's row to open their images** (the Images page, with every network's p(pain) and LIME).")
event = st.dataframe(table.round(3), hide_index=True, on_select="rerun", selection_mode="single-row", key=TABLE_KEY)
st.download_button("CSV", data=table.to_csv(index=False).encode("utf-8"),
                   file_name=f"{experiment.name}-{model}-{scenario}-subjects.csv", mime="text/csv", key="subjects-csv",
                   icon=":material/download:", on_click="ignore")
chosen = event.selection.rows if event is not None else []
if chosen:
    picked = table.iloc[chosen[0]]
    widgets.open_images(str(picked["dataset"]), scenario, str(picked["subject"]), forget=TABLE_KEY)
subtitle = widgets.provenance(experiment, model, charts.SCENARIO_TITLES.get(scenario, scenario))
widgets.chart(charts.subject_accuracy(rows, "Subjects with the lowest accuracy", subtitle),
              f"{experiment.name}-{model}-{scenario}-subject-accuracy", "subject-accuracy")
widgets.chart(charts.accuracy_vs_expressiveness(rows, "Accuracy against expressiveness", subtitle),
              f"{experiment.name}-{model}-{scenario}-expressiveness", "expressiveness")
