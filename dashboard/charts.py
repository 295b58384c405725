"""Pure chart builders: pandas frames in, Altair charts out (no Streamlit, no file access).

Made to be read on a projector: large type, thick marks, and colours from the Okabe-Ito palette,
which people with the common colour-vision deficiencies can tell apart; sequential maps are viridis /
cividis and the diverging one (ratios, differences) blue-orange. Every builder returns a fully
configured top-level chart, so the same object is shown in the app and exported to PNG/SVG.
"""

from __future__ import annotations

import altair as alt
import numpy as np
import pandas as pd

from engine.config import SCENARIO_NAMES

# Okabe & Ito (2008): distinguishable with protanopia, deuteranopia and tritanopia.
OKABE_ITO = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#56B4E9", "#CC79A7", "#F0E442", "#000000")
CLASS_COLOURS = {"no pain": "#0072B2", "pain": "#D55E00"}
SCENARIO_ORDER = SCENARIO_NAMES  # the engine's one list (the paper's order), not a copy
SCENARIO_TITLES = {"image": "Image-wise", "subject": "Subject-wise", "external": "External (CP-PAIN)"}
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

def best_models(per_fold: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Per scenario the network with the highest mean ``metric`` over folds (ties: first by name)."""
    means = per_fold.groupby(["scenario", "model"])[metric].mean().reset_index()
    idx = means.sort_values(["scenario", metric, "model"], ascending=[True, False, True]).groupby("scenario").head(1)
    return idx.rename(columns={metric: "best_value"})


def metric_by_network(per_fold: pd.DataFrame, metric: str, models: list[str], title: str, subtitle: str = "") -> alt.Chart:
    """Figure 4: mean ``metric`` per network (bars) with ± one standard deviation over folds (error bars)
    and each fold (dots), one panel per scenario; the best network of each scenario in vermillion.

    ``per_fold``: one row per run (model, scenario, fold) with the metric column (macro rows)."""
    best = best_models(per_fold, metric)
    frame = per_fold.merge(best[["scenario", "model"]].assign(best=True), on=["scenario", "model"], how="left")
    frame["best"] = np.where(frame["best"].eq(True), "best in scenario", "other networks")
    frame = _scenario_label(frame)
    order = [m for m in models if m in set(frame["model"])] or sorted(frame["model"].unique())
    x = alt.X("model:N", title=None, sort=order, axis=alt.Axis(labelAngle=-45))
    y_title = metric.replace("_", " ").replace("f1", "F1 (macro)").replace("accuracy", "accuracy")
    bars = alt.Chart().mark_bar(opacity=0.9).encode(
        x=x, y=alt.Y(f"mean({metric}):Q", title=y_title, scale=alt.Scale(domain=[0, 1])),
        color=alt.Color("best:N", title=None, scale=alt.Scale(domain=["best in scenario", "other networks"],
                                                              range=[BEST_COLOUR, OTHER_COLOUR])),
        tooltip=["model", alt.Tooltip(f"mean({metric}):Q", format=".3f", title="mean"),
                 alt.Tooltip(f"stdev({metric}):Q", format=".3f", title="std"), alt.Tooltip("count():Q", title="runs")])
    errors = alt.Chart().mark_errorbar(extent="stdev", color="black", thickness=2, ticks=True, clip=True).encode(
        x=x, y=alt.Y(f"{metric}:Q", title=y_title))
    dots = alt.Chart().mark_circle(size=40, color="black", opacity=0.55).encode(
        x=x, y=f"{metric}:Q", tooltip=["model", "fold", alt.Tooltip(f"{metric}:Q", format=".3f")])
    chart = alt.layer(bars, errors, dots, data=frame).properties(width=max(160, 34 * len(order)), height=300).facet(
        column=alt.Column("scenario_title:N", title=None, sort=_scenario_titles(frame["scenario"])))
    return style(chart, title, subtitle)


# --- per class (Figure 5), confusion, ROC ---------------------------------------------------------

def class_metrics(per_fold: pd.DataFrame, models: list[str], title: str, subtitle: str = "") -> alt.Chart:
    """Figure 5: precision and recall of each class per network (mean ± std over runs).

    ``per_fold``: metrics rows of one scenario with class in {no_pain, pain}."""
    rows = per_fold[per_fold["class"].isin(["no_pain", "pain"])]
    long = rows.melt(id_vars=["model", "fold", "class"], value_vars=["precision", "recall"], var_name="metric")
    long["class"] = long["class"].map(class_title)
    order = [m for m in models if m in set(long["model"])] or sorted(long["model"].unique())
    x = alt.X("model:N", title=None, sort=order, axis=alt.Axis(labelAngle=-45))
    offset = alt.XOffset("class:N", sort=list(CLASS_COLOURS))
    colour = alt.Color("class:N", title="class", scale=alt.Scale(domain=list(CLASS_COLOURS), range=list(CLASS_COLOURS.values())))
    bars = alt.Chart().mark_bar().encode(x=x, xOffset=offset, color=colour,
                                         y=alt.Y("mean(value):Q", title=None, scale=alt.Scale(domain=[0, 1])),
                                         tooltip=["model", "class", alt.Tooltip("mean(value):Q", format=".3f", title="mean"),
                                                  alt.Tooltip("stdev(value):Q", format=".3f", title="std")])
    errors = alt.Chart().mark_errorbar(extent="stdev", color="black", thickness=1.5, clip=True).encode(
        x=x, xOffset=offset, y=alt.Y("value:Q", title=None))
    chart = alt.layer(bars, errors, data=long).properties(width=max(200, 56 * len(order)), height=260).facet(
        row=alt.Row("metric:N", title=None, header=alt.Header(labelAngle=0, labelAlign="left", labelFontWeight="bold")))
    return style(chart, title, subtitle)


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


def roc_curves(predictions: pd.DataFrame, models: list[str], title: str, subtitle: str = "") -> alt.Chart:
    """ROC per network and scenario (predictions pooled over folds), one small panel per network."""
    curves = []
    for (model, scenario), group in predictions.groupby(["model", "scenario"]):
        points = roc_points(group["true_label"], group["p_pain"])
        if len(points):
            curves.append(points.assign(model=model, scenario=scenario))
    if not curves:
        return style(alt.Chart(pd.DataFrame({"t": ["Both classes are needed for a ROC curve."]}))
                     .mark_text(fontSize=FONT_SIZE).encode(text="t:N"), title, subtitle)
    frame = _scenario_label(pd.concat(curves, ignore_index=True))
    frame["legend"] = frame["scenario_title"] + " (AUC " + frame.groupby(["model", "scenario"])["auc"].transform("first").map("{:.2f}".format) + ")"
    order = [m for m in models if m in set(frame["model"])]
    titles = _scenario_titles(frame["scenario"])
    colour = alt.Color("scenario_title:N", title="scenario", sort=titles,
                       scale=alt.Scale(domain=titles, range=list(OKABE_ITO[:len(titles)])))
    lines = alt.Chart().mark_line(strokeWidth=3, interpolate="step-after").encode(
        x=alt.X("fpr:Q", title="false positive rate", scale=alt.Scale(domain=[0, 1])),
        y=alt.Y("tpr:Q", title="true positive rate", scale=alt.Scale(domain=[0, 1])),
        color=colour, tooltip=["model", "scenario_title", alt.Tooltip("auc:Q", format=".3f")])
    diagonal = alt.Chart().mark_rule(strokeDash=[4, 4], color="#888888").encode(
        x=alt.datum(0), y=alt.datum(0), x2=alt.datum(1), y2=alt.datum(1))
    # Independent axes: each panel draws its own, instead of a footer row of axes under empty cells.
    chart = alt.layer(diagonal, lines, data=frame).properties(width=190, height=190).facet(
        facet=alt.Facet("model:N", title=None, sort=order), columns=5).resolve_axis(x="independent", y="independent")
    return style(chart, title, subtitle)


# --- heatmap statistics ---------------------------------------------------------------------------

def region_grid(regions: pd.DataFrame, models: list[str], title: str, subtitle: str = "") -> alt.Chart:
    """Networks x face regions: heatmap mass share / area share (1 = no preference), diverging colour.

    ``regions``: region_scores rows of one scope (columns model, region, aus, share, area_share, ratio)."""
    frame = regions.copy()
    frame["region_label"] = frame["region"].str.replace("_", " / ") + np.where(frame["aus"].fillna("") != "", " (" + frame["aus"].fillna("") + ")", "")
    order = [m for m in models if m in set(frame["model"])] or sorted(frame["model"].unique())
    region_order = list(dict.fromkeys(frame.sort_values("region")["region_label"]))
    base = alt.Chart(frame).encode(
        x=alt.X("region_label:N", title=None, sort=region_order, axis=alt.Axis(labelAngle=-30, orient="top")),
        y=alt.Y("model:N", title=None, sort=order))
    cells = base.mark_rect(stroke="white", strokeWidth=2).encode(
        color=alt.Color("ratio:Q", title="mass share / area share",
                        scale=alt.Scale(scheme="blueorange", domainMid=1, domain=[0, max(2.0, float(np.nanmax(frame["ratio"])) if len(frame) else 2)])),
        tooltip=["model", "region", "aus", alt.Tooltip("share:Q", format=".1%"), alt.Tooltip("area_share:Q", format=".1%"),
                 alt.Tooltip("ratio:Q", format=".2f")])
    text = base.mark_text(fontSize=FONT_SIZE - 2).encode(text=alt.Text("share:Q", format=".0%"))
    return style(alt.layer(cells, text).properties(width=alt.Step(92), height=alt.Step(30)), title, subtitle)


def similarity_matrix(similarity: pd.DataFrame, order: list[str], pretrained: dict[str, bool], title: str,
                      subtitle: str = "") -> alt.Chart:
    """Pearson's r between networks' heatmaps, in dendrogram order; labels mark pretrained networks."""
    frame = similarity.copy()

    def label(model: str) -> str:
        return f"{model} ({'pretrained' if pretrained.get(model) else 'scratch'})"

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


def model_agreement(summary: pd.DataFrame, metric: str, models: list[str], title: str, subtitle: str = "") -> alt.Chart:
    """Per network: mean ``metric`` (spearman_rho / roc_auc / kappa) against each clinician scale, ± std."""
    frame = summary.copy()
    frame["low"] = frame[f"{metric}_mean"] - frame[f"{metric}_std"].fillna(0)
    frame["high"] = frame[f"{metric}_mean"] + frame[f"{metric}_std"].fillna(0)
    order = [m for m in models if m in set(frame["model"])] or sorted(frame["model"].unique())
    scales = list(dict.fromkeys(frame["scale_label"]))
    x = alt.X("model:N", title=None, sort=order, axis=alt.Axis(labelAngle=-45))
    offset = alt.XOffset("scale_label:N", sort=scales)
    colour = alt.Color("scale_label:N", title="clinician scale", sort=scales,
                       scale=alt.Scale(domain=scales, range=list(OKABE_ITO[:len(scales)])))
    names = {"spearman_rho": "Spearman ρ (p(pain) vs score)", "roc_auc": "ROC AUC (vs rated pain)", "kappa": "Cohen's κ"}
    bars = alt.Chart().mark_bar().encode(x=x, xOffset=offset, color=colour, y=alt.Y(f"{metric}_mean:Q", title=names.get(metric, metric)),
                                         tooltip=["model", "scale_label", alt.Tooltip(f"{metric}_mean:Q", format=".3f"),
                                                  alt.Tooltip(f"{metric}_std:Q", format=".3f"), "runs"])
    errors = alt.Chart().mark_rule(color="black", strokeWidth=1.5, clip=True).encode(x=x, xOffset=offset, y="low:Q", y2="high:Q")
    chart = alt.layer(bars, errors, data=frame).properties(width=max(260, 52 * len(order)), height=300)
    return style(chart, title, subtitle)


# --- one image ------------------------------------------------------------------------------------

def probabilities(frame: pd.DataFrame, title: str, subtitle: str = "") -> alt.Chart:
    """p(pain) per network as dots with an uncertainty band (low-high over seeds, when several) and the
    mean over networks as a line. ``frame``: model, p_pain, low, high (NaN when one seed)."""
    order = list(frame["model"])
    y = alt.Y("model:N", title=None, sort=order)
    x = alt.X("p_pain:Q", title="p(pain)", scale=alt.Scale(domain=[0, 1]))
    half = alt.Chart().mark_rule(color="#888888", strokeDash=[3, 3]).encode(x=alt.datum(0.5))
    band = alt.Chart().mark_rule(strokeWidth=10, color="#56B4E9", opacity=0.8).encode(
        x="low:Q", x2="high:Q", y=y)
    dots = alt.Chart().mark_point(filled=True, size=220).encode(
        x=x, y=y, color=alt.Color("verdict:N", title=None, scale=alt.Scale(domain=["p ≥ 0.5 (pain)", "p < 0.5 (no pain)"],
                                                                         range=[CLASS_COLOURS["pain"], CLASS_COLOURS["no pain"]])),
        tooltip=["model", alt.Tooltip("p_pain:Q", format=".3f"), alt.Tooltip("low:Q", format=".3f"), alt.Tooltip("high:Q", format=".3f")])
    text = alt.Chart().mark_text(align="left", dx=12, fontSize=FONT_SIZE - 1).encode(
        x=x, y=y, text=alt.Text("p_pain:Q", format=".2f"))
    data = frame.assign(verdict=np.where(frame["p_pain"] >= 0.5, "p ≥ 0.5 (pain)", "p < 0.5 (no pain)"))
    chart = alt.layer(half, band, dots, text, data=data).properties(width=480, height=alt.Step(34))
    return style(chart, title, subtitle)
