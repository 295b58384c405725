"""The served answer evaluated as it is served, on the sealed test: CP-PAIN (leave one CP subject out when
``[evaluation] serve_cp_adapt`` serves the CP-adapted models: ``engine.evaluation.adapted_answer``).

Every used network's fold models predicted CP-PAIN when they were trained (``features.npz``: p(pain) and
penultimate features) and the served AU estimator measured CP-PAIN's PSPI (``action_unit_frames``), so the
answer is evaluated with exactly the served computation
(``engine.evaluation.answer.combine``: the same models, calibration, out-of-distribution check and
conformal sets), without loading a model again. The table (``answer_evaluation``) has one row per metric
with its value, a 95 % interval over subjects (bootstrap, subjects resampled with replacement) and the
images and subjects it was computed on:

- over every CP-PAIN image: ``abstention_rate`` (withheld: unlike the training faces or uncertain),
  ``ood_rate`` (unlike by either check), ``ood_rate_features`` and ``ood_rate_appearance`` (each check alone; the
  appearance check's crops are read from the face cache, as a photo of the face would give them), ``uncertain_rate``, ``prevalence``, ``roc_auc_all`` (the number before abstention);
- over the images that pass the out-of-distribution check: ``coverage_pain`` / ``coverage_no_pain`` (the
  share of pain / no-pain faces whose conformal set holds their true class);
- over the answered images (a number was given): ``answered_accuracy``, ``roc_auc``, ``pr_auc``,
  ``sensitivity`` and ``specificity`` at the operating threshold 0.5, ``brier``, ``calibration_intercept``
  and ``calibration_slope`` (logistic recalibration of the answer: 0 and 1 when calibrated; blank when the
  answered faces are perfectly separated, where no finite line fits), ``ece``;
- on the synthetic clips (``painlens run``, when the data has them): ``test_retest_icc_calm`` /
  ``test_retest_icc_pain`` and ``clip_calm_called_pain`` / ``clip_pain_called_pain`` (the share of answered
  frames called pain in calm stretches, where only the person's resting face is drawn, and inside planted
  pain segments), with intervals over clips.
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

import numpy as np
import pandas as pd

from engine.artifacts import ExperimentStore, RunKey
from engine.evaluation.answer import DEVELOPMENT_SCENARIO, AnswerBasis, combine, neighbour_distance, prediction_sets
from engine.evaluation.bootstrap import MIN_IMAGES, MIN_SUBJECTS, few_data
from engine.evaluation.calibration import INTERCEPT_LIMIT, LOG_T_RANGE, ece, fit_platt
from engine.ratings.model_agreement import SERVED

COLUMNS = ["metric", "value", "low", "high", "n_images", "n_subjects", "computed_on"]
THRESHOLD = 0.5  # the operating threshold of sensitivity and specificity
RESAMPLES = 1000
CONFIDENCE = 0.95


def served_on_cppain(store: ExperimentStore, basis: AnswerBasis) -> pd.DataFrame | None:
    """One row per CP-PAIN image: image_id, subject, true_label and ``combine``'s columns; None when the
    answer uses no network or the fold models' CP-PAIN arrays are missing."""
    if basis.missing or not basis.used:
        return None
    member_p, distances, ids = {}, {}, None
    if basis.adapted:  # serve_cp_adapt: each face by the models adapted without its subject (leave one out)
        from engine.evaluation.adapted_answer import loso_inputs

        found = loso_inputs(store, basis)
        if found is None:
            return None
        ids, member_p, distances = found
    for name in ([] if basis.adapted else basis.used):
        facts, p, d = basis.networks[name], [], []
        for fold, reference in zip(facts.members, basis.references[name]):
            arrays = store.features(RunKey(name, DEVELOPMENT_SCENARIO, fold))
            if arrays is None or "cppain_p_pain" not in arrays:
                return None
            if ids is None:
                ids = arrays["cppain_image_ids"]
            elif not np.array_equal(ids, arrays["cppain_image_ids"]):
                return None  # the fold models saw different CP-PAIN tables: not one test set
            p.append(arrays["cppain_p_pain"].astype(float))
            d.append(neighbour_distance(arrays["cppain"], reference, basis.neighbours))
        member_p[name] = np.stack(p, axis=1)
        distances[name] = np.mean(d, axis=0) / facts.ood_scale
    if ids is None or len(ids) == 0:
        return None
    pspi = cppain_pspi(store, ids.astype(str))
    samples = store.samples()
    served = combine(member_p, distances, basis, pspi, cppain_appearance(samples, ids.astype(str), basis))
    labels = samples[samples["dataset"] == "cppain"].set_index("image_id")
    frame = pd.DataFrame({"image_id": ids.astype(str), **served})
    frame["pspi"] = np.full(len(frame), np.nan) if pspi is None else pspi
    frame["subject"] = labels["subject"].astype(str).reindex(frame["image_id"]).to_numpy()
    frame["video"] = labels["sequence"].astype(str).reindex(frame["image_id"]).to_numpy() if "sequence" in labels \
        else frame["image_id"].to_numpy()
    frame["true_label"] = labels["label"].reindex(frame["image_id"]).to_numpy()
    return frame.dropna(subset=["true_label"]).astype({"true_label": int})


