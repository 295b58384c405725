"""Pure chart builders: pandas frames in, Altair charts out (no Streamlit, no file access).

Made to be read on a projector: large type, thick marks, and colours from the Okabe-Ito palette,
which people with the common colour-vision deficiencies can tell apart; sequential maps are viridis /
cividis and the diverging one (ratios, differences) blue-orange. Every builder returns a fully
configured top-level chart, so the same object is shown in the app and exported to PNG/SVG.
"""

from __future__ import annotations

import functools

import altair as alt
import numpy as np
import pandas as pd

from engine.config import SCENARIO_NAMES
from engine.evaluation.bootstrap import MIN_SUBJECTS, sample_size

# Okabe & Ito (2008): distinguishable with protanopia, deuteranopia and tritanopia.
OKABE_ITO = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#56B4E9", "#CC79A7", "#F0E442", "#000000")
CLASS_COLOURS = {"no pain": "#0072B2", "pain": "#D55E00"}
SCENARIO_ORDER = SCENARIO_NAMES  # the engine's one list (the paper's order), not a copy
SCENARIO_TITLES = {"image": "Image-wise", "subject": "Subject-wise", "external": "External (CP-PAIN)",
                   "cp_adapt": "CP-adapted (CP-PAIN, leave one subject out)"}
REMEDY_COLOURS = {"external": "#0072B2", "external + baseline": "#56B4E9", "cp_adapt": "#D55E00",
                  "cp_adapt + baseline": "#E69F00"}
BEST_COLOUR, OTHER_COLOUR = "#D55E00", "#0072B2"
FONT_SIZE, TITLE_SIZE = 15, 18


def style(chart: alt.TopLevelMixin, title: str = "", subtitle: str | list[str] = "") -> alt.TopLevelMixin:
    """Projector-friendly fonts and a title (with the data's provenance as subtitle)."""
    if title:
        extra = {"subtitle": subtitle} if subtitle else {}
        chart = chart.properties(title=alt.TitleParams(title, anchor="start", fontSize=TITLE_SIZE,
                                                       subtitleFontSize=FONT_SIZE - 1, **extra))
    # "pad": the chart keeps the size it asks for; Streamlit's default "fit" squeezes layered charts
    # with legends into their width, which crushes their plotting area.
    chart = chart.properties(autosize=alt.AutoSizeParams(type="pad", contains="padding"))
    return (chart.configure(font="DejaVu Sans", background="white")
            .configure_axis(labelFontSize=FONT_SIZE - 1, titleFontSize=FONT_SIZE, labelLimit=220, gridColor="#dddddd")
            .configure_legend(labelFontSize=FONT_SIZE - 1, titleFontSize=FONT_SIZE, symbolSize=180, orient="bottom")
            .configure_header(labelFontSize=FONT_SIZE, titleFontSize=FONT_SIZE)
            .configure_view(strokeWidth=0))


