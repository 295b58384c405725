import numpy as np
import pandas as pd
from sklearn.metrics import f1_score

from engine.evaluation.metrics import run_metrics, summarize


def predictions(seed=0, n=40, folds=3):
    rng = np.random.default_rng(seed)
    frames = []
    for fold in range(folds):
        y = rng.integers(0, 2, n)
        p = np.clip(y * 0.6 + rng.random(n) * 0.5, 0, 1)
        frames.append(pd.DataFrame({"model": "SongNet", "scenario": "image", "fold": fold, "image_id": range(n),
                                    "true_label": y, "p_pain": p, "predicted_label": (p >= 0.5).astype(int)}))
    return pd.concat(frames, ignore_index=True)


def test_per_class_rows_match_sklearn_and_confusion_counts_add_up():
    preds = predictions()
    metrics = run_metrics(preds)
    assert len(metrics) == 3 * 3
    fold0 = preds[preds["fold"] == 0]
    row = metrics[(metrics["fold"] == 0) & (metrics["class"] == "pain")].iloc[0]
    assert row["f1"] == f1_score(fold0["true_label"], fold0["predicted_label"])
    assert row["tp"] + row["fp"] + row["fn"] + row["tn"] == len(fold0)
    assert row["tp"] == ((fold0["true_label"] == 1) & (fold0["predicted_label"] == 1)).sum()


def test_summary_gives_mean_and_spread_over_folds():
    metrics = run_metrics(predictions())
    summary = summarize(metrics)
    macro = summary[summary["class"] == "macro"].iloc[0]
    assert macro["runs"] == 3
    values = metrics[metrics["class"] == "macro"]["accuracy"]
    assert np.isclose(macro["accuracy_mean"], values.mean())
    assert np.isclose(macro["accuracy_std"], values.std(ddof=1))


def test_single_class_test_set_gives_nan_auc_not_an_error():
    preds = predictions(folds=1)
    preds["true_label"] = 1
    metrics = run_metrics(preds)
    assert metrics["roc_auc"].isna().all()
