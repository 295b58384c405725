"""Pure builders for the faithfulness scorecard (``engine/explain/scorecard.py``): charts for the
Faithfulness page, and for the Heatmaps page each heatmap's scores, the explainer switch's maps and the
pain-region outlines. Frames and arrays in, Altair charts / RGB arrays / text out (no Streamlit).

Networks that did not learn (the summary's ``learned``, issue 11) are drawn grey and named so: their
maps show where an untrained or one-class network happens to respond, not where pain shows.
"""

from __future__ import annotations

import altair as alt
import numpy as np
import pandas as pd

from dashboard import images
from dashboard.charts import FONT_SIZE, OKABE_ITO, style
from engine.evaluation.bootstrap import sample_size
from engine.explain.faithfulness import FILL_TITLES, FILLS, beats_random
from engine.explain.lime_masks import baseline_title

EXPLAINER_TITLES = {"lime": "LIME", "gradcam": "Grad-CAM"}
REGION_TITLES = {"brow_lowerer": "brow lowerer (AU4)", "orbit": "orbit (AU6, AU7)", "eye_closure": "eye closure (AU43)",
                 "nose_lip": "nose and upper lip (AU9, AU10)", "reference": "rest of the face"}
REGION_COLOURS = {"brow_lowerer": (230, 159, 0), "orbit": (86, 180, 233), "eye_closure": (0, 114, 178),
                  "nose_lip": (0, 158, 115)}
ORDER_COLOURS = {"LIME order": OKABE_ITO[3], "random order": "#888888"}
GREY = "#B8B8B8"
NOT_LEARNED = "did not learn"


# --- which networks learned (issue 11's ``learned``; unknown counts as learned: only a known failure greys) --

def learned_map(summary: pd.DataFrame | None) -> dict[tuple[str, str], bool]:
    """(network, scenario) -> learned, from the results summary when it has the column."""
    if summary is None or summary.empty or "learned" not in summary:
        return {}
    rows = summary.dropna(subset=["learned"]).drop_duplicates(["model", "scenario"])
    return {(r.model, r.scenario): bool(r.learned) for r in rows.itertuples()}


def with_learning(frame: pd.DataFrame, learned: dict[tuple[str, str], bool]) -> pd.DataFrame:
    """``frame`` (model, scenario) with ``learned`` and ``network`` (the axis label, marked when it did not learn)."""
    known = [learned.get((m, s), True) for m, s in zip(frame["model"], frame["scenario"])]
    return frame.assign(learned=known, network=[m if ok else f"{m} ({NOT_LEARNED})" for m, ok in zip(frame["model"], known)])


def network_order(frame: pd.DataFrame, models: list[str]) -> list[str]:
    rank = {m: i for i, m in enumerate(models)}
    pairs = frame[["model", "network"]].drop_duplicates()
    return list(pairs.assign(_r=pairs["model"].map(rank).fillna(len(rank))).sort_values(["_r", "network"])["network"])


# --- the Faithfulness page ------------------------------------------------------------------------------

def metric_rows(summary: pd.DataFrame, metrics: dict[str, str], learned: dict) -> pd.DataFrame:
    """Long rows (model, scenario, network, learned, metric title, value, low, high) of the chosen metrics."""
    rows = summary[summary["metric"].isin(metrics)].assign(what=lambda f: f["metric"].map(metrics))
    return with_learning(rows, learned)


def fill_suffix(fill: str) -> str:
    """The summary metrics' suffix of a fill ("" for the default, ROAD)."""
    return "" if fill == FILLS[0] else f"_{fill}"


