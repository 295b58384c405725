"""Action units for people: the estimator's tables (with intervals), the model-as-rater table in Table 4's
layout, the bars of one face's AUs and a clip's AU lines. Pure functions (tables and Altair charts) that the
Action units page, the upload page and the report call; nothing here computes an estimate."""

from __future__ import annotations

import math

import altair as alt
import pandas as pd

from dashboard.charts import style
from engine.evaluation.bootstrap import sample_size
from engine.models.action_units import PAIN_AUS, PLAIN_NAMES, PSPI_MAX
from engine.ratings.forms import source_label
from engine.ratings.model_rater import COMPARISON_LABELS

TARGET_ORDER = [*PAIN_AUS, "PSPI"]
AU_COLOURS = {"AU4": "#0072B2", "AU6": "#E69F00", "AU7": "#009E73", "AU9": "#CC79A7", "AU10": "#56B4E9",
              "AU43": "#D55E00", "PSPI": "#000000"}


def _interval(value: float, low: float, high: float, digits: int = 2) -> str:
    if value is None or not math.isfinite(value):
        return "—"
    text = f"{value:.{digits}f}"
    return f"{text} [{low:.{digits}f}, {high:.{digits}f}]" if math.isfinite(low) and math.isfinite(high) else text


def evaluation_table(evaluation: pd.DataFrame) -> pd.DataFrame:
    """One row per AU and PSPI: plain name, ICC(3,1), MAE and occurrence F1, each with its 95 % interval, and n."""
    rows = []
    for row in evaluation.set_index("target").reindex(TARGET_ORDER).dropna(subset=["n_images"]).reset_index().itertuples():
        rows.append({"action unit": row.target, "what moves": PLAIN_NAMES[row.target],
                     "ICC(3,1) [95 % CI]": _interval(row.icc, row.icc_low, row.icc_high),
                     "MAE [95 % CI]": _interval(row.mae, row.mae_low, row.mae_high),
                     "F1 of occurrence [95 % CI]": _interval(row.f1, row.f1_low, row.f1_high),
                     "frames coded present": str(int(row.present)) if row.target != "PSPI" else "—",
                     "n": sample_size(row.n_images, row.n_subjects)})
    return pd.DataFrame(rows)


def rater_table(raters: pd.DataFrame) -> pd.DataFrame:
    """Table 4's layout: rows the sources of pain then all videos, one column per comparison (the clinicians'
    own agreement first), each cell ICC [95 % CI] (n videos)."""
    if raters is None or raters.empty:
        return pd.DataFrame()
    sources = list(dict.fromkeys(raters["source"]))
    comparisons = list(dict.fromkeys(raters["comparison"]))
    rows = []
    for source in sources:
        row = {"Source of pain": source_label(source)}
        for comparison in comparisons:
            cell = raters[(raters["source"] == source) & (raters["comparison"] == comparison)].iloc[0]
            text = _interval(cell["icc"], cell["ci_low"], cell["ci_high"])
            row[COMPARISON_LABELS.get(comparison, comparison)] = f"{text} (n={int(cell['n_videos'])})"
        rows.append(row)
    return pd.DataFrame(rows)


def evaluation_chart(evaluation: pd.DataFrame, subtitle: str = "") -> alt.Chart:
    """ICC(3,1) and F1 per AU (and PSPI's ICC) with their 95 % intervals over subjects."""
    long = []
    for row in evaluation.itertuples():
        for metric, title in (("icc", "ICC(3,1)"), ("f1", "F1 of occurrence")):
            value = getattr(row, metric)
            if value is not None and math.isfinite(value):
                long.append({"target": f"{row.target} {PLAIN_NAMES[row.target]}", "metric": title, "value": value,
                             "low": getattr(row, f"{metric}_low"), "high": getattr(row, f"{metric}_high")})
    frame = pd.DataFrame(long)
    order = [f"{t} {PLAIN_NAMES[t]}" for t in TARGET_ORDER]
    y = alt.Y("target:N", title=None, sort=order)
    points = alt.Chart().mark_point(filled=True, size=120).encode(
        x=alt.X("value:Q", title="estimate (95 % interval over subjects)", scale=alt.Scale(domain=[0, 1])), y=y,
        color=alt.Color("metric:N", title=None), tooltip=["target", "metric", alt.Tooltip("value:Q", format=".3f"),
                                                          alt.Tooltip("low:Q", format=".2f"), alt.Tooltip("high:Q", format=".2f")])
    rules = alt.Chart().mark_rule(strokeWidth=3).encode(x="low:Q", x2="high:Q", y=y, color="metric:N")
    chart = alt.layer(rules, points, data=frame).properties(width=420, height=alt.Step(26)).facet(
        column=alt.Column("metric:N", title=None))
    return style(chart, "Action units on UNBC, subject-wise", subtitle)


