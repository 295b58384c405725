"""Overview: which experiment, its datasets and counts (the paper's Table 2), runs finished / planned."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import charts, loaders, tables, widgets

def experiment_facts(experiment: loaders.Experiment) -> None:
    st.title(f"Experiment: {experiment.name}")
    if experiment.description:
        st.markdown(experiment.description)
    status = {"training": "training in progress", "finished": "finished"}.get(experiment.status, experiment.status)
    started, updated = experiment.manifest.get("started", "?"), experiment.manifest.get("updated", "?")
    preprocess = experiment.manifest.get("preprocess", {}) or {}
    methods = ", ".join(f"{k} ({v})" for k, v in (preprocess.get("background_methods") or {}).items()) or "not recorded"
    training = experiment.config.training if experiment.config else None
    st.markdown(f"**Status:** {status} · **started** {started} · **last update** {updated}  \n"
                f"**Networks:** {', '.join(experiment.models) or 'none planned yet'} · **scenarios:** "
                f"{', '.join(experiment.scenarios)} · **epochs:** {training.epochs if training else '?'} · "
                f"**weights:** {training.weights if training else '?'}  \n**Background removal used:** {methods}")
    if preprocess.get("background_note"):  # that note names a folder of the server: it stays in the run's log
        st.caption("U2-Net's model file was not installed where this experiment ran, so backgrounds were whitened "
                   "with the face-hull fallback instead of U2-Net as in the paper; the run's log says where the "
                   "file goes.")
    from engine.evaluation.answer_evaluation import served_sentence

    table, parameters = loaders.load_table(experiment.root, "answer_evaluation"), loaders.load_answer(experiment.root)
    sentence = served_sentence(table, parameters)
    referenced = served_sentence(table, parameters, with_reference=True)  # "" without those figures
    if sentence:
        st.info(f"**The answer a clinician sees.** {sentence}{' ' + referenced if referenced else ''} The model card has its parameters and every figure.",
                icon=":material/fact_check:")


def datasets_section(experiment: loaders.Experiment) -> None:
    st.header("Datasets and counts (Table 2)")
    samples = loaders.load_samples(experiment.root)
    if samples is None or samples.empty:
        widgets.missing("No sample table yet: `painlens run CONFIG` writes it once the datasets are scanned and "
                        "preprocessed.")
        return
    table = tables.table2(samples)
    widgets.table(table, f"{experiment.name}-table2", "table2")
    st.caption("PAIN-DB trains and validates (image-wise and subject-wise scenarios); CP-PAIN is only ever a "
               "test set (external scenario). *Faces found*: images MTCNN found a face in, the ones used.")
    widgets.chart(charts.dataset_counts(tables.table2_long(table), subtitle=widgets.provenance(experiment)),
                  f"{experiment.name}-dataset-counts", "counts")


def runs_section(experiment: loaders.Experiment) -> None:
    st.header("Runs finished / planned")
    status = loaders.run_status(experiment)
    if status.empty:
        widgets.missing("No runs are planned in this experiment's manifest yet: `painlens run CONFIG` plans and "
                        "trains them.")
        return
    done, planned = int(status["done"].sum()), len(status)
    a, b, c = st.columns(3)
    a.metric("Runs finished", f"{done} / {planned}")
    b.metric("Networks kept for uploads", int(status["kept_model"].sum()))
    seconds = status.loc[status["done"], "seconds"].sum()
    c.metric("Training time so far", f"{seconds / 60:.1f} min")
    st.progress(done / planned if planned else 0.0, text=f"{done} of {planned} runs finished")
    if done < planned and experiment.status == "training":
        st.caption("The grid is still training: this page, the comparison and the per-class pages show the "
                   "finished runs and update as more finish (reload the page).")
    widgets.chart(charts.run_progress(status, subtitle=widgets.provenance(experiment)),
                  f"{experiment.name}-runs", "runs")


def artifacts_section(experiment: loaders.Experiment) -> None:
    st.header("What this experiment holds")
    root, store = experiment.root, experiment.store
    checks = [
        ("Predictions and metrics", bool(store.finished_runs()), "painlens run CONFIG"),
        ("LIME heatmaps, region scores, clusters", store.has_table("heatmaps"), "painlens explain CONFIG"),
        ("Clinician ratings (Table 4)", store.ratings_summary() is not None,
         "painlens run CONFIG (needs CP-PAIN's ratings.csv)"),
        ("Networks kept for uploads", not loaders.kept_models(root).empty, "painlens run CONFIG (external scenario)"),
    ]
    frame = pd.DataFrame([{"artifact": name, "present": "yes" if ok else "not yet",
                           "written by": "" if ok else command} for name, ok, command in checks])
    st.dataframe(frame, hide_index=True)


experiment = widgets.experiment_or_stop()
experiment_facts(experiment)
widgets.network_notes(experiment)
datasets_section(experiment)
runs_section(experiment)
artifacts_section(experiment)