def auc_chart(summary: pd.DataFrame, models: list[str], learned: dict, title: str, subtitle: str = "",
              fill: str = FILLS[0]) -> alt.TopLevelMixin:
    """Per network and explainer (LIME and Grad-CAM on the same images and superpixels): insertion and
    deletion AUC of the explainer's order against a random order, with intervals, under one fill.
    ``summary``: one scenario and dataset of ``faithfulness_summary``."""
    suffix = fill_suffix(fill)
    names = {f"insertion_auc{suffix}": ("insertion", "explainer's order"), f"insertion_auc_random{suffix}": ("insertion", "random order"),
             f"deletion_auc{suffix}": ("deletion", "explainer's order"), f"deletion_auc_random{suffix}": ("deletion", "random order")}
    rows = with_learning(summary[summary["metric"].isin(names)].copy(), learned)
    rows["network"] = rows["network"].astype(str) + " · " + rows["explainer"].astype(str).map(
        lambda e: EXPLAINER_TITLES.get(e, e))
    rows["curve"] = rows["metric"].map(lambda m: names[m][0])
    rows["order"] = rows["metric"].map(lambda m: names[m][1])
    order = [f"{n} · {t}" for n in network_order(with_learning(summary.drop_duplicates(["model", "scenario"]), learned), models)
             for t in EXPLAINER_TITLES.values()]
    y = alt.Y("network:N", title=None, sort=order)
    colours = {"explainer's order": ORDER_COLOURS["LIME order"], "random order": ORDER_COLOURS["random order"]}
    colour = alt.condition("datum.learned", alt.Color("order:N", title=None, scale=alt.Scale(
        domain=list(colours), range=list(colours.values()))), alt.value(GREY))
    offset = alt.YOffset("order:N", sort=list(colours))
    rules = alt.Chart().mark_rule(strokeWidth=3).encode(x=alt.X("low:Q", title="area under the curve"), x2="high:Q",
                                                        y=y, yOffset=offset, color=colour)
    points = alt.Chart().mark_point(filled=True, size=140).encode(
        x="value:Q", y=y, yOffset=offset, color=colour,
        tooltip=["network", "curve", "order", alt.Tooltip("value:Q", format=".3f"), alt.Tooltip("low:Q", format=".3f"),
                 alt.Tooltip("high:Q", format=".3f"), "images", "subjects"])
    chart = alt.layer(rules, points, data=rows).properties(width=300, height=alt.Step(16)).facet(
        column=alt.Column("curve:N", title=None, sort=["insertion", "deletion"], header=alt.Header(labelFontSize=FONT_SIZE)))
    return style(chart, title, _lines(subtitle, f"hidden superpixels filled with {FILL_TITLES[fill]}; insertion: higher "
                                                "than random is faithful; deletion: lower than random is faithful"))


def region_chart(summary: pd.DataFrame, models: list[str], learned: dict, title: str, subtitle: str = "") -> alt.TopLevelMixin:
    """Per network and pain region: heatmap mass per unit area (1 = as much as the area; the rest of the face as the reference)."""
    metrics = {f"density_{r}": t for r, t in REGION_TITLES.items()}
    rows = metric_rows(summary, metrics, learned)
    base = alt.Chart(rows).encode(x=alt.X("what:N", title=None, sort=list(metrics.values()), axis=alt.Axis(labelAngle=-25)),
                                  y=alt.Y("network:N", title=None, sort=network_order(rows, models)))
    cells = base.mark_rect(stroke="white", strokeWidth=2).encode(
        color=alt.condition("datum.learned", alt.Color("value:Q", title="mass per unit area", scale=alt.Scale(
            scheme="blueorange", domainMid=1)), alt.value(GREY)),
        tooltip=["network", "what", alt.Tooltip("value:Q", format=".2f"), alt.Tooltip("low:Q", format=".2f"),
                 alt.Tooltip("high:Q", format=".2f"), "images"])
    text = base.mark_text(fontSize=FONT_SIZE - 1).encode(text=alt.Text("value:Q", format=".2f"))
    return style(alt.layer(cells, text).properties(width=alt.Step(120), height=alt.Step(30)), title,
                 _lines(subtitle, "1: as much mass as the region's area; above 1: the map favours the region"))