def pspi_scatter(frames: pd.DataFrame, subtitle: str = "") -> alt.Chart:
    """Coded PSPI against the out-of-fold estimate, one point per UNBC frame, the diagonal for agreement."""
    data = frames[frames["set"] == "unbc_out_of_fold"][["subject", "true_PSPI", "PSPI"]]
    scale = alt.Scale(domain=[0, max(4.0, float(data[["true_PSPI", "PSPI"]].max().max()) + 1)])
    points = alt.Chart(data).mark_circle(size=40, opacity=0.6).encode(
        x=alt.X("true_PSPI:Q", title="PSPI coded (UNBC)", scale=scale),
        y=alt.Y("PSPI:Q", title="PSPI estimated (held-out subject)", scale=scale),
        color=alt.Color("subject:N", title="subject"), tooltip=["subject", "true_PSPI", alt.Tooltip("PSPI:Q", format=".2f")])
    diagonal = alt.Chart(pd.DataFrame({"x": [0, scale.domain[1]]})).mark_line(strokeDash=[4, 4], color="#888").encode(x="x:Q", y="x:Q")
    return style((diagonal + points).properties(width=360, height=360), "PSPI: coded vs estimated", subtitle)


def face_bars(aus: dict[str, float]) -> alt.Chart:
    """One face's AUs as bars on their own scale (0-5; eyes closed 0/1) with plain names, and PSPI (0-16)."""
    rows = [{"movement": f"{PLAIN_NAMES[name]} ({name})", "value": float(aus[name]),
             "top": 1.0 if name == "AU43" else 5.0, "share": float(aus[name]) / (1.0 if name == "AU43" else 5.0),
             "shown": ("yes" if aus[name] >= 0.5 else "no") if name == "AU43" else f"{aus[name]:.1f} of 5"}
            for name in PAIN_AUS if name in aus]
    rows.append({"movement": "PSPI (sum of the above)", "value": float(aus["PSPI"]), "top": PSPI_MAX,
                 "share": float(aus["PSPI"]) / PSPI_MAX, "shown": f"{aus['PSPI']:.1f} of 16"})
    frame = pd.DataFrame(rows)
    y = alt.Y("movement:N", title=None, sort=list(frame["movement"]))
    bars = alt.Chart(frame).mark_bar(color="#0072B2").encode(
        x=alt.X("share:Q", title="share of the scale's top", scale=alt.Scale(domain=[0, 1]), axis=alt.Axis(format="%")),
        y=y, tooltip=["movement", "shown"])
    labels = alt.Chart(frame).mark_text(align="left", dx=4).encode(x="share:Q", y=y, text="shown:N")
    return (bars + labels).properties(width=360, height=alt.Step(24))


def clip_lines(curves: pd.DataFrame, seconds: float | None = None) -> alt.Chart:
    """A clip's PSPI (0-16, left) and each AU (0-5) over time: long table t, target, value (gaps: no rows)."""
    data = curves.assign(name=[f"{t} {PLAIN_NAMES[t]}" if t != "PSPI" else "PSPI" for t in curves["target"]])
    x = alt.X("t:Q", title="seconds", scale=alt.Scale(domain=[0, seconds]) if seconds else alt.Undefined)
    pspi = alt.Chart(data[data["target"] == "PSPI"]).mark_line(point=True, color="#000").encode(
        x=x, y=alt.Y("value:Q", title="PSPI (0-16)", scale=alt.Scale(domain=[0, PSPI_MAX])), tooltip=["t", "value"])
    aus = alt.Chart(data[data["target"] != "PSPI"]).mark_line().encode(
        x=x, y=alt.Y("value:Q", title="action unit (0-5)", scale=alt.Scale(domain=[0, 5])),
        color=alt.Color("name:N", title=None, sort=[f"{t} {PLAIN_NAMES[t]}" for t in PAIN_AUS],
                        scale=alt.Scale(domain=[f"{t} {PLAIN_NAMES[t]}" for t in PAIN_AUS],
                                        range=[AU_COLOURS[t] for t in PAIN_AUS])),
        tooltip=["t", "name", alt.Tooltip("value:Q", format=".2f")])
    # The width of the p(pain) timeline above (dashboard/video_charts.py), so the same second lines up.
    return alt.vconcat(pspi.properties(width=760, height=110), aus.properties(width=760, height=140)).resolve_scale(color="independent")
