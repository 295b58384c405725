"""Faithfulness: how much to believe a heatmap. Per network and scenario: deletion and insertion against a
random order, where the heat falls among the pain action units' regions (and the pointing game), the
randomisation sanity check, and how far LIME and Grad-CAM agree. Every figure and table exports."""

from __future__ import annotations

import streamlit as st

from dashboard import charts, loaders, scorecard, widgets
from engine.explain.faithfulness import FILL_TITLES, FILLS, MIN_GAIN
from engine.explain.lime_masks import baseline_title
from engine.explain.scorecard import fill_ranking, ranking_sentence

DATASET_TITLES = {"all": "all test images", "unbc": "UNBC", "mintpain": "MIntPAIN", "delaware": "Delaware",
                  "cppain": "CP-PAIN"}


def curves_section(summary, models, learned, scenario, dataset, experiment, baselines) -> None:
    st.header("Deletion and insertion against a random order")
    st.caption("Superpixels are hidden in the order of each explainer's map, most relevant first (deletion), or "
               "least relevant first so that the most relevant are shown last (insertion), and the network's "
               "probability of the explained class is read after each step. LIME and Grad-CAM are ordered on the "
               "same superpixels of the same images. A faithful map beats a random order of the same superpixels: a "
               "higher insertion area and a lower deletion area; the table says \"beats random\" when the 95 % interval "
               f"of that gain lies above {MIN_GAIN}. Hidden superpixels are filled with ROAD's noisy linear imputation "
               "(Rong et al., 2022: each hidden pixel the mean of its neighbours, plus a little noise), which neither "
               "explainer was fitted on; with LIME's own fill "
               f"({baseline_title(baselines)}) a LIME map is nearly bound to win. Intervals: 95 %, bootstrap over subjects.")
    fill = st.radio("Fill of hidden superpixels", list(FILLS), key="faith-fill", horizontal=True,
                    format_func=lambda f: FILL_TITLES[f] + (" (default)" if f == FILLS[0] else ""))
    if summary[summary["metric"] == f"insertion_auc{scorecard.fill_suffix(fill)}"].empty:
        widgets.missing("No curves for this selection (an older scorecard: `painlens explain CONFIG` makes them again).")
        return
    figure = scorecard.auc_chart(summary, models, learned, f"Deletion and insertion · {DATASET_TITLES.get(dataset, dataset)}",
                                 widgets.provenance(experiment, charts.SCENARIO_TITLES.get(scenario, scenario)), fill=fill)
    widgets.chart(figure, f"{experiment.name}-faithfulness-curves-{fill}-{scenario}-{dataset}", "faith-curves")


def ranking_section(summary, scenario, experiment) -> None:
    ranking = fill_ranking(summary[summary["scenario"] == scenario])
    if ranking.empty:
        return
    st.subheader("Does the fill change the ranking?")
    st.caption("Every (network, explainer) ranked by its gain over the random order (insertion gain + deletion gain, "
               "all test images) under each fill; 1 = the most faithful. " + ranking_sentence(ranking, scenario))
    table = ranking.assign(explainer=ranking["explainer"].map(scorecard.EXPLAINER_TITLES)).rename(
        columns={"model": "network", "gain_road": "gain, ROAD", "gain_own": "gain, own fill", "rank_road": "rank, ROAD",
                 "rank_own": "rank, own fill", "moved": "places moved"}).drop(columns=["scenario", "kendall_tau"])
    widgets.table(table.round(3), f"{experiment.name}-faithfulness-ranking-{scenario}", "faith-ranking")


def regions_section(summary, models, learned, scenario, dataset, explainer, experiment) -> None:
    st.header("Where the heat falls: the pain action units")
    st.caption("Heatmap mass per unit area in each pain region on the template face (from the 68 landmarks), the rest "
               "of the face as the reference, and the pointing game: is the hottest point of a map inside a pain "
               "region? On synthetic data the regions of the action units planted in each frame are known as well.")
    scope = summary[summary["explainer"] == explainer]
    if scope.empty:
        widgets.missing(f"No {scorecard.EXPLAINER_TITLES[explainer]} scores for this selection.")
        return
    where = widgets.provenance(experiment, charts.SCENARIO_TITLES.get(scenario, scenario), DATASET_TITLES.get(dataset, dataset))
    name = scorecard.EXPLAINER_TITLES[explainer]
    widgets.chart(scorecard.region_chart(scope, models, learned, f"{name}: mass per unit area by pain region", where),
                  f"{experiment.name}-faithfulness-regions-{explainer}-{scenario}-{dataset}", "faith-regions")
    outside = [f"{m} ({text.split(': ', 1)[1]})" for m in models if learned.get((m, scenario), True)
               for text in [scorecard.points_at_pain(scope, m, scenario, explainer)] if text.startswith(scorecard.OUTSIDE_LABEL)]
    if outside:
        st.warning(f"{name}'s pain-class maps look mostly {scorecard.OUTSIDE_LABEL} for " + "; ".join(outside) +
                   ": read them as what these networks need intact, not as where they find pain (the Heatmaps page says why).")
    widgets.chart(scorecard.pointing_chart(scope, models, learned, f"{name}: pointing game", where),
                  f"{experiment.name}-faithfulness-pointing-{explainer}-{scenario}-{dataset}", "faith-pointing")