def pointing_chart(summary: pd.DataFrame, models: list[str], learned: dict, title: str, subtitle: str = "") -> alt.TopLevelMixin:
    """Per network: the pointing game (hottest point in a pain region) with its interval, against its
    chance level, for the maps explaining pain and those explaining no pain apart (a no-pain map has no
    reason to point at pain); a third panel: pain maps against the regions of the AUs planted in each frame."""
    panels = {"pain maps, all pain regions": ("pointing_hit_pain", "pointing_chance"),
              "no-pain maps, all pain regions": ("pointing_hit_no_pain", "pointing_chance"),
              "pain maps, the planted AUs' regions": ("pointing_hit_planted", "planted_area_share")}
    charts = []
    for what, (hit, chance) in panels.items():
        rows = metric_rows(summary, {hit: what}, learned)
        if rows.empty:
            continue
        level = metric_rows(summary, {chance: what}, learned)
        y = alt.Y("network:N", title=None, sort=network_order(rows, models))
        colour = alt.condition("datum.learned", alt.value(OKABE_ITO[0]), alt.value(GREY))
        bars = alt.Chart(rows).mark_bar().encode(x=alt.X("value:Q", title="hits", scale=alt.Scale(domain=[0, 1])), y=y,
                                                 color=colour, tooltip=["network", alt.Tooltip("value:Q", format=".2f"), "images"])
        rules = alt.Chart(rows).mark_rule(strokeWidth=2, color="black").encode(x="low:Q", x2="high:Q", y=y)
        ticks = alt.Chart(level).mark_tick(color=OKABE_ITO[3], thickness=3, size=24).encode(
            x="value:Q", y=y, tooltip=[alt.Tooltip("value:Q", format=".2f", title="chance")])
        charts.append(alt.layer(bars, rules, ticks).properties(width=260, height=alt.Step(24), title=what))
    return style(alt.hconcat(*charts), title, _lines(subtitle, "orange tick: chance (the regions' share of the face area)"))


def sanity_chart(sanity: pd.DataFrame, models: list[str], limit: float, title: str, subtitle: str = "") -> alt.TopLevelMixin:
    """Median rank correlation with the trained network's maps as more layers are randomised, per
    network and explainer; the dashed line is the limit at which a map is flagged."""
    stages = {"trained": "trained", "top_layer": "top layer", "top_half": "top half", "all_layers": "all layers",
              "null": "two random nets"}
    rows = []
    for r in sanity.itertuples():
        explainer = EXPLAINER_TITLES.get(r.explainer, r.explainer)
        for measure, prefix in (("rank correlation (absolute maps)", "rho"), ("SSIM (normalized maps)", "ssim")):
            rows.append({"model": r.model, "explainer": explainer, "measure": measure, "stage": "trained", "rho": 1.0,
                         "verdict": r.verdict})
            rows += [{"model": r.model, "explainer": explainer, "measure": measure, "stage": label,
                      "rho": getattr(r, f"{prefix}_{column}", np.nan), "verdict": r.verdict}
                     for column, label in list(stages.items())[1:]]
    frame = pd.DataFrame(rows)
    x = alt.X("stage:N", sort=list(stages.values()), title="weights randomised",
              axis=alt.Axis(labelAngle=-20))
    lines = alt.Chart().mark_line(point=True, strokeWidth=3).encode(
        x=x, y=alt.Y("rho:Q", title="similarity", scale=alt.Scale(domain=[-1, 1])),
        color=alt.Color("model:N", title="network", sort=models, scale=alt.Scale(range=list(OKABE_ITO))),
        tooltip=["model", "explainer", "stage", alt.Tooltip("rho:Q", format=".2f"), "verdict"])
    threshold = alt.Chart().mark_rule(strokeDash=[6, 4], color="black").encode(y=alt.datum(limit))
    chart = alt.layer(lines, threshold, data=frame).properties(width=260, height=220).facet(
        column=alt.Column("explainer:N", title=None, header=alt.Header(labelFontSize=FONT_SIZE)),
        row=alt.Row("measure:N", title=None, header=alt.Header(labelFontSize=FONT_SIZE - 2)))
    return style(chart, title, _lines([subtitle, f"similarity to the trained network's maps; the rank correlation must "
                                                 f"fall below {limit:g} with every layer randomised"],
                                      "'two random nets': two independently randomised networks compared (the null reference)"))


