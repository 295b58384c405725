"""PAIN-DB: the binary training set of the paper, merged from UNBC, MIntPAIN and Delaware.

UNBC and MIntPAIN give ``frames_per_class`` frames per subject and class (pain / no pain), spread
over that subject's frames of the class in time order: the ordered frames are cut into
``frames_per_class`` equal strata and one frame is drawn at random inside each, so consecutive
near-duplicate frames are avoided and the draw is seeded per (dataset, subject, class) - the same
subject gets the same frames whatever else is in the data. A subject with fewer frames of a class gives
all it has. Delaware is taken whole. CP-PAIN stays separate (external test only).

The draw is among frames where a face was found (``redraw_among_faces``): a drawn frame without a
usable face is left out of the candidates and the subject's class is drawn again, until every drawn
frame has a face, so a subject is short of ``frames_per_class`` only when it has fewer frames with a
face. Only new frames are ever sent to the face pipeline (its cache makes a frame cost once).
"""

from __future__ import annotations

import os
import zlib
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from engine.config import DATASET_NAMES
from engine.datasets.scan import DATASET_TITLES, find_child, scan_dataset
from engine.datasets.table import COLUMNS, LABEL_NO_PAIN, LABEL_PAIN, ScanResult, empty_table
from engine.errors import NotADatasetError

PAINDB_DATASETS = ("mintpain", "delaware", "unbc")  # the order of the paper's Table 2
SAMPLED_DATASETS = ("unbc", "mintpain")
# The paper counts 5 levels for UNBC; PSPI runs 0-16, so levels here group it as 0, 1, 2, 3 and >= 4.
UNBC_LEVEL_CAP = 4
TABLE2_COLUMNS = ("Dataset", "Users", "Images", "Levels", "Pain", "No pain")
TOTAL_ROW = "Total (PAIN-DB)"
CPPAIN_ROW = "CP-PAIN (external test)"


def assemble_paindb(scans: dict[str, ScanResult], frames_per_class: int = 20, seed: int = 0,
                    exclude: frozenset[str] = frozenset()) -> pd.DataFrame:
    """The PAIN-DB sample table (same columns as every scan) from the scans present in ``scans``.

    ``scans`` maps dataset name to its scan; names other than unbc, mintpain and delaware are ignored.
    ``exclude``: image ids that are no candidates (frames known to have no usable face).
    """
    if frames_per_class < 1:
        raise ValueError("frames_per_class must be at least 1")
    parts = []
    for name in PAINDB_DATASETS:
        if name not in scans:
            continue
        table = scans[name].table
        if exclude:
            table = table[~table["image_id"].isin(exclude)]
        parts.append(sample_frames(table, frames_per_class, seed) if name in SAMPLED_DATASETS else table)
    parts = [part for part in parts if len(part)]
    if not parts:
        return empty_table()
    return pd.concat(parts, ignore_index=True)[list(COLUMNS)]


def redraw_among_faces(scans: dict[str, ScanResult], processed: pd.DataFrame, frames_per_class: int, seed: int,
                       find_faces: Callable[[pd.DataFrame], pd.DataFrame]) -> pd.DataFrame:
    """PAIN-DB drawn among the frames where a face was found.

    ``processed``: the first draw (``assemble_paindb``) through the face pipeline, with its ``status``
    ("ok" when a usable face was found); ``find_faces(rows)`` sends new rows through it. Frames without
    a face leave the candidates and the draw is repeated until it holds only frames with a face.
    Returns the drawn frames (status ok, in draw order) followed by every frame met without a face
    (kept so that they can be counted). Without faceless frames this is ``processed`` unchanged.
    """
    tried = processed
    while True:
        faceless = frozenset(tried.loc[tried["status"] != "ok", "image_id"])
        drawn = assemble_paindb(scans, frames_per_class, seed, exclude=faceless)
        new = drawn[~drawn["image_id"].isin(tried["image_id"])]
        if new.empty:
            break
        tried = pd.concat([tried, find_faces(new)], ignore_index=True)
    if not faceless:
        return processed
    by_id = tried.drop_duplicates("image_id").set_index("image_id", drop=False)
    kept = by_id.loc[drawn["image_id"]]
    return pd.concat([kept, by_id[by_id["status"] != "ok"]], ignore_index=True)


def sample_frames(table: pd.DataFrame, frames_per_class: int, seed: int) -> pd.DataFrame:
    """Stratified draw of up to ``frames_per_class`` rows per (dataset, subject, label), in time order."""
    picked = []
    ordered = table.sort_values(["dataset", "subject", "label", "sequence", "frame"], kind="stable")
    for (dataset, subject, label), group in ordered.groupby(["dataset", "subject", "label"], sort=True):
        rng = np.random.default_rng([seed, zlib.crc32(f"{dataset}/{subject}/{label}".encode())])
        picked.append(group.iloc[spread_indices(len(group), frames_per_class, rng)])
    if not picked:
        return table.iloc[0:0]
    return pd.concat(picked).reset_index(drop=True)


