"""The model as a third rater on CP-PAIN: its FACS pain score per video beside the two physiotherapists'.

The model's score of a video is the FACS pain score (``engine.scales.facs_pain_score``: AU4 + max(AU6, AU7)
+ max(AU9, AU10) + AU43) of the AUs the action-unit estimator (fitted on UNBC only) finds at the video's
pain frame, the frame the clinical team pinpointed (manifest ``label`` = pain); a video without one is
scored at its frame with the highest score, as a rater scores a video's strongest moment. UNBC codes AU43
as present or absent, so the model's AU43 is 0 or 1 where the raters score it 0-5.

The table has Table 4's layout (rows: the sources of pain and all videos), one column per comparison:
rater 1 vs rater 2 (the clinicians' own agreement, on the same videos), the model vs each rater, and the
model vs the raters' mean. Each cell is the ratings' headline ICC form with pingouin's 95 % interval.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from engine.ratings.agreement import icc_forms
from engine.ratings.forms import ALL_SOURCES, fleiss_category, resolve_icc_form
from engine.scales import PAIN_SOURCES, facs_pain_score

MODEL = "model"
RATER_COLUMNS = ("comparison", "source", "form", "icc", "ci_low", "ci_high", "category", "n_videos", "note")
COMPARISON_LABELS = {"rater_1|rater_2": "Rater 1 vs rater 2", f"{MODEL}|rater_1": "Model vs rater 1",
                     f"{MODEL}|rater_2": "Model vs rater 2", f"{MODEL}|raters_mean": "Model vs raters' mean"}


def model_as_rater(frames: pd.DataFrame, ratings_file: Path, headline: str = "ICC2") -> tuple[pd.DataFrame, list[str]]:
    """(the agreement table, RATER_COLUMNS; notes). ``frames``: CP-PAIN faces with image_id, label and the
    estimated AUs (``engine.models.action_units.PAIN_AUS`` columns)."""
    from engine.errors import PainLensError
    from engine.ratings.load import load_ratings
    from engine.ratings.scores import scale_scores

    empty = pd.DataFrame(columns=list(RATER_COLUMNS))
    if frames.empty:
        return empty, ["CP-PAIN has no faces: the model is not compared with the raters."]
    if not ratings_file.is_file():
        return empty, ["CP-PAIN has no ratings.csv: the model is not compared with the raters."]
    try:
        scores = scale_scores(load_ratings(ratings_file).ratings)
    except PainLensError as error:  # a ratings file that is not one: the ratings step says so too
        return empty, [f"The model is not compared with the raters: {error}"]
    return agreement_table(video_scores(with_facs_scores(frames)), scores[scores["scale"] == "facs"], headline), []


def with_facs_scores(frames: pd.DataFrame) -> pd.DataFrame:
    """``frames`` with the model's FACS pain score per face (facs_score) and its video (from the image id
    ``cppain/<subject>/<video>/<frame>``; "" where the id has no video part)."""
    from engine.models.action_units import PAIN_AUS

    out = frames.copy()
    out["facs_score"] = [facs_pain_score(*row) for row in out[list(PAIN_AUS)].to_numpy(dtype=float)]
    out["video"] = [str(i).split("/")[-2] if str(i).count("/") >= 3 else "" for i in out["image_id"]]
    return out


def video_scores(frames: pd.DataFrame) -> pd.DataFrame:
    """The model's FACS pain score per video (columns video, score): at its pain frame, else its highest."""
    linked = frames[frames["video"] != ""]
    rows = []
    for video, group in linked.groupby("video", sort=True):
        pain = group[group["label"].astype(int) == 1]
        rows.append({"video": video, "score": float((pain if len(pain) else group)["facs_score"].max())})
    return pd.DataFrame(rows, columns=["video", "score"])


def agreement_table(model_scores: pd.DataFrame, facs: pd.DataFrame, headline: str = "ICC2") -> pd.DataFrame:
    """RATER_COLUMNS: per comparison and source (then all), the headline ICC form with its 95 % CI, on the
    videos the model scored and both raters rated. ``facs``: scale scores (video, pain_source, rater, score)."""
    form = resolve_icc_form(headline)
    wide = facs.pivot_table(index=["video", "pain_source"], columns="rater", values="score", aggfunc="first")
    wide = wide.reset_index().merge(model_scores.rename(columns={"score": MODEL}), on="video")
    raters = sorted(c for c in wide.columns if c not in ("video", "pain_source", MODEL))[:2]
    if len(raters) < 2:
        return pd.DataFrame(columns=list(RATER_COLUMNS))
    wide = wide.dropna(subset=[*raters, MODEL])
    wide["raters_mean"] = wide[raters].mean(axis=1)
    present = set(wide["pain_source"])
    sources = [s for s in PAIN_SOURCES if s in present] + sorted(present - set(PAIN_SOURCES)) + [ALL_SOURCES]
    pairs = [(raters[0], raters[1]), (MODEL, raters[0]), (MODEL, raters[1]), (MODEL, "raters_mean")]
    rows = []
    for first, second in pairs:
        for source in sources:
            part = wide if source == ALL_SOURCES else wide[wide["pain_source"] == source]
            long = pd.concat([part[["video"]].assign(rater=name, score=part[name]) for name in (first, second)])
            table, n_videos, _, note = icc_forms(long)
            row = {"comparison": f"{first}|{second}", "source": source,
                   "form": form, "icc": np.nan, "ci_low": np.nan, "ci_high": np.nan, "n_videos": n_videos,
                   "note": note}
            if table is not None:
                head = table[table["form"] == form].iloc[0]
                row.update(icc=float(head["icc"]), ci_low=float(head["ci_low"]), ci_high=float(head["ci_high"]))
            row["category"] = fleiss_category(row["icc"])
            rows.append(row)
    return pd.DataFrame(rows, columns=list(RATER_COLUMNS))