def agreement_chart(summary: pd.DataFrame, models: list[str], learned: dict, title: str, subtitle: str = "") -> alt.TopLevelMixin:
    """Per network: LIME vs Grad-CAM rank correlation of the normalised maps, with its interval."""
    rows = metric_rows(summary[summary["explainer"] == "lime"], {"agreement": "agreement"}, learned)
    y = alt.Y("network:N", title=None, sort=network_order(rows, models))
    colour = alt.condition("datum.learned", alt.value(OKABE_ITO[2]), alt.value(GREY))
    rules = alt.Chart(rows).mark_rule(strokeWidth=3).encode(
        x=alt.X("low:Q", title="rank correlation (Spearman)", scale=alt.Scale(domain=[-1, 1])), x2="high:Q", y=y, color=colour)
    points = alt.Chart(rows).mark_point(filled=True, size=140).encode(
        x="value:Q", y=y, color=colour, tooltip=["network", alt.Tooltip("value:Q", format=".2f"), "images"])
    zero = alt.Chart().mark_rule(color="#666666").encode(x=alt.datum(0))
    return style(alt.layer(rules, points, zero).properties(width=360, height=alt.Step(24)), title, subtitle)


def unscored_sentence(unscored: pd.DataFrame, scenario: str) -> str:
    """Which networks' runs of ``scenario`` the scorecard skipped, and why, in one sentence ("" for none)."""
    rows = unscored[unscored["scenario"] == scenario] if len(unscored) else unscored
    if rows is None or rows.empty:
        return ""
    names = ", ".join(r.model if r.runs == r.of_runs else f"{r.model} ({r.runs} of {r.of_runs} runs)" for r in rows.itertuples())
    return (f"Not scored here: {names}. Their networks gave every test image one class in those runs (they did not "
            "learn); their LIME heatmaps are on the Heatmaps page, but deletion and insertion curves, Grad-CAM and the "
            "sanity check would only describe noise, so they are not computed.")