def with_calm_reference(frame: pd.DataFrame, basis: AnswerBasis) -> pd.DataFrame | None:
    """``served_on_cppain``'s faces answered as served with the person's calm reference
    (``engine.evaluation.reference_answer``): each face's reference is its person's frames that CP-PAIN's clinical
    team pinpointed as no pain in the person's OTHER videos (never the face's own video; as a clinician designating a
    calm photo of the person, this uses the raters' judgement of other videos), those that pass the
    out-of-distribution check (a calm photo unlike the training faces gives no reference). A face without such
    frames keeps the answer without a reference, as it would be served. None when the answer has no rule with a
    reference. Adds ``has_reference``."""
    from engine.evaluation.baseline import calm_reference, logit, sigmoid
    from engine.evaluation.reference_answer import is_served, needs, reference_p

    rule = (basis.parameters.get("baseline") or {}).get("answer")
    if not is_served(rule):
        return None
    pspi = frame["pspi"].to_numpy(dtype=float)
    usable = ~frame["ood"].to_numpy(dtype=bool) & (np.isfinite(pspi) if "pspi" in needs(rule) else True)
    calm = np.where(usable, frame["true_label"].to_numpy(dtype=int), -1)  # only calm frames can be a reference
    z_reference, count = calm_reference(frame["subject"], frame["video"], calm, logit(frame["p_served"].to_numpy(dtype=float)))
    pspi_reference, _ = calm_reference(frame["subject"], frame["video"], calm, np.nan_to_num(pspi))
    p_reference = np.where(count > 0, sigmoid(z_reference), np.nan)
    p = reference_p(frame["p_served"].to_numpy(dtype=float), pspi, p_reference,
                    np.where(count > 0, pspi_reference, np.nan), rule)
    has = np.isfinite(p)
    pain, no_pain = prediction_sets(p, rule["conformal"])
    out = frame.copy()
    out["has_reference"] = has
    out["p_served"] = np.where(has, p, out["p_served"])
    out["in_pain_set"] = np.where(has, pain, out["in_pain_set"])
    out["in_no_pain_set"] = np.where(has, no_pain, out["in_no_pain_set"])
    out["undecided"] = out["in_pain_set"] == out["in_no_pain_set"]
    withheld = out["ood"].to_numpy(dtype=bool) | out["undecided"].to_numpy(dtype=bool)
    out["p_pain"] = np.where(withheld, np.nan, out["p_served"])
    return out




def cppain_appearance(samples: pd.DataFrame | None, image_ids: np.ndarray, basis: AnswerBasis) -> np.ndarray | None:
    """The appearance distance (``AnswerBasis.appearance_distance``) of these CP-PAIN faces from their crops in
    the face cache; None when the answer has no appearance check or a crop cannot be read (the check is then
    not part of the evaluation: its rate is blank)."""
    from engine.errors import PainLensError
    from engine.evaluation.appearance import TEXTURE_SIZE
    from engine.preprocess import load_faces

    if basis.appearance is None or samples is None:
        return None
    rows = samples[samples["dataset"] == "cppain"].drop_duplicates("image_id").set_index("image_id", drop=False)
    try:
        return basis.appearance_distance(load_faces(rows.loc[list(image_ids)], TEXTURE_SIZE))  # the size the texture cue reads
    except (PainLensError, KeyError, OSError):
        return None


