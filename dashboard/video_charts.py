"""Pure chart builders for a video's pain timeline (no Streamlit): frames in, an Altair chart out.

The timeline shows p(pain) per analysed frame (the one answer, ``Predictor.answer``), the band from the
lowest to the highest calibrated seed of the networks it averages, the peak, and the gaps where the face was
not followed: a gap is a shaded span, and the line and band break there (no value is drawn across it). When
no network learned there is no answer: ``network_lines`` then shows each network's own p(pain), greyed. When
seconds of the clip itself are the person's calm reference, they are a span of their own ("calm reference"), with
no line or point in it: those frames are the reference, not evidence.

The line is always the clip's answer as its record (``engine.answers.VideoAnswer``) gives it (``answer_curve``): when
the clip is judged against the person's calm reference, each frame's answer with that reference (computed by
``engine.answers.compare_with_baseline``, the one rule of ``answer.json``'s ``baseline``, never here), and the face
alone's values only as a thin dashed grey line labelled as not the answer.
"""

from __future__ import annotations

import altair as alt
import numpy as np
import pandas as pd

from dashboard.charts import CLASS_COLOURS, style

GAP_COLOUR = "#BBBBBB"
LINE_COLOUR = CLASS_COLOURS["pain"]
BAND_COLOUR = "#E69F00"
CALM_COLOUR = "#009E73"  # the clip's own calm seconds (Okabe-Ito green, apart from the gaps' grey)
ALONE_COLOUR = "#7F7F7F"  # the face alone's values beside an answer with the calm reference: secondary, grey
ANSWER_WITH = "with the calm reference: the answer"
ALONE = "face alone: not the answer, for comparison"


def answer_curve(record, curve: pd.DataFrame) -> pd.DataFrame:
    """``curve`` (``VideoAnalysis.curve()``: t, face, p_pain, low, high, one row per analysed frame) as the clip's
    answer record says: ``p_pain`` each frame's answer in ``record`` (with the person's calm reference when its
    answer_kind is with_reference), ``reference`` the frames of the clip's own calm seconds, ``answer_kind``; with a
    reference also ``p_absolute``, the face alone's, and no band (the band is the face alone's seeds)."""
    if len(record.frames) != len(curve):  # the record is built from the same analysis, frame for frame
        raise ValueError(f"the record has {len(record.frames)} frames and the analysis {len(curve)}")
    frames = record.frames
    out = curve.assign(p_pain=[np.nan if f.p_pain is None else f.p_pain for f in frames],
                       reference=[f.reference for f in frames], answer_kind=record.answer_kind)
    if record.answer_kind == "with_reference":
        out = out.assign(low=np.nan, high=np.nan,
                         p_absolute=[np.nan if f.p_absolute is None else f.p_absolute for f in frames])
    return out


def with_segments(curve: pd.DataFrame) -> pd.DataFrame:
    """``curve`` (t, face, p_pain, low, high) with ``segment``: a number per run of frames with an answer,
    so a line drawn per segment breaks at every gap."""
    answered = curve["p_pain"].notna().to_numpy()
    starts = answered & ~np.concatenate([[False], answered[:-1]])
    return curve.assign(segment=np.cumsum(starts))


def gap_spans(curve: pd.DataFrame, step: float) -> pd.DataFrame:
    """start, end (seconds) of each run of frames without an answer; each frame covers ``step`` around its time."""
    spans, start = [], None
    for t, answered in zip(curve["t"], curve["p_pain"].notna()):
        if not answered and start is None:
            start = t
        if answered and start is not None:
            spans.append((start - step / 2, t - step / 2))
            start = None
    if start is not None:
        spans.append((start - step / 2, float(curve["t"].iloc[-1]) + step / 2))
    return pd.DataFrame(spans, columns=["start", "end"]).assign(what="no number: face not found, or withheld")


