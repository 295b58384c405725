"""Two remedies for the gap between PAIN-DB and CP faces, compared on CP-PAIN per network.

``remedies`` (one row per network and variant), ROC-AUC and accuracy with bootstrap intervals over CP-PAIN
subjects (``engine.evaluation.bootstrap``):
- ``external``: the paper's scenario (p(pain) averaged over the seeds, as in the summary);
- ``external + baseline``: the same faces judged against the person's calm frames (``engine.evaluation.baseline``:
  the change in logit from the same subject's calm frames of *other* videos, through the network's rule fitted on
  its PAIN-DB subject-wise out-of-fold faces; a face whose subject has no other video keeps its absolute p(pain));
- ``cp_adapt``: the external model fine-tuned on the other CP-PAIN subjects (leave-one-subject-out);
- ``cp_adapt + baseline``: both.
A "+ baseline" row is left out for a network without subject-wise runs (no development data to fit its rule).
Where the experiment has the action-unit estimator (``action_unit_frames``), ``PSPI (AU estimator)`` gets the
external and "+ baseline" rows too: its estimated PSPI, and PSPI minus the person's calm frames' (other videos),
each turned into p(pain) by a logistic rule fitted on UNBC's out-of-fold frames (pain: coded PSPI > 0; each
subject's calm frames of other sequences the reference).

``adapt_curve``: cp_adapt's accuracy and ROC-AUC against the number of CP-PAIN subjects it adapted on.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from engine.artifacts import ExperimentStore
from engine.evaluation.baseline import (calm_reference, fit_baseline_rule, fit_change_rule, is_fitted, logit, sequence_keys,
                                       sigmoid, with_baseline)
from engine.evaluation.bootstrap import auc_and_accuracy, pooled_images

DEVELOPMENT_SCENARIO = "subject"
AU_MODEL = "PSPI (AU estimator)"
VARIANTS = ("external", "external + baseline", "cp_adapt", "cp_adapt + baseline")
COLUMNS = ["model", "variant", "n_images", "n_subjects", "with_reference", "auc", "auc_low", "auc_high", "accuracy",
           "accuracy_low", "accuracy_high", "rule"]
CURVE_COLUMNS = ["model", "n_subjects", "n_images", "test_subjects", "auc", "auc_low", "auc_high", "accuracy",
                 "accuracy_low", "accuracy_high"]


def refresh_remedies(store: ExperimentStore) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Compute and write ``remedies`` and ``adapt_curve`` from the finished runs; returns both."""
    from engine.evaluation.results import bootstrap_settings

    settings = bootstrap_settings(store)
    samples = store.samples()
    remedies = remedies_table(store, samples, settings)
    curve = adapt_curve_table(store, settings)
    store.write_table("remedies", remedies)
    store.write_table("adapt_curve", curve)
    return remedies, curve


def network_rule(store: ExperimentStore, model: str, samples: pd.DataFrame) -> dict | None:
    """The network's baseline rule fitted on its subject-wise out-of-fold PAIN-DB faces (None without them)."""
    frames = [store.predictions(k) for k in store.finished_runs(DEVELOPMENT_SCENARIO, model)]
    frames = [f for f in frames if f is not None]
    if not frames:
        return None
    table = pd.concat(frames, ignore_index=True).merge(samples[_sequence_columns(samples)], on="image_id", how="left")
    subjects = (table["dataset"].astype(str) + "/" + table["subject"].astype(str)).to_numpy()
    return fit_baseline_rule(table["p_pain"].to_numpy(), table["true_label"].to_numpy(), subjects, sequence_keys(table))


def with_references(pooled: pd.DataFrame, samples: pd.DataFrame) -> pd.DataFrame:
    """``pooled`` (one row per CP-PAIN face) with ``z_reference`` (mean logit of the subject's calm frames of other
    videos, NaN when none) and ``n_reference``. CP-PAIN's calm frames are those labelled no pain."""
    table = pooled.merge(samples[_sequence_columns(samples)], on="image_id", how="left")
    reference, count = calm_reference(table["subject"], sequence_keys(table), table["true_label"], logit(table["p_pain"]))
    return table.assign(z_reference=reference, n_reference=count)


def remedies_table(store: ExperimentStore, samples: pd.DataFrame | None, settings) -> pd.DataFrame:
    if samples is None:
        return pd.DataFrame(columns=COLUMNS)
    rows = []
    for model in sorted({k.model for k in store.finished_runs("external")} | {k.model for k in store.finished_runs("cp_adapt")},
                        key=_order(store)):
        rule = network_rule(store, model, samples)
        for scenario in ("external", "cp_adapt"):
            predictions = pd.concat([p for p in (store.predictions(k) for k in store.finished_runs(scenario, model))
                                     if p is not None] or [pd.DataFrame()], ignore_index=True)
            if predictions.empty:
                continue
            pooled = with_references(pooled_images(predictions), samples)
            p = pooled["p_pain"].to_numpy(dtype=float)
            rows.append(_row(model, scenario, pooled, p, 0, "the network's p(pain)", settings))
            if is_fitted(rule):
                adjusted = with_baseline(p, pooled["z_reference"].to_numpy(), rule)
                text = (f"sigmoid({rule['slope']:.2f} x logit change from the calm frames of the subject's other videos "
                        f"{rule['intercept']:+.2f}), fitted on {rule['images']} PAIN-DB subject-wise out-of-fold faces of "
                        f"{rule['subjects']} subjects")
                rows.append(_row(model, f"{scenario} + baseline", pooled, adjusted,
                                 int(np.isfinite(pooled["z_reference"]).sum()), text, settings))
    rows.extend(_pspi_rows(store.table("action_unit_frames"), samples, settings))
    return pd.DataFrame(rows, columns=COLUMNS)


