"""Model versus clinicians on CP-PAIN: each test image linked to its video's clinician scores.

The link. CP-PAIN's ``manifest.csv`` (image,video_id,subject,frame,label,pain_source) names the video
of each image file. The sample table's id for a CP-PAIN image is assumed to be
``cppain/<subject>/<video_id>/<frame>`` (``engine.datasets.table``: ``<dataset>/<subject>/<sequence>/
<frame>``, the sequence being the video). An image is linked (1) by the second-to-last part of its
image id when that is a video id of the manifest, else (2) by a part of its image id or its ``path``
whose file name or stem is a manifest ``image``. The join with the ratings is then on ``video_id``
alone, so it does not depend on how an adapter spells frames. Unlinked images are counted, not guessed.

Two levels, never mixed (``level``):

- **video** (per run and clinician scale): the clinicians rate videos, so the network is compared per
  video. A video's frames are aggregated as the **mean p(pain) of its linked frames**, and the video is
  predicted pain when that mean is >= 0.5. Spearman's rho between the video's mean p(pain) and its mean
  score, ROC-AUC of the mean p(pain) against the video's binary label (no pain only when every rater
  gave 0), Cohen's kappa between the video's predicted label and that label (the FACS row is the
  paper's labelling). Counting every frame with its video's label would call a right "no pain" on the
  calm frame of a painful video a disagreement.
- **frame** (per run, scale ``frame_label``): only where frames carry their own label (the manifest's
  ``label`` column, which the predictions carry as ``true_label``): ROC-AUC of each frame's p(pain)
  against it and kappa of its predicted label; no Spearman (the label is binary).

Labels: 0 no pain, 1 pain. Where a metric is undefined the row says why in ``note``.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path, PurePosixPath

import numpy as np
import pandas as pd

from engine.errors import NotADatasetError
from engine.ratings.forms import scale_label
from engine.ratings.scores import video_labels

PREDICTION_COLUMNS = ("model", "scenario", "fold", "image_id", "subject", "dataset", "true_label", "p_pain",
                      "predicted_label")
AGREEMENT_COLUMNS = ("model", "scenario", "fold", "level", "scale", "n_images", "n_videos", "n_unlinked",
                     "pain_share", "spearman_rho", "spearman_p", "roc_auc", "kappa", "comparison", "note")
FRAME_SCALE = "frame_label"
COMPARISONS = {
    "video": "per video: mean p(pain) of its frames (pain when >= 0.5) against the clinicians' video score and label",
    "frame": "per frame: p(pain) and predicted label against the frame's own label",
}
METRICS = ("spearman_rho", "roc_auc", "kappa")


def read_cppain_manifest(path: str | Path) -> pd.DataFrame:
    """CP-PAIN ``manifest.csv`` as text columns; NotADatasetError when it lacks image or video_id."""
    path = Path(path)
    if not path.is_file():
        raise NotADatasetError(f"No CP-PAIN manifest at {path}; it should list image,video_id,subject,frame,label,pain_source.")
    try:
        manifest = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except (UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError):
        raise NotADatasetError(f"{path} is not a readable CSV manifest; save it as UTF-8 CSV.") from None
    manifest = manifest.apply(lambda column: column.str.strip())  # ids are compared as text
    missing = [column for column in ("image", "video_id") if column not in manifest]
    if missing:
        raise NotADatasetError(f"{path} lacks the column(s) {', '.join(missing)}; the CP-PAIN manifest has "
                               "image,video_id,subject,frame,label,pain_source.")
    return manifest


def link_images_to_videos(predictions: pd.DataFrame, manifest: pd.DataFrame) -> pd.Series:
    """Video id of each prediction row ("" where no link is found), aligned with ``predictions``."""
    videos = set(manifest["video_id"].astype(str))
    by_name: dict[str, str] = {}
    for image, video in zip(manifest["image"].astype(str), manifest["video_id"].astype(str)):
        name = PurePosixPath(image.replace("\\", "/")).name
        by_name.setdefault(name, video)
        by_name.setdefault(PurePosixPath(name).stem, video)
    paths = predictions["path"].astype(str) if "path" in predictions else pd.Series("", index=predictions.index)
    linked = []
    for image_id, path in zip(predictions["image_id"].astype(str), paths):
        parts = image_id.replace("\\", "/").split("/")
        if len(parts) >= 2 and parts[-2] in videos:
            linked.append(parts[-2])
            continue
        candidates = [*parts, PurePosixPath(path.replace("\\", "/")).name]
        names = [c for part in candidates if part for c in (part, PurePosixPath(part).stem)]
        linked.append(next((by_name[n] for n in names if n in by_name), ""))
    return pd.Series(linked, index=predictions.index, dtype=str)


def model_vs_clinicians(predictions: pd.DataFrame, manifest: pd.DataFrame, scores: pd.DataFrame,
                        scenario: str = "external") -> pd.DataFrame:
    """Agreement of each network with the clinicians (AGREEMENT_COLUMNS): per run, one video-level row
    per scale, then one frame-level row where frames carry their own label (see the module docstring).

    ``predictions``: PREDICTION_COLUMNS (``subject``, ``dataset``, ``true_label`` optional); only
    CP-PAIN rows (dataset "cppain", or an image id starting "cppain/") of ``scenario`` are used.
    ``scores``: :func:`engine.ratings.scale_scores` output.
    """
    frame = _cppain_rows(predictions, scenario)
    labels = video_labels(scores)
    if frame.empty or labels.empty:
        return pd.DataFrame(columns=list(AGREEMENT_COLUMNS))
    frame["video_id"] = link_images_to_videos(frame, manifest)
    own_labels = "true_label" in frame and "label" in manifest and manifest["label"].str.strip().ne("").any()
    rows = []
    for (model, scen, fold), run in frame.groupby(["model", "scenario", "fold"], sort=True):
        keys = {"model": model, "scenario": scen, "fold": fold}
        videos = _per_video(run)
        for scale, per_video in labels.groupby("scale", sort=False):
            joined = videos.merge(per_video[["video", "mean_score", "label"]], left_on="video_id", right_on="video")
            rows.append({**keys, "level": "video", "scale": scale, "n_images": int(joined["frames"].sum()),
                         "n_videos": len(joined), "n_unlinked": int(len(run) - joined["frames"].sum()),
                         "pain_share": float(joined["label"].mean()) if len(joined) else math.nan,
                         "comparison": COMPARISONS["video"], **_metrics(joined, scale_label(scale))})
        if own_labels:
            rows.append(_frame_row(keys, run))
    return pd.DataFrame(rows, columns=list(AGREEMENT_COLUMNS))


def _per_video(run: pd.DataFrame) -> pd.DataFrame:
    """One row per linked video of a run: frames, mean p(pain) and the label that mean gives."""
    linked = run[run["video_id"] != ""]
    videos = linked.groupby("video_id", sort=True).agg(frames=("p_pain", "size"), p_pain=("p_pain", "mean"))
    videos["predicted_label"] = (videos["p_pain"] >= 0.5).astype(int)
    return videos.reset_index()


def _frame_row(keys: dict, run: pd.DataFrame) -> dict:
    """The frame-level row of a run: every CP-PAIN frame against its own label (``true_label``)."""
    frames = run.assign(label=run["true_label"].astype(int))
    metrics = _metrics(frames, "their own label", rank=False)
    return {**keys, "level": "frame", "scale": FRAME_SCALE, "n_images": len(frames),
            "n_videos": int(frames.loc[frames["video_id"] != "", "video_id"].nunique()), "n_unlinked": 0,
            "pain_share": float(frames["label"].mean()), "comparison": COMPARISONS["frame"], **metrics}


def _cppain_rows(predictions: pd.DataFrame, scenario: str) -> pd.DataFrame:
    missing = [c for c in ("image_id", "p_pain", "predicted_label") if c not in predictions]
    if missing:
        raise ValueError(f"predictions lack the column(s) {', '.join(missing)}")
    frame = predictions.copy()
    for column, default in (("model", ""), ("scenario", scenario), ("fold", 0)):
        if column not in frame:
            frame[column] = default
    is_cppain = frame["dataset"].astype(str).eq("cppain") if "dataset" in frame else \
        frame["image_id"].astype(str).str.startswith("cppain/")
    return frame[is_cppain & frame["scenario"].astype(str).eq(scenario)].reset_index(drop=True)


def _metrics(joined: pd.DataFrame, scale: str, rank: bool = True) -> dict:
    """Spearman (when ``rank``: against ``mean_score``), ROC-AUC and kappa of one run's rows (p_pain,
    predicted_label, label) against ``scale``; NaN and a sentence where undefined."""
    from scipy.stats import spearmanr
    from sklearn.metrics import cohen_kappa_score, roc_auc_score

    out = {"spearman_rho": math.nan, "spearman_p": math.nan, "roc_auc": math.nan, "kappa": math.nan}
    if joined.empty:
        return {**out, "note": f"No image of this run is linked to a video rated on {scale}."}
    notes = []
    p_pain = joined["p_pain"].to_numpy(dtype=float)
    label = joined["label"].to_numpy(dtype=int)
    predicted = joined["predicted_label"].to_numpy(dtype=int)
    mean = joined["mean_score"].to_numpy(dtype=float) if rank else None
    if rank and (np.ptp(p_pain) == 0 or np.ptp(mean) == 0):
        notes.append(f"Spearman's rho is undefined: {'p(pain)' if np.ptp(p_pain) == 0 else 'the mean score'} is constant.")
    elif rank:
        rho, pval = spearmanr(p_pain, mean)
        out.update(spearman_rho=float(rho), spearman_p=float(pval))
    if len(set(label)) < 2:
        rated = f"rated {'pain' if label[0] else 'no pain'} on {scale}" if rank else \
            f"labelled {'pain' if label[0] else 'no pain'}"
        notes.append(f"ROC-AUC is undefined: every linked {'video' if rank else 'frame'} is {rated}.")
    else:
        out["roc_auc"] = float(roc_auc_score(label, p_pain))
    if len(set(label) | set(predicted)) < 2:
        notes.append("Cohen's kappa is undefined: the network and the clinicians use one and the same class only.")
    else:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")  # one-sided tables: kappa is 0 by definition, no warning needed
            out["kappa"] = float(cohen_kappa_score(label, predicted))
    return {**out, "note": " ".join(notes)}


def summarize_model_agreement(agreement: pd.DataFrame) -> pd.DataFrame:
    """Mean and standard deviation over runs (folds / seeds) per (model, scenario, level, scale)."""
    keys = ["model", "scenario", "level", "scale"]
    if agreement.empty:
        return pd.DataFrame(columns=[*keys, "runs", "n_images", "n_videos",
                                     *(f"{m}_{s}" for m in METRICS for s in ("mean", "std"))])
    grouped = agreement.groupby(keys, sort=True)
    summary = grouped.agg(runs=("fold", "nunique"), n_images=("n_images", "mean"), n_videos=("n_videos", "mean"),
                          **{f"{m}_{s}": (m, s) for m in METRICS for s in ("mean", "std")})
    return summary.reset_index()


# --- the served answer beside the clinicians ------------------------------------------------------------
# Does the answer agree with a clinician as well as the clinicians agree with each other? Every pair is
# measured the same way on the same videos: Cohen's kappa of the binary judgements (a rater's: score > 0
# on the scale; the answer's: mean p(pain) of its answered frames >= 0.5) and Spearman's rho of the
# continuous values (a rater's score; the answer's mean p(pain)), each with a 95 % interval over videos.

BESIDE_COLUMNS = ("scale", "first", "second", "measure", "value", "low", "high", "n_videos", "n_withheld", "note")
SERVED = "served answer"  # its name where it stands beside the networks and the raters
CONSENSUS = "consensus"  # the paper's video label (pain unless every rater gave 0) and the raters' mean score
BESIDE_RESAMPLES = 1000


def answer_beside_raters(served: pd.DataFrame, manifest: pd.DataFrame, scores: pd.DataFrame,
                         seed: int = 0) -> pd.DataFrame:
    """Kappa and Spearman, with intervals over videos, for every pair of raters and for the served answer
    against each rater and their consensus, per scale (BESIDE_COLUMNS).

    ``served``: the served answer's answered CP-PAIN frames (``served_predictions``: image_id, p_pain, ...);
    a video none of whose frames was answered is withheld: counted in ``n_withheld``, never guessed.
    """
    if served.empty or scores.empty:
        return pd.DataFrame(columns=list(BESIDE_COLUMNS))
    frames = served.assign(video_id=link_images_to_videos(served, manifest))
    answer = frames[frames["video_id"] != ""].groupby("video_id")["p_pain"].mean()
    rng = np.random.default_rng(np.random.SeedSequence([seed, 26]))
    rows = []
    for scale, own in scores.groupby("scale", sort=True):
        table = own.pivot_table(index="video", columns="rater", values="score", aggfunc="first").dropna()
        raters = [str(r) for r in table.columns]
        withheld = int((~table.index.isin(answer.index)).sum())
        values = {r: table[r].to_numpy(dtype=float) for r in raters}
        values[CONSENSUS] = table.mean(axis=1).to_numpy(dtype=float)
        judged = {r: (v > 0).astype(int) for r, v in values.items()}
        judged[CONSENSUS] = (table.max(axis=1).to_numpy() > 0).astype(int)  # the paper's label
        values[SERVED] = answer.reindex(table.index).to_numpy(dtype=float)
        judged[SERVED] = (values[SERVED] >= 0.5).astype(int)
        pairs = [(a, b) for i, a in enumerate(raters) for b in raters[i + 1:]]
        pairs += [(SERVED, r) for r in [*raters, CONSENSUS]]
        for first, second in pairs:
            rated = np.isfinite(values[first]) & np.isfinite(values[second])
            draws = rng.integers(0, max(rated.sum(), 1), size=(BESIDE_RESAMPLES, rated.sum()))  # videos, replaced
            for measure, function, data in (("kappa", _kappa, judged), ("spearman_rho", _rho, values)):
                a, b = data[first][rated], data[second][rated]
                value, note = function(a[None], b[None])
                resampled = function(a[draws], b[draws])[0]
                finite = resampled[np.isfinite(resampled)]
                low, high = (np.quantile(finite, [0.025, 0.975]) if len(finite) >= BESIDE_RESAMPLES // 2
                             else (math.nan, math.nan))  # most resamples undefined: no honest interval
                rows.append({"scale": scale, "first": first, "second": second, "measure": measure,
                             "value": float(value[0]), "low": float(low), "high": float(high),
                             "n_videos": int(rated.sum()), "n_withheld": withheld if first == SERVED else 0,
                             "note": note})
    return pd.DataFrame(rows, columns=list(BESIDE_COLUMNS))


def _kappa(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, str]:
    """Cohen's kappa of two binary judgements per row (rows: the data, then its resamples)."""
    if a.shape[1] < 3:
        return np.full(len(a), math.nan), "fewer than 3 videos"
    observed = np.mean(a == b, axis=1)
    pa, pb = a.mean(axis=1), b.mean(axis=1)
    expected = pa * pb + (1 - pa) * (1 - pb)
    with np.errstate(all="ignore"):
        kappa = np.where(expected < 1, (observed - expected) / (1 - expected), math.nan)
    note = "both give one and the same judgement on every video: kappa is undefined" if np.isnan(kappa[0]) else ""
    return kappa, note


def _rho(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, str]:
    """Spearman's rho per row: Pearson's r of the mid-ranks."""
    from scipy.stats import rankdata

    if a.shape[1] < 3:
        return np.full(len(a), math.nan), "fewer than 3 videos"
    ra, rb = rankdata(a, axis=1), rankdata(b, axis=1)
    ra, rb = ra - ra.mean(axis=1, keepdims=True), rb - rb.mean(axis=1, keepdims=True)
    with np.errstate(all="ignore"):
        rho = (ra * rb).sum(axis=1) / np.sqrt((ra ** 2).sum(axis=1) * (rb ** 2).sum(axis=1))
    rho[~np.isfinite(rho)] = math.nan
    note = "one side is constant: Spearman's rho is undefined" if np.isnan(rho[0]) else ""
    return rho, note
