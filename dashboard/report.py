"""The stakeholder report: one self-contained HTML file with the main figures (inline SVG) and tables.

Built from the same loaders and chart builders as the pages, so the report shows what the dashboard
shows. No external resource is referenced (no scripts, fonts or images from elsewhere): the file opens
offline, can be mailed, and prints to PDF from any browser.
"""

from __future__ import annotations

import base64
import html
from pathlib import Path

import numpy as np
import pandas as pd

from dashboard import charts, export, images, loaders, tables

CSS = """
body { font-family: 'DejaVu Sans', Arial, sans-serif; max-width: 1200px; margin: 2em auto; color: #111; line-height: 1.45; }
h1 { font-size: 2em; margin-bottom: 0.2em; } h2 { margin-top: 2em; border-bottom: 2px solid #0072B2; }
.note { padding: 0.8em 1em; border-left: 6px solid #D55E00; background: #fdf1e8; margin: 1em 0; }
.synthetic { border-left-color: #E69F00; background: #fff7e0; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.95em; }
th, td { border: 1px solid #bbb; padding: 0.3em 0.7em; text-align: right; } th { background: #eef4fa; }
td:first-child, th:first-child { text-align: left; }
figure { margin: 1.5em 0; } figcaption { color: #444; font-size: 0.9em; }
svg { max-width: 100%; height: auto; }
"""


def build_report(root: Path) -> str:
    """The report of the experiment in ``root`` as one HTML string (sections whose artifacts are
    missing say which command writes them)."""
    experiment = loaders.load_experiment(Path(root))
    parts = [_header(experiment)]
    for section in (_datasets, _comparison, _per_class, _heatmaps, _raters):
        parts.append(section(experiment))
    body = "\n".join(parts)
    return (f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>PainLens report: "
            f"{html.escape(experiment.name)}</title><style>{CSS}</style></head><body>{body}</body></html>")


def _header(experiment: loaders.Experiment) -> str:
    from dashboard.widgets import RESEARCH_NOTE, SYNTHETIC_NOTE

    status = loaders.run_status(experiment)
    done, planned = int(status["done"].sum()) if len(status) else 0, len(status)
    synthetic = f"<div class='note synthetic'><b>{html.escape(SYNTHETIC_NOTE)}</b></div>" if experiment.synthetic else ""
    return (f"<h1>PainLens: experiment {html.escape(experiment.name)}</h1>"
            f"<p>{html.escape(experiment.description)}</p>"
            f"<p>Status: {html.escape(experiment.status)} · runs finished {done} / {planned} · last update "
            f"{html.escape(str(experiment.manifest.get('updated', '?')))}</p>"
            f"{synthetic}<div class='note'>{html.escape(RESEARCH_NOTE)}</div>")


def _figure(chart, caption: str = "") -> str:
    svg = export.chart_svg(chart)
    return f"<figure>{svg}<figcaption>{html.escape(caption)}</figcaption></figure>"


def _image(image: np.ndarray, caption: str) -> str:
    data = base64.b64encode(images.png_bytes(image)).decode("ascii")
    return f"<figure><img alt='{html.escape(caption)}' src='data:image/png;base64,{data}' style='max-width:100%'>" \
           f"<figcaption>{html.escape(caption)}</figcaption></figure>"


def _table(frame: pd.DataFrame) -> str:
    return frame.to_html(index=False, na_rep="–", float_format=lambda v: f"{v:.3f}", border=0, escape=True)


def _missing(title: str, sentence: str) -> str:
    return f"<h2>{html.escape(title)}</h2><p><i>{html.escape(sentence)}</i></p>"


def _provenance(experiment: loaders.Experiment, *parts: str) -> str:
    from dashboard.widgets import provenance

    return provenance(experiment, *parts)


def _datasets(experiment: loaders.Experiment) -> str:
    samples = loaders.load_samples(experiment.root)
    if samples is None or samples.empty:
        return _missing("Datasets (Table 2)", "No sample table yet: `painlens run CONFIG` writes it.")
    return "<h2>Datasets (Table 2)</h2>" + _table(tables.table2(samples))


def _comparison(experiment: loaders.Experiment) -> str:
    metrics, summary = loaders.load_results(experiment.root)
    if metrics.empty:
        return _missing("Model comparison (Figure 4)", "No finished runs yet: `painlens run CONFIG` trains the networks.")
    macro = metrics[metrics["class"] == "macro"]
    models = experiment.models or sorted(macro["model"].unique())
    out = ["<h2>Model comparison (Figure 4)</h2>"]
    for metric, label in (("accuracy", "Accuracy"), ("f1", "F1 (macro)")):
        out.append(_figure(charts.metric_by_network(macro, metric, models, f"{label} per network and scenario",
                                                    _provenance(experiment)),
                           "Mean over runs, ± one standard deviation; dots: runs; vermillion: best in scenario."))
    table = tables.comparison(summary, models)
    out.append(_table(table.drop(columns=["best accuracy", "best F1"])))
    return "".join(out)


def _per_class(experiment: loaders.Experiment) -> str:
    metrics = loaders.load_metrics(experiment.root)
    external = metrics[metrics["scenario"] == "external"] if not metrics.empty else metrics
    if external.empty:
        return _missing("Per class on CP-PAIN (Figure 5)", "No finished external-scenario runs yet.")
    models = experiment.models or sorted(external["model"].unique())
    return "<h2>Per class on CP-PAIN (Figure 5)</h2>" + _figure(
        charts.class_metrics(external, models, "Precision and recall per class · external (CP-PAIN)",
                             _provenance(experiment)))


def _heatmaps(experiment: loaders.Experiment) -> str:
    data = loaders.load_heatmaps(experiment.root)
    if data is None or data.groups.empty or not (data.groups["n_images"] > 0).any():
        return _missing("Heatmaps (Figure 6)", "No heatmaps yet: `painlens explain CONFIG` writes them.")
    out = ["<h2>Heatmaps (Figure 6)</h2>"]
    groups = data.groups[data.groups["n_images"] > 0]
    for (scenario, dataset, label), scope in groups.groupby(["scenario", "dataset", "label"]):
        tiles = [images.overlay(images.resize(data.arrays["faces"][int(r.index)], 192), data.arrays["stretched"][int(r.index)], 0.6)
                 for r in scope.itertuples()]
        labels = [f"{r.model} (n={r.n_images})" for r in scope.itertuples()]
        class_name = charts.class_title(scope["class_name"].iloc[0])
        title = f"{'CP-PAIN' if dataset == 'cppain' else 'PAIN-DB'} · {charts.SCENARIO_TITLES.get(scenario, scenario)} · {class_name}"
        out.append(_image(images.labelled_grid(tiles, labels, columns=min(5, len(tiles)), tile=192, title=title),
                          f"LIME heatmaps on the mean face; {_provenance(experiment)}"))
    return "".join(out)


def _raters(experiment: loaders.Experiment) -> str:
    headline = loaders.load_ratings_table(experiment.root, "headline")
    counts = loaders.load_ratings_table(experiment.root, "counts")
    if headline is None or counts is None:
        return _missing("Rater agreement (Table 4)", "No clinician ratings in this experiment.")
    return ("<h2>Rater agreement (Table 4)</h2><p>ICC, 95 % confidence interval and Fleiss category per scale and "
            "pain source.</p>" + _table(tables.table4(headline, counts)))
