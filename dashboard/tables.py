"""Pure table builders shared by the pages and the report: frames in, frames for people out."""

from __future__ import annotations

import numpy as np
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
    """One row per (network, scenario): pooled ROC AUC and accuracy with their 95 % intervals from the
    bootstrap over subjects, the one-sided p-value of "AUC <= 0.5" and its Holm-adjusted value over the
    networks of the scenario, whether the network learned (and why not), the n the numbers rest on
    (marked when few), the spread over seeds (external), F1 mean and std over runs, and whether it is
    the best of its scenario by AUC among the networks that learned (no best when none learned)."""
    macro = summary[summary["class"] == "macro"].copy()
    if "learned" not in macro:  # a summary without intervals (older engine): every network counts
        macro = macro.assign(learned=True, learned_reason="", auc=macro["roc_auc_mean"], auc_low=np.nan,
                             auc_high=np.nan, accuracy=macro["accuracy_mean"], accuracy_low=np.nan,
                             accuracy_high=np.nan, auc_seed_std=np.nan, pooling="")
    macro = macro.assign(**{c: macro[c] if c in macro else np.nan for c in ("auc_p", "auc_p_holm", "n_images", "n_subjects")})
    learned = macro["learned"].astype(bool)
    best = macro[learned].sort_values(["scenario", "auc", "model"], ascending=[True, False, True]).groupby("scenario").head(1)
    macro["best AUC"] = [(s, m) in set(zip(best["scenario"], best["model"])) for s, m in zip(macro["scenario"], macro["model"])]
    rank = {m: i for i, m in enumerate(models)}
    scenario_rank = {s: i for i, s in enumerate(charts.SCENARIO_ORDER)}
    macro = macro.assign(_s=macro["scenario"].map(scenario_rank), _m=macro["model"].map(rank).fillna(len(rank)))
    macro = macro.sort_values(["_s", "_m", "model"])
    return pd.DataFrame({
        "network": macro["model"], "scenario": macro["scenario"].map(charts.SCENARIO_TITLES).fillna(macro["scenario"]),
        "learned": learned.loc[macro.index], "why": macro["learned_reason"].fillna(""),
        "ROC AUC": macro["auc"], "AUC low": macro["auc_low"], "AUC high": macro["auc_high"],
        "p (AUC ≤ 0.5)": macro["auc_p"], "p, Holm": macro["auc_p_holm"],
        "accuracy": macro["accuracy"], "accuracy low": macro["accuracy_low"], "accuracy high": macro["accuracy_high"],
        "n": sizes(macro["n_images"], macro["n_subjects"]), "AUC sd over seeds": macro["auc_seed_std"],
        "F1 (mean over runs)": macro["f1_mean"], "F1 std": macro["f1_std"],
        "runs": macro["runs"], "pooling": macro["pooling"].fillna(""), "best AUC": macro["best AUC"],
    }).reset_index(drop=True)


def remedies(table: pd.DataFrame, models: list[str]) -> pd.DataFrame:
    """The CP-PAIN comparison (``engine.evaluation.remedies``) as shown: per network and variant, ROC AUC and
    accuracy with their 95 % intervals over subjects, the n, how many faces had a calm reference, the rule."""
    rank = {m: i for i, m in enumerate(models)}
    order = {v: i for i, v in enumerate(charts.REMEDY_COLOURS)}
    table = charts.with_remedies(table)
    frame = table.assign(_m=table["model"].map(rank).fillna(len(rank)), _v=table["variant"].map(order).fillna(len(order)))
    frame = frame.sort_values(["_m", "model", "_v"])
    return pd.DataFrame({
        "network": frame["model"], "variant": frame["variant"], "ROC AUC": frame["auc"], "AUC low": frame["auc_low"],
        "AUC high": frame["auc_high"], "accuracy": frame["accuracy"], "accuracy low": frame["accuracy_low"],
        "accuracy high": frame["accuracy_high"], "n": sizes(frame["n_images"], frame["n_subjects"]),
        "faces with a calm reference": pd.array([int(w) if "baseline" in v else None
                                                 for v, w in zip(frame["variant"], frame["with_reference"])], dtype="Int64"),
        "rule": frame["rule"]}).reset_index(drop=True)


def sizes(n_images, n_subjects) -> list[str]:
    """Each statistic's n, marked when few (``engine.evaluation.bootstrap.sample_size``), for a column."""
    from engine.evaluation.bootstrap import sample_size

    return [sample_size(i, s) for i, s in zip(n_images, n_subjects)]


