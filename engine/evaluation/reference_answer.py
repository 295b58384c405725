"""The answer with the person's calm reference: a served answer of its own, fitted on development data only.

A photo alone cannot tell an atypical resting face (a lowered brow, a raised lip held at rest, common in
adults with cerebral palsy) from pain. When a clinician gives the person's calm photo or clip
(``engine.person_baseline``), the served number is this answer instead of the photo-alone one:

- **Its inputs**: ``z`` = logit of the served answer before abstention (the networks' mean combined with the
  face's PSPI, ``engine.evaluation.answer``), ``change`` = z minus the calm reference's z, ``pspi_change`` =
  the face's PSPI minus the calm reference's.
- **Its rule**: a logistic regression on one of ``CANDIDATES`` (sets of those inputs), the one with the lowest
  log-loss on held-out development subjects (GroupKFold over subjects, refitted without each fold); "absolute"
  (z alone) is among them, so the reference is used only as far as it helps there.
- **Its development data**: PAIN-DB's subject-wise held-out faces (each predicted by the fold models, and the
  AU estimator, that never saw its subject), each face's reference its own subject's calm frames from *other*
  sequences that pass the out-of-distribution check (as a calm photo unlike the training faces gives no
  reference): never the face itself or its own sequence.
- **Its abstention**: the same out-of-distribution check of the face, and its own class-conditional
  (Mondrian) conformal thresholds at the config's level, fitted on those faces' with-reference answer.

CP-PAIN is never read here; ``engine.evaluation.answer_evaluation`` evaluates this answer on it, each face with
its person's calm frames of other videos.
"""

from __future__ import annotations

import math

import numpy as np

from engine.evaluation.baseline import calm_reference, logit, sigmoid

CANDIDATES = {  # the inputs of each candidate rule; the development data choose one
    "absolute": ("z",),
    "change": ("change",),
    "change_and_absolute": ("change", "z"),
    "change_and_pspi_change": ("change", "pspi_change"),
    "change_absolute_and_pspi_change": ("change", "z", "pspi_change"),
}
FOLDS = 5
REFERENCE = ("the same subject's calm frames from other sequences that pass the out-of-distribution check (never the "
             "face itself or its own sequence)")


def reference_inputs(z, pspi, z_reference, pspi_reference) -> dict[str, np.ndarray]:
    """The candidate rules' inputs for faces with their references (all arrays; NaN propagates)."""
    z, pspi = np.asarray(z, dtype=float), np.asarray(pspi, dtype=float)
    return {"z": z, "change": z - np.asarray(z_reference, dtype=float),
            "pspi_change": pspi - np.asarray(pspi_reference, dtype=float)}


def needs(rule: dict) -> set[str]:
    """What a fitted rule needs of a face and its reference: "pspi" when it was fitted on the answer with the
    face's PSPI or uses the PSPI change."""
    out = set()
    if rule.get("with_pspi") or "pspi_change" in rule.get("inputs", ()):
        out.add("pspi")
    return out


def reference_p(p_served, pspi, p_reference, pspi_reference, rule: dict) -> np.ndarray:
    """The with-reference answer before abstention (NaN where an input the rule needs is missing)."""
    inputs = reference_inputs(logit(p_served), pspi, logit(p_reference), pspi_reference)
    z = float(rule["intercept"]) + sum(float(w) * inputs[name] for name, w in zip(rule["inputs"], rule["weights"]))
    out = sigmoid(z)
    if "pspi" in needs(rule):
        out = np.where(np.isfinite(np.asarray(pspi, dtype=float)) & np.isfinite(np.asarray(pspi_reference, dtype=float)),
                       out, np.nan)
    return np.where(np.isfinite(np.asarray(p_reference, dtype=float)), out, np.nan)


def is_served(rule: dict | None) -> bool:
    return bool(rule) and bool(rule.get("used"))


