"""Inter-rater agreement: the six ICC forms (pingouin) per scale, overall and per pain source.

For each scale and group of videos (every video, then each pain source) the ICC uses the videos that
every rater of that scale scored (pingouin needs a complete video x rater table). Where the ICC cannot
be computed (too few videos, one rater, every score equal) the result holds a sentence, not a number.
"""

from __future__ import annotations

import math
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Iterator

import numpy as np
import pandas as pd

from engine.ratings.forms import (ALL_SOURCES, ICC_FORMS, PINGOUIN_TYPES, SCALE_ORDER, fleiss_category,
                                  resolve_icc_form, scale_label, source_label)
from engine.ratings.scores import video_labels
from engine.scales import PAIN_SOURCES

ICC_COLUMNS = ("scale", "source", "form", "pingouin_type", "description", "icc", "ci_low", "ci_high", "f",
               "df1", "df2", "pval", "n_videos", "n_raters", "category", "headline")
HEADLINE_COLUMNS = ("scale", "source", "form", "icc", "ci_low", "ci_high", "category", "n_videos", "n_raters",
                    "note")


@dataclass
class AgreementResult:
    """Everything Table 4 and the dashboard need.

    icc: one row per (scale, source, form) with the 95 % CI (ICC_COLUMNS); ``source`` is a pain
    source or "all". headline: one row per (scale, source) for the headline form, with its Fleiss
    category and, where undefined, a sentence in ``note``. labels: per (video, scale) mean score and
    binary label. counts: per (scale, source) videos rated no pain / pain.
    """

    headline_form: str
    icc: pd.DataFrame
    headline: pd.DataFrame
    labels: pd.DataFrame
    counts: pd.DataFrame
    scales: tuple[str, ...]
    sources: tuple[str, ...]  # pain sources found, in the paper's order, then others
    notes: list[str] = field(default_factory=list)

    @property
    def headline_description(self) -> str:
        return ICC_FORMS[self.headline_form].description


def agreement(scores: pd.DataFrame, headline: str = "ICC2") -> AgreementResult:
    """ICC forms, headline form with Fleiss category, and pain/no-pain counts.

    ``scores``: the long frame of :func:`engine.ratings.scale_scores` (video, pain_source, rater,
    scale, score). ``headline``: any spelling :func:`resolve_icc_form` accepts.
    """
    form = resolve_icc_form(headline)
    scales = tuple(s for s in SCALE_ORDER if s in set(scores["scale"])) + tuple(
        sorted(set(scores["scale"]) - set(SCALE_ORDER)))
    present = set(scores["pain_source"])
    sources = tuple(s for s in PAIN_SOURCES if s in present) + tuple(sorted(present - set(PAIN_SOURCES)))
    icc_rows, headline_rows, notes = [], [], []
    for scale in scales:
        for source in (*sources, ALL_SOURCES):
            rows = scores[(scores["scale"] == scale) & ((scores["pain_source"] == source) | (source == ALL_SOURCES))]
            table, n_videos, n_raters, note = icc_forms(rows)
            where = f"{scale_label(scale)}, {source_label(source)}"
            if note:
                note = f"ICC for {where}: {note}"
                notes.append(note)
            if table is not None:
                invalid = _drop_invalid_ci(table)
                if invalid:
                    notes.append(f"The 95 % CI of {', '.join(invalid)} for {where} from pingouin does not contain "
                                 f"the estimate ({n_videos} videos are too few for its approximation), so it is left out.")
                for record in table.to_dict("records"):
                    icc_rows.append({"scale": scale, "source": source, **record, "n_videos": n_videos,
                                     "n_raters": n_raters, "headline": record["form"] == form})
            headline_rows.append(_headline_row(table, form, where, scale, source, n_videos, n_raters, note))
            if table is not None and headline_rows[-1]["note"]:
                notes.append(headline_rows[-1]["note"])
    labels = video_labels(scores)
    icc = pd.DataFrame(icc_rows, columns=list(ICC_COLUMNS))
    icc["category"] = [fleiss_category(v) for v in icc["icc"]]
    return AgreementResult(form, icc, pd.DataFrame(headline_rows, columns=list(HEADLINE_COLUMNS)), labels,
                           pain_counts(labels, sources), scales, sources, notes)


