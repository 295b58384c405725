"""Scale scores per (video, rater) and the per-video pain / no-pain labels.

Wong-Baker is taken as given (0-10); NCAPC is the sum of its 18 items (0-54); the FACS pain score
is AU4 + max(AU6, AU7) + max(AU9, AU10) + AU43 (0-20, ``engine.scales.facs_pain_score``); the
UNBC-style PSPI (AU43 as 0/1, 0-16, ``engine.scales.pspi``) is added as the scale ``pspi`` when asked.
"""

from __future__ import annotations

import pandas as pd

from engine.scales import FACS_ITEMS, NCAPC_ITEMS, facs_pain_score, pspi

SCORE_COLUMNS = ("video", "pain_source", "rater", "scale", "score")
KEYS = ["video", "pain_source", "rater"]


def scale_scores(ratings: pd.DataFrame, include_pspi: bool = False) -> pd.DataFrame:
    """Long frame (video, pain_source, rater, scale, score): one scale score per rater and video.

    ``ratings`` is the clean frame of :func:`engine.ratings.load_ratings`; an item set that is not
    complete (which load_ratings already reports and removes) gives no score.
    """
    parts = [ratings.loc[ratings["scale"] == "wong_baker", [*KEYS, "score"]].assign(scale="wong_baker")]
    ncapc = _wide(ratings, "ncapc", NCAPC_ITEMS)
    parts.append(ncapc[KEYS].assign(scale="ncapc", score=ncapc[list(NCAPC_ITEMS)].sum(axis=1)))
    facs = _wide(ratings, "facs", FACS_ITEMS)
    aus = facs[list(FACS_ITEMS)].to_numpy(dtype=float)
    parts.append(facs[KEYS].assign(scale="facs", score=[facs_pain_score(*row) for row in aus]))
    if include_pspi:
        parts.append(facs[KEYS].assign(scale="pspi", score=[pspi(*row) for row in aus]))
    parts = [part for part in parts if len(part)]
    if not parts:
        return pd.DataFrame({c: pd.Series(dtype=float if c == "score" else str) for c in SCORE_COLUMNS})
    scores = pd.concat(parts, ignore_index=True)
    scores["score"] = scores["score"].astype(float)
    return scores[list(SCORE_COLUMNS)].sort_values(["scale", "video", "rater"], kind="stable").reset_index(drop=True)


def _wide(ratings: pd.DataFrame, scale: str, items: tuple[str, ...]) -> pd.DataFrame:
    """One row per (video, pain_source, rater) with one column per item; incomplete rows dropped."""
    rows = ratings[ratings["scale"] == scale]
    if rows.empty:
        return pd.DataFrame(columns=[*KEYS, *items])
    wide = rows.pivot_table(index=KEYS, columns="item", values="score", aggfunc="first")
    wide = wide.reindex(columns=list(items)).dropna(how="any")
    return wide.reset_index()


def video_labels(scores: pd.DataFrame) -> pd.DataFrame:
    """Per (video, scale): pain source, raters, mean score and binary label.

    ``label`` is 0 (no pain) only when every rater gave the video 0 on that scale, else 1 (pain),
    as in the paper. Columns: video, pain_source, scale, n_raters, mean_score, label.
    """
    grouped = scores.groupby(["video", "scale"], sort=True)
    labels = grouped.agg(pain_source=("pain_source", "first"), n_raters=("rater", "nunique"),
                         mean_score=("score", "mean"), max_score=("score", "max")).reset_index()
    labels["label"] = (labels.pop("max_score") > 0).astype(int)
    return labels[["video", "pain_source", "scale", "n_raters", "mean_score", "label"]]
