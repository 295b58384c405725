"""Raters: inter-rater ICC (the paper's Table 4) with 95 % CIs and Fleiss categories per pain source, videos rated
pain / no pain, and how each network's p(pain) agrees with the clinicians."""

from __future__ import annotations

import streamlit as st

from dashboard import charts, loaders, tables, widgets
from engine.evaluation.adapted_answer import beside_note
from engine.ratings.forms import scale_label

METRIC_TITLES = {"spearman_rho": "Spearman ρ", "roc_auc": "ROC AUC", "kappa": "Cohen's κ"}


experiment = widgets.experiment_or_stop()
st.title("Raters")
summary = loaders.load_ratings_summary(experiment.root)
headline = loaders.load_ratings_table(experiment.root, "headline")
counts = loaders.load_ratings_table(experiment.root, "counts")
if summary is None or headline is None or counts is None:
    widgets.missing("No clinician ratings in this experiment: `painlens run CONFIG` computes them when CP-PAIN has a "
                    "ratings.csv (`painlens ratings CSV` checks such a file on its own).")
    st.stop()

form = summary.get("headline_icc", {})
st.header("Inter-rater agreement (Table 4)")
st.markdown(f"Headline ICC: **{form.get('form', '?')}**, {form.get('description', '')}. Each cell: ICC, its 95 % "
            "confidence interval and Fleiss's category (< 0.40 low, 0.40–0.75 fair/good, > 0.75 excellent).")
table = tables.table4(headline, counts)
widgets.table(table, f"{experiment.name}-table4", "table4")
for note in headline["note"].dropna():
    if note:
        st.caption(note)
figure = charts.icc_intervals(tables.labelled_ratings(headline), "ICC per scale and pain source",
                              widgets.provenance(experiment, f"{form.get('form', '')}, 95 % CI"))
widgets.chart(figure, f"{experiment.name}-icc", "icc")
icc = loaders.load_ratings_table(experiment.root, "icc")
if icc is not None and not icc.empty:
    with st.expander("All six ICC forms"):
        columns = [c for c in ("scale", "source", "form", "description", "icc", "ci_low", "ci_high", "category",
                               "n_videos", "n_raters", "pval") if c in icc]
        widgets.table(icc[columns].round(4), f"{experiment.name}-icc-all-forms", "icc-all")

st.header("Videos rated pain / no pain")
st.caption("A video counts as 'no pain' on a scale only when both raters gave it 0.")
long = tables.labelled_ratings(counts.drop(columns=["videos"], errors="ignore")).melt(id_vars=["scale_label", "source_label"], value_vars=["no_pain", "pain"],
                             var_name="class", value_name="videos")
long["class"] = long["class"].map(charts.class_title)
widgets.chart(charts.rated_counts(long, "Videos rated no pain / pain", widgets.provenance(experiment)),
              f"{experiment.name}-rated-counts", "rated-counts")

st.header("The served answer beside the clinicians")
beside = loaders.load_ratings_table(experiment.root, "answer_beside_raters")
if beside is None or beside.empty:
    st.caption("No served answer to compare yet: `painlens run CONFIG` fits the answer, then compares it here.")
else:
    st.caption("Does the answer agree with a clinician as well as the clinicians agree with each other? Every pair is "
               "measured the same way on the same videos: Cohen's κ of the pain / no-pain judgement (a rater's: a score "
               "above 0; the answer's: the mean p(pain) of the video's answered frames, pain at 0.5 or more; the "
               "consensus: the paper's label, pain unless every rater gave 0) and Spearman's ρ of the scores (the "
               "answer's mean p(pain); the consensus: the raters' mean). 95 % intervals over videos. A video whose "
               "frames the answer all withheld is left out of the answer's rows and counted."
               + beside_note(loaders.load_answer(experiment.root)))
    widgets.table(tables.beside_raters(beside), f"{experiment.name}-answer-beside-raters", "beside-raters")

st.header("Networks versus clinicians")
agreement = loaders.load_ratings_table(experiment.root, "model_agreement_summary")
if agreement is None or agreement.empty:
    notes = " ".join(summary.get("notes", []))
    widgets.missing("No model-versus-clinician agreement yet: it needs finished external-scenario runs and CP-PAIN's "
                    f"manifest.csv; `painlens run CONFIG` computes it. {notes}".strip())
    st.stop()
# Clinicians rate videos: their comparison is at the video level (each video's frames' mean p(pain));
# frame-level rows (frames with their own label) are another comparison, shown in the table only.
frames = agreement[agreement["level"] == "frame"] if "level" in agreement else agreement.iloc[0:0]
agreement = agreement[agreement["level"] == "video"] if "level" in agreement else agreement
agreement = agreement.assign(scale_label=agreement["scale"].map(scale_label))
metric = st.segmented_control("Measure", list(METRIC_TITLES), default="spearman_rho", format_func=METRIC_TITLES.get,
                              key="agreement-metric") or "spearman_rho"
st.caption("Per video: the network's p(pain) is the mean over the video's frames (pain when it is at least 0.5). "
           "Spearman ρ: that p(pain) against the clinicians' mean score per video; ROC AUC: against the video being "
           "rated pain; κ: the network's label against the clinicians' (external scenario, mean ± std over seeds).")
models = experiment.models or sorted(agreement["model"].unique())
verdicts = widgets.network_notes(experiment, scenarios=["external"], models=models)
figure = charts.model_agreement(agreement, metric, models, f"{METRIC_TITLES[metric]} per network and clinician scale",
                                widgets.provenance(experiment, "external scenario, CP-PAIN"),
                                verdicts[verdicts["scenario"] == "external"])
widgets.chart(figure, f"{experiment.name}-model-vs-clinicians-{metric}", "agreement")
widgets.table(agreement.drop(columns=["scale"]).round(3), f"{experiment.name}-model-vs-clinicians", "agreement-table")
if len(frames):
    st.caption("Frame level, where CP-PAIN frames carry their own label: each frame's p(pain) against that label "
               "(not the clinicians' video rating).")
    widgets.table(frames.drop(columns=["scale"]).round(3), f"{experiment.name}-model-vs-frame-labels", "frame-table")