def cppain_pspi(store: ExperimentStore, image_ids: np.ndarray) -> np.ndarray | None:
    """The served AU estimator's PSPI of these CP-PAIN faces (NaN where it has none; None without an estimator),
    as a photo of them would get it."""
    frames = store.table("action_unit_frames")
    if frames is None or not {"set", "image_id", "PSPI"} <= set(frames):
        return None
    cp = frames[frames["set"] == "cppain"].drop_duplicates("image_id").set_index("image_id")["PSPI"]
    return cp.reindex(image_ids).to_numpy(dtype=float)


def served_predictions(store: ExperimentStore) -> pd.DataFrame:
    """The served answer's CP-PAIN predictions in the runs' columns (model ``SERVED``, scenario external, fold
    0): the answered faces only, as a clinician would see them. Empty without an answer."""
    frame = served_on_cppain(store, AnswerBasis.from_store(store))
    if frame is None:
        return pd.DataFrame()
    answered = frame[np.isfinite(frame["p_pain"].to_numpy(dtype=float))]
    samples = store.samples().set_index("image_id")
    return pd.DataFrame({"model": SERVED, "scenario": "external", "fold": 0, "seed": 0,
                         "image_id": answered["image_id"].to_numpy(), "subject": answered["subject"].to_numpy(),
                         "dataset": samples["dataset"].reindex(answered["image_id"]).to_numpy(),
                         "true_label": answered["true_label"].to_numpy(dtype=int), "p_pain": answered["p_pain"].to_numpy(),
                         "predicted_label": (answered["p_pain"].to_numpy() >= THRESHOLD).astype(int)})


def evaluate_answer(store: ExperimentStore, basis: AnswerBasis, seed: int = 0) -> pd.DataFrame:
    """The ``answer_evaluation`` table (empty, with its columns, when there is nothing to evaluate)."""
    frame = served_on_cppain(store, basis)
    if frame is None or frame.empty:
        return pd.DataFrame(columns=COLUMNS)
    tables = [_metric_rows(frame, seed)]
    referenced = with_calm_reference(frame, basis)
    if referenced is not None:
        rows = _metric_rows(referenced, seed, "has_reference")
        tables.append(rows.assign(metric=rows["metric"] + WITH_REFERENCE,
                                  computed_on=rows["computed_on"] + ", " + REFERENCE_NOTE))
    return pd.concat(tables, ignore_index=True)


WITH_REFERENCE = "_with_reference"  # the metric names of the answer served with the person's calm reference
REFERENCE_NOTE = ("with the person's calm reference (their frames pinpointed as no pain in their other videos, where "
                  "they have any; the answer without a reference otherwise)")


