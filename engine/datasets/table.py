"""The sample table: one row per image, the same columns for every dataset.

Adapters return a :class:`ScanResult` holding this table and the problems they met. Labels are binary
(``LABEL_PAIN`` = 1, ``LABEL_NO_PAIN`` = 0); ``intensity`` keeps the dataset's native pain level
(UNBC PSPI, MIntPAIN sweep level 0-4, Delaware 0/1, CP-PAIN 0/1).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

LABEL_NO_PAIN = 0
LABEL_PAIN = 1
CLASS_NAMES = ("no_pain", "pain")  # index = label

# Action units the datasets code (UNBC codes these; the synthetic data has them all).
AU_COLUMNS = ("au4", "au6", "au7", "au9", "au10", "au12", "au20", "au25", "au26", "au43")

COLUMNS = (
    "image_id",  # stable id: "<dataset>/<subject>/<sequence>/<frame>" (never holds a person's name)
    "dataset",  # unbc | mintpain | delaware | cppain
    "subject",  # subject id, privacy-safe (e.g. MIntPAIN "Sub03", never the free text after it)
    "sequence",  # sequence / video id ("" for single photos)
    "frame",  # frame number within the sequence (0 for single photos)
    "path",  # absolute image path (in memory only: not written to the artifact store)
    "label",  # 0 no pain, 1 pain
    "intensity",  # native pain level
    "pspi",  # PSPI where the dataset has AUs, else NaN
    *AU_COLUMNS,  # AU intensities where known, else NaN
    "landmarks",  # dataset landmarks as a flat float list [x0, y0, x1, y1, ...] or None
    "landmark_format",  # "aam66", "dlib68" or ""
)


def empty_table() -> pd.DataFrame:
    return pd.DataFrame({column: pd.Series(dtype=object) for column in COLUMNS})


def make_table(rows: list[dict]) -> pd.DataFrame:
    """Build a sample table from row dicts; missing AU/PSPI values become NaN, order is stable."""
    if not rows:
        return empty_table()
    frame = pd.DataFrame(rows)
    for column in COLUMNS:
        if column not in frame:
            frame[column] = np.nan if (column in AU_COLUMNS or column == "pspi") else None
    frame = frame[list(COLUMNS)]
    frame["frame"] = frame["frame"].astype(int)
    frame["label"] = frame["label"].astype(int)
    for column in ("intensity", "pspi", *AU_COLUMNS):
        frame[column] = frame[column].astype(float)
    for column in ("sequence", "landmark_format"):
        frame[column] = frame[column].fillna("").astype(str)
    return frame.sort_values("image_id", kind="stable").reset_index(drop=True)


@dataclass
class Problem:
    """One kind of problem found while scanning, with how often and a few privacy-safe examples."""

    kind: str  # short key, e.g. "missing_label", "unreadable_image"
    message: str  # one sentence for people
    count: int = 0
    examples: list[str] = field(default_factory=list)

    def add(self, example: str, max_examples: int = 3) -> None:
        self.count += 1
        if len(self.examples) < max_examples:
            self.examples.append(example)


@dataclass
class ScanResult:
    dataset: str
    table: pd.DataFrame
    problems: dict[str, Problem] = field(default_factory=dict)
    layout: str = ""  # which layout variant was found, e.g. "pain/neutral folders"
    notes: list[str] = field(default_factory=list)  # choices made, e.g. AAM point order

    def problem(self, kind: str, message: str) -> Problem:
        if kind not in self.problems:
            self.problems[kind] = Problem(kind, message)
        return self.problems[kind]

    def summary(self) -> dict:
        table = self.table
        return {
            "dataset": self.dataset,
            "layout": self.layout,
            "subjects": int(table["subject"].nunique()),
            "sequences": int(table.loc[table["sequence"] != "", ["subject", "sequence"]].drop_duplicates().shape[0]),
            "images": int(len(table)),
            "images_per_label": {CLASS_NAMES[k]: int((table["label"] == k).sum()) for k in (0, 1)},
            "problems": [
                {"kind": p.kind, "message": p.message, "count": p.count, "examples": p.examples}
                for p in self.problems.values()
            ],
            "notes": list(self.notes),
        }