def scenario_sizes(summary: pd.DataFrame, scenario: str) -> dict[str, str]:
    """Per network, the n of its pooled predictions in ``scenario`` (marked when few): the n of every
    statistic computed from them, such as the calibration's ECE ("" when unknown)."""
    if summary is None or summary.empty or "n_images" not in summary:
        return {}
    rows = summary[summary["scenario"] == scenario].drop_duplicates("model")
    return dict(zip(rows["model"], sizes(rows["n_images"], rows["n_subjects"])))


# --- networks that did not learn, and other per-network notes --------------------------------------

VERDICT_COLUMNS = ["model", "scenario", "learned", "reason"]


def network_verdicts(summary: pd.DataFrame | None) -> pd.DataFrame:
    """One row per (network, scenario) with results: ``VERDICT_COLUMNS`` (``reason``: a few words, from
    the summary's bootstrap verdict). Empty when the summary has no verdicts (nothing is greyed then)."""
    if summary is None or summary.empty or "learned" not in summary:
        return pd.DataFrame(columns=VERDICT_COLUMNS)
    rows = summary.drop_duplicates(["model", "scenario"])
    return pd.DataFrame({"model": rows["model"], "scenario": rows["scenario"], "learned": rows["learned"].astype(bool),
                         "reason": rows["learned_reason"].fillna("").astype(str)}).reset_index(drop=True)


def network_notes(verdicts: pd.DataFrame, models: list[str], scenarios: list[str] | None = None,
                  from_scratch: set[str] | frozenset = frozenset(),
                  restricted: dict[str, list[str]] | None = None,
                  capped: dict[str, int] | None = None,
                  unregularized: set[str] | frozenset = frozenset(),
                  external_epochs: dict[str, float] | None = None) -> pd.DataFrame:
    """Per network with something to say, in ``models``' order: ``model``, ``notes`` (short phrases),
    ``greyed`` (it learned in none of the ``scenarios`` shown, all when None, that it has results in).

    The phrases: where it did not learn and why; a pretrained base trained from random weights
    (``from_scratch``: this experiment had no ImageNet weights); a network kept to some scenarios
    (``restricted``: [scenarios] per_model); a network trained on a few batches per epoch only (``capped``:
    [training] steps_per_epoch_per_model); a network trained without augmentation and dropout
    (``unregularized``: [training] unregularized); a network whose external runs had fewer epochs than
    its others (``external_epochs``: their share of its epochs, [training] external_epoch_share), said
    where the external scenario is shown."""
    restricted, capped, external_epochs = restricted or {}, capped or {}, external_epochs or {}
    shown = verdicts if scenarios is None else verdicts[verdicts["scenario"].isin(scenarios)]
    rows = []
    for model in models:
        own = shown[shown["model"] == model]
        failed = own[~own["learned"].astype(bool)]
        notes, reasons = [], failed.groupby("reason", sort=False)
        where = [", ".join(charts.SCENARIO_TITLES.get(s, s) for s in charts.SCENARIO_ORDER if s in set(g["scenario"]))
                 for _, g in reasons]
        if len(own) > 1 and len(failed) == len(own):  # nowhere: one phrase, the reasons by scenario after it
            why = [r for r, _ in reasons] if reasons.ngroups == 1 else [f"{w}: {r}" for w, (r, _) in zip(where, reasons)]
            notes.append(f"did not learn in any scenario: {'; '.join(why)}")
        else:
            notes += [f"did not learn in {w}: {r}" for w, (r, _) in zip(where, reasons)]
        if model in from_scratch:
            notes.append("pretrained base trained from random weights here (no ImageNet weights)")
        if model in restricted:
            kept = ", ".join(charts.SCENARIO_TITLES.get(s, s) for s in restricted[model])
            notes.append(f"runs only in {kept or 'no scenario'} ([scenarios] per_model)")
        if model in capped:
            steps = capped[model]
            notes.append(f"trained on {steps} batch{'es' if steps != 1 else ''} per epoch only "
                         "([training] steps_per_epoch_per_model)")
        if model in unregularized:
            notes.append("trained without augmentation or dropout ([training] unregularized)")
        if model in external_epochs and (scenarios is None or "external" in scenarios):
            share = external_epochs[model]
            # One wording for every network (its epochs are on the model card), so notes still group.
            part = "half" if share == 0.5 else f"{share:.0%}".replace("%", " %")
            notes.append(f"external runs trained {part} of its epochs, on all of PAIN-DB "
                         "([training] external_epoch_share)")
        if notes:
            rows.append({"model": model, "notes": notes, "greyed": len(own) > 0 and len(failed) == len(own)})
    return pd.DataFrame(rows, columns=["model", "notes", "greyed"])