def _metric_rows(frame: pd.DataFrame, seed: int, reference: str | None = None) -> pd.DataFrame:
    """``METRICS`` of the faces in ``frame`` with 95 % intervals over subjects; with ``reference`` (a column of
    booleans) also ``reference_share``, the share of faces answered with a calm reference."""
    subjects = frame["subject"].to_numpy()
    codes, index = np.unique(subjects, return_inverse=True)
    rng = np.random.default_rng(np.random.SeedSequence([seed, int(hashlib.sha256(b"answer").hexdigest()[:8], 16)]))
    draws = rng.integers(0, len(codes), size=(RESAMPLES, len(codes)))
    members = [np.flatnonzero(index == c) for c in range(len(codes))]
    columns = {name: frame[name].to_numpy() for name in ("true_label", "p_pain", "p_served", "ood", "undecided",
                                                            "in_pain_set", "in_no_pain_set")}
    for check in ("unlike_features", "unlike_appearance"):  # each check of unlike alone (NaN: not measured)
        columns[check] = frame[check].to_numpy(dtype=float) if check in frame else np.full(len(frame), np.nan)
    if "appearance_score" in frame and not np.isfinite(frame["appearance_score"].to_numpy(dtype=float)).any():
        columns["unlike_appearance"] = np.full(len(frame), np.nan)  # the check did not run on these faces
    columns["reference"] = frame[reference].to_numpy(dtype=bool) if reference else np.zeros(len(frame), dtype=bool)
    metrics = {**METRICS, "reference_share": (_every, lambda f: _share(f.reference))} if reference else METRICS
    everything = _Faces(columns)
    resamples = [everything.take(np.concatenate([members[c] for c in draw])) for draw in draws]  # subjects, replaced
    rows, subsets = [], {}  # each resample's faces a metric is computed on, once per kind of faces
    for metric, (where, function) in metrics.items():
        chosen = where(everything)
        if where not in subsets:
            subsets[where] = [r.take(np.flatnonzero(where(r))) for r in resamples]
        values = np.array([function(faces) for faces in subsets[where]])
        finite = values[np.isfinite(values)]
        low, high = (np.quantile(finite, [(1 - CONFIDENCE) / 2, (1 + CONFIDENCE) / 2]) if len(finite) >= RESAMPLES // 2
                     else (math.nan, math.nan))  # most resamples without a value: no honest interval
        rows.append({"metric": metric, "value": function(everything.take(np.flatnonzero(chosen))), "low": float(low),
                     "high": float(high), "n_images": int(chosen.sum()),
                     "n_subjects": int(len(np.unique(subjects[chosen]))), "computed_on": ON[where]})
    return pd.DataFrame(rows, columns=COLUMNS)


# --- the metrics (on plain arrays: a thousand resamples each) ---------------------------------------------

class _Faces:
    """The evaluated faces as arrays: ``y`` (true label), ``p`` (the answer, NaN where withheld), ``served``
    (the number before abstention), ``ood``, ``undecided``, ``pain_set`` and ``no_pain_set``."""

    def __init__(self, columns: dict[str, np.ndarray]):
        self.columns = columns
        self.y = columns["true_label"].astype(int)
        self.p, self.served = columns["p_pain"].astype(float), columns["p_served"].astype(float)
        self.ood, self.undecided = columns["ood"].astype(bool), columns["undecided"].astype(bool)
        self.pain_set, self.no_pain_set = columns["in_pain_set"].astype(bool), columns["in_no_pain_set"].astype(bool)
        self.reference = columns["reference"].astype(bool)  # answered with a calm reference
        self.platt: tuple[float, float] | None = None  # (slope, intercept) of these faces, once computed

    def take(self, rows: np.ndarray) -> "_Faces":
        return _Faces({name: values[rows] for name, values in self.columns.items()})


def _every(faces: _Faces) -> np.ndarray:
    return np.ones(len(faces.y), dtype=bool)


def _in_distribution(faces: _Faces) -> np.ndarray:
    return ~faces.ood


def _answered(faces: _Faces) -> np.ndarray:
    return np.isfinite(faces.p)


ON = {_every: "every CP-PAIN image", _in_distribution: "images that pass the out-of-distribution check",
      _answered: "answered images"}


def _share(values: np.ndarray) -> float:
    return float(np.mean(values)) if len(values) else math.nan


def _auc(y: np.ndarray, p: np.ndarray) -> float:
    """ROC AUC as the Mann-Whitney statistic (ties count half); NaN without both classes."""
    positives, negatives = p[y == 1], p[y == 0]
    if not len(positives) or not len(negatives):
        return math.nan
    greater = (positives[:, None] > negatives[None, :]).mean()
    ties = (positives[:, None] == negatives[None, :]).mean()
    return float(greater + ties / 2)


def _pr_auc(y: np.ndarray, p: np.ndarray) -> float:
    """Average precision (scikit-learn's definition: precision at each pain face, in order of p)."""
    if not len(y) or y.sum() == 0 or y.sum() == len(y):
        return math.nan
    order = np.argsort(-p, kind="stable")
    ranked, scores = y[order], p[order]
    last_of_tie = np.r_[scores[1:] != scores[:-1], True]  # precision counted once per distinct threshold
    hits = np.cumsum(ranked)[last_of_tie]
    seen = np.flatnonzero(last_of_tie) + 1
    recall_steps = np.diff(np.r_[0, hits]) / y.sum()
    return float(np.sum(recall_steps * hits / seen))


