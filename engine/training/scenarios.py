"""The paper's three evaluation scenarios as thin, named wrappers over scikit-learn splitters.

- ``image``: stratified k-fold over PAIN-DB images (identity leaks between train and test, as in the paper);
- ``subject``: stratified group k-fold over PAIN-DB subjects (no subject on both sides, asserted per fold);
- ``external``: train on all of PAIN-DB, test on CP-PAIN, repeated with different seeds;
- ``cp_adapt`` (research, beyond the paper): for each CP-PAIN subject, a kept external model fine-tuned on
  the other CP-PAIN subjects' frames (``train`` holds positions in the CP-PAIN table) and tested on that
  subject's (leave-one-subject-out; ``engine.training.adapt``).

A split is a list of :class:`Split` objects holding *positions* into the tables passed in.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

from engine.config import SCENARIO_NAMES
from engine.errors import PainLensError


@dataclass(frozen=True)
class Split:
    scenario: str
    fold: int  # fold number (image/subject) or seed index (external)
    seed: int  # training seed of this run
    train: np.ndarray  # positions in the PAIN-DB table
    test: np.ndarray  # positions in the PAIN-DB table, or in the CP-PAIN table for "external"
    test_set: str  # "paindb" or "cppain"
    train_set: str = "paindb"  # "cppain" for cp_adapt: the other CP-PAIN subjects


class LeakageError(AssertionError):
    """A subject appears in both the training and the test part of a subject-wise fold."""


def subject_keys(table: pd.DataFrame) -> np.ndarray:
    # Subject ids are only unique within a dataset (two datasets can both have "001").
    return (table["dataset"].astype(str) + "/" + table["subject"].astype(str)).to_numpy()


def image_wise(paindb: pd.DataFrame, folds: int, seed: int) -> list[Split]:
    _check_enough(paindb, folds, "images")
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    labels = paindb["label"].to_numpy()
    return [
        Split("image", k, seed + k, np.sort(train), np.sort(test), "paindb")
        for k, (train, test) in enumerate(splitter.split(np.zeros(len(labels)), labels))
    ]


def subject_wise(paindb: pd.DataFrame, folds: int, seed: int) -> list[Split]:
    groups = subject_keys(paindb)
    if len(set(groups)) < folds:
        raise PainLensError(
            f"Subject-wise cross-validation needs at least {folds} subjects, PAIN-DB has {len(set(groups))}; "
            "lower [scenarios] folds or add data."
        )
    splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    labels = paindb["label"].to_numpy()
    splits = []
    for k, (train, test) in enumerate(splitter.split(np.zeros(len(labels)), labels, groups)):
        assert_no_subject_leak(groups[train], groups[test], k)
        splits.append(Split("subject", k, seed + k, np.sort(train), np.sort(test), "paindb"))
    return splits


def external(paindb: pd.DataFrame, cppain: pd.DataFrame, seeds: int, seed: int) -> list[Split]:
    if len(cppain) == 0:
        raise PainLensError("The external scenario needs CP-PAIN images, and none were found; check [data] paths.")
    train = np.arange(len(paindb))
    test = np.arange(len(cppain))
    return [Split("external", k, seed + k, train, test, "cppain") for k in range(seeds)]


def cp_adapt(cppain: pd.DataFrame, seed: int) -> list[Split]:
    """One split per CP-PAIN subject (fold k: the k-th subject in sorted order): train on the others, test on it."""
    subjects = cppain["subject"].astype(str).to_numpy()
    names = sorted(set(subjects))
    if len(names) < 2:
        raise PainLensError(f"The cp_adapt scenario needs at least 2 CP-PAIN subjects (leave one out), found {len(names)}.")
    splits = []
    for k, name in enumerate(names):
        test, train = np.flatnonzero(subjects == name), np.flatnonzero(subjects != name)
        assert_no_subject_leak(subjects[train], subjects[test], k)
        splits.append(Split("cp_adapt", k, seed + k, train, test, "cppain", train_set="cppain"))
    return splits


def assert_no_subject_leak(train_groups: np.ndarray, test_groups: np.ndarray, fold: int) -> None:
    shared = set(train_groups) & set(test_groups)
    if shared:
        raise LeakageError(f"fold {fold}: {len(shared)} subject(s) in both train and test")


def make_splits(scenario: str, paindb: pd.DataFrame, cppain: pd.DataFrame, folds: int, seeds: int, seed: int) -> list[Split]:
    if scenario == "image":
        return image_wise(paindb, folds, seed)
    if scenario == "subject":
        return subject_wise(paindb, folds, seed)
    if scenario == "external":
        return external(paindb, cppain, seeds, seed)
    if scenario == "cp_adapt":
        return cp_adapt(cppain, seed)
    raise PainLensError(f"Unknown scenario '{scenario}'; choose from {', '.join(SCENARIO_NAMES)}.")


def _check_enough(table: pd.DataFrame, folds: int, what: str) -> None:
    counts = table["label"].value_counts()
    if len(counts) < 2 or counts.min() < folds:
        raise PainLensError(
            f"Image-wise cross-validation with {folds} folds needs at least {folds} {what} of each class; "
            f"PAIN-DB has {dict(counts)}. Lower [scenarios] folds or add data."
        )
