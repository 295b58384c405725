"""Metrics computed with scikit-learn from stored predictions, never from anything kept in memory.

``predictions`` frames have the columns written by the runner: model, scenario, fold, image_id, subject,
dataset, true_label, p_pain, predicted_label (labels 0 no pain, 1 pain).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support, roc_auc_score

from engine.datasets.table import CLASS_NAMES

RUN_KEYS = ["model", "scenario", "fold"]


def run_metrics(predictions: pd.DataFrame) -> pd.DataFrame:
    """One row per (run, class) plus a ``macro`` row per run.

    Columns: model, scenario, fold, class, n, accuracy, precision, recall, f1, roc_auc, tp, fp, fn, tn.
    ``accuracy`` and ``roc_auc`` are properties of the run and repeat on its rows; confusion counts are
    one-vs-rest for the row's class. ROC-AUC is NaN when the test set holds a single class.
    """
    rows = []
    for keys, group in predictions.groupby(RUN_KEYS, sort=True):
        rows.extend(_rows_for_run(dict(zip(RUN_KEYS, keys)), group))
    columns = RUN_KEYS + ["class", "n", "accuracy", "precision", "recall", "f1", "roc_auc", "tp", "fp", "fn", "tn"]
    return pd.DataFrame(rows, columns=columns)


def _rows_for_run(keys: dict, group: pd.DataFrame) -> list[dict]:
    y_true = group["true_label"].to_numpy(dtype=int)
    y_pred = group["predicted_label"].to_numpy(dtype=int)
    p_pain = group["p_pain"].to_numpy(dtype=float)
    accuracy = accuracy_score(y_true, y_pred)
    auc = roc_auc_score(y_true, p_pain) if len(np.unique(y_true)) == 2 else float("nan")
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=[0, 1], zero_division=0
    )
    matrix = confusion_matrix(y_true, y_pred, labels=[0, 1])
    rows = []
    for label, name in enumerate(CLASS_NAMES):
        tp = int(matrix[label, label])
        fp = int(matrix[:, label].sum() - tp)
        fn = int(matrix[label, :].sum() - tp)
        tn = int(matrix.sum() - tp - fp - fn)
        rows.append({**keys, "class": name, "n": int(support[label]), "accuracy": accuracy,
                     "precision": precision[label], "recall": recall[label], "f1": f1[label],
                     "roc_auc": auc, "tp": tp, "fp": fp, "fn": fn, "tn": tn})
    rows.append({**keys, "class": "macro", "n": int(len(y_true)), "accuracy": accuracy,
                 "precision": float(np.mean(precision)), "recall": float(np.mean(recall)),
                 "f1": float(np.mean(f1)), "roc_auc": auc, "tp": np.nan, "fp": np.nan, "fn": np.nan, "tn": np.nan})
    return rows


def summarize(metrics: pd.DataFrame) -> pd.DataFrame:
    """Mean and standard deviation over folds/seeds per (model, scenario, class)."""
    if metrics.empty:
        return pd.DataFrame()
    values = ["accuracy", "precision", "recall", "f1", "roc_auc"]
    grouped = metrics.groupby(["model", "scenario", "class"], sort=True)
    mean = grouped[values].mean().add_suffix("_mean")
    std = grouped[values].std(ddof=1).add_suffix("_std")
    runs = grouped.size().rename("runs")
    return pd.concat([runs, mean, std], axis=1).reset_index()
