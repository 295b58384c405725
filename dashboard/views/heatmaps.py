"""Heatmaps: where the networks look. PAIN-DB and CP-PAIN side by side with their difference, overlays on
the mean face, the grid of all networks (Figure 6), region scores, and the pretrained-versus-scratch clustering.
LIME's maps, Grad-CAM's or their difference, with each heatmap's faithfulness scores and, on demand, the
pain action units' regions outlined (the scorecard: dashboard/scorecard.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from dashboard import charts, images, loaders, tables, widgets
from dashboard import scorecard
from engine.explain.lime_masks import baseline_title

SIDE_TITLES = {"paindb": "PAIN-DB", "cppain": "CP-PAIN"}
TILE = 256
EXPLAINERS = {"lime": "LIME", "gradcam": "Grad-CAM", "difference": "LIME − Grad-CAM"}
# What the controls chose, read by the tiles: explainer, outlines on or off, Grad-CAM maps and pain
# regions (``loaders.load_explainer_maps``), the scorecard's per-image table.
VIEW = {"explainer": "lime", "outlines": False, "maps": {}, "faith": None, "unstable": {}, "outside": None}
NOT_LEARNED_LABEL = "explains a network that did not learn"
UNSTABLE_LABEL = "unstable LIME maps"


def baseline_tag() -> str:
    """The LIME baseline in an exported file's name (a tile's PNG carries no caption)."""
    if VIEW["explainer"] == "gradcam" or not VIEW.get("baseline"):
        return ""
    return "-lime-baseline-" + VIEW["baseline"].replace(",", "-")


def group_row(groups: pd.DataFrame, model: str, scenario: str, dataset: str, label: int) -> pd.Series | None:
    rows = groups[(groups["model"] == model) & (groups["scenario"] == scenario) & (groups["dataset"] == dataset)
                  & (groups["label"] == label) & (groups["n_images"] > 0)]
    return rows.iloc[0] if len(rows) else None


def heat_tile(data: loaders.Heatmaps, row: pd.Series | None, opacity: float) -> np.ndarray | None:
    """The chosen explainer's stretched heatmap over the group's mean face (or LIME − Grad-CAM on its own),
    at TILE px, with the pain regions outlined when asked."""
    if row is None:
        return None
    index = int(row["index"])
    face = images.resize(data.arrays["faces"][index], TILE)
    heat, signed = scorecard.explainer_map({**data.arrays, **VIEW["maps"]}, index, VIEW["explainer"])
    if heat is None:
        return None
    tile = scorecard.difference_tile(face, heat, TILE) if signed else images.overlay(face, heat, opacity)
    if VIEW["outlines"] and "pain_regions" in VIEW["maps"]:
        tile = scorecard.with_outlines(tile, VIEW["maps"]["pain_regions"])
    return tile


def outside_mark(model: str, scenario: str, dataset: str, label: int) -> str:
    """The mark of a pain-class tile whose map looks mostly outside the pain regions (LIME's under the difference)."""
    if label != 1:
        return ""
    explainer = "gradcam" if VIEW["explainer"] == "gradcam" else "lime"
    return scorecard.outside_mark(VIEW["outside"], model, scenario, dataset, explainer)


def tile_scores(model: str, title: str, paindb_scenario: str, label: int) -> str:
    """The scorecard's line for one side-by-side heatmap (LIME's scores under the difference)."""
    side, scenario = ("paindb", paindb_scenario) if title == "PAIN-DB" else ("cppain", "external")
    explainer = "gradcam" if VIEW["explainer"] == "gradcam" else "lime"
    chance = scorecard.pointing_chance(VIEW["maps"].get("pain_regions"))
    return scorecard.score_caption(scorecard.heatmap_scores(VIEW["faith"], model, scenario, side, label, explainer), chance)


def score_section(models, label, class_name, scenario, dataset, experiment) -> None:
    """Each heatmap of the grid's scope with its faithfulness scores (means over its images)."""
    explainer = "gradcam" if VIEW["explainer"] == "gradcam" else "lime"
    rows = [{"network": model, **scorecard.heatmap_scores(VIEW["faith"], model, scenario, dataset, label, explainer)}
            for model in models]
    rows = [r for r in rows if len(r) > 1]
    if not rows:
        return
    st.subheader(f"Scores of these heatmaps ({EXPLAINERS[explainer]})")
    st.caption("Means over each heatmap's images: pointing game (hottest point in a pain region), pain regions' mass "
               "per unit area against the rest of the face, insertion and deletion against a random order (above 0: "
               "better than random), LIME vs Grad-CAM agreement. Intervals and more: the Faithfulness page.")
    widgets.table(pd.DataFrame(rows).round(3), f"{experiment.name}-heatmap-scores-{dataset}-{scenario}-{class_name}",
                  "heatmap-scores")


def difference_tile(data: loaders.Heatmaps, model: str, label: int, paindb_scenario: str) -> np.ndarray | None:
    diffs = data.differences
    if diffs.empty:
        return None
    rows = diffs[(diffs["model"] == model) & (diffs["label"] == label) & (diffs["paindb_scenario"] == paindb_scenario)]
    if rows.empty:
        return None
    return images.resize(images.difference_image(data.arrays["differences"][int(rows.iloc[0]["index"])]), TILE, nearest=False)


def side_by_side(data, models, label, class_name, paindb_scenario, opacity, experiment, verdicts) -> None:
    st.header("PAIN-DB and CP-PAIN side by side")
    st.caption(f"Class **{class_name}** · PAIN-DB test images of the {charts.SCENARIO_TITLES[paindb_scenario].lower()} "
               "scenario · CP-PAIN images of the external scenario. Heatmaps are stretched to [0, 1] (viridis: dark "
               "= low weight, yellow = high). Difference: CP-PAIN minus PAIN-DB; orange where CP-PAIN faces drew "
               "more weight, purple where PAIN-DB faces did.")
    for model in models:
        pdb = group_row(data.groups, model, paindb_scenario, "paindb", label)
        cp = group_row(data.groups, model, "external", "cppain", label)
        cols = st.columns(3)
        for col, row, title, scenario in ((cols[0], pdb, "PAIN-DB", paindb_scenario), (cols[1], cp, "CP-PAIN", "external")):
            tile = heat_tile(data, row, opacity)
            failed = tables.failure(verdicts, model, scenario)
            with col:
                if tile is None:
                    st.info(f"{model}: no {title} heatmap for this class and scenario.")
                else:
                    mark = f" · {NOT_LEARNED_LABEL} ({failed})" if failed else ""
                    mark += f" · {UNSTABLE_LABEL} ({VIEW['unstable'][model]})" if model in VIEW["unstable"] else ""
                    outside = outside_mark(model, scenario, "paindb" if title == "PAIN-DB" else "cppain", label)
                    mark += f" · {outside}" if outside else ""
                    widgets.picture(tile, f"{experiment.name}-{model}-{title}-{class_name}{baseline_tag()}", f"{model}-{title}",
                                    caption=f"{model} · {title} · {int(row['n_images'])} images{mark}")
                    st.caption(tile_scores(model, title, paindb_scenario, label))
        diff = difference_tile(data, model, label, paindb_scenario)
        with cols[2]:
            if diff is None:
                st.info(f"{model}: the difference needs both heatmaps.")
            else:
                widgets.picture(diff, f"{experiment.name}-{model}-difference-{class_name}{baseline_tag()}", f"{model}-diff",
                                caption=f"{model} · CP-PAIN − PAIN-DB")


def network_grid(data, models, label, class_name, scenario, dataset, opacity, experiment, verdicts) -> None:
    st.header("All networks (Figure 6)")
    tiles, labels, without = [], [], []
    scratch = widgets.from_scratch(experiment)
    for model in models:
        row = group_row(data.groups, model, scenario, dataset, label)
        if row is not None:
            tile = heat_tile(data, row, opacity)
            if tile is None:  # no map of this explainer (Grad-CAM: a run the scorecard skipped)
                without.append(model)
                continue
            pre = "pretrained" if bool(row.get("pretrained", False)) else "scratch"
            pre = "pretrained base, random weights" if model in scratch else pre
            # The mark first: a tile's label is cut to its width.
            mark = " · did not learn ·" if tables.failure(verdicts, model, scenario) else ""
            mark += " · unstable ·" if model in VIEW["unstable"] else ""
            mark += " · outside ·" if outside_mark(model, scenario, dataset, label) else ""
            tiles.append(tile)
            labels.append(f"{model}{mark} ({pre}, n={int(row['n_images'])})")
    if without:
        st.caption(f"No {EXPLAINERS[VIEW['explainer']]} map for {', '.join(without)}: the scorecard (and its Grad-CAM "
                   "maps) skips runs whose network gave every test image one class.")
    if not tiles:
        widgets.missing(f"No heatmaps for {SIDE_TITLES[dataset]} · {scenario} · {class_name} yet.")
        return
    shown = (f"LIME heatmaps (baseline: {baseline_title(VIEW['baseline'])})" if VIEW["explainer"] == "lime" else
             f"{EXPLAINERS[VIEW['explainer']]} heatmaps")
    title = (f"{shown} · {SIDE_TITLES[dataset]} · {charts.SCENARIO_TITLES[scenario]} · class {class_name} · "
             f"{widgets.provenance(experiment)}")
    grid = images.labelled_grid(tiles, labels, columns=min(5, len(tiles)), tile=TILE, title=title)
    bar = images.scale_bar(36, low="low weight", high="high weight", width=min(grid.shape[1], 420))
    canvas = np.full((grid.shape[0] + bar.shape[0] + 8, grid.shape[1], 3), 255, dtype=np.uint8)
    canvas[:grid.shape[0]] = grid
    canvas[grid.shape[0] + 4:grid.shape[0] + 4 + bar.shape[0], 8:8 + bar.shape[1]] = bar
    widgets.picture(canvas, f"{experiment.name}-heatmap-grid-{dataset}-{scenario}-{class_name}{baseline_tag()}", "grid")


def region_section(data, models, label, class_name, scenario, dataset, experiment, verdicts) -> None:
    st.header("Region scores")
    regions = data.regions
    if regions.empty:
        widgets.missing("No region scores yet: `painlens explain CONFIG` writes them.")
        return
    scope = regions[(regions["scenario"] == scenario) & (regions["dataset"] == dataset) & (regions["label"] == label)
                    & regions["model"].isin(models)]
    if scope.empty:
        widgets.missing(f"No region scores for {SIDE_TITLES[dataset]} · {scenario} · {class_name}.")
        return
    st.caption("Share of each heatmap's mass on the face that falls in a region, divided by the region's share of the "
               "face area: 1 = no preference, above 1 = the network looks there more than the area would suggest. "
               "Cell text: the mass share. In brackets: the pain action units that show in the region.")
    figure = charts.region_grid(scope, models, f"Where the networks look · {SIDE_TITLES[dataset]} · {class_name}",
                                widgets.provenance(experiment, charts.SCENARIO_TITLES[scenario]), verdicts)
    widgets.chart(figure, f"{experiment.name}-regions-{dataset}-{scenario}-{class_name}", "regions")
    table = scope[["model", "region", "aus", "share", "area_share", "ratio", "n_images"]].rename(
        columns={"model": "network", "aus": "action units", "share": "mass share", "area_share": "area share"})
    widgets.table(table.round(3), f"{experiment.name}-regions-{dataset}-{scenario}-{class_name}", "regions-table")


def cluster_section(data, experiment, verdicts) -> None:
    st.header("Pretrained versus scratch networks")
    if data.similarity.empty or data.clusters.empty:
        widgets.missing("The clustering needs heatmaps of at least two networks in the same scope: "
                        "`painlens explain CONFIG` writes it once they exist.")
        return
    scopes = list(dict.fromkeys(data.clusters["scope"]))
    scope = st.selectbox("Heatmaps compared", scopes, index=scopes.index("all") if "all" in scopes else 0,
                         key="cluster-scope", help="'all': every scenario, dataset and class that all networks have, together.")
    clusters = data.clusters[data.clusters["scope"] == scope].sort_values("leaf_order")
    similarity = data.similarity[data.similarity["scope"] == scope]
    pretrained = dict(zip(clusters["model"], clusters["pretrained"].astype(bool)))
    agreement = clusters["agreement"].iloc[0]
    if np.isfinite(agreement):
        st.markdown(f"Two clusters by average linkage on 1 − r. Agreement with the pretrained / scratch split "
                    f"(adjusted Rand index): **{agreement:.2f}** (1 = the same split, about 0 = unrelated). The paper "
                    "found two such clusters.")
    else:
        st.markdown("All networks compared here are of one kind (all pretrained or all scratch), so the split cannot "
                    "be tested in this scope.")
    if experiment.without_imagenet:
        st.caption("This experiment trained the 'pretrained' architectures from scratch (weights = none): the paper's "
                   "split is not expected here.")
    scenarios = None if scope == "all" else [scope.split("/")[0]]
    figure = charts.similarity_matrix(similarity, list(clusters["model"]), pretrained, "Heatmap similarity between networks",
                                      widgets.provenance(experiment, f"scope {scope}"),
                                      tables.collapsed_verdicts(verdicts, scenarios))
    widgets.chart(figure, f"{experiment.name}-similarity", "similarity")
    widgets.table(clusters[["model", "cluster", "pretrained", "leaf_order"]].rename(columns={"model": "network"}),
                  f"{experiment.name}-clusters", "clusters")


experiment = widgets.experiment_or_stop()
st.title("Heatmaps")
data = loaders.load_heatmaps(experiment.root)
if data is None or data.groups.empty:
    widgets.missing("No heatmaps yet: LIME masks and heatmaps are written by `painlens explain CONFIG` after the runs "
                    "finish (they need the networks' test predictions and the face cache).")
    st.stop()
groups = data.groups[data.groups["n_images"] > 0]
if groups.empty:
    widgets.missing("Heatmaps were computed but every explained image's landmarks failed, so none could be placed on "
                    "the template face; the heatmap table lists the failures per group.")
    st.stop()
all_models = [m for m in (experiment.models or sorted(groups["model"].unique())) if m in set(groups["model"])]
verdicts = widgets.network_notes(experiment, models=all_models)
st.caption("A heatmap of a network that did not learn shows where an untrained or one-class network happens to "
           "respond, not where pain shows: such heatmaps are labelled *" + NOT_LEARNED_LABEL + "*.")
c1, c2, c3, c4 = st.columns([3, 1, 1, 1])
models = c1.multiselect("Networks", all_models, default=all_models[:3], key="hm-models") or all_models[:1]
classes = sorted(groups["label"].unique())
# Default: the class with heatmaps in most (network, scenario, dataset) groups, pain on a tie.
most = groups.groupby("label").size().sort_index(ascending=False).idxmax()
label = c2.radio("Class", classes, index=classes.index(most), key="hm-class",
                 format_func=lambda v: charts.class_title(groups.loc[groups["label"] == v, "class_name"].iloc[0]))
class_name = charts.class_title(groups.loc[groups["label"] == label, "class_name"].iloc[0])
paindb_scenarios = [s for s in ("image", "subject") if s in set(groups.loc[groups["dataset"] == "paindb", "scenario"])]
paindb_scenario = c3.radio("PAIN-DB scenario", paindb_scenarios or ["image", "subject"], key="hm-scenario",
                           format_func=lambda s: charts.SCENARIO_TITLES[s])
opacity = c4.slider("Overlay opacity", 0.0, 1.0, 0.6, 0.05, key="hm-opacity")
e1, e2 = st.columns([3, 1])
explainer = e1.radio("Explainer", list(EXPLAINERS), key="hm-explainer", horizontal=True, format_func=EXPLAINERS.get,
                     help="LIME (the paper's), Grad-CAM on the last convolutional block, or LIME minus Grad-CAM "
                          "(orange: LIME's weight, blue: Grad-CAM's).")
outlines = e2.toggle("Pain regions", key="hm-outlines", help=scorecard.outline_legend())
card = loaders.load_scorecard(experiment.root)
VIEW.update(explainer=explainer, outlines=outlines, maps=loaders.load_explainer_maps(experiment.root),
            faith=card.images if card is not None else None,
            unstable=scorecard.unstable_networks(card.stability if card is not None else None),
            baseline=",".join(sorted(set(",".join(groups.get("baseline", pd.Series(dtype=str)).fillna("").astype(str)).split(",")) - {""})))
VIEW["outside"] = scorecard.outside_pain_regions(groups, {**data.arrays, **VIEW["maps"]})
st.caption(scorecard.baseline_sentence(VIEW["baseline"]))
shown = scorecard.learned_outside(VIEW["outside"], verdicts, "gradcam" if explainer == "gradcam" else "lime")
if len(shown):  # the shown explainer's maps of networks that learned (the others are marked "did not learn")
    st.warning(scorecard.outside_sentence(shown))
if VIEW["unstable"]:
    st.warning(scorecard.unstable_sentence(VIEW["unstable"]))
if explainer != "lime" and "gradcam_stretched" not in VIEW["maps"]:
    st.info("These heatmaps were written before Grad-CAM existed: `painlens explain CONFIG` makes them again.")
elif explainer != "lime":
    st.caption(f"Shown: {EXPLAINERS[explainer]}" + (" (orange: where LIME puts more weight, blue: where Grad-CAM does; "
               "both maps stretched to [0, 1])." if explainer == "difference" else ", stretched to [0, 1] like LIME's."))
if outlines:
    st.caption("Outlined: " + scorecard.outline_legend() + " (the rest of the face is the reference).")
side_by_side(data, models, label, class_name, paindb_scenario, opacity, experiment, verdicts)

scopes = sorted({(r.dataset, r.scenario) for r in groups[groups["label"] == label].itertuples()},
                key=lambda s: (s[0] != "cppain", s[1]))
dataset, scenario = st.selectbox("Grid and regions for", scopes, key="hm-scope",
                                 format_func=lambda s: f"{SIDE_TITLES[s[0]]} · {charts.SCENARIO_TITLES[s[1]]}")
network_grid(data, all_models, label, class_name, scenario, dataset, opacity, experiment, verdicts)
score_section(all_models, label, class_name, scenario, dataset, experiment)
region_section(data, all_models, label, class_name, scenario, dataset, experiment, verdicts)
cluster_section(data, experiment, verdicts)