def _pspi_rows(frames: pd.DataFrame | None, samples: pd.DataFrame, settings) -> list[dict]:
    """The AU estimator's PSPI on CP-PAIN, absolute and against the person's calm frames (module docstring)."""
    from sklearn.linear_model import LogisticRegression

    if frames is None or not {"set", "PSPI", "true_PSPI", "image_id", "subject"} <= set(frames):
        return []
    development = frames[frames["set"] == "unbc_out_of_fold"].merge(samples[_sequence_columns(samples) + ["dataset"]],
                                                                     on="image_id", how="left")
    test = frames[frames["set"] == "cppain"].merge(samples[_sequence_columns(samples) + ["dataset"]], on="image_id",
                                                   how="left")
    y = (development["true_PSPI"].to_numpy(dtype=float) > 0).astype(int)
    if test.empty or len(np.unique(y)) < 2:
        return []
    score = development["PSPI"].to_numpy(dtype=float)
    absolute = LogisticRegression(C=1e4).fit(score[:, None], y)
    rule = fit_change_rule(score, y, development["subject"].astype(str), sequence_keys(development))
    pspi = test["PSPI"].to_numpy(dtype=float)
    pooled = test.assign(true_label=test["label"].astype(int))
    p_absolute = absolute.predict_proba(pspi[:, None])[:, 1]
    rows = [_row(AU_MODEL, "external", pooled, p_absolute, 0, f"sigmoid({absolute.coef_[0, 0]:.2f} x PSPI "
                 f"{absolute.intercept_[0]:+.2f}), fitted on {len(y)} UNBC out-of-fold frames", settings)]
    if is_fitted(rule):
        reference, _ = calm_reference(pooled["subject"], sequence_keys(pooled), pooled["true_label"], pspi)
        has = np.isfinite(reference)
        adjusted = np.where(has, sigmoid(rule["slope"] * (pspi - np.where(has, reference, 0)) + rule["intercept"]),
                            p_absolute)
        rows.append(_row(AU_MODEL, "external + baseline", pooled, adjusted, int(has.sum()),
                         f"sigmoid({rule['slope']:.2f} x PSPI change from the calm frames of the subject's other videos "
                         f"{rule['intercept']:+.2f}), fitted on {rule['images']} UNBC out-of-fold frames of "
                         f"{rule['subjects']} subjects", settings))
    return rows


def _row(model: str, variant: str, pooled: pd.DataFrame, scores: np.ndarray, with_reference: int, rule: str,
         settings) -> dict:
    y = pooled["true_label"].to_numpy(dtype=int)
    correct = ((scores >= 0.5).astype(int) == y).astype(float)
    found = auc_and_accuracy(scores, y, correct, pooled["subject"].astype(str).to_numpy(), settings, model, variant)
    return {"model": model, "variant": variant, "n_images": int(len(y)), "n_subjects": int(pooled["subject"].nunique()),
            "with_reference": with_reference, **{k: found[k] for k in ("auc", "auc_low", "auc_high", "accuracy",
                                                                       "accuracy_low", "accuracy_high")}, "rule": rule}


def adapt_curve_table(store: ExperimentStore, settings) -> pd.DataFrame:
    """Per network and number of adaptation subjects: the left-out subjects' faces pooled, with intervals."""
    rows = []
    keys = store.finished_runs("cp_adapt")
    for model in sorted({k.model for k in keys}, key=_order(store)):
        parts = []
        for key in (k for k in keys if k.model == model):
            curve, predictions = store.adapt_curve(key), store.predictions(key)
            if curve is None or predictions is None:
                continue
            parts.append(curve.drop(columns=["subject"], errors="ignore").merge(
                predictions[["image_id", "subject", "true_label"]], on="image_id"))
        if not parts:
            continue
        table = pd.concat(parts, ignore_index=True)
        for n, group in table.groupby("n_subjects", sort=True):
            row = _row(model, f"cp_adapt on {n}", group, group["p_pain"].to_numpy(dtype=float), 0, "", settings)
            rows.append({"model": model, "n_subjects": int(n), "n_images": row["n_images"],
                         "test_subjects": row["n_subjects"], **{c: row[c] for c in CURVE_COLUMNS[4:]}})
    return pd.DataFrame(rows, columns=CURVE_COLUMNS)


def _sequence_columns(samples: pd.DataFrame) -> list[str]:
    """The samples' image id and sequence (without a sequence column, each face is its own: leave-one-image-out)."""
    return ["image_id", "sequence"] if "sequence" in samples else ["image_id"]


def _order(store: ExperimentStore):
    order, _ = store.plan()
    return lambda name: (order.index(name) if name in order else len(order), name)