def scorecard_table(summary: pd.DataFrame, sanity: pd.DataFrame, learned: dict,
                    unscored: pd.DataFrame | None = None, stability: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per (network, scenario, explainer): the numbers behind the charts, both fills side by side,
    the sanity verdict with its n and LIME's stability, for reading and export."""
    wanted = ["insertion_gain", "deletion_gain", "insertion_gain_own", "deletion_gain_own", "pointing_hit_pain",
              "pointing_hit_no_pain", "pointing_chance", "pain_vs_rest_pain", "planted_vs_rest", "agreement"]
    keys = ["model", "scenario", "explainer"]
    scope = summary[summary["metric"].isin(wanted)]
    cells = scope.assign(text=[_cell(r) for r in scope.itertuples()]).pivot_table(
        index=keys, columns="metric", values="text", aggfunc="first").reindex(columns=wanted)
    gains = summary[summary["metric"].isin(["insertion_gain", "deletion_gain", "insertion_gain_own", "deletion_gain_own"])]
    beats = gains.assign(ok=gains["low"].map(beats_random)).pivot_table(index=keys, columns="metric", values="ok", aggfunc="first")
    beats = beats.rename(columns=lambda m: f"{m.replace('_gain', '')} beats random")
    # The curves' n (images and subjects with a map), marked when few.
    curves = summary[summary["metric"] == "insertion_auc"].drop_duplicates(keys).set_index(keys)
    sizes = pd.Series([sample_size(i, n) for i, n in zip(curves["images"], curves["subjects"])], index=curves.index,
                      name="n (curves)", dtype=object)
    table = cells.join(beats).join(sizes).reset_index()
    table["pain-class maps"] = [points_at_pain(summary, m, s, e) for m, s, e in
                                zip(table["model"], table["scenario"], table["explainer"])]
    table["explainer"] = table["explainer"].map(EXPLAINER_TITLES).fillna(table["explainer"])
    table = with_learning(table, learned)
    if sanity is not None and len(sanity):
        verdict = {(r.model, EXPLAINER_TITLES.get(r.explainer, r.explainer)): r.verdict for r in sanity.itertuples()}
        table["sanity check"] = [verdict.get((m, e), "") for m, e in zip(table["model"], table["explainer"])]
    if stability is not None and len(stability):
        stable = {r.model: stability_cell(r) for r in stability.itertuples()}
        table["LIME over seeds"] = [stable.get(m, "") if e == "LIME" else "" for m, e in zip(table["model"], table["explainer"])]
    if unscored is not None and len(unscored):
        skipped = {(r.model, r.scenario): f"{r.runs} of {r.of_runs} runs: {r.reason}" for r in unscored.itertuples()}
        table["not scored"] = [skipped.get((m, s), "") for m, s in zip(table["model"], table["scenario"])]
    return table.drop(columns=["network"]).rename(columns={"model": "network"})


def points_at_pain(summary: pd.DataFrame, model: str, scenario: str, explainer: str) -> str:
    """Whether one (network, scenario, explainer)'s pain-class maps point at the pain regions, in words, from the
    scorecard's ``pain_vs_rest_pain`` (mass per unit area in the pain regions / in the rest of the face)."""
    from engine.explain.pain_regions import POINTS_AT_PAIN

    row = summary[(summary["metric"] == "pain_vs_rest_pain") & (summary["model"] == model)
                  & (summary["scenario"] == scenario) & (summary["explainer"] == explainer)]
    if row.empty or not np.isfinite(row["value"].iloc[0]):
        return ""
    value = float(row["value"].iloc[0])
    return (f"point at the pain regions ({value:.2f}x)" if value >= POINTS_AT_PAIN else
            f"{OUTSIDE_LABEL}: {value:.2f}x, under {POINTS_AT_PAIN:g}x")


def stability_cell(row) -> str:
    """LIME's stability of one network in words: rank correlation and top-5 overlap between seeds, its n."""
    mark = "unstable: " if bool(row.unstable) else ""
    return (f"{mark}rank correlation {row.rank_correlation:.2f}, top-5 overlap {row.top5_overlap:.2f} "
            f"({int(row.seeds)} seeds, n = {int(row.images)} images)")


def unstable_networks(stability: pd.DataFrame | None) -> dict[str, str]:
    """network -> its stability in words, for the networks whose LIME maps are unstable over seeds."""
    if stability is None or stability.empty:
        return {}
    return {r.model: stability_cell(r).removeprefix("unstable: ") for r in stability.itertuples() if bool(r.unstable)}


def unstable_sentence(unstable: dict[str, str]) -> str:
    from engine.explain.sanity import STABILITY_LIMIT

    return ("Unstable LIME maps: " + "; ".join(f"{m} ({text})" for m, text in unstable.items()) +
            f". Explained again with another sampling seed, these networks' maps rank the superpixels differently "
            f"(median rank correlation below {STABILITY_LIMIT:g}): read their heatmaps as one draw, not as the network's view.")


def baseline_sentence(baselines: str) -> str:
    """The Heatmaps page's line naming the LIME baseline that made the maps, and what it means."""
    return (f"LIME baseline: hidden superpixels showed {baseline_title(baselines)}. {baseline_meaning(baselines)} "
            "The paper hid them with black, "
            "which also looks like shut eyes and furrows, so LIME could hardly credit them; `[explain] baseline = "
            "\"black\"` reproduces the paper.")


def heatmap_baselines(groups: pd.DataFrame) -> str:
    """The LIME baselines that made an experiment's heatmap groups, joined by commas ("" when not recorded)."""
    if groups is None or "baseline" not in groups:
        return ""
    names = ",".join(groups["baseline"].fillna("").astype(str)).split(",")
    return ",".join(sorted(set(names) - {""}))


BASELINE_MEANING = ("LIME credits a part of the face by how much the network's probability falls when that part is "
                    "hidden, so a map says what the network loses when a part shows {title}, not where pain is drawn.")


def baseline_meaning(baselines: str) -> str:
    """What the baseline means for a reader of the maps."""
    return BASELINE_MEANING.format(title=baseline_title(baselines))


# --- pain-class maps that look mostly outside the pain regions ----------------------------------------------

OUTSIDE_LABEL = "outside the pain regions"
MAP_ARRAYS = {"lime": "heatmaps", "gradcam": "gradcam_heatmaps"}  # the unstretched mean maps of each explainer


def outside_pain_regions(groups: pd.DataFrame, arrays: dict[str, np.ndarray]) -> pd.DataFrame:
    """The stored pain-class heatmaps (model, scenario, dataset, explainer, ratio, n_images) whose pain regions get
    less than ``POINTS_AT_PAIN`` times the rest of the face's mass per unit area (``heatmap_pain_ratio``); flat
    maps are left out (they point nowhere, and the scorecard says so)."""
    from engine.explain.pain_regions import POINTS_AT_PAIN, heatmap_pain_ratio

    columns = ["model", "scenario", "dataset", "explainer", "ratio", "n_images"]
    regions = arrays.get("pain_regions") if arrays else None
    if groups is None or groups.empty or regions is None:
        return pd.DataFrame(columns=columns)
    rows = []
    for r in groups[(groups["label"] == 1) & (groups["n_images"] > 0)].itertuples():
        for explainer, name in MAP_ARRAYS.items():
            if name not in arrays or int(r.index) >= len(arrays[name]) or not np.isfinite(arrays[name][int(r.index)]).any():
                continue
            heat = np.nan_to_num(arrays[name][int(r.index)])
            if np.ptp(heat[regions >= 0]) <= 1e-9:  # a flat map (Grad-CAM of a 1x1 last block) points nowhere
                continue
            ratio = heatmap_pain_ratio(heat, regions)
            if np.isfinite(ratio) and ratio < POINTS_AT_PAIN:
                rows.append({"model": r.model, "scenario": r.scenario, "dataset": r.dataset, "explainer": explainer,
                             "ratio": ratio, "n_images": int(r.n_images)})
    return pd.DataFrame(rows, columns=columns)


def learned_outside(outside: pd.DataFrame, verdicts: pd.DataFrame, explainer: str = "lime") -> pd.DataFrame:
    """The rows of ``outside_pain_regions`` of one explainer whose network learned in that scenario (the maps of
    networks that did not learn are marked so already: they explain no signal)."""
    from dashboard.tables import failure

    keep = [e == explainer and not failure(verdicts, m, s)
            for m, s, e in zip(outside["model"], outside["scenario"], outside["explainer"])]
    return outside[np.array(keep, dtype=bool)]


def outside_mark(outside: pd.DataFrame, model: str, scenario: str, dataset: str, explainer: str) -> str:
    """A tile's mark when its pain-class map looks mostly outside the pain regions, else ""."""
    if outside is None or outside.empty:
        return ""
    rows = outside[(outside["model"] == model) & (outside["scenario"] == scenario) & (outside["dataset"] == dataset)
                   & (outside["explainer"] == explainer)]
    return "" if rows.empty else f"{OUTSIDE_LABEL} ({rows['ratio'].iloc[0]:.2f}x)"


def outside_sentence(outside: pd.DataFrame) -> str:
    """The warning over pain-class maps that look mostly outside the pain regions ("" when none does)."""
    from engine.explain.pain_regions import POINTS_AT_PAIN

    if outside is None or outside.empty:
        return ""
    scope = {"paindb": "PAIN-DB", "cppain": "CP-PAIN"}
    listed = "; ".join(f"{r.model} {EXPLAINER_TITLES.get(r.explainer, r.explainer)}, {r.scenario}, "
                       f"{scope.get(r.dataset, r.dataset)}: {r.ratio:.2f}x (n = {r.n_images})" for r in outside.itertuples())
    return (f"Looking mostly {OUTSIDE_LABEL}: these pain-class heatmaps give the pain action units' regions less than "
            f"{POINTS_AT_PAIN:g}x the rest of the face's mass per unit area ({listed}). They do not show where these "
            "networks find pain: an explainer that hides parts credits whatever the network needs intact, and a part "
            "that carries no sign of pain (the chin, the outline of the face) can be one of them. `bench/pain_cues.py` "
            "asks the networks directly, by swapping and hiding parts of the face.")


def _cell(row) -> str:
    if not np.isfinite(row.value):
        return ""
    return f"{row.value:.3f}" if not np.isfinite(row.low) or row.low == row.high else f"{row.value:.3f} [{row.low:.3f}, {row.high:.3f}]"


def _lines(subtitle: str | list[str], extra: str) -> list[str]:
    lines = [subtitle] if isinstance(subtitle, str) else list(subtitle)
    return [line for line in lines if line] + [extra]


# --- the Heatmaps page: each heatmap's scores, the explainer switch, pain-region outlines ---------------

def heatmap_scores(faith: pd.DataFrame | None, model: str, scenario: str, side: str, label: int, explainer: str) -> dict:
    """Means over one heatmap's images (network, scenario, dataset side, class) of one explainer's scores."""
    if faith is None or faith.empty:
        return {}
    on_side = faith["dataset"].eq("cppain") if side == "cppain" else faith["dataset"].ne("cppain")
    rows = faith[(faith["model"] == model) & (faith["scenario"] == scenario) & on_side & (faith["label"] == label)
                 & (faith["explainer"] == explainer)]
    if rows.empty:
        return {}
    means = rows.mean(numeric_only=True)
    return {"images": len(rows), "pointing": means.get("pointing_hit", np.nan), "pain_vs_rest": means.get("pain_vs_rest", np.nan),
            "insertion_gain": means.get("insertion_auc", np.nan) - means.get("insertion_auc_random", np.nan),
            "deletion_gain": means.get("deletion_auc_random", np.nan) - means.get("deletion_auc", np.nan),
            "agreement": means.get("agreement", np.nan)}


def pointing_chance(regions: np.ndarray | None) -> float:
    """The pointing game's chance level: the pain regions' share of the face area (NaN without a region map)."""
    from engine.explain.pain_regions import REFERENCE, area_shares

    return float("nan") if regions is None else 1.0 - area_shares(regions)[REFERENCE]


def score_caption(scores: dict, chance: float) -> str:
    """One line under a heatmap: the pointing game against chance, pain regions against the rest, the curves."""
    if not scores:
        return ""
    parts = []
    if np.isfinite(scores["pointing"]):
        parts.append(f"pointing {scores['pointing']:.2f} (chance {chance:.2f})")
    if np.isfinite(scores["pain_vs_rest"]):
        parts.append(f"pain regions {scores['pain_vs_rest']:.1f}× the rest")
    if np.isfinite(scores["insertion_gain"]):
        parts.append(f"vs random: insertion {scores['insertion_gain']:+.2f}, deletion {scores['deletion_gain']:+.2f}")
    return " · ".join(parts)


def explainer_map(arrays: dict[str, np.ndarray], index: int, explainer: str) -> tuple[np.ndarray | None, bool]:
    """(map, signed) of one heatmap group: LIME's or Grad-CAM's stretched map in [0, 1], or their
    difference LIME − Grad-CAM in [-1, 1] (signed). None where Grad-CAM has no map for the group."""
    lime = arrays["stretched"][index]
    gradcam = arrays["gradcam_stretched"][index] if "gradcam_stretched" in arrays else None
    if explainer == "lime":
        return lime, False
    if gradcam is None or not np.isfinite(gradcam).all():
        return None, False
    return (gradcam, False) if explainer == "gradcam" else (lime - gradcam, True)


def with_outlines(tile: np.ndarray, regions: np.ndarray) -> np.ndarray:
    """The tile (RGB, any size) with the pain regions' borders drawn in their colours."""
    side = tile.shape[0]
    index = np.clip(np.round(np.linspace(0, regions.shape[0] - 1, side)).astype(int), 0, regions.shape[0] - 1)
    labels = regions[np.ix_(index, index)]
    out = np.array(tile, copy=True)
    names = list(REGION_COLOURS)
    for i, name in enumerate(names):
        inside = labels == i
        edge = inside & ~(np.roll(inside, 1, 0) & np.roll(inside, -1, 0) & np.roll(inside, 1, 1) & np.roll(inside, -1, 1))
        edge |= np.roll(edge, 1, 0) | np.roll(edge, 1, 1)  # two pixels wide: visible on any overlay
        out[edge] = REGION_COLOURS[name]
    return out


def outline_legend() -> str:
    return " · ".join(f"{REGION_TITLES[name]}: {_colour_name(rgb)}" for name, rgb in REGION_COLOURS.items())


def _colour_name(rgb: tuple[int, int, int]) -> str:
    return {(230, 159, 0): "orange", (86, 180, 233): "sky blue", (0, 114, 178): "blue", (0, 158, 115): "green"}[rgb]


def difference_tile(face: np.ndarray, diff: np.ndarray, side: int) -> np.ndarray:
    """LIME − Grad-CAM as a blue-white-orange image (orange: LIME's weight; blue: Grad-CAM's) at ``side`` px."""
    del face  # a signed map is shown on its own: blending it over the face would hide the sign
    return images.resize(images.difference_image(diff), side, nearest=False)
