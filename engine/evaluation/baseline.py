"""The person's baseline: judge a face against the same person's calm face (person-specific normalisation,
Baltrušaitis et al. 2015).

Adults with cerebral palsy often hold an atypical face at rest (a lowered brow, a raised lip, an open mouth):
a network trained on typical faces can read that as pain in every frame. Comparing a face with the same
person's calm face removes what the person always shows.

What is compared. A network's p(pain) is a softmax over a linear read-out of its penultimate features, so
logit p = w · f + c. Subtracting the calm face's features before that read-out is subtracting its logit:
``change = logit p(face) - logit p(calm face)`` is the network's own judgement of the feature difference. With
several calm frames, their logits are averaged (the read-out of their mean features).

The rule (``fit_baseline_rule``), fitted on development data only (PAIN-DB's subject-wise out-of-fold faces,
each subject's reference its own calm frames, ``calm_reference``; CP-PAIN is never read for it):
- ``p_change = sigmoid(slope * change + intercept)``: how likely pain is given the change from the person's
  calm face (logistic regression of the label on the change);
- which number leads: the change when the person's calm face itself reads as pain more than
  ``LEAD_QUANTILE`` of the development subjects' calm faces do (above ``rest_threshold``): the absolute
  number would mostly measure the resting face then. Otherwise the absolute p(pain) leads (the networks were
  trained and calibrated for it) and the change is shown beside it.

Leave-one-sequence-out: a face's reference is the same person's calm frames from *other* sequences (videos),
never the face itself or its near-duplicate neighbours; a face without such frames has no reference.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

LEAD_QUANTILE = 0.9  # a calm face reading as pain more than 9 in 10 development calm faces is atypical
_EPS = 1e-4


def logit(p) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=float), _EPS, 1 - _EPS)
    return np.log(p / (1 - p))


def sigmoid(z) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.asarray(z, dtype=float)))


def calm_reference(subjects, sequences, labels, z) -> tuple[np.ndarray, np.ndarray]:
    """Per face: (mean logit of the same subject's calm frames from other sequences, how many there were);
    NaN and 0 where there are none. ``labels`` 0 marks a calm frame; ``sequences`` name the sequence or video
    (give the image id where there is none: then only the face itself is left out)."""
    frame = pd.DataFrame({"subject": np.asarray(subjects).astype(str), "sequence": np.asarray(sequences).astype(str),
                          "calm": np.asarray(labels, dtype=int) == 0, "z": np.asarray(z, dtype=float)})
    frame["calm_z"] = np.where(frame["calm"], frame["z"], 0.0)
    by_subject = frame.groupby("subject")[["calm_z", "calm"]].transform("sum")
    by_sequence = frame.groupby(["subject", "sequence"])[["calm_z", "calm"]].transform("sum")
    count = (by_subject["calm"] - by_sequence["calm"]).to_numpy(dtype=float)
    total = (by_subject["calm_z"] - by_sequence["calm_z"]).to_numpy(dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        reference = np.where(count > 0, total / np.maximum(count, 1), np.nan)
    return reference, count.astype(int)


def sequence_keys(table: pd.DataFrame) -> np.ndarray:
    """The sequence (video) of each face for ``calm_reference``; the image id where a dataset has none
    (Delaware's photos)."""
    sequence = table["sequence"].astype(str) if "sequence" in table else pd.Series([""] * len(table), index=table.index)
    missing = sequence.isin(["", "nan", "None"])
    return np.where(missing, table["image_id"].astype(str), table["dataset"].astype(str) + "/" + sequence)


def fit_baseline_rule(p, labels, subjects, sequences) -> dict:
    """The rule (plain JSON) from development faces: their p(pain), labels, subjects and sequences."""
    return fit_change_rule(logit(p), labels, subjects, sequences)


def fit_change_rule(z, labels, subjects, sequences) -> dict:
    """``fit_baseline_rule`` for any score that rises with pain (a logit, or an estimated PSPI): the change is
    ``z`` minus the person's calm reference; ``rest_threshold`` is the calm faces' quantile of ``sigmoid(z)``
    (meaningful for a logit)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score

    z, y = np.asarray(z, dtype=float), np.asarray(labels, dtype=int)
    reference, count = calm_reference(subjects, sequences, y, z)
    has = np.isfinite(reference)
    calm_z = z[y == 0]
    rule = {"method": "logit change from the person's calm frames (other sequences), logistic regression",
            "fitted_on": "PAIN-DB subject-wise out-of-fold faces, each subject's reference its own calm frames",
            "images": int(has.sum()), "subjects": int(pd.Series(np.asarray(subjects)[has]).nunique()),
            "lead_quantile": LEAD_QUANTILE,
            "rest_threshold": float(sigmoid(np.quantile(calm_z, LEAD_QUANTILE))) if len(calm_z) else None}
    change = z[has] - reference[has]
    if has.sum() < 4 or len(np.unique(y[has])) < 2:
        return {**rule, "slope": None, "intercept": None, "auc_absolute": None, "auc_change": None,
                "reason": "too few development faces with a calm reference to fit the rule"}
    model = LogisticRegression(C=1e4).fit(change[:, None], y[has])
    return {**rule, "slope": float(model.coef_[0, 0]), "intercept": float(model.intercept_[0]),
            "auc_absolute": float(roc_auc_score(y[has], z[has])), "auc_change": float(roc_auc_score(y[has], change)),
            "reason": ""}


def is_fitted(rule: dict | None) -> bool:
    return bool(rule) and rule.get("slope") is not None and rule.get("intercept") is not None


def change_probability(p, p_reference, rule: dict) -> np.ndarray:
    """p(pain) given the change from the person's calm face; NaN where there is no reference."""
    change = logit(p) - logit(p_reference)
    return sigmoid(float(rule["slope"]) * change + float(rule["intercept"]))


def with_baseline(p, z_reference, rule: dict) -> np.ndarray:
    """The "+ baseline" score of many faces: ``change_probability`` where a face has a reference (its mean calm
    logit ``z_reference``), its absolute p(pain) where it has none (what the served answer does without one)."""
    p = np.asarray(p, dtype=float)
    z_reference = np.asarray(z_reference, dtype=float)
    has = np.isfinite(z_reference)
    out = p.copy()
    out[has] = change_probability(p[has], sigmoid(z_reference[has]), rule)
    return out


def lead(p_reference: float, rule: dict) -> tuple[str, str]:
    """("change" or "absolute", why in a sentence) for a person whose calm face reads ``p_reference``."""
    threshold = rule.get("rest_threshold")
    share = f"{rule.get('lead_quantile', LEAD_QUANTILE):.0%}"
    if threshold is not None and math.isfinite(p_reference) and p_reference > threshold:
        return "change", (f"This person's calm face already reads p(pain) {p_reference:.2f}, above {share} of the "
                          f"development subjects' calm faces ({threshold:.2f}): the absolute number would mostly "
                          "measure their resting face, so the change from it leads.")
    return "absolute", (f"This person's calm face reads p(pain) {p_reference:.2f}, within what {share} of the development "
                        "subjects' calm faces read: the absolute number (what the networks were trained and calibrated "
                        "for) leads, the change from the calm face is shown beside it.")
