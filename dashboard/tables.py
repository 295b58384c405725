"""Pure table builders shared by the pages and the report: frames in, frames for people out."""

from __future__ import annotations

import pandas as pd

from dashboard import charts

def table2(samples: pd.DataFrame) -> pd.DataFrame:
    """The engine's Table 2 (``engine.datasets.paindb.table2``) with "Faces found": the images MTCNN
    found a face in (the ones the networks use), and a blank for the total's levels."""
    from engine.datasets.paindb import table2 as count_table

    frame = count_table(samples, faces=True)
    # The total has no number of levels (datasets count them differently): blank, not "None".
    frame["Levels"] = [("" if pd.isna(v) else str(int(v))) for v in frame["Levels"]]
    return frame


def table2_long(table: pd.DataFrame) -> pd.DataFrame:
    """Table 2 as (dataset, class, images) rows for the counts chart, totals left out."""
    rows = table[~table["Dataset"].str.startswith("Total")]
    long = rows.melt(id_vars=["Dataset"], value_vars=["No pain", "Pain"], var_name="class", value_name="images")
    return long.assign(**{"class": long["class"].str.lower()}).rename(columns={"Dataset": "dataset"})


def comparison(summary: pd.DataFrame, models: list[str]) -> pd.DataFrame:
    """One row per (network, scenario): mean and std of accuracy and F1, mean ROC AUC, and whether the
    network is the best of its scenario by accuracy / by F1."""
    macro = summary[summary["class"] == "macro"].copy()
    for metric, column in (("f1_mean", "best F1"), ("accuracy_mean", "best accuracy")):
        best = set(map(tuple, macro.loc[macro.groupby("scenario")[metric].idxmax(), ["scenario", "model"]].to_numpy()))
        macro[column] = [(s, m) in best for s, m in zip(macro["scenario"], macro["model"])]
    rank = {m: i for i, m in enumerate(models)}
    scenario_rank = {s: i for i, s in enumerate(charts.SCENARIO_ORDER)}
    macro = macro.assign(_s=macro["scenario"].map(scenario_rank), _m=macro["model"].map(rank).fillna(len(rank)))
    macro = macro.sort_values(["_s", "_m", "model"])
    return pd.DataFrame({
        "network": macro["model"], "scenario": macro["scenario"].map(charts.SCENARIO_TITLES).fillna(macro["scenario"]),
        "runs": macro["runs"], "accuracy": macro["accuracy_mean"], "accuracy std": macro["accuracy_std"],
        "F1": macro["f1_mean"], "F1 std": macro["f1_std"], "ROC AUC": macro["roc_auc_mean"],
        "best accuracy": macro["best accuracy"], "best F1": macro["best F1"],
    }).reset_index(drop=True)


def labelled_ratings(frame: pd.DataFrame) -> pd.DataFrame:
    """Ratings rows with scale_label / source_label; sources in file order with "All" last, scales in
    the paper's order."""
    from engine.ratings.forms import ALL_SOURCES, SCALE_ORDER, scale_label, source_label

    out = frame.copy()
    out["scale_label"] = out["scale"].map(scale_label)
    out["source_label"] = out["source"].map(source_label)
    sources = [s for s in dict.fromkeys(out["source"]) if s != ALL_SOURCES] + [ALL_SOURCES]
    scales = [s for s in SCALE_ORDER if s in set(out["scale"])] + [s for s in dict.fromkeys(out["scale"]) if s not in SCALE_ORDER]
    out = out.assign(_source=out["source"].map({s: i for i, s in enumerate(sources)}),
                     _scale=out["scale"].map({s: i for i, s in enumerate(scales)}))
    return out.sort_values(["_scale", "_source"]).drop(columns=["_source", "_scale"]).reset_index(drop=True)


def table4(headline: pd.DataFrame, counts: pd.DataFrame) -> pd.DataFrame:
    """The paper's Table 4 as text: rows = pain sources, All, videos rated no pain / pain; one column per
    scale; ICC cells "0.751 [0.68, 0.81] excellent" (ICC, 95 % CI, Fleiss category)."""
    from engine.ratings.forms import ALL_SOURCES
    from engine.ratings.report import format_icc

    head = labelled_ratings(headline)
    head["cell"] = [format_icc(row) for _, row in head.iterrows()]
    table = head.pivot(index="source_label", columns="scale_label", values="cell")
    table = table.loc[list(dict.fromkeys(head["source_label"])), list(dict.fromkeys(head["scale_label"]))]
    totals = labelled_ratings(counts[counts["source"] == ALL_SOURCES]).set_index("scale_label")
    for row, column in (("Videos rated no pain", "no_pain"), ("Videos rated pain", "pain")):
        table.loc[row] = [str(int(totals.loc[c, column])) if c in totals.index else "" for c in table.columns]
    return table.rename_axis("Source of pain").reset_index().rename_axis(None, axis=1)
