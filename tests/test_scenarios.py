import numpy as np
import pandas as pd
import pytest

from engine.training.scenarios import (
    LeakageError,
    assert_no_subject_leak,
    external,
    image_wise,
    subject_keys,
    subject_wise,
)


def paindb_table(subjects=12, per_subject=10, seed=0):
    rng = np.random.default_rng(seed)
    rows = []
    for d, dataset in enumerate(("unbc", "mintpain", "delaware")):
        for s in range(subjects):
            for f in range(per_subject):
                rows.append({"image_id": f"{dataset}/{s:03d}/q/{f}", "dataset": dataset, "subject": f"{s:03d}",
                             "label": int(rng.random() < 0.5)})
    return pd.DataFrame(rows)


def test_subject_wise_folds_never_share_a_subject_and_cover_everything():
    table = paindb_table()
    splits = subject_wise(table, folds=5, seed=3)
    keys = subject_keys(table)
    seen = np.concatenate([s.test for s in splits])
    assert sorted(seen) == list(range(len(table)))
    for split in splits:
        assert not set(keys[split.train]) & set(keys[split.test])


def test_same_subject_id_in_two_datasets_is_two_subjects():
    table = paindb_table(subjects=6)
    assert len(set(subject_keys(table))) == 18


def test_leak_check_raises_on_a_shared_subject():
    with pytest.raises(LeakageError):
        assert_no_subject_leak(np.array(["a", "b"]), np.array(["b", "c"]), 0)


def test_image_wise_folds_are_stratified_and_reproducible():
    table = paindb_table()
    first = image_wise(table, folds=5, seed=1)
    again = image_wise(table, folds=5, seed=1)
    other = image_wise(table, folds=5, seed=2)
    assert all(np.array_equal(a.test, b.test) for a, b in zip(first, again))
    assert not all(np.array_equal(a.test, b.test) for a, b in zip(first, other))
    overall = table["label"].mean()
    for split in first:
        assert abs(table["label"].iloc[split.test].mean() - overall) < 0.05


def test_external_trains_on_all_paindb_with_distinct_seeds():
    table = paindb_table(subjects=3)
    cppain = pd.DataFrame({"image_id": ["c/1", "c/2"], "label": [0, 1]})
    splits = external(table, cppain, seeds=5, seed=10)
    assert [s.seed for s in splits] == [10, 11, 12, 13, 14]
    assert all(len(s.train) == len(table) and len(s.test) == 2 and s.test_set == "cppain" for s in splits)