def _calibration(faces: _Faces, which: int) -> float:
    """The answered faces' calibration slope (``which`` 0) or intercept (1); NaN with one class, and NaN when
    every pain face reads above every no-pain face or the fit stops at the calibrator's bounds (nearly
    separated faces): then the logistic recalibration has no finite fit, and a number would only say where
    the fit stopped (a slope of 54.6, the bound)."""
    if len(np.unique(faces.y)) < 2:
        return math.nan
    if faces.p[faces.y == 1].min() > faces.p[faces.y == 0].max():
        return math.nan
    if faces.platt is None:  # the slope and the intercept are one fit: once per set of faces
        faces.platt = fit_platt(faces.p, faces.y)
    slope, intercept = faces.platt
    if not (SLOPE_BOUNDS[0] < slope < SLOPE_BOUNDS[1]) or abs(intercept) >= INTERCEPT_LIMIT:
        return math.nan
    return intercept if which else slope


SLOPE_BOUNDS = (math.exp(-LOG_T_RANGE[1]) * 1.0001, math.exp(-LOG_T_RANGE[0]) * 0.9999)  # fit_platt's clip, a hair inside


def _rate(faces: _Faces, label: int) -> float:
    truth = faces.y == label
    return _share((faces.p[truth] >= THRESHOLD) == bool(label))


METRICS = {
    "abstention_rate": (_every, lambda f: _share(~np.isfinite(f.p))),
    "ood_rate": (_every, lambda f: _share(f.ood)),
    "ood_rate_features": (_every, lambda f: _share(f.columns["unlike_features"])),
    "ood_rate_appearance": (_every, lambda f: _share(f.columns["unlike_appearance"])),
    "uncertain_rate": (_every, lambda f: _share(f.undecided & ~f.ood)),
    "prevalence": (_every, lambda f: _share(f.y)),
    "roc_auc_all": (_every, lambda f: _auc(f.y, f.served)),
    "coverage_pain": (_in_distribution, lambda f: _share(f.pain_set[f.y == 1])),
    "coverage_no_pain": (_in_distribution, lambda f: _share(f.no_pain_set[f.y == 0])),
    "answered_accuracy": (_answered, lambda f: _share((f.p >= THRESHOLD) == (f.y == 1))),
    "roc_auc": (_answered, lambda f: _auc(f.y, f.p)),
    "pr_auc": (_answered, lambda f: _pr_auc(f.y, f.p)),
    "sensitivity": (_answered, lambda f: _rate(f, 1)),
    "specificity": (_answered, lambda f: _rate(f, 0)),
    "brier": (_answered, lambda f: _share((f.p - f.y) ** 2)),
    "calibration_intercept": (_answered, lambda f: _calibration(f, 1)),
    "calibration_slope": (_answered, lambda f: _calibration(f, 0)),
    "ece": (_answered, lambda f: ece(f.p, f.y) if len(f.y) else math.nan),
}


def served_sentence(table: pd.DataFrame | None, parameters: dict | None = None, with_reference: bool = False) -> str:
    """How the served answer did on CP-PAIN, in one sentence for a person ("" without an evaluation). With
    ``parameters`` (``answer.json``) of an answer that serves the CP-adapted models (``serve_cp_adapt``) the
    figures are said to be leave-one-subject-out, never a sealed test. ``with_reference``: the figures of the
    answer with the person's calm reference ("" where the table has none)."""
    from engine.evaluation.adapted_answer import FIGURES_NOTE, is_adapted

    if table is None or table.empty:
        return ""
    adapted = is_adapted(parameters)
    rows = table.set_index("metric")
    suffix = WITH_REFERENCE if with_reference else ""
    if f"answered_accuracy{suffix}" not in rows.index:
        return ""
    accuracy, abstained = rows.loc[f"answered_accuracy{suffix}"], rows.loc[f"abstention_rate{suffix}"]
    answered = int(accuracy["n_images"])
    loso = f" {FIGURES_NOTE}" if adapted else ""
    if with_reference:
        share = rows.loc[f"reference_share{suffix}", "value"] if f"reference_share{suffix}" in rows.index else math.nan
        loso += (f" The calm reference of each face: the person's frames pinpointed as no pain in their other videos, which "
                 f"{share:.0%} of the faces had; the others were answered without one.")
    start = "With the person's calm reference, on CP-PAIN" if with_reference else "On CP-PAIN"
    if answered == 0:
        which = "leave one subject out" if adapted else "the test"
        return (f"{start} ({which}, {int(abstained['n_images'])} faces of {int(abstained['n_subjects'])} people) this "
                f"answer withheld its number for every face.{loso}")
    right = int(round(accuracy["value"] * answered))
    interval = "" if not np.isfinite(accuracy["low"]) else f", 95 % interval over people {accuracy['low']:.0%}-{accuracy['high']:.0%}"
    few = f" These figures rest on few data (fewer than {MIN_IMAGES} faces or {MIN_SUBJECTS} people): treat them as rough." \
        if few_data(answered, accuracy["n_subjects"]) else ""
    which = "leave one subject out" if adapted else "the test, never used to build it"
    return (f"{start} ({which}) this answer was right on {right} of {answered} answered faces "
            f"({accuracy['value']:.0%}{interval}; {int(accuracy['n_subjects'])} people) and withheld its number for "
            f"{abstained['value']:.0%} of {int(abstained['n_images'])} faces.{few}{loso}")