def fit_reference_answer(p, y, subjects, sequences, pspi, inside, with_pspi: bool, level: float,
                         class_thresholds) -> dict:
    """The rule and its conformal thresholds (plain JSON) from the development faces: the served answer ``p``
    before abstention, labels ``y``, ``subjects``, ``sequences`` (``engine.evaluation.baseline.sequence_keys``),
    the faces' ``pspi`` (NaN: not measured), ``inside`` (passes the out-of-distribution check) and
    ``with_pspi`` (the served answer combines the PSPI: only faces with one are then answered by the rule);
    ``class_thresholds``: the answer's Mondrian conformal thresholds (``answer_fit._class_thresholds``)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GroupKFold

    from engine.evaluation.calibration import nll

    p, y, pspi = np.asarray(p, dtype=float), np.asarray(y, dtype=int), np.asarray(pspi, dtype=float)
    subjects, inside = np.asarray(subjects).astype(str), np.asarray(inside, dtype=bool)
    measured = np.isfinite(pspi) if with_pspi else np.ones(len(p), dtype=bool)
    z = logit(p)
    calm = np.where(inside & measured, y, -1)  # reference frames: calm, in distribution, measured like a served face
    z_reference, count = calm_reference(subjects, sequences, calm, z)
    pspi_reference, _ = calm_reference(subjects, sequences, calm, np.nan_to_num(pspi))
    inputs = reference_inputs(z, pspi, z_reference, np.where(count > 0, pspi_reference, np.nan))
    has = np.isfinite(z_reference) & measured
    out = {"used": False, "with_pspi": bool(with_pspi), "reference": REFERENCE, "level": level,
           "fitted_on": "PAIN-DB's subject-wise held-out faces with a calm reference: the answer before abstention by the "
                        "fold models (and AU estimator) that never saw the subject",
           "images": int(has.sum()), "subjects": int(len(np.unique(subjects[has])))}
    folds = min(FOLDS, out["subjects"])
    candidates = {name: c for name, c in CANDIDATES.items() if with_pspi or "pspi_change" not in c}
    if folds < 2 or len(np.unique(y[has])) < 2:
        out["reason"] = "too few development faces with a calm reference to fit the answer with a reference"
        return out
    target, groups = y[has], subjects[has]
    losses = {}
    for name, names in candidates.items():
        x = np.column_stack([inputs[n][has] for n in names])
        held_out = np.full(len(target), np.nan)
        for train, test in GroupKFold(n_splits=folds).split(x, target, groups):
            if len(np.unique(target[train])) == 2:
                fitted = LogisticRegression(solver="newton-cholesky").fit(x[train], target[train])  # small: Newton is quick
                held_out[test] = fitted.predict_proba(x[test])[:, 1]
        losses[name] = float(nll(held_out, target)) if np.isfinite(held_out).all() else math.inf
    chosen = min(losses, key=lambda name: (losses[name], len(candidates[name])))
    names = candidates[chosen]
    model = LogisticRegression(solver="newton-cholesky").fit(np.column_stack([inputs[n][has] for n in names]), target)
    out.update({"used": True, "rule_name": chosen, "inputs": list(names), "weights": [float(w) for w in model.coef_[0]],
                "intercept": float(model.intercept_[0]),
                "cv_logloss": {name: (None if not math.isfinite(v) else v) for name, v in losses.items()},
                "cv_logloss_without_reference": float(nll(p[has], target)),
                "reason": f"lowest log-loss on held-out development subjects ({losses[chosen]:.3f}) of the candidate rules"})
    served = np.full(len(p), np.nan)
    served[has] = sigmoid(model.decision_function(np.column_stack([inputs[n][has] for n in names])))
    rows = has & inside
    out["conformal"] = {"level": level, **class_thresholds(served, y, rows, level),
                        "fitted_on": "the development faces with a calm reference that pass the out-of-distribution "
                                     "check, their with-reference answer"}
    from engine.evaluation.answer import prediction_sets

    pain, no_pain = prediction_sets(served, out["conformal"])
    answered = rows & (pain != no_pain)
    out["conformal"]["development_answered"] = float(np.mean(answered[has]))  # in-sample, of the faces with a reference
    return out


def rule_sentence(rule: dict | None) -> str:
    """The with-reference answer's rule in one sentence (the model card, the record)."""
    if not is_served(rule):
        return ("No answer with a calm reference: " + ((rule or {}).get("reason") or "not fitted (run `painlens run` again)")
                + ".")
    terms = " ".join(f"{'-' if w < 0 else '+'} {abs(w):.2f} x {_LABELS[n]}" for n, w in zip(rule["inputs"], rule["weights"]))
    conformal = rule.get("conformal", {})
    return (f"With a calm reference of the person the number is p(pain) = sigmoid({terms.lstrip('+ ')} "
            f"{'-' if rule['intercept'] < 0 else '+'} {abs(rule['intercept']):.2f}) (rule '{rule['rule_name']}', "
            f"{rule['reason']}: {rule['cv_logloss'][rule['rule_name']]:.3f} against "
            f"{rule['cv_logloss_without_reference']:.3f} for the answer without the reference on the same faces, fitted on "
            f"them), fitted on {rule['images']} {rule.get('faces', 'PAIN-DB held-out faces')} of {rule['subjects']} "
            f"subjects, each against {rule['reference']}; "
            f"its own conformal thresholds at {conformal.get('level', 0.9):.0%} and the same out-of-distribution check.")


_LABELS = {"z": "logit p(face)", "change": "(logit p(face) - logit p(calm face))",
           "pspi_change": "(PSPI(face) - PSPI(calm face))"}