def timeline(curve: pd.DataFrame, peak_t: float | None, step: float, title: str, subtitle: str | list[str] = "",
             selected_t: float | None = None, calm: tuple[float, float] | None = None) -> alt.LayerChart:
    """p(pain) over time with its band over networks and seeds, gaps shaded, the peak (and a chosen frame) marked;
    ``calm``: the seconds [start, end) that are the clip's own calm reference, a span without values. A ``curve`` with
    ``p_absolute`` (``answer_curve`` of a clip judged against the calm reference) adds the face alone's values as a
    thin dashed grey line, and a legend names both lines."""
    inside = curve["t"].between(*calm, inclusive="left") if calm else pd.Series(False, index=curve.index)
    data = with_segments(curve.assign(p_pain=curve["p_pain"].where(~inside)))
    answered = data[data["p_pain"].notna()]
    x = alt.X("t:Q", title="time in the clip (s)", scale=alt.Scale(domain=[0, max(float(curve["t"].max()), step)]))
    y = alt.Y("p_pain:Q", title="p(pain)", scale=alt.Scale(domain=[0, 1]))
    layers = []
    if calm:
        span = pd.DataFrame({"start": [calm[0]], "end": [calm[1]], "what": ["calm reference: these frames are the "
                                                                            "reference, not evidence"]})
        layers.append(alt.Chart(span).mark_rect(color=CALM_COLOUR, opacity=0.25).encode(
            x="start:Q", x2="end:Q", tooltip=["what:N"]))
        layers.append(alt.Chart(span.assign(y=0.96, label="calm reference")).mark_text(
            align="left", dx=4, fontSize=12, color=CALM_COLOUR, fontWeight="bold").encode(x="start:Q", y="y:Q", text="label:N"))
    gaps = gap_spans(curve.assign(p_pain=curve["p_pain"].where(~inside, 0.0)), step)  # the calm span is no gap
    if len(gaps):
        layers.append(alt.Chart(gaps).mark_rect(color=GAP_COLOUR, opacity=0.35).encode(
            x="start:Q", x2="end:Q", tooltip=[alt.Tooltip("start:Q", format=".1f"), alt.Tooltip("end:Q", format=".1f"),
                                              "what:N"]))
    band = answered.dropna(subset=["low", "high"])
    if len(band):
        layers.append(alt.Chart(band).mark_area(color=BAND_COLOUR, opacity=0.3).encode(
            x=x, y=alt.Y("low:Q", scale=alt.Scale(domain=[0, 1]), title="p(pain)"), y2="high:Q", detail="segment:N"))
    layers.append(alt.Chart(pd.DataFrame({"p": [0.5]})).mark_rule(color="#666666", strokeDash=[4, 4]).encode(y="p:Q"))
    alone = "p_absolute" in curve and bool(curve["p_absolute"].where(~inside).notna().any())
    tooltip = [alt.Tooltip("t:Q", format=".2f", title="t (s)"), alt.Tooltip("p_pain:Q", format=".3f")]
    line = {}
    if alone:  # the face alone's values: a second, clearly secondary line, never the answer
        series = alt.Color("series:N", scale=alt.Scale(domain=[ANSWER_WITH, ALONE], range=[LINE_COLOUR, ALONE_COLOUR]),
                           legend=alt.Legend(title=None, orient="bottom", labelLimit=600))
        trace = with_segments(curve[["t"]].assign(p_pain=curve["p_absolute"].where(~inside)))
        trace = trace[trace["p_pain"].notna()].assign(series=ALONE)
        layers.append(alt.Chart(trace).mark_line(strokeWidth=1.5, strokeDash=[5, 4], point=alt.OverlayMarkDef(
            size=14, color=ALONE_COLOUR)).encode(x=x, y=y, color=series, detail="segment:N", tooltip=[
                alt.Tooltip("t:Q", format=".2f", title="t (s)"), alt.Tooltip("p_pain:Q", format=".3f", title="face alone")]))
        answered = answered.assign(series=ANSWER_WITH)
        tooltip = [tooltip[0], alt.Tooltip("p_pain:Q", format=".3f", title="p(pain) with the calm reference"),
                   alt.Tooltip("p_absolute:Q", format=".3f", title="face alone")]
        line = {"color": series}
    else:
        tooltip += [alt.Tooltip("low:Q", format=".3f"), alt.Tooltip("high:Q", format=".3f")]
    layers.append(alt.Chart(answered).mark_line(color=LINE_COLOUR, strokeWidth=3, point=alt.OverlayMarkDef(size=40, color=LINE_COLOUR)).encode(
        x=x, y=y, detail="segment:N", tooltip=tooltip, **line))
    if peak_t is not None:
        peak = answered[np.isclose(answered["t"], peak_t)].head(1).assign(label="peak")
        layers.append(alt.Chart(peak).mark_point(shape="triangle-down", size=320, filled=True, color="#000000",
                                                 yOffset=-16).encode(x=x, y=y))
        layers.append(alt.Chart(peak).mark_text(dy=-34, fontSize=14, fontWeight="bold").encode(x=x, y=y, text="label:N"))
    if selected_t is not None:
        layers.append(alt.Chart(pd.DataFrame({"t": [selected_t]})).mark_rule(color="#0072B2", strokeWidth=2).encode(x="t:Q"))
    chart = alt.layer(*layers).properties(width=760, height=300)
    return style(chart, title, subtitle)


def network_lines(network_curves: pd.DataFrame, curve: pd.DataFrame, step: float, title: str,
                  subtitle: str = "") -> alt.LayerChart:
    """Each network's own p(pain) over time (not calibrated, greyed): what is shown when there is no one answer."""
    x = alt.X("t:Q", title="time in the clip (s)", scale=alt.Scale(domain=[0, max(float(curve["t"].max()), step)]))
    followed = curve[["t", "face"]].assign(segment=with_segments(curve.assign(p_pain=curve["face"].where(curve["face"])))["segment"])
    data = network_curves.merge(followed, on="t", how="left")
    layers = []
    gaps = gap_spans(curve.assign(p_pain=curve["face"].where(curve["face"])), step)
    if len(gaps):
        layers.append(alt.Chart(gaps).mark_rect(color=GAP_COLOUR, opacity=0.35).encode(x="start:Q", x2="end:Q"))
    layers.append(alt.Chart(pd.DataFrame({"p": [0.5]})).mark_rule(color="#666666", strokeDash=[4, 4]).encode(y="p:Q"))
    layers.append(alt.Chart(data).mark_line(strokeWidth=3, color="#6E6E6E").encode(
        x=x, y=alt.Y("p_pain:Q", title="p(pain), each network as it is", scale=alt.Scale(domain=[0, 1])),
        strokeDash=alt.StrokeDash("model:N", title="network (did not learn)", legend=alt.Legend(titleLimit=400)),
        detail="segment:N", tooltip=["model:N", alt.Tooltip("t:Q", format=".2f"), alt.Tooltip("p_pain:Q", format=".3f")]))
    return style(alt.layer(*layers).properties(width=760, height=300), title, subtitle)


def frame_table(curve: pd.DataFrame, network_curves: pd.DataFrame) -> pd.DataFrame:
    """One row per analysed frame for the CSV export: t, face, p_pain, band, and ``p_<network>`` (blank in gaps).

    ``curve`` and ``network_curves``: ``VideoAnalysis.curve()`` and ``VideoAnalysis.network_curves()``."""
    if network_curves.empty:
        return curve
    wide = network_curves.pivot_table(index="t", columns="model", values="p_pain", sort=False)
    wide.columns = [f"p_{name}" for name in wide.columns]
    return curve.merge(wide.reset_index(), on="t", how="left")