def _scenario_label(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.assign(scenario_title=frame["scenario"].map(SCENARIO_TITLES).fillna(frame["scenario"]))


def _scenario_titles(scenarios) -> list[str]:
    return [SCENARIO_TITLES.get(s, s) for s in SCENARIO_ORDER if s in set(scenarios)]


def class_title(name: str) -> str:
    return str(name).replace("_", " ")


# --- networks that did not learn: greyed on every chart (one helper) -------------------------------

NOT_LEARNED = "did not learn"
NOT_LEARNED_COLOUR = "#B8B8B8"
GREY_NOTE = (f"grey: a network that did not learn (AUC not above 0.5 after Holm's correction over the scenario's "
             f"networks, fewer than {MIN_SUBJECTS} subjects, or one class for every image)")


def with_verdicts(frame: pd.DataFrame, verdicts: pd.DataFrame | None) -> pd.DataFrame:
    """``frame`` (rows with ``model``, and ``scenario`` when the verdicts depend on it) with ``learned``
    (True where nothing is known: only a known failure is greyed), ``learning`` (a few words for
    tooltips) and ``network`` (the model's axis label, marked when it did not learn).

    ``verdicts``: ``tables.network_verdicts`` rows (model, scenario, learned, reason); when ``frame`` has
    no scenario column, pass the verdicts of the one scenario it shows."""
    out = frame.drop(columns=["learned", "learning", "network"], errors="ignore")
    if verdicts is None or verdicts.empty:
        return out.assign(learned=True, learning="", network=out["model"].astype(str))
    keys = ["model", "scenario"] if "scenario" in out and "scenario" in verdicts else ["model"]
    known = verdicts.drop_duplicates(keys)[[*keys, "learned", "reason"]]
    out = out.merge(known, on=keys, how="left")
    failed = out["learned"].eq(False)
    out["learned"] = ~failed
    out["learning"] = np.where(failed, NOT_LEARNED + ": " + out["reason"].fillna("").astype(str),
                               np.where(out["reason"].notna(), "learned", ""))
    out["network"] = np.where(failed, out["model"].astype(str) + f" ({NOT_LEARNED})", out["model"].astype(str))
    return out.drop(columns=["reason"])


def greyed(colour) -> alt.condition:
    """``colour`` (an encoding or a value) for networks that learned, grey for those that did not
    (rows carry ``learned`` from ``with_verdicts``)."""
    if isinstance(colour, str):
        colour = alt.value(colour)
    return alt.condition("datum.learned", colour, alt.value(NOT_LEARNED_COLOUR))


def grey_note(subtitle: str | list[str], frame: pd.DataFrame) -> list[str]:
    """The subtitle lines, with the grey's meaning added when ``frame`` greys a network."""
    lines = [subtitle] if isinstance(subtitle, str) else list(subtitle or [])
    lines = [line for line in lines if line]
    return [*lines, GREY_NOTE] if "learned" in frame and (~frame["learned"].astype(bool)).any() else lines


def network_order(frame: pd.DataFrame, models: list[str]) -> list[str]:
    """Axis labels (``network``) in the plan's order of their models."""
    rank = {m: i for i, m in enumerate(models)}
    pairs = frame[["model", "network"]].drop_duplicates()
    pairs = pairs.assign(_r=pairs["model"].map(rank).fillna(len(rank))).sort_values(["_r", "model", "network"])
    return list(dict.fromkeys(pairs["network"]))


# --- overview -------------------------------------------------------------------------------------

def dataset_counts(counts: pd.DataFrame, title: str = "Images per dataset and class", subtitle: str = "") -> alt.Chart:
    """Stacked bars from a frame with columns dataset, class ("pain" / "no pain"), images."""
    chart = alt.Chart(counts).mark_bar().encode(
        y=alt.Y("dataset:N", title=None, sort=list(dict.fromkeys(counts["dataset"]))),
        x=alt.X("images:Q", title="images"),
        color=alt.Color("class:N", title="class", scale=alt.Scale(domain=list(CLASS_COLOURS),
                                                                  range=list(CLASS_COLOURS.values()))),
        tooltip=["dataset", "class", "images"],
    ).properties(width=520, height=alt.Step(38))
    return style(chart, title, subtitle)


def run_progress(status: pd.DataFrame, title: str = "Runs finished / planned", subtitle: str = "") -> alt.Chart:
    """Grid network x scenario, text "done/planned", colour = share finished (from loaders.run_status)."""
    grid = (status.groupby(["model", "scenario"], sort=False)
            .agg(done=("done", "sum"), planned=("done", "size")).reset_index())
    grid["share"] = grid["done"] / grid["planned"]
    grid["label"] = grid["done"].astype(int).astype(str) + " / " + grid["planned"].astype(str)
    grid = _scenario_label(grid)
    base = alt.Chart(grid).encode(
        x=alt.X("scenario_title:N", title=None, sort=_scenario_titles(grid["scenario"]), axis=alt.Axis(labelAngle=0, orient="top")),
        y=alt.Y("model:N", title=None, sort=list(dict.fromkeys(status["model"]))),
    )
    cells = base.mark_rect(stroke="white", strokeWidth=2).encode(
        color=alt.Color("share:Q", title="finished", scale=alt.Scale(scheme="viridis", domain=[0, 1]),
                        legend=alt.Legend(format="%")),
        tooltip=["model", "scenario", "done", "planned"])
    text = base.mark_text(fontSize=FONT_SIZE, fontWeight="bold").encode(
        text="label:N", color=alt.condition("datum.share > 0.6", alt.value("black"), alt.value("white")))
    return style(alt.layer(cells, text).properties(width=alt.Step(190), height=alt.Step(34)), title, subtitle)


# --- model comparison (Figure 4) ------------------------------------------------------------------

# The metrics with bootstrap intervals: summary column -> (axis title, the per-run column of metrics).
INTERVAL_METRICS = {"auc": ("ROC AUC", "roc_auc"), "accuracy": ("accuracy", "accuracy")}


def best_models(summary: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Per scenario the network with the highest pooled ``metric`` among those that learned (ties: first
    by name); a scenario where none learned has no best. ``summary``: one row per (model, scenario)."""
    rows = summary[summary["learned"].astype(bool)] if "learned" in summary else summary
    idx = rows.sort_values(["scenario", metric, "model"], ascending=[True, False, True]).groupby("scenario").head(1)
    return idx[["scenario", "model", metric]].rename(columns={metric: "best_value"})


def metric_by_network(summary: pd.DataFrame, per_run: pd.DataFrame, metric: str, models: list[str], title: str,
                      subtitle: str | list[str] = "", verdicts: pd.DataFrame | None = None) -> alt.Chart:
    """Figure 4 with intervals: per network and scenario the pooled ``metric`` ("auc" or "accuracy": every
    test image once; external: p(pain) averaged over seeds) as a bar, its 95 % interval from the bootstrap
    over subjects as the error bar, and each run's own value as a dot; the best network that learned in
    vermillion, networks that did not learn in grey. A dashed line marks chance for the AUC.

    ``summary``: macro rows, one per (model, scenario), with ``metric``, ``{metric}_low``, ``{metric}_high``;
    ``per_run``: metrics macro rows (model, scenario, fold and the per-run column)."""
    label, run_column = INTERVAL_METRICS[metric]
    rows = summary.drop_duplicates(["model", "scenario"])
    best = best_models(rows, metric)
    frame = with_verdicts(rows.merge(best[["scenario", "model"]].assign(best=True), on=["scenario", "model"], how="left"), verdicts)
    frame["best"] = np.where(frame["best"].eq(True), "best in scenario", "other networks")
    frame = _scenario_label(frame.rename(columns={metric: "value", f"{metric}_low": "low", f"{metric}_high": "high"}))
    frame["n"] = ([sample_size(i, s) for i, s in zip(frame["n_images"], frame["n_subjects"])]
                  if "n_images" in frame else "")  # a summary of an older engine has no n
    runs = _scenario_label(with_verdicts(per_run[["model", "scenario", "fold", run_column]], verdicts))
    order = network_order(frame, models)
    panels = [_interval_panel(frame[frame["scenario_title"] == t], runs[runs["scenario_title"] == t], metric, order, i == 0)
              .properties(width=max(160, 34 * len(models)), height=300, title=_panel_title(t, frame))
              for i, t in enumerate(_scenario_titles(frame["scenario"]))]
    chart = alt.hconcat(*panels).resolve_scale(x="independent")  # each scenario marks its own networks
    return style(chart, title, grey_note(subtitle, frame))


def _panel_title(scenario_title: str, frame: pd.DataFrame) -> str | list[str]:
    """A scenario panel's title, with the n its bars rest on when every network there shares it (the
    usual case: one test set per scenario), marked when few."""
    sizes = set(frame.loc[frame["scenario_title"] == scenario_title, "n"]) - {""}
    return [scenario_title, sizes.pop()] if len(sizes) == 1 else scenario_title


def _interval_panel(frame: pd.DataFrame, runs: pd.DataFrame, metric: str, order: list[str], first: bool) -> alt.LayerChart:
    label, run_column = INTERVAL_METRICS[metric]
    x = alt.X("network:N", title=None, sort=order, axis=alt.Axis(labelAngle=-45))
    y = alt.Y("value:Q", title=f"{label} (95 % interval over subjects)" if first else None, scale=alt.Scale(domain=[0, 1]))
    colour = alt.Color("best:N", title=None, scale=alt.Scale(domain=["best in scenario", "other networks"],
                                                             range=[BEST_COLOUR, OTHER_COLOUR]))
    bars = alt.Chart(frame).mark_bar(opacity=0.9).encode(
        x=x, y=y, color=greyed(colour),
        tooltip=["model", alt.Tooltip("value:Q", format=".3f", title=label), alt.Tooltip("low:Q", format=".3f"),
                 alt.Tooltip("high:Q", format=".3f"), "n", "learning", "pooling"])
    errors = alt.Chart(frame).mark_rule(color="black", strokeWidth=2).encode(x=x, y="low:Q", y2="high:Q")
    dots = alt.Chart(runs).mark_circle(size=40, color="black", opacity=0.55).encode(
        x=x, y=f"{run_column}:Q", tooltip=["model", "fold", alt.Tooltip(f"{run_column}:Q", format=".3f", title="this run")])
    layers = [bars, errors, dots]
    if metric == "auc":  # chance
        layers.insert(1, alt.Chart(frame).mark_rule(strokeDash=[5, 4], color="#555555").encode(y=alt.datum(0.5)))
    return alt.layer(*layers)


# --- per class (Figure 5), confusion, ROC ---------------------------------------------------------

def class_metrics(per_fold: pd.DataFrame, models: list[str], title: str, subtitle: str | list[str] = "",
                  verdicts: pd.DataFrame | None = None) -> alt.Chart:
    """Figure 5: precision and recall of each class per network (mean ± std over runs); networks that
    did not learn in grey.

    ``per_fold``: metrics rows of one scenario with class in {no_pain, pain}."""
    rows = with_verdicts(per_fold[per_fold["class"].isin(["no_pain", "pain"])], verdicts)
    long = rows.melt(id_vars=["model", "network", "learned", "learning", "fold", "class"],
                     value_vars=["precision", "recall"], var_name="metric")
    long["class"] = long["class"].map(class_title)
    order = network_order(long, models)
    x = alt.X("network:N", title=None, sort=order, axis=alt.Axis(labelAngle=-45))
    offset = alt.XOffset("class:N", sort=list(CLASS_COLOURS))
    colour = alt.Color("class:N", title="class", scale=alt.Scale(domain=list(CLASS_COLOURS), range=list(CLASS_COLOURS.values())))
    # ``learned`` is a detail (a group-by field) so that the aggregated bars keep it for greyed().
    bars = alt.Chart().mark_bar().encode(x=x, xOffset=offset, color=greyed(colour), detail="learned:N",
                                         y=alt.Y("mean(value):Q", title=None, scale=alt.Scale(domain=[0, 1])),
                                         tooltip=["model", "class", alt.Tooltip("mean(value):Q", format=".3f", title="mean"),
                                                  alt.Tooltip("stdev(value):Q", format=".3f", title="std"), "learning"])
    errors = alt.Chart().mark_errorbar(extent="stdev", color="black", thickness=1.5, clip=True).encode(
        x=x, xOffset=offset, y=alt.Y("value:Q", title=None))
    chart = alt.layer(bars, errors, data=long).properties(width=max(200, 56 * len(order)), height=260).facet(
        row=alt.Row("metric:N", title=None, header=alt.Header(labelAngle=0, labelAlign="left", labelFontWeight="bold")))
    return style(chart, title, grey_note(subtitle, rows))


def confusion_counts(predictions: pd.DataFrame) -> pd.DataFrame:
    """Counts and row shares of (true, predicted) class over the given predictions."""
    names = {0: "no pain", 1: "pain"}
    rows = []
    for true in (0, 1):
        of_class = predictions[predictions["true_label"] == true]
        for predicted in (0, 1):
            n = int((of_class["predicted_label"] == predicted).sum())
            rows.append({"true": names[true], "predicted": names[predicted], "images": n,
                         "share": n / len(of_class) if len(of_class) else np.nan})
    return pd.DataFrame(rows)


def confusion_matrix(predictions: pd.DataFrame, title: str, subtitle: str = "") -> alt.Chart:
    """2 x 2 matrix of counts (summed over the runs given), each cell with its share of the true class."""
    counts = confusion_counts(predictions)
    counts["label"] = [f"{n}\n({s:.0%})" if np.isfinite(s) else str(n) for n, s in zip(counts["images"], counts["share"])]
    base = alt.Chart(counts).encode(
        x=alt.X("predicted:N", title="predicted", sort=["no pain", "pain"], axis=alt.Axis(labelAngle=0, orient="top")),
        y=alt.Y("true:N", title="true", sort=["no pain", "pain"]))
    cells = base.mark_rect(stroke="white", strokeWidth=3).encode(
        color=alt.Color("share:Q", scale=alt.Scale(scheme="cividis", domain=[0, 1]), title="share of true class",
                        legend=alt.Legend(format="%")), tooltip=["true", "predicted", "images", alt.Tooltip("share:Q", format=".1%")])
    text = base.mark_text(fontSize=FONT_SIZE + 3, fontWeight="bold", lineBreak="\n").encode(
        text="label:N", color=alt.condition("datum.share > 0.5", alt.value("black"), alt.value("white")))
    return style(alt.layer(cells, text).properties(width=alt.Step(130), height=alt.Step(110)), title, subtitle)


def roc_points(y_true: np.ndarray, scores: np.ndarray) -> pd.DataFrame:
    """ROC curve (fpr, tpr) with its AUC, by sorting scores (ties kept together); empty for one class."""
    y_true = np.asarray(y_true, dtype=int)
    scores = np.asarray(scores, dtype=float)
    positives, negatives = int(y_true.sum()), int(len(y_true) - y_true.sum())
    if positives == 0 or negatives == 0:
        return pd.DataFrame(columns=["fpr", "tpr", "auc"])
    order = np.argsort(-scores, kind="stable")
    sorted_scores, sorted_true = scores[order], y_true[order]
    last_of_tie = np.r_[np.flatnonzero(np.diff(sorted_scores)), len(sorted_scores) - 1]
    tps = np.cumsum(sorted_true)[last_of_tie]
    fps = (last_of_tie + 1) - tps
    tpr = np.r_[0.0, tps / positives]
    fpr = np.r_[0.0, fps / negatives]
    auc = float(np.trapezoid(tpr, fpr))
    return pd.DataFrame({"fpr": fpr, "tpr": tpr, "auc": auc})


def roc_curves(predictions: pd.DataFrame, models: list[str], title: str, subtitle: str | list[str] = "",
               verdicts: pd.DataFrame | None = None) -> alt.Chart:
    """ROC per network and scenario, one small panel per network; each image once, as in the summary's
    AUC (folds pooled; external: p(pain) averaged over the seeds). Scenarios where the network did not
    learn in grey."""
    from engine.evaluation.bootstrap import pooled_images

    curves = []
    for (model, scenario), group in pooled_images(predictions).groupby(["model", "scenario"]):
        points = roc_points(group["true_label"], group["p_pain"])
        if len(points):
            curves.append(points.assign(model=model, scenario=scenario))
    if not curves:
        return style(alt.Chart(pd.DataFrame({"t": ["Both classes are needed for a ROC curve."]}))
                     .mark_text(fontSize=FONT_SIZE).encode(text="t:N"), title, subtitle)
    frame = with_verdicts(_scenario_label(pd.concat(curves, ignore_index=True)), verdicts)
    order = [m for m in models if m in set(frame["model"])]
    titles = _scenario_titles(frame["scenario"])
    colour = alt.Color("scenario_title:N", title="scenario", sort=titles,
                       scale=alt.Scale(domain=titles, range=list(OKABE_ITO[:len(titles)])))
    lines = alt.Chart().mark_line(strokeWidth=3, interpolate="step-after").encode(
        x=alt.X("fpr:Q", title="false positive rate", scale=alt.Scale(domain=[0, 1])),
        y=alt.Y("tpr:Q", title="true positive rate", scale=alt.Scale(domain=[0, 1])),
        color=greyed(colour), detail="scenario_title:N",
        tooltip=["model", "scenario_title", alt.Tooltip("auc:Q", format=".3f"), "learning"])
    diagonal = alt.Chart().mark_rule(strokeDash=[4, 4], color="#888888").encode(
        x=alt.datum(0), y=alt.datum(0), x2=alt.datum(1), y2=alt.datum(1))
    # Independent axes: each panel draws its own, instead of a footer row of axes under empty cells.
    chart = alt.layer(diagonal, lines, data=frame).properties(width=190, height=190).facet(
        facet=alt.Facet("model:N", title=None, sort=order), columns=5).resolve_axis(x="independent", y="independent")
    return style(chart, title, grey_note(subtitle, frame))


# --- heatmap statistics ---------------------------------------------------------------------------

def region_grid(regions: pd.DataFrame, models: list[str], title: str, subtitle: str | list[str] = "",
                verdicts: pd.DataFrame | None = None) -> alt.Chart:
    """Networks x face regions: heatmap mass share / area share (1 = no preference), diverging colour;
    a network that did not learn is marked on its row label.

    ``regions``: region_scores rows of one scope (columns model, region, aus, share, area_share, ratio)."""
    frame = with_verdicts(regions, verdicts)
    frame["region_label"] = frame["region"].str.replace("_", " / ") + np.where(frame["aus"].fillna("") != "", " (" + frame["aus"].fillna("") + ")", "")
    order = network_order(frame, models)
    region_order = list(dict.fromkeys(frame.sort_values("region")["region_label"]))
    base = alt.Chart(frame).encode(
        x=alt.X("region_label:N", title=None, sort=region_order, axis=alt.Axis(labelAngle=-30, orient="top")),
        y=alt.Y("network:N", title=None, sort=order))
    cells = base.mark_rect(stroke="white", strokeWidth=2).encode(
        color=alt.Color("ratio:Q", title="mass share / area share",
                        scale=alt.Scale(scheme="blueorange", domainMid=1, domain=[0, max(2.0, float(np.nanmax(frame["ratio"])) if len(frame) else 2)])),
        tooltip=["model", "region", "aus", alt.Tooltip("share:Q", format=".1%"), alt.Tooltip("area_share:Q", format=".1%"),
                 alt.Tooltip("ratio:Q", format=".2f"), "learning"])
    text = base.mark_text(fontSize=FONT_SIZE - 2).encode(text=alt.Text("share:Q", format=".0%"))
    return style(alt.layer(cells, text).properties(width=alt.Step(92), height=alt.Step(30)), title, subtitle)


def similarity_matrix(similarity: pd.DataFrame, order: list[str], pretrained: dict[str, bool], title: str,
                      subtitle: str | list[str] = "", verdicts: pd.DataFrame | None = None) -> alt.Chart:
    """Pearson's r between networks' heatmaps, in dendrogram order; labels mark pretrained networks and
    those that did not learn (``verdicts``: one row per model for the heatmaps compared)."""
    frame = similarity.copy()
    failed = set() if verdicts is None or verdicts.empty else set(verdicts.loc[~verdicts["learned"].astype(bool), "model"])

    def label(model: str) -> str:
        kind = "pretrained" if pretrained.get(model) else "scratch"
        return f"{model} ({kind}{', ' + NOT_LEARNED if model in failed else ''})"

    frame["a"], frame["b"] = frame["model_a"].map(label), frame["model_b"].map(label)
    sort = [label(m) for m in order]
    base = alt.Chart(frame).encode(x=alt.X("a:N", title=None, sort=sort, axis=alt.Axis(labelAngle=-45)),
                                   y=alt.Y("b:N", title=None, sort=sort))
    cells = base.mark_rect(stroke="white").encode(
        color=alt.Color("correlation:Q", title="Pearson r", scale=alt.Scale(scheme="blueorange", domain=[-1, 1])),
        tooltip=["model_a", "model_b", alt.Tooltip("correlation:Q", format=".2f")])
    text = base.mark_text(fontSize=FONT_SIZE - 3).encode(text=alt.Text("correlation:Q", format=".2f"))
    return style(alt.layer(cells, text).properties(width=alt.Step(58), height=alt.Step(30)), title, subtitle)


# --- raters ---------------------------------------------------------------------------------------

FLEISS_LIMITS = (0.40, 0.75)


def icc_intervals(headline: pd.DataFrame, title: str, subtitle: str = "") -> alt.Chart:
    """Table 4 as a chart: ICC per pain source and scale with its 95 % CI; dashed lines at Fleiss's
    0.40 and 0.75 category limits. ``headline`` has scale_label, source_label, icc, ci_low, ci_high, category."""
    frame = headline.dropna(subset=["icc"])
    y = alt.Y("source_label:N", title=None, sort=list(dict.fromkeys(frame["source_label"])))
    x_scale = alt.Scale(domain=[min(-0.2, float(frame["ci_low"].min()) if len(frame) else 0), 1])
    points = alt.Chart().mark_point(filled=True, size=160, color="#0072B2").encode(
        x=alt.X("icc:Q", title="ICC (95 % CI)", scale=x_scale), y=y,
        tooltip=["scale_label", "source_label", alt.Tooltip("icc:Q", format=".3f"), alt.Tooltip("ci_low:Q", format=".2f"),
                 alt.Tooltip("ci_high:Q", format=".2f"), "category", "n_videos"])
    intervals = alt.Chart().mark_rule(strokeWidth=3, color="#0072B2").encode(x="ci_low:Q", x2="ci_high:Q", y=y)
    limits = alt.Chart().mark_rule(strokeDash=[5, 4], color="#D55E00", strokeWidth=2).encode(x=alt.datum(FLEISS_LIMITS[0]))
    limits_hi = alt.Chart().mark_rule(strokeDash=[5, 4], color="#009E73", strokeWidth=2).encode(x=alt.datum(FLEISS_LIMITS[1]))
    chart = alt.layer(limits, limits_hi, intervals, points, data=frame).properties(width=520, height=alt.Step(34)).facet(
        row=alt.Row("scale_label:N", title=None, sort=list(dict.fromkeys(frame["scale_label"])), header=alt.Header(labelAngle=0, labelAlign="left", labelFontWeight="bold")))
    return style(chart, title, subtitle or "dashed: Fleiss limits 0.40 (low | fair/good) and 0.75 (fair/good | excellent)")


def rated_counts(counts: pd.DataFrame, title: str, subtitle: str = "") -> alt.Chart:
    """Videos rated no pain / pain per scale and pain source (counts: scale_label, source_label, class, videos)."""
    chart = alt.Chart(counts).mark_bar().encode(
        y=alt.Y("source_label:N", title=None, sort=list(dict.fromkeys(counts["source_label"]))),
        x=alt.X("videos:Q", title="videos"),
        color=alt.Color("class:N", title="rated", scale=alt.Scale(domain=list(CLASS_COLOURS), range=list(CLASS_COLOURS.values()))),
        row=alt.Row("scale_label:N", title=None, sort=list(dict.fromkeys(counts["scale_label"])),
                    header=alt.Header(labelAngle=0, labelAlign="left", labelFontWeight="bold")),
        tooltip=["scale_label", "source_label", "class", "videos"],
    ).properties(width=460, height=alt.Step(28))
    return style(chart, title, subtitle)


def model_agreement(summary: pd.DataFrame, metric: str, models: list[str], title: str, subtitle: str | list[str] = "",
                    verdicts: pd.DataFrame | None = None) -> alt.Chart:
    """Per network: mean ``metric`` (spearman_rho / roc_auc / kappa) against each clinician scale, ± std;
    networks that did not learn (``verdicts`` of the external scenario) in grey."""
    frame = with_verdicts(summary, verdicts)
    frame["low"] = frame[f"{metric}_mean"] - frame[f"{metric}_std"].fillna(0)
    frame["high"] = frame[f"{metric}_mean"] + frame[f"{metric}_std"].fillna(0)
    order = network_order(frame, models)
    scales = list(dict.fromkeys(frame["scale_label"]))
    x = alt.X("network:N", title=None, sort=order, axis=alt.Axis(labelAngle=-45))
    offset = alt.XOffset("scale_label:N", sort=scales)
    colour = alt.Color("scale_label:N", title="clinician scale", sort=scales,
                       scale=alt.Scale(domain=scales, range=list(OKABE_ITO[:len(scales)])))
    names = {"spearman_rho": "Spearman ρ (p(pain) vs score)", "roc_auc": "ROC AUC (vs rated pain)", "kappa": "Cohen's κ"}
    bars = alt.Chart().mark_bar().encode(x=x, xOffset=offset, color=greyed(colour), y=alt.Y(f"{metric}_mean:Q", title=names.get(metric, metric)),
                                         tooltip=["model", "scale_label", alt.Tooltip(f"{metric}_mean:Q", format=".3f"),
                                                  alt.Tooltip(f"{metric}_std:Q", format=".3f"), "runs", "learning"])
    errors = alt.Chart().mark_rule(color="black", strokeWidth=1.5, clip=True).encode(x=x, xOffset=offset, y="low:Q", y2="high:Q")
    chart = alt.layer(bars, errors, data=frame).properties(width=max(260, 52 * len(order)), height=300)
    return style(chart, title, grey_note(subtitle, frame))


# --- one image ------------------------------------------------------------------------------------

def probabilities(frame: pd.DataFrame, title: str, subtitle: str | list[str] = "",
                  verdicts: pd.DataFrame | None = None) -> alt.Chart:
    """p(pain) per network as dots with an uncertainty band (low-high over seeds, when several) and the
    0.5 line; networks that did not learn (``verdicts`` of the external scenario) in grey and marked.
    ``frame``: model, p_pain, low, high (NaN when one seed)."""
    data = with_verdicts(frame, verdicts)
    data = data.assign(verdict=np.where(data["p_pain"] >= 0.5, "p ≥ 0.5 (pain)", "p < 0.5 (no pain)"))
    chart = _probabilities_layout(tuple(data["network"]), title, tuple(grey_note(subtitle, data))).copy(deep=False)
    chart.data = data
    return chart


@functools.lru_cache(maxsize=64)
def _probabilities_layout(order: tuple[str, ...], title: str, subtitle: tuple[str, ...]) -> alt.LayerChart:
    """``probabilities``'s chart without its data. Altair validates every encoding as it is built (0.17 s
    for this chart on a 2-core CPU, a sixth of the upload page's answer), and from one photo to the next
    only the probabilities change; callers copy it and set the data (never change the cached one)."""
    order = list(order)
    y = alt.Y("network:N", title=None, sort=order)
    x = alt.X("p_pain:Q", title="p(pain)", scale=alt.Scale(domain=[0, 1]))
    half = alt.Chart().mark_rule(color="#888888", strokeDash=[3, 3]).encode(x=alt.datum(0.5))
    band = alt.Chart().mark_rule(strokeWidth=10, opacity=0.8).encode(x="low:Q", x2="high:Q", y=y, color=greyed("#56B4E9"))
    colour = alt.Color("verdict:N", title=None, scale=alt.Scale(domain=["p ≥ 0.5 (pain)", "p < 0.5 (no pain)"],
                                                              range=[CLASS_COLOURS["pain"], CLASS_COLOURS["no pain"]]))
    dots = alt.Chart().mark_point(filled=True, size=220).encode(
        x=x, y=y, color=greyed(colour),
        tooltip=["model", alt.Tooltip("p_pain:Q", format=".3f"), alt.Tooltip("low:Q", format=".3f"),
                 alt.Tooltip("high:Q", format=".3f"), "learning"])
    text = alt.Chart().mark_text(align="left", dx=12, fontSize=FONT_SIZE - 1).encode(
        x=x, y=y, text=alt.Text("p_pain:Q", format=".2f"))
    chart = alt.layer(half, band, dots, text).properties(width=480, height=alt.Step(34))
    return style(chart, title, list(subtitle))


# --- calibration ----------------------------------------------------------------------------------

CALIBRATION_COLOURS = {"raw": "#0072B2", "temperature-scaled": "#E69F00"}


def reliability_diagram(reliability: pd.DataFrame, title: str, subtitle: str | list[str] = "",
                        verdicts: pd.DataFrame | None = None) -> alt.Chart:
    """One network's reliability diagrams: per prediction set (subject-wise out-of-fold, external) the
    share of pain images against the mean p(pain) of each bin, raw and temperature-scaled; the diagonal
    is perfect calibration, a dot's size its images. ``reliability``: the store's reliability rows of one
    model (empty bins are left out); grey when the network did not learn (``verdicts``)."""
    frame = with_verdicts(reliability[reliability["images"] > 0], verdicts)
    frame["version"] = np.where(frame["calibrated"].astype(bool), "temperature-scaled", "raw")
    order = ["subject-wise out-of-fold", "external (CP-PAIN)"]  # fitted on, then tested on
    sets = [s for s in order if s in set(frame["predictions"])] + sorted(set(frame["predictions"]) - set(order))
    colour = alt.Color("version:N", title=None, scale=alt.Scale(domain=list(CALIBRATION_COLOURS),
                                                                range=list(CALIBRATION_COLOURS.values())))
    x = alt.X("mean_p_pain:Q", title="mean p(pain) in the bin", scale=alt.Scale(domain=[0, 1]))
    y = alt.Y("pain_share:Q", title="share of pain images", scale=alt.Scale(domain=[0, 1]))
    tooltip = ["version", alt.Tooltip("bin_low:Q", format=".1f"), alt.Tooltip("bin_high:Q", format=".1f"), "images",
               alt.Tooltip("mean_p_pain:Q", format=".3f"), alt.Tooltip("pain_share:Q", format=".3f"), "learning"]
    diagonal = alt.Chart().mark_rule(strokeDash=[4, 4], color="#888888").encode(
        x=alt.datum(0), y=alt.datum(0), x2=alt.datum(1), y2=alt.datum(1))
    lines = alt.Chart().mark_line(strokeWidth=2.5).encode(x=x, y=y, color=greyed(colour), detail="version:N")
    dots = alt.Chart().mark_circle(opacity=0.9).encode(
        x=x, y=y, color=greyed(colour), size=alt.Size("images:Q", title="images", scale=alt.Scale(range=[40, 500])),
        tooltip=tooltip)
    chart = alt.layer(diagonal, lines, dots, data=frame).properties(width=300, height=300).facet(
        column=alt.Column("predictions:N", title=None, sort=sets))
    return style(chart, title, grey_note(subtitle, frame))


def ece_by_network(calibration: pd.DataFrame, models: list[str], title: str, subtitle: str | list[str] = "",
                   verdicts: pd.DataFrame | None = None) -> alt.Chart:
    """Expected calibration error per network, raw and temperature-scaled, for the subject-wise
    out-of-fold and the external predictions (lower is better); networks that did not learn in grey."""
    parts = []
    for prefix, name in (("oof", "subject-wise out-of-fold"), ("external", "external (CP-PAIN)")):
        for when, version in (("before", "raw"), ("after", "temperature-scaled")):
            parts.append(calibration[["model", f"ece_{prefix}_{when}"]].rename(columns={f"ece_{prefix}_{when}": "ece"})
                         .assign(predictions=name, version=version))
    frame = with_verdicts(pd.concat(parts, ignore_index=True).dropna(subset=["ece"]), verdicts)
    order = network_order(frame, models)
    x = alt.X("network:N", title=None, sort=order, axis=alt.Axis(labelAngle=-45))
    offset = alt.XOffset("version:N", sort=list(CALIBRATION_COLOURS))
    colour = alt.Color("version:N", title=None, scale=alt.Scale(domain=list(CALIBRATION_COLOURS),
                                                                range=list(CALIBRATION_COLOURS.values())))
    bars = alt.Chart().mark_bar().encode(
        x=x, xOffset=offset, color=greyed(colour), y=alt.Y("ece:Q", title="ECE (10 bins)"),
        tooltip=["model", "predictions", "version", alt.Tooltip("ece:Q", format=".3f"), "learning"])
    chart = alt.layer(bars, data=frame).properties(width=max(200, 56 * len(order)), height=220).facet(
        row=alt.Row("predictions:N", title=None, sort=["subject-wise out-of-fold", "external (CP-PAIN)"],
                    header=alt.Header(labelAngle=0, labelAlign="left", labelFontWeight="bold")))
    return style(chart, title, grey_note(subtitle, frame))


# --- per subject ----------------------------------------------------------------------------------

DATASET_COLOURS = {"unbc": OKABE_ITO[0], "mintpain": OKABE_ITO[1], "delaware": OKABE_ITO[2], "cppain": OKABE_ITO[3]}


def subject_accuracy(subjects: pd.DataFrame, title: str, subtitle: str | list[str] = "", limit: int = 40) -> alt.Chart:
    """The ``limit`` subjects with the lowest accuracy (one network, one scenario), worst first, coloured
    by dataset, with the number of images beside each bar. ``subjects``: the store's per-subject rows."""
    frame = subjects.sort_values(["accuracy", "images", "subject"], ascending=[True, False, True]).head(limit)
    domain = [d for d in DATASET_COLOURS if d in set(frame["dataset"])] or sorted(frame["dataset"].unique())
    colour = alt.Color("dataset:N", title="dataset", scale=alt.Scale(
        domain=domain, range=[DATASET_COLOURS.get(d, OKABE_ITO[4]) for d in domain]))
    y = alt.Y("subject:N", title=None, sort=list(frame["subject"]))
    bars = alt.Chart(frame).mark_bar().encode(
        x=alt.X("accuracy:Q", title="accuracy on the subject's images", scale=alt.Scale(domain=[0, 1])), y=y, color=colour,
        tooltip=["subject", "dataset", "images", "pain_images", alt.Tooltip("accuracy:Q", format=".2f"),
                 alt.Tooltip("auc:Q", format=".2f"), alt.Tooltip("expressiveness:Q", format=".2f")])
    text = alt.Chart(frame).mark_text(align="left", dx=4, fontSize=FONT_SIZE - 3).encode(
        x="accuracy:Q", y=y, text=alt.Text("images:Q", format="d"))
    chart = alt.layer(bars, text).properties(width=460, height=alt.Step(20))
    return style(chart, title, subtitle)


def accuracy_vs_expressiveness(subjects: pd.DataFrame, title: str, subtitle: str | list[str] = "") -> alt.Chart:
    """Per subject with an expressiveness measure: accuracy against it (one panel per measure: PSPI 0-16
    and coded level 0-4 are not on one scale), dot size = images, colour = dataset."""
    frame = subjects.dropna(subset=["expressiveness"])
    if frame.empty:
        return style(alt.Chart(pd.DataFrame({"t": ["No subject here has an expressiveness measure (PSPI or a coded level)."]}))
                     .mark_text(fontSize=FONT_SIZE).encode(text="t:N"), title, subtitle)
    domain = [d for d in DATASET_COLOURS if d in set(frame["dataset"])] or sorted(frame["dataset"].unique())
    colour = alt.Color("dataset:N", title="dataset", scale=alt.Scale(
        domain=domain, range=[DATASET_COLOURS.get(d, OKABE_ITO[4]) for d in domain]))
    dots = alt.Chart().mark_circle(opacity=0.8).encode(
        x=alt.X("expressiveness:Q", title="expressiveness", scale=alt.Scale(zero=True)),
        y=alt.Y("accuracy:Q", title="accuracy", scale=alt.Scale(domain=[0, 1])), color=colour,
        size=alt.Size("images:Q", title="images", scale=alt.Scale(range=[40, 400])),
        tooltip=["subject", "dataset", "images", alt.Tooltip("accuracy:Q", format=".2f"),
                 alt.Tooltip("expressiveness:Q", format=".2f"), "expressiveness_measure"])
    chart = alt.layer(dots, data=frame).properties(width=320, height=260).facet(
        column=alt.Column("expressiveness_measure:N", title=None)).resolve_scale(x="independent")
    return style(chart, title, subtitle)


# --- CP faces: the person's baseline and few-shot adaptation ------------------------------------------

def remedies(table: pd.DataFrame, metric: str, models: list[str], title: str, subtitle: str | list[str] = "") -> alt.Chart:
    """Per network, the four ways to judge CP-PAIN faces (``engine.evaluation.remedies``): ``metric`` ("auc" or
    "accuracy") as a bar per variant with its 95 % interval over CP-PAIN subjects; chance dashed for the AUC."""
    label, _ = INTERVAL_METRICS[metric]
    table = with_remedies(table)
    frame = table.rename(columns={metric: "value", f"{metric}_low": "low", f"{metric}_high": "high"}).assign(
        n=[sample_size(i, s) for i, s in zip(table["n_images"], table["n_subjects"])])
    order = [m for m in models if m in set(frame["model"])] + sorted(set(frame["model"]) - set(models))
    variants = [v for v in REMEDY_COLOURS if v in set(frame["variant"])]
    x = alt.X("variant:N", title=None, sort=variants, axis=alt.Axis(labels=False, ticks=False))
    y = alt.Y("value:Q", title=f"{label} on CP-PAIN (95 % interval over subjects)", scale=alt.Scale(domain=[0, 1]))
    colour = alt.Color("variant:N", title=None, scale=alt.Scale(domain=variants, range=[REMEDY_COLOURS[v] for v in variants]))
    bars = alt.Chart().mark_bar().encode(x=x, y=y, color=colour, tooltip=[
        "model", "variant", alt.Tooltip("value:Q", format=".3f", title=label), alt.Tooltip("low:Q", format=".3f"),
        alt.Tooltip("high:Q", format=".3f"), "n", alt.Tooltip("with_reference:Q", title="faces with a calm reference")])
    errors = alt.Chart().mark_rule(color="black", strokeWidth=2).encode(x=x, y="low:Q", y2="high:Q")
    layers = [bars, errors]
    if metric == "auc":
        layers.append(alt.Chart().mark_rule(strokeDash=[5, 4], color="#555555").encode(y=alt.datum(0.5)))
    chart = alt.layer(*layers, data=frame).properties(width=34 * max(2, len(variants)), height=280).facet(
        column=alt.Column("model:N", title=None, sort=order, header=alt.Header(labelOrient="bottom")))
    return style(chart, title, subtitle)


def with_remedies(table: pd.DataFrame) -> pd.DataFrame:
    """The rows of the networks that have a remedy beside their external figure (the others are on Figure 4);
    all rows when none has."""
    counts = table.groupby("model")["variant"].transform("nunique")
    return table[counts > 1] if (counts > 1).any() else table


def adapt_curve(curve: pd.DataFrame, metric: str, title: str, subtitle: str | list[str] = "") -> alt.Chart:
    """cp_adapt's ``metric`` against the number of CP-PAIN subjects adapted on, per network, with its 95 % interval
    over the subjects left out as a band."""
    label, _ = INTERVAL_METRICS[metric]
    frame = curve.rename(columns={metric: "value", f"{metric}_low": "low", f"{metric}_high": "high"})
    x = alt.X("n_subjects:Q", title="CP-PAIN subjects adapted on", axis=alt.Axis(tickMinStep=1))
    # One legend for both layers (a shared scale merges them): opaque swatches, not the bands' faint ones.
    colour = alt.Color("model:N", title=None, scale=alt.Scale(range=list(OKABE_ITO)),
                       legend=alt.Legend(symbolOpacity=1, symbolType="stroke"))
    band = alt.Chart(frame).mark_area(opacity=0.18).encode(x=x, y=alt.Y("low:Q", scale=alt.Scale(domain=[0, 1])),
                                                           y2="high:Q", color=colour)
    line = alt.Chart(frame).mark_line(point=True).encode(
        x=x, y=alt.Y("value:Q", title=f"{label} (95 % interval over subjects)"), color=colour,
        tooltip=["model", "n_subjects", alt.Tooltip("value:Q", format=".3f"), alt.Tooltip("low:Q", format=".3f"),
                 alt.Tooltip("high:Q", format=".3f"), "n_images", "test_subjects"])
    layers = [band, line]
    if metric == "auc":
        layers.append(alt.Chart(frame).mark_rule(strokeDash=[5, 4], color="#555555").encode(y=alt.datum(0.5)))
    return style(alt.layer(*layers).properties(width=420, height=260), title, subtitle)