def sanity_section(sanity, models, experiment) -> None:
    from engine.explain.sanity import SANITY_LIMIT

    st.header("Sanity check: do the maps depend on the network?")
    st.caption("Each network's maps of its sanity images are made again with its weights randomised from the top layer "
               "down (cascading randomisation, Adebayo et al., 2018) and compared with the trained network's: Spearman's "
               "rank correlation of the absolute maps and SSIM of the normalized maps must fall; a map that stays is "
               "flagged: it shows the image more than the network. The null reference: the same comparison between two "
               "independently randomised networks, the similarity two maps reach from the image alone. Each verdict "
               "says how many images it rests on.")
    if sanity is None or sanity.empty:
        widgets.missing("No sanity check yet: `painlens explain CONFIG` runs it on one run per network "
                        "([explain] sanity_images > 0).")
        return
    figure = scorecard.sanity_chart(sanity, models, SANITY_LIMIT, "Rank correlation and SSIM as the network is randomised",
                                    widgets.provenance(experiment))
    widgets.chart(figure, f"{experiment.name}-faithfulness-sanity", "faith-sanity")
    unchecked = [m for m in models if m not in set(sanity["model"])]
    if unchecked:
        st.caption(f"Not checked: {', '.join(unchecked)}. The check runs on one run per network (fold 0 of the external "
                   "scenario) and is skipped when that run's network gave every test image one class.")
    flagged = sanity[sanity["flagged"].astype(bool)]
    for row in flagged.itertuples():
        st.warning(f"{row.model} · {scorecard.EXPLAINER_TITLES.get(row.explainer, row.explainer)}: {row.verdict}.")


def stability_section(stability, models, experiment) -> None:
    from engine.explain.sanity import STABILITY_LIMIT, TOP_SUPERPIXELS

    st.header("Stability: LIME over sampling seeds")
    st.caption(f"A sample of each network's images explained again with other sampling seeds: rank correlation of the "
               f"superpixel weights and the share of the top {TOP_SUPERPIXELS} superpixels two seeds agree on (means over "
               f"the pairs of seeds, medians over the images). Below {STABILITY_LIMIT:g} rank correlation a network's maps "
               "are marked unstable here and on the Heatmaps page.")
    if stability is None or stability.empty:
        widgets.missing("No stability check yet: `painlens explain CONFIG` runs it with the sanity check "
                        "([explain] stability_images > 0).")
        return
    table = stability[stability["model"].isin(models)].rename(columns={
        "model": "network", "rank_correlation": "rank correlation", "top5_overlap": f"top-{TOP_SUPERPIXELS} overlap"})
    widgets.table(table.round(3), f"{experiment.name}-lime-stability", "faith-stability")


def agreement_section(summary, models, learned, scenario, dataset, experiment) -> None:
    st.header("LIME and Grad-CAM")
    st.caption("Rank correlation between each image's LIME and Grad-CAM maps on the template face: near 1, two "
               "different explainers point at the same places; near 0, what one shows is not what the other does.")
    if summary[summary["metric"] == "agreement"].empty:
        widgets.missing("No Grad-CAM maps for this selection.")
        return
    figure = scorecard.agreement_chart(summary, models, learned, "LIME vs Grad-CAM agreement",
                                       widgets.provenance(experiment, charts.SCENARIO_TITLES.get(scenario, scenario),
                                                          DATASET_TITLES.get(dataset, dataset)))
    widgets.chart(figure, f"{experiment.name}-faithfulness-agreement-{scenario}-{dataset}", "faith-agreement")


experiment = widgets.experiment_or_stop()
st.title("Faithfulness")
card = loaders.load_scorecard(experiment.root)
if card is None or card.summary.empty:
    widgets.missing("No faithfulness scorecard yet: `painlens explain CONFIG` computes it with the LIME masks (after "
                    "`painlens run`), for every run whose model is in memory or kept.")
    st.stop()
summary = card.summary
models = [m for m in (experiment.models or sorted(summary["model"].unique())) if m in set(summary["model"])]
scenarios = [s for s in charts.SCENARIO_ORDER if s in set(summary["scenario"])]
c1, c2, c3 = st.columns([2, 2, 1])
scenario = c1.radio("Scenario", scenarios, key="faith-scenario", horizontal=True,
                    format_func=lambda s: charts.SCENARIO_TITLES.get(s, s))
in_scenario = summary[summary["scenario"] == scenario]
datasets = ["all", *sorted(d for d in in_scenario["dataset"].unique() if d != "all")]
dataset = c2.radio("Test images", datasets, key="faith-dataset", horizontal=True,
                   format_func=lambda d: DATASET_TITLES.get(d, d))
explainer = c3.radio("Explainer", list(scorecard.EXPLAINER_TITLES), key="faith-explainer",
                     format_func=scorecard.EXPLAINER_TITLES.get)
scope = in_scenario[in_scenario["dataset"] == dataset]
# Which networks learned (the summary's bootstrap verdict): said under the title, greyed in every chart;
# a map of a network that did not learn shows where it happens to respond, not where pain shows.
learned = scorecard.learned_map(widgets.network_notes(experiment, scenarios=[scenario], models=models))
unscored_note = scorecard.unscored_sentence(card.unscored, scenario)
if unscored_note:
    st.caption(unscored_note)
baselines = ",".join(sorted(set(card.images["baseline"].dropna().astype(str)))) if "baseline" in card.images else ""
curves_section(scope, models, learned, scenario, dataset, experiment, baselines)
ranking_section(summary[summary["dataset"] == "all"], scenario, experiment)
regions_section(scope, models, learned, scenario, dataset, explainer, experiment)
sanity_section(card.sanity, models, experiment)
stability_section(card.stability, models, experiment)
agreement_section(scope, models, learned, scenario, dataset, experiment)
st.header("The scorecard")
table = scorecard.scorecard_table(summary[summary["dataset"] == dataset], card.sanity, learned, card.unscored, card.stability)
widgets.table(table, f"{experiment.name}-faithfulness-{dataset}", "faith-table")