def failure(verdicts: pd.DataFrame, model: str, scenario: str) -> str:
    """Why ``model`` did not learn in ``scenario`` (a few words), "" when it learned or nothing is known."""
    rows = verdicts[(verdicts["model"] == model) & (verdicts["scenario"] == scenario)]
    return "" if rows.empty or bool(rows["learned"].iloc[0]) else str(rows["reason"].iloc[0]) or "no reason recorded"


def collapsed_verdicts(verdicts: pd.DataFrame, scenarios: list[str] | None = None) -> pd.DataFrame:
    """One verdict per network over ``scenarios`` (all when None): it learned when it learned in any of
    them (for figures that pool scenarios, such as heatmaps compared over all of them)."""
    shown = verdicts if scenarios is None else verdicts[verdicts["scenario"].isin(scenarios)]
    if shown.empty:
        return pd.DataFrame(columns=["model", "learned", "reason"])
    grouped = shown.groupby("model", sort=False)
    return pd.DataFrame({"learned": grouped["learned"].any(),
                         "reason": grouped["reason"].agg(lambda r: "; ".join(dict.fromkeys(r)))}).reset_index()


def grouped_notes(notes: pd.DataFrame) -> list[tuple[list[str], list[str]]]:
    """(networks, notes) with the networks that share the same notes together, in first-seen order: nine
    networks that predict one class take one line, not nine."""
    groups: dict[tuple, list[str]] = {}
    for row in notes.itertuples(index=False):
        groups.setdefault(tuple(row.notes), []).append(row.model)
    return [(models, list(phrases)) for phrases, models in groups.items()]


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


def answer_table(probabilities: pd.DataFrame, networks: pd.DataFrame) -> pd.DataFrame:
    """The upload page's per-network table: raw p(pain) (mean over kept seeds, with their range) beside the
    calibrated one, the network's ROC AUC on PAIN-DB's subject-wise held-out faces with its 95 % interval,
    whether it learned there and whether the answer counts it. ``networks``: ``engine.evaluation.answer.FaceAnswer.networks``."""
    merged = probabilities.merge(networks.drop(columns=["p_raw"]), on="model", how="left")
    return pd.DataFrame({
        "network": merged["model"], "p(pain) raw": merged["p_pain"], "p(pain) calibrated": merged["p_calibrated"],
        "lowest seed": merged["low"], "highest seed": merged["high"], "held-out AUC": merged["auc"],
        "AUC low": merged["auc_low"], "AUC high": merged["auc_high"], "learned": merged["learned"].fillna(False).astype(bool),
        "why": merged["learned_reason"].fillna(""), "in the answer": merged["used"].fillna(False).astype(bool),
    })


def beside_raters(table: pd.DataFrame) -> pd.DataFrame:
    """The served answer among the clinicians (``engine.ratings.model_agreement.answer_beside_raters``) as text:
    one row per scale and pair, Cohen's kappa and Spearman's rho as "0.83 [0.35, 1.00]", videos used and withheld."""
    from engine.ratings.forms import scale_label

    def cell(row) -> str:
        if not np.isfinite(row.value):
            return f"– ({row.note})" if row.note else "–"
        text = f"{row.value:.2f} [{row.low:.2f}, {row.high:.2f}]" if np.isfinite(row.low) else f"{row.value:.2f}"
        return text.replace("-0.00", "0.00")  # a kappa of 0 less a rounding error

    frame = table.assign(pair=[f"{a} · {b}" for a, b in zip(table["first"], table["second"])],
                         cell=[cell(r) for r in table.itertuples()])
    wide = frame.pivot_table(index=["scale", "pair"], columns="measure", values="cell", aggfunc="first", sort=False)
    sizes = frame.groupby(["scale", "pair"], sort=False)[["n_videos", "n_withheld"]].first()
    wide = wide.join(sizes).reset_index()
    return pd.DataFrame({"scale": wide["scale"].map(scale_label), "pair": wide["pair"],
                         "Cohen's κ (pain / no pain) [95 % CI]": wide.get("kappa", ""),
                         "Spearman ρ [95 % CI]": wide.get("spearman_rho", ""),
                         "videos": wide["n_videos"], "videos withheld by the answer": wide["n_withheld"]})