def spread_indices(n: int, k: int, rng: np.random.Generator) -> np.ndarray:
    """``min(n, k)`` sorted distinct indices into ``range(n)``, one drawn uniformly from each of k equal strata."""
    if n <= k:
        return np.arange(n)
    # Stratum i holds the integers ceil(i n / k) .. ceil((i + 1) n / k) - 1: exact integer bounds,
    # never empty since n > k, and disjoint, so the draws are distinct.
    bounds = (np.arange(k + 1) * n + k - 1) // k
    low, width = bounds[:-1], np.diff(bounds)
    return low + np.floor(rng.random(k) * width).astype(int)


def native_levels(table: pd.DataFrame, dataset: str) -> int:
    """How many native pain levels the images of ``dataset`` cover (UNBC PSPI grouped as 0-3, >= 4)."""
    levels = table.loc[table["dataset"] == dataset, "intensity"].dropna()
    if dataset == "unbc":
        levels = levels.clip(upper=UNBC_LEVEL_CAP).round()
    return int(levels.nunique())


def dataset_counts(table: pd.DataFrame, dataset: str, faces: bool = False) -> dict:
    """Users, images, levels and images per class of one dataset's rows; with ``faces``, also the
    images MTCNN found a face in (``status`` ok; every image when the table has no status)."""
    rows = table[table["dataset"] == dataset]
    counts = {
        "Dataset": DATASET_TITLES.get(dataset, dataset),
        "Users": int(rows["subject"].nunique()),
        "Images": int(len(rows)),
        "Levels": native_levels(table, dataset),
        "Pain": int((rows["label"] == LABEL_PAIN).sum()),
        "No pain": int((rows["label"] == LABEL_NO_PAIN).sum()),
    }
    if faces:
        counts["Faces found"] = int((rows["status"] == "ok").sum()) if "status" in rows else len(rows)
    return counts


def table2(samples: pd.DataFrame, faces: bool = False) -> pd.DataFrame:
    """The paper's Table 2: one row per PAIN-DB dataset in ``samples``, the PAIN-DB total (no Levels: the
    datasets grade pain differently), then CP-PAIN's row when it is there, kept out of the total (it is
    only ever a test set). ``faces`` adds the column "Faces found" (see ``dataset_counts``)."""
    columns = [*TABLE2_COLUMNS, *(["Faces found"] if faces else [])]
    rows = [dataset_counts(samples, name, faces) for name in PAINDB_DATASETS if (samples["dataset"] == name).any()]
    if rows:
        summed = [c for c in columns if c not in ("Dataset", "Levels")]
        rows.append({"Dataset": TOTAL_ROW, "Levels": None, **{c: int(sum(r[c] for r in rows)) for c in summed}})
    if (samples["dataset"] == "cppain").any():
        rows.append({**dataset_counts(samples, "cppain", faces), "Dataset": CPPAIN_ROW})
    out = pd.DataFrame(rows, columns=columns)
    out["Levels"] = out["Levels"].astype("Int64")
    return out


def scan_root(
    root: str | os.PathLike, check_images: bool = True, pspi_threshold: float = 0.0, workers: int | None = None
) -> dict[str, ScanResult]:
    """Scan ``root/unbc``, ``root/mintpain``, ``root/delaware`` and ``root/cppain`` where present.

    Raises NotADatasetError when ``root`` holds none of the three PAIN-DB datasets.
    """
    root = Path(root).expanduser()
    folders = {name: find_child(root, name) for name in DATASET_NAMES} if root.is_dir() else {}
    folders = {name: path for name, path in folders.items() if path is not None and path.is_dir()}
    if not any(name in folders for name in PAINDB_DATASETS):
        raise NotADatasetError(
            f"{root} holds none of the folders unbc/, mintpain/ and delaware/: point the command at the folder "
            "that holds them (for example the output of `painlens synth`)."
        )
    return {
        name: scan_dataset(path, name, check_images=check_images, pspi_threshold=pspi_threshold, workers=workers)
        for name, path in folders.items()
    }


def render_table2(table: pd.DataFrame, console, title: str) -> None:
    """Print Table 2 with rich, the PAIN-DB total between two rules."""
    from rich.table import Table

    out = Table(title=title)
    for column in table.columns:
        out.add_column(column, justify="left" if column == "Dataset" else "right")
    names = table["Dataset"].tolist()
    for index, row in table.iterrows():
        cells = ["" if pd.isna(row[c]) else str(row[c]) for c in table.columns]
        before_total = TOTAL_ROW in names and index == names.index(TOTAL_ROW) - 1
        out.add_row(*cells, end_section=before_total or names[index] == TOTAL_ROW)
    console.print(out)