def clip_sentence(table: pd.DataFrame | None) -> str:
    """How often the answer called the synthetic clips' calm stretches pain, in one sentence ("" without it)."""
    if table is None or table.empty or "clip_calm_called_pain" not in set(table["metric"]):
        return ""
    rows = table.set_index("metric")
    calm = rows.loc["clip_calm_called_pain"]
    if not calm["n_images"]:
        return ""
    interval = f" [{calm['low']:.0%}-{calm['high']:.0%} over clips]" if np.isfinite(calm["low"]) else ""
    pain = rows.loc["clip_pain_called_pain"] if "clip_pain_called_pain" in rows.index else None
    inside = (f", and {pain['value']:.0%} of {int(pain['n_images'])} inside the planted pain segments"
              if pain is not None and pain["n_images"] else "")
    return (f"On the calm stretches of the synthetic CP clips, where only the person's resting face is drawn, the "
            f"answer without a calm reference called {calm['value']:.0%}{interval} of {int(calm['n_images'])} answered "
            f"frames of {int(calm['n_subjects'])} clips pain{inside}: a resting face that holds pain-like movements "
            f"reads as pain from the face alone; give the person's calm photo or clip as the reference.")


# --- test-retest on the synthetic clips ------------------------------------------------------------------

RETEST_SECONDS = 1.0  # the same person in the same state, about a second apart
RETEST_COLUMNS = ["clip", "segment", "first", "second"]


def clip_answers(predictor, videos: Path) -> pd.DataFrame:
    """The served answer on every answered frame of the synthetic clips (``clips.csv``): clip, label, t,
    p_pain and state: "pain" inside a pain clip's planted segment, "calm" anywhere else (no pain action unit
    drawn there, only the subject's resting face). Frames withheld or without the face are left out."""
    from engine.timeline import analyse_video

    clips = pd.read_csv(videos / "clips.csv")
    rows = []
    for clip in clips.itertuples():
        analysis = analyse_video(predictor, (videos / clip.clip).read_bytes(), keep_pictures=False)
        for frame in analysis.frames:
            if frame.p_pain is None:
                continue
            inside = clip.label == "pain" and clip.pain_start_s <= frame.t < clip.pain_end_s
            rows.append((clip.clip, clip.label, round(frame.t, 3), frame.p_pain, "pain" if inside else "calm",
                         clip.pain_start_s if clip.label == "pain" else math.nan,
                         clip.pain_end_s if clip.label == "pain" else math.nan))
    return pd.DataFrame(rows, columns=["clip", "label", "t", "p_pain", "state", "pain_start_s", "pain_end_s"])


