"""Table 4 of the paper from an :class:`AgreementResult`, its JSON form, and the artifact store files.

The ratings files of the store, by name (``ExperimentStore.write_ratings_file``; each written
atomically, ``summary`` last): icc (every ICC form per scale and source, with 95 % CI and Fleiss
category), headline (the headline form per scale and source, + note where undefined), table4 (the
paper's layout), scores (scale score per video and rater), video_labels (per video and scale: pain
source, mean score, binary label), counts (per scale and source: videos rated no pain / pain),
problems (row, kind, message for every problem of the ratings file), model_agreement and
model_agreement_summary (model versus clinicians, when given), summary (headline form, Table 4, row
counts, problem counts, notes, versions).
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path
from typing import Any

import pandas as pd

from engine.artifacts import ExperimentStore
from engine.ratings.agreement import AgreementResult
from engine.ratings.forms import ALL_SOURCES, ICC_FORMS, scale_label, source_label
from engine.ratings.load import RatingsLoad

NO_PAIN_ROW, PAIN_ROW = "Videos rated no pain", "Videos rated pain"


def table4(result: AgreementResult) -> pd.DataFrame:
    """The paper's Table 4: index "Source of pain" (each source, "All", the two count rows), one column
    per scale (Wong-Baker, FACS, NCAPC[, PSPI]). ICC rows hold the headline ICC (NaN where undefined),
    count rows the number of videos (as floats, so each column has one dtype)."""
    head = result.headline.set_index(["scale", "source"])
    counts = result.counts[result.counts["source"] == ALL_SOURCES].set_index("scale")
    index = [source_label(s) for s in (*result.sources, ALL_SOURCES)] + [NO_PAIN_ROW, PAIN_ROW]
    columns = {}
    for scale in result.scales:
        values = [float(head.loc[(scale, source), "icc"]) for source in (*result.sources, ALL_SOURCES)]
        values += [float(counts.loc[scale, "no_pain"]), float(counts.loc[scale, "pain"])] if scale in counts.index \
            else [0.0, 0.0]
        columns[scale_label(scale)] = values
    return pd.DataFrame(columns, index=pd.Index(index, name="Source of pain"))


def table4_cells(result: AgreementResult, ci: bool = True, category: bool = True, sep: str = " ") -> pd.DataFrame:
    """Table 4 as text for people: "0.751 [0.68, 0.81] excellent" per ICC cell (parts joined by
    ``sep``), "undefined" where the ICC is, counts as integers."""
    table = table4(result)
    head = result.headline.set_index(["scale", "source"])
    cells = table.astype(object)
    for scale in result.scales:
        for source in (*result.sources, ALL_SOURCES):
            row = head.loc[(scale, source)]
            cells.loc[source_label(source), scale_label(scale)] = format_icc(row, ci, category, sep)
        for label in (NO_PAIN_ROW, PAIN_ROW):
            cells.loc[label, scale_label(scale)] = f"{int(table.loc[label, scale_label(scale)])}"
    return cells


def format_icc(row: pd.Series, ci: bool = True, category: bool = True, sep: str = " ") -> str:
    """"0.751 [0.68, 0.81] excellent" from a row with icc, ci_low, ci_high, category; a blank CI is left out."""
    if not math.isfinite(row["icc"]):
        return "undefined"
    parts = [f"{row['icc']:.3f}"]
    if ci and math.isfinite(row["ci_low"]) and math.isfinite(row["ci_high"]):
        parts.append(f"[{row['ci_low']:.2f}, {row['ci_high']:.2f}]")
    if category:
        parts.append(row["category"])
    return sep.join(parts)


def result_dict(result: AgreementResult, load: RatingsLoad | None = None) -> dict[str, Any]:
    """Everything as plain JSON-able values (NaN -> None): what ``painlens ratings --json`` prints."""
    table = table4(result)
    out: dict[str, Any] = {
        "headline_icc": {"form": result.headline_form, "pingouin_type": ICC_FORMS[result.headline_form].pingouin_type,
                         "description": result.headline_description},
        "table4": {"index": list(table.index), "columns": list(table.columns),
                   "rows": [[_plain(v) for v in row] for row in table.to_numpy().tolist()]},
        "headline": _records(result.headline),
        "icc": _records(result.icc),
        "counts": _records(result.counts),
        "notes": list(result.notes),
    }
    if load is not None:
        out["rows"] = {"read": load.rows_read, "used": load.rows_used, "excluded": load.rows_excluded}
        out["raters"] = len(load.raters)
        out["problem_counts"] = load.problem_counts()
        out["problems"] = [{"row": p.row, "kind": p.kind, "message": p.message, "excluded": p.excluded}
                           for p in load.problems]
    return out


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [{key: _plain(value) for key, value in record.items()} for record in frame.to_dict("records")]


def _plain(value: Any) -> Any:
    if hasattr(value, "item"):  # NumPy scalars
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_ratings(store: ExperimentStore, result: AgreementResult, load: RatingsLoad | None = None,
                  scores: pd.DataFrame | None = None, model_agreement: pd.DataFrame | None = None,
                  model_summary: pd.DataFrame | None = None, beside_raters: pd.DataFrame | None = None,
                  source_file: str | Path | None = None) -> None:
    """Write the ratings artifacts into the store.

    Each file is written atomically; the summary is written last, so its presence means the set is
    complete. ``source_file`` only contributes its SHA-256 (never its path) for provenance.
    """
    write = store.write_ratings_file
    write("icc", result.icc)
    write("headline", result.headline)
    write("table4", table4(result).reset_index())
    write("video_labels", result.labels)
    write("counts", result.counts)
    if scores is not None:
        write("scores", scores)
    if load is not None:
        write("problems", pd.DataFrame([vars(p) for p in load.problems], columns=["row", "kind", "message", "excluded"]))
    if model_agreement is not None:
        write("model_agreement", model_agreement)
    if model_summary is not None:
        write("model_agreement_summary", model_summary)
    if beside_raters is not None:
        write("answer_beside_raters", beside_raters)
    summary = result_dict(result, load)
    summary.pop("icc")  # in icc.parquet and problems.csv; the summary stays small
    summary.pop("problems", None)
    summary["pingouin_version"] = _version("pingouin")
    if source_file is not None:
        summary["ratings_sha256"] = hashlib.sha256(Path(source_file).read_bytes()).hexdigest()
    summary["model_agreement"] = model_agreement is not None
    write("summary", summary)


def _version(package: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return ""
