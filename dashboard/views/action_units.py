"""Action units: which facial movements the estimator finds, how well on UNBC (subject-wise, intervals over
subjects), and the model as a third rater of CP-PAIN's videos beside the two physiotherapists."""

from __future__ import annotations

import streamlit as st

from dashboard import action_units, loaders, widgets

experiment = widgets.experiment_or_stop()
st.title("Action units")
evaluation = loaders.load_table(experiment.root, "action_units")
if evaluation is None or evaluation.empty:
    widgets.missing("No action-unit estimator in this experiment: `painlens run CONFIG` fits one on UNBC's FACS-coded "
                    "frames ([action_units] in the config) when at least two UNBC subjects have faces.")
    st.stop()

first = evaluation.iloc[0]
st.markdown("The six pain action units (FACS) and the Prkachin–Solomon pain intensity, "
            "**PSPI = AU4 + max(AU6, AU7) + max(AU9, AU10) + AU43** (0–16), estimated from the same face crops the "
            "pain networks see: appearance (HOG and grey values) of the regions where each AU shows, placed by the "
            "face's landmarks, and a linear head (ridge for the graded AUs, logistic for eyes closed). "
            "Learned on UNBC frames only, never on CP-PAIN.")
st.header("How well, on people it never saw")
st.caption(f"{int(first['folds'])} subject-wise folds over UNBC ({widgets.provenance(experiment)}): each frame is "
           "estimated by the estimator fitted without its subject. 95 % intervals: bootstrap over subjects "
           f"({int(first['bootstrap_resamples'])} resamples). Occurrence: coded intensity ≥ 1 against an estimate "
           "that rounds to 1 or more.")
widgets.table(action_units.evaluation_table(evaluation), f"{experiment.name}-action-units", "au-evaluation")
widgets.chart(action_units.evaluation_chart(evaluation, widgets.provenance(experiment, "UNBC, subject-wise")),
              f"{experiment.name}-action-units", "au-chart")
frames = loaders.load_table(experiment.root, "action_unit_frames")
if frames is not None and (frames["set"] == "unbc_out_of_fold").any():
    widgets.chart(action_units.pspi_scatter(frames, widgets.provenance(experiment, "one point per UNBC frame")),
                  f"{experiment.name}-pspi-scatter", "au-pspi")

st.header("The model as a third rater (CP-PAIN)")
raters = loaders.load_table(experiment.root, "action_unit_raters")
if raters is None or raters.empty:
    widgets.missing("No model-as-rater table: it needs CP-PAIN faces and a ratings.csv with FACS items.")
    st.stop()
st.markdown(f"The FACS pain score (AU4 + max(AU6, AU7) + max(AU9, AU10) + AU43, the scale the physiotherapists used) "
            f"of the AUs the estimator finds at each video's pain frame (its highest frame where none is "
            f"pinpointed), beside the two raters'. Each cell: **{raters['form'].iloc[0]}** (the ratings' headline "
            "form, as in Table 4) with its 95 % confidence interval and the number of videos, on the videos the model "
            "scored. Read the model's columns against *Rater 1 vs rater 2*: does the model agree with a clinician "
            "as well as the clinicians agree with each other? The model's AU43 is 0 or 1 (UNBC codes eyes closed "
            "only so); the raters score it 0–5.")
widgets.table(action_units.rater_table(raters), f"{experiment.name}-model-as-rater", "au-raters")
for note in sorted(set(raters["note"].dropna()) - {""}):
    st.caption(f"Undefined cells: {note}")
