"""The stakeholder report: one self-contained HTML file (or a PDF of it) with the model card, the main figures
(inline SVG) and tables, and its provenance.

Built from the same loaders, chart builders and model card as the pages, so the report shows what the
dashboard shows: networks that did not learn are greyed and marked, intervals come from the bootstrap over
subjects, and the one-answer rule is the engine's (``engine.evaluation.answer``). No external resource is
referenced (no scripts, fonts or images from elsewhere): the file opens offline and can be mailed.
``write_report`` writes HTML or, by the file's suffix, PDF (WeasyPrint, pinned in requirements/).
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import re
from pathlib import Path

import numpy as np
import pandas as pd

from dashboard import charts, export, images, loaders, model_card, tables

SUFFIXES = (".html", ".htm", ".pdf")
# A number as the tables write it (0.82, 479, "0.82 [0.76, 0.88]", "0.080 → 0.062"): a column of them
# (and blanks) is right-aligned, any other left.
NUMBER = re.compile(r"[-+–]?[\d.]+(?: \[[^\]]*\]| → [-+]?[\d.]+)?")
# A table whose columns' longest texts (header or cell) add up to more characters than this is set
# smaller and tighter (``_table``): about what one line of the page holds at the table's usual size.
WIDE_CHARACTERS = 120
# Tables fit the page width: a table is never wider than the page and its cells wrap at spaces (the
# cells hold names, numbers and phrases: no word is near a page wide), and tables wider than ``WIDE_CHARACTERS`` are set smaller and
# tighter, so that their rows stay a few lines high instead of a word per line (the demo's networks
# table ran over three pages, its right-hand columns cut at the page edge). Numbers right, words left. A
# table that fits on one page is not split, a row never, and the header repeats on every page.
CSS = """
@page { size: A4; margin: 14mm 12mm; }
@media print { body { max-width: none; margin: 0; } }
body { font-family: 'DejaVu Sans', Arial, sans-serif; max-width: 1200px; margin: 2em auto; color: #111; line-height: 1.45; }
h1 { font-size: 2em; margin-bottom: 0.2em; } h2 { margin-top: 2em; border-bottom: 2px solid #0072B2; break-after: avoid; }
h3 { break-after: avoid; }
.note { padding: 0.8em 1em; border-left: 6px solid #D55E00; background: #fdf1e8; margin: 1em 0; }
.synthetic { border-left-color: #E69F00; background: #fff7e0; }
.networks { border-left-color: #8a8a8a; background: #f3f3f3; color: #444; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.85em; max-width: 100%; }
th, td { border: 1px solid #bbb; padding: 0.3em 0.6em; text-align: left; vertical-align: top; overflow-wrap: break-word; }
td.number { text-align: right; } th { background: #eef4fa; vertical-align: bottom; }
tr { break-inside: avoid; } thead { display: table-header-group; } p.caption { break-after: avoid; }
/* A table may continue on the next page (its header repeats): kept whole, a long one left its caption alone on a page. */
table.wide { font-size: 0.68em; line-height: 1.3; } table.wide th, table.wide td { padding: 0.2em 0.35em; }
tr.not-learned td { color: #8a8a8a; }
figure { margin: 1.5em 0; break-inside: avoid; } figcaption { color: #444; font-size: 0.9em; }
svg { max-width: 100%; height: auto; } img { max-width: 100%; }
pre { font-size: 0.75em; background: #f6f6f6; padding: 0.8em; white-space: pre-wrap; }
"""


def build_report(root: Path, when: str | None = None) -> str:
    """The report of the experiment in ``root`` as one HTML string (sections whose artifacts are
    missing say which command writes them). ``when``: the date written in its provenance (today)."""
    from dashboard.widgets import from_scratch

    experiment = loaders.load_experiment(Path(root))
    when = when or dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    scratch = from_scratch(experiment)
    verdicts = tables.network_verdicts(loaders.load_results(experiment.root)[1])
    parts = [_header(experiment), _network_notes(experiment, verdicts, scratch)]
    card = model_card.model_card(experiment, scratch)
    parts.append("<h2>Model card</h2>" + "".join(_section(s) for s in card))
    for section in (_comparison, _remedies, _per_class, _calibration, _heatmaps, _raters, _action_units):
        parts.append(section(experiment, verdicts))
    parts.append(_section(model_card.provenance(experiment, when), level=2))
    body = "\n".join(parts)
    return (f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>PainLens report: "
            f"{html.escape(experiment.name)}</title><style>{CSS}</style></head><body>{body}</body></html>")


def write_report(root: Path, out: Path) -> Path:
    """Write the report of the experiment in ``root`` to ``out``: HTML, or PDF when ``out`` ends in .pdf.
    A folder that is not an experiment, an unknown suffix or a missing PDF renderer is one sentence
    (``PainLensError``); nothing is written then."""
    from engine.artifacts import ExperimentStore
    from engine.files import write_bytes, write_text
    from engine.errors import PainLensError

    root, out = Path(root), Path(out)
    if not ExperimentStore.looks_like_experiment(root):
        raise PainLensError(f"{root} is not an experiment folder (no manifest, samples or runs): point `painlens report` "
                            "at a folder that `painlens run` wrote, such as artifacts/demo.")
    suffix = out.suffix.lower()
    if suffix not in SUFFIXES:
        raise PainLensError(f"The report is written as HTML or PDF: name the file with .html or .pdf, not '{out.suffix or out.name}'.")
    if suffix == ".pdf":
        renderer = _pdf_renderer()
        write_bytes(out, renderer(build_report(root)))
    else:
        write_text(out, build_report(root))
    return out


def pdf_bytes(root: Path) -> bytes:
    """The report of the experiment in ``root`` as a PDF (the dashboard's download button)."""
    return _pdf_renderer()(build_report(root))


def pdf_missing() -> str:
    """"" when PDFs can be written here, else the sentence saying what is missing."""
    from engine.errors import PainLensError

    try:
        _pdf_renderer()
    except PainLensError as exc:
        return str(exc)
    return ""


def _pdf_renderer():
    """HTML to PDF bytes (WeasyPrint); a sentence when it cannot be loaded (it needs the Pango library)."""
    from engine.errors import PainLensError

    from PIL import ImageFile

    # Importing WeasyPrint sets Pillow's process-wide LOAD_TRUNCATED_IMAGES; in the dashboard's process that
    # would let a truncated upload through the decoder as a half-grey face. Keep Pillow's setting as it was.
    truncated_images = ImageFile.LOAD_TRUNCATED_IMAGES
    try:
        from weasyprint import HTML
    except (ImportError, OSError) as exc:  # OSError: WeasyPrint installed but the system's Pango is missing
        raise PainLensError(f"Writing a PDF needs WeasyPrint and the Pango library ({type(exc).__name__}): install "
                            "them (`pip install weasyprint==70.0`, `apt-get install libpango-1.0-0`) or write the "
                            "report as .html and print it from a browser.") from exc
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = truncated_images
    return lambda text: HTML(string=text).write_pdf()


# --- pieces ---------------------------------------------------------------------------------------

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


def _network_notes(experiment: loaders.Experiment, verdicts: pd.DataFrame, scratch: set[str]) -> str:
    """The same per-network notes as the pages' (``widgets.network_notes``)."""
    models = experiment.models or sorted(verdicts["model"].unique())
    notes = tables.network_notes(verdicts, models, None, scratch, experiment.restricted_models,
                                 experiment.capped_models, experiment.unregularized_models,
                                 experiment.shortened_external_epochs)
    if notes.empty:
        return ""
    lines = "".join(f"<li><b>{html.escape(', '.join(names))}</b>: {html.escape('; '.join(phrases))}.</li>"
                    for names, phrases in tables.grouped_notes(notes))
    return (f"<div class='note networks'><b>About these networks</b> (grey in the figures and tables: did not "
            f"learn)<ul>{lines}</ul></div>")


def _section(section: model_card.Section, level: int = 3) -> str:
    out = [f"<h{level}>{html.escape(section.title)}</h{level}>"]
    out += [f"<p>{html.escape(paragraph.replace('`', ''))}</p>" for paragraph in section.paragraphs]
    if section.bullets:
        out.append("<ul>" + "".join(f"<li>{html.escape(b)}</li>" for b in section.bullets) + "</ul>")
    for caption, frame in section.tables:
        greyed = frame["learned"].eq("no") if "learned" in frame else None
        out.append((f"<p class='caption'><i>{html.escape(caption)}</i></p>" if caption else "") + _table(frame, greyed))
    if section.code:
        out.append(f"<p>The experiment's config:</p><pre>{html.escape(section.code)}</pre>")
    return "".join(out)


def _figure(chart, caption: str = "") -> str:
    svg = export.chart_svg(chart)
    return f"<figure>{svg}<figcaption>{html.escape(caption)}</figcaption></figure>"


def _image(image: np.ndarray, caption: str) -> str:
    data = base64.b64encode(images.png_bytes(image)).decode("ascii")
    return f"<figure><img alt='{html.escape(caption)}' src='data:image/png;base64,{data}' style='max-width:100%'>" \
           f"<figcaption>{html.escape(caption)}</figcaption></figure>"


def _table(frame: pd.DataFrame, greyed: pd.Series | None = None) -> str:
    """An HTML table that fits the page (``CSS``); rows where ``greyed`` is True (networks that did not
    learn) in grey."""
    longest = sum(max([len(str(c)), *(len(str(v)) for v in frame[c])]) for c in frame.columns) if len(frame.columns) else 0
    wide = ["wide"] if longest > WIDE_CHARACTERS else []
    text = frame.to_html(index=False, na_rep="–", float_format=lambda v: f"{v:.3f}", border=0, escape=True,
                         classes=wide)
    text = _align_numbers(text, [_numbers(frame[c]) for c in frame.columns])
    if greyed is None:
        return text
    head, body = text.split("<tbody>", 1)
    rows = body.split("<tr>")
    marked = [rows[0]] + [("<tr class='not-learned'>" if grey else "<tr>") + row
                          for row, grey in zip(rows[1:], list(greyed))]
    return head + "<tbody>" + "".join(marked)


def _numbers(column: pd.Series) -> bool:
    """Whether a column holds numbers only (blanks aside)."""
    shown = [str(v) for v in column if not (pd.isna(v) or str(v) in ("", "–"))]
    return bool(shown) and all(NUMBER.fullmatch(v) for v in shown)


def _align_numbers(text: str, numeric: list[bool]) -> str:
    """``text`` (a table's HTML) with the cells of the ``numeric`` columns marked for right alignment."""
    def row(match: re.Match) -> str:
        flags = iter(numeric)
        return re.sub("<td>", lambda _: "<td class='number'>" if next(flags, False) else "<td>", match.group(0))

    return re.sub(r"<tr[^>]*>.*?</tr>", row, text, flags=re.S)


def _missing(title: str, sentence: str) -> str:
    return f"<h2>{html.escape(title)}</h2><p><i>{html.escape(sentence)}</i></p>"


def _provenance(experiment: loaders.Experiment, *parts: str) -> str:
    from dashboard.widgets import provenance

    return provenance(experiment, *parts)


def _comparison(experiment: loaders.Experiment, verdicts: pd.DataFrame) -> str:
    metrics, summary = loaders.load_results(experiment.root)
    if metrics.empty:
        return _missing("Model comparison (Figure 4)", "No finished runs yet: `painlens run CONFIG` trains the networks.")
    macro = metrics[metrics["class"] == "macro"]
    models = experiment.models or sorted(macro["model"].unique())
    rows = summary[summary["class"] == "macro"]
    out = ["<h2>Model comparison (Figure 4)</h2><p>Bars: every test image counted once (external: each CP-PAIN "
           "image's p(pain) averaged over the seeds first; the spread over seeds is the table's <i>AUC sd over "
           "seeds</i>). Error bars: 95 % intervals from a bootstrap over subjects. Dots: each run. Grey: a network "
           "that did not learn.</p>"]
    for metric, label in (("auc", "ROC AUC"), ("accuracy", "Accuracy")):
        out.append(_figure(charts.metric_by_network(rows, macro, metric, models, f"{label} per network and scenario",
                                                    _provenance(experiment, "95 % intervals: bootstrap over subjects"),
                                                    verdicts)))
    out.append("<p>The numbers, with F1 and the spread over folds and seeds, are in the model card's metrics table "
               "above and in the dashboard's comparison page.</p>")
    return "".join(out)


def _remedies(experiment: loaders.Experiment, verdicts: pd.DataFrame) -> str:
    """The person's baseline and cp_adapt against the external scenario on CP-PAIN (empty before they exist)."""
    from engine.evaluation.adapted_answer import serving_sentence

    remedies = loaders.load_table(experiment.root, "remedies")
    if remedies is None or remedies.empty:
        return ""
    models = experiment.models or sorted(remedies["model"].unique())
    source = _provenance(experiment, "95 % intervals: bootstrap over CP-PAIN subjects")
    out = ["<h2>CP faces: the person's baseline and few-shot adaptation</h2><p>External: trained on PAIN-DB only. "
           "+ baseline: each face judged against the same person's calm frames of their other videos (rule fitted on "
           "PAIN-DB's subject-wise held-out faces only). cp_adapt: the external model fine-tuned on the other CP-PAIN "
           f"subjects, tested on the one left out. {html.escape(serving_sentence(loaders.load_answer(experiment.root)))}</p>"]
    out.append(_figure(charts.remedies(remedies, "auc", models, "ROC AUC on CP-PAIN: external, baseline, adaptation", source)))
    out.append(_table(tables.remedies(remedies, models).drop(columns=["rule"]).round(3)))
    curve = loaders.load_table(experiment.root, "adapt_curve")
    if curve is not None and len(curve):
        out.append(_figure(charts.adapt_curve(curve, "accuracy", "cp_adapt: accuracy against the CP-PAIN subjects adapted on",
                                              source)))
    return "".join(out)


def _per_class(experiment: loaders.Experiment, verdicts: pd.DataFrame) -> str:
    metrics = loaders.load_metrics(experiment.root)
    external = metrics[metrics["scenario"] == "external"] if not metrics.empty else metrics
    if external.empty:
        return _missing("Per class on CP-PAIN (Figure 5)", "No finished external-scenario runs yet.")
    models = experiment.models or sorted(external["model"].unique())
    return "<h2>Per class on CP-PAIN (Figure 5)</h2>" + _figure(
        charts.class_metrics(external, models, "Precision and recall per class · external (CP-PAIN)",
                             _provenance(experiment), verdicts))


def _calibration(experiment: loaders.Experiment, verdicts: pd.DataFrame) -> str:
    calibration, _ = loaders.load_calibration(experiment.root)
    if calibration.empty:
        return _missing("Calibration", "No calibration yet: it needs finished subject-wise runs.")
    models = [m for m in (experiment.models or sorted(calibration["model"])) if m in set(calibration["model"])]
    return "<h2>Calibration</h2>" + _figure(charts.ece_by_network(
        calibration, models, "Expected calibration error per network", _provenance(experiment, "lower is better"),
        verdicts[verdicts["scenario"] == "external"]),
        "Temperature fitted on the subject-wise out-of-fold predictions only; the external predictions are scored, "
        "never fitted on.")


def _heatmaps(experiment: loaders.Experiment, verdicts: pd.DataFrame) -> str:
    data = loaders.load_heatmaps(experiment.root)
    if data is None or data.groups.empty or not (data.groups["n_images"] > 0).any():
        return _missing("Heatmaps (Figure 6)", "No heatmaps yet: `painlens explain CONFIG` writes them.")
    out = ["<h2>Heatmaps (Figure 6)</h2><p>A heatmap marked <i>did not learn</i> explains a network without a signal: "
           "it shows where that network happens to respond, not where pain shows.</p>"]
    groups = data.groups[data.groups["n_images"] > 0]
    from dashboard import scorecard
    from engine.explain.lime_masks import baseline_title

    made = scorecard.heatmap_baselines(groups)
    out.append(f"<p>{html.escape(scorecard.baseline_sentence(made))}</p>")
    outside = scorecard.outside_pain_regions(groups, {**data.arrays, **loaders.load_explainer_maps(experiment.root)})
    if len(scorecard.learned_outside(outside, verdicts)):
        out.append(f"<p>{html.escape(scorecard.outside_sentence(scorecard.learned_outside(outside, verdicts)))}</p>")
    for (scenario, dataset, label), scope in groups.groupby(["scenario", "dataset", "label"]):
        tiles = [images.overlay(images.resize(data.arrays["faces"][int(r.index)], 192), data.arrays["stretched"][int(r.index)], 0.6)
                 for r in scope.itertuples()]
        labels = [f"{r.model}{' · did not learn ·' if tables.failure(verdicts, r.model, scenario) else ''}"
                  f"{' · outside ·' if scorecard.outside_mark(outside, r.model, scenario, dataset, 'lime') else ''} (n={r.n_images})"
                  for r in scope.itertuples()]  # the marks first: a tile's label is cut to its width
        class_name = charts.class_title(scope["class_name"].iloc[0])
        title = f"{'CP-PAIN' if dataset == 'cppain' else 'PAIN-DB'} · {charts.SCENARIO_TITLES.get(scenario, scenario)} · {class_name}"
        out.append(_image(images.labelled_grid(tiles, labels, columns=min(5, len(tiles)), tile=192, title=title),
                          f"LIME heatmaps on the mean face (baseline: {baseline_title(made)}); {_provenance(experiment)}"))
    return "".join(out)


def _raters(experiment: loaders.Experiment, verdicts: pd.DataFrame) -> str:
    from engine.evaluation.adapted_answer import beside_note

    headline = loaders.load_ratings_table(experiment.root, "headline")
    counts = loaders.load_ratings_table(experiment.root, "counts")
    if headline is None or counts is None:
        return _missing("Rater agreement (Table 4)", "No clinician ratings in this experiment.")
    out = ("<h2>Rater agreement (Table 4)</h2><p>ICC, 95 % confidence interval and Fleiss category per scale and "
           "pain source.</p>" + _table(tables.table4(headline, counts)))
    beside = loaders.load_ratings_table(experiment.root, "answer_beside_raters")
    if beside is not None and len(beside):
        out += ("<h3>The served answer beside the clinicians</h3><p>Cohen's κ of the pain / no-pain judgement and "
                "Spearman's ρ of the scores, for each pair of raters and for the answer against each rater and their "
                "consensus, on the same videos; 95 % intervals over videos."
                f"{html.escape(beside_note(loaders.load_answer(experiment.root)))}</p>" + _table(tables.beside_raters(beside)))
    return out


def _action_units(experiment: loaders.Experiment, verdicts: pd.DataFrame) -> str:
    from dashboard import action_units

    evaluation = loaders.load_table(experiment.root, "action_units")
    if evaluation is None or evaluation.empty:
        return _missing("Action units", "No action-unit estimator in this experiment: `painlens run CONFIG` fits one on "
                                        "UNBC's FACS-coded frames.")
    first = evaluation.iloc[0]
    out = ["<h2>Action units</h2>",
           f"<p>The six pain action units and PSPI estimated from the face crops (region HOG and a linear head, learned "
           f"on UNBC only), evaluated with {int(first['folds'])} subject-wise folds over UNBC: ICC(3,1), mean absolute "
           f"error and F1 of occurrence, each with its 95 % interval over subjects "
           f"({int(first['bootstrap_resamples'])} resamples); {html.escape(_provenance(experiment))}.</p>",
           _table(action_units.evaluation_table(evaluation))]
    raters = loaders.load_table(experiment.root, "action_unit_raters")
    if raters is not None and not raters.empty:
        out += [f"<h3>The model as a third rater (CP-PAIN, FACS pain score)</h3><p>{html.escape(raters['form'].iloc[0])} "
                "with its 95 % CI and the number of videos, in Table 4's layout: the clinicians' agreement with each "
                "other beside the model's with each of them and with their mean (the model scores each video's pain "
                "frame; its AU43 is 0 or 1).</p>", _table(action_units.rater_table(raters))]
    return "".join(out)