def _headline_row(table: pd.DataFrame | None, form: str, where: str, scale: str, source: str, n_videos: int,
                  n_raters: int, note: str) -> dict:
    """The headline form's row for one (scale, source), with a sentence when it is undefined."""
    row = {"scale": scale, "source": source, "form": form, "icc": math.nan, "ci_low": math.nan,
           "ci_high": math.nan, "category": "undefined", "n_videos": n_videos, "n_raters": n_raters, "note": note}
    if table is not None:
        head = table[table["form"] == form].iloc[0]
        row.update(icc=float(head["icc"]), ci_low=float(head["ci_low"]), ci_high=float(head["ci_high"]),
                   category=fleiss_category(float(head["icc"])))
        if not math.isfinite(row["icc"]):
            row["note"] = f"{form} is undefined for {where}: the scores give no variance between videos to compare."
    return row


def _drop_invalid_ci(table: pd.DataFrame) -> list[str]:
    """Blank CIs that do not contain their ICC; return those forms.

    With few videos, pingouin's F-based bounds can fall outside the ICC's range, and the Spearman-Brown
    step to ICC(A,k) then turns a lower bound below -1/(k-1) into a value above the upper bound.
    """
    ok = (table["ci_low"] <= table["icc"]) & (table["icc"] <= table["ci_high"])
    bad = ~ok & table[["icc", "ci_low", "ci_high"]].notna().all(axis=1)
    table.loc[bad, ["ci_low", "ci_high"]] = math.nan
    return table.loc[bad, "form"].tolist()


def pain_counts(labels: pd.DataFrame, sources: tuple[str, ...]) -> pd.DataFrame:
    """Per (scale, source, and "all"): videos rated no pain and pain (columns scale, source, no_pain, pain, videos)."""
    rows = []
    for scale, group in labels.groupby("scale", sort=False):
        for source in (*sources, ALL_SOURCES):
            part = group if source == ALL_SOURCES else group[group["pain_source"] == source]
            rows.append({"scale": scale, "source": source, "no_pain": int((part["label"] == 0).sum()),
                         "pain": int((part["label"] == 1).sum()), "videos": len(part)})
    return pd.DataFrame(rows, columns=["scale", "source", "no_pain", "pain", "videos"])


def icc_forms(scores: pd.DataFrame) -> tuple[pd.DataFrame | None, int, int, str]:
    """All six ICC forms for one group of scores (columns video, rater, score).

    Returns (table, n_videos, n_raters, note): table has one row per form (form, pingouin_type,
    description, icc, ci_low, ci_high, f, df1, df2, pval) or is None with a sentence in note.
    """
    if scores.empty:
        return None, 0, 0, "there are no scores."
    wide = scores.pivot_table(index="video", columns="rater", values="score", aggfunc="first")
    n_raters = wide.shape[1]
    complete = wide.dropna(how="any")
    n_videos = len(complete)
    if n_raters < 2:
        return None, n_videos, n_raters, "it needs two or more raters; the scores come from one rater only."
    # pingouin needs 5 values at least; with fewer than 3 videos the CI is meaningless anyway.
    if n_videos < 3:
        return None, n_videos, n_raters, (f"it needs at least 3 videos scored by every rater; "
                                          f"there {'is' if n_videos == 1 else 'are'} {n_videos}.")
    values = complete.to_numpy(dtype=float)
    if np.all(values == values.flat[0]):
        return None, n_videos, n_raters, f"every score is {values.flat[0]:g}, so agreement is undefined."
    long = complete.rename_axis(columns="rater").reset_index().melt(id_vars="video", value_name="score")
    import pingouin  # heavy import (~1.5 s): only when an ICC is computed

    with _full_precision(pingouin), warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")  # degenerate tables give RuntimeWarnings; we report NaN instead
        raw = pingouin.intraclass_corr(data=long, targets="video", raters="rater", ratings="score")
    return _tidy(raw), n_videos, n_raters, ""


@contextmanager
def _full_precision(pingouin) -> Iterator[None]:
    """pingouin rounds CI95 to 2 decimals by default; keep full precision and restore its options."""
    saved = dict(pingouin.options)
    pingouin.options["round.column.CI95"] = None
    try:
        yield
    finally:
        pingouin.options.clear()
        pingouin.options.update(saved)


def _tidy(raw: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for record in raw.to_dict("records"):
        name = PINGOUIN_TYPES[str(record["Type"])]
        low, high = (float(v) for v in np.asarray(record["CI95"], dtype=float))
        rows.append({"form": name, "pingouin_type": ICC_FORMS[name].pingouin_type,
                     "description": ICC_FORMS[name].description, "icc": _finite(record["ICC"]),
                     "ci_low": _finite(low), "ci_high": _finite(high), "f": _finite(record["F"]),
                     "df1": int(record["df1"]), "df2": int(record["df2"]), "pval": _finite(record["pval"])})
    return pd.DataFrame(rows)


def _finite(value: float) -> float:
    value = float(value)
    return value if math.isfinite(value) else math.nan