def retest_pairs(frames: pd.DataFrame) -> pd.DataFrame:
    """Pairs of the served answer on frames ``RETEST_SECONDS`` apart within one state of one clip (of
    ``clip_answers``: a calm clip, or inside a pain clip's planted segment): clip, segment, first, second."""
    rows = []
    for clip, own in frames.groupby("clip", sort=False):
        answered = dict(zip(own["t"], own["p_pain"]))
        for t, p in answered.items():
            later = answered.get(round(t + RETEST_SECONDS, 3))
            if later is None:
                continue
            first = own[own["t"] == t].iloc[0]
            if first["label"] != "pain":
                rows.append((clip, "calm", p, later))
            elif first["pain_start_s"] <= t and t + RETEST_SECONDS < first["pain_end_s"]:  # the end: no pain drawn
                rows.append((clip, "pain", p, later))
    return pd.DataFrame(rows, columns=RETEST_COLUMNS)


def clip_state_rows(frames: pd.DataFrame, seed: int = 0) -> list[dict]:
    """How often the served answer called a clip's answered frames pain (p(pain) >= 0.5), in calm stretches
    (``clip_calm_called_pain``: only the person's resting face is drawn there) and inside planted pain
    segments (``clip_pain_called_pain``), with a 95 % interval over clips. The calm figure is how often a
    person's own resting face, atypical in CP, is read as pain when no calm reference is given."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, 11]))
    rows = []
    for state in ("calm", "pain"):
        own = frames[frames["state"] == state]
        called = {clip: (group["p_pain"].to_numpy() >= THRESHOLD) for clip, group in own.groupby("clip")}
        clips = list(called)
        value = float(np.mean(np.concatenate(list(called.values())))) if clips else math.nan
        low = high = math.nan
        if len(clips) >= 2:
            resampled = [np.mean(np.concatenate([called[clips[i]] for i in rng.integers(0, len(clips), len(clips))]))
                         for _ in range(RESAMPLES)]
            low, high = np.quantile(resampled, [(1 - CONFIDENCE) / 2, (1 + CONFIDENCE) / 2])
        rows.append({"metric": f"clip_{state}_called_pain", "value": value, "low": float(low), "high": float(high),
                     "n_images": int(len(own)), "n_subjects": int(len(clips)),
                     "computed_on": f"answered frames of the synthetic clips, {state} "
                                    f"{'stretches (only the resting face drawn)' if state == 'calm' else 'segments'}"})
    return rows


def retest_rows(pairs: pd.DataFrame, seed: int = 0) -> list[dict]:
    """The answer's test-retest ICC (two-way, absolute agreement, single measurement: ICC(A,1)) per state,
    with a 95 % interval over clips (clips resampled with replacement)."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, 7]))
    rows = []
    for segment in ("calm", "pain"):
        own = pairs[pairs["segment"] == segment]
        clips = own["clip"].unique()
        value = _icc(own)
        resampled = [_icc(pd.concat([own[own["clip"] == c] for c in rng.choice(clips, len(clips))]))
                     for _ in range(RESAMPLES // 5)] if len(clips) >= 2 else []
        finite = np.asarray([v for v in resampled if np.isfinite(v)])
        low, high = np.quantile(finite, [0.025, 0.975]) if len(finite) >= len(resampled) // 2 and len(finite) else (math.nan, math.nan)
        rows.append({"metric": f"test_retest_icc_{segment}", "value": value, "low": float(low), "high": float(high),
                     "n_images": int(2 * len(own)), "n_subjects": int(len(clips)),
                     "computed_on": f"pairs of answered frames {RETEST_SECONDS:g} s apart, {segment} state, synthetic clips"})
    return rows


def _icc(pairs: pd.DataFrame) -> float:
    """ICC(A,1) of the pairs (targets: pairs; raters: first and second frame); NaN for fewer than 3 pairs."""
    if len(pairs) < 3:
        return math.nan
    values = pairs[["first", "second"]].to_numpy(dtype=float)
    n, k = values.shape
    grand = values.mean()
    rows_ms = k * ((values.mean(axis=1) - grand) ** 2).sum() / (n - 1)
    cols_ms = n * ((values.mean(axis=0) - grand) ** 2).sum() / (k - 1)
    error_ms = (((values - values.mean(axis=1, keepdims=True) - values.mean(axis=0, keepdims=True) + grand) ** 2).sum()
                / ((n - 1) * (k - 1)))
    denominator = rows_ms + (k - 1) * error_ms + k * (cols_ms - error_ms) / n
    return float((rows_ms - error_ms) / denominator) if denominator > 0 else math.nan
