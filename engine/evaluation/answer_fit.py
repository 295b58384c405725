"""The served answer's parameters (``answer.json``), fitted on development data only.

Development data: PAIN-DB's subject-wise out-of-fold faces. Each subject-wise run (``DEVELOPMENT_SCENARIO``)
predicted the faces of subjects its fold model never saw and wrote the penultimate features of its training
and held-out faces (``engine.training.executor``). From those alone, per network: whether the answer uses it
(it learned there, by the subject-wise verdict of ``engine.evaluation.results``, and its fold models were
kept), its calibration (temperature or Platt, by log-loss on held-out subjects) and the scale of its
out-of-distribution distances; then, over the networks used, the out-of-distribution threshold, the
combination of the networks' mean with the action-unit estimator's PSPI (``stack``: a logistic rule, used
only when it lowers the log-loss on held-out subjects) and the class-conditional conformal thresholds of the
answer so made; and the second check of "unlike the training faces", on the face crops' pixels rather than the
networks' features (``engine.evaluation.appearance``: a PCA per subject-wise fold on its training faces, the
threshold on the held-out faces; its arrays written through the store beside ``answer.json``). The development PSPI is held out too: UNBC's frames by the estimator's subject-wise folds,
PAIN-DB's other faces by the estimator fitted on UNBC, which never saw those people
(``engine.evaluation.action_units``). CP-PAIN's images and labels are never read here: it stays the test
(``engine.evaluation.answer_evaluation``).

With ``[evaluation] serve_cp_adapt`` (research, off by default) the development data are cp_adapt's
leave-one-CP-subject-out runs instead (``engine.evaluation.adapted_answer``), and CP-PAIN is no sealed test.

``refresh_answer`` refits only when the subject-wise runs, the settings or this module's version changed.
"""

from __future__ import annotations

import hashlib
import json
import math

import numpy as np
import pandas as pd

from engine.artifacts import ExperimentStore, RunKey
from engine.evaluation.adapted_answer import VERSION as ADAPTED_VERSION, adapted_development, adapted_parameters, adapted_pspi
from engine.evaluation.answer import (DEVELOPMENT_SCENARIO, RULE, logit, neighbour_distance, prediction_sets, stacked_p,
                                      unit_rows)
from engine.evaluation.calibration import apply_calibrator, choose_calibrator, nll

# v2: the person's baseline rule (``baseline``); v3: the development faces answered; v4: the networks' mean
# combined with the AU estimator's PSPI (``stack``), the conformal thresholds without PSPI beside; v5: the answer
# with the person's calm reference (``baseline.answer``, ``engine.evaluation.reference_answer``); v6: the appearance
# check (``appearance``, engine.evaluation.appearance); v7: its texture cue beside the PCA, both thresholds together
VERSION = "answer-v7"
DEVELOPMENT_PSPI_SETS = ("unbc_out_of_fold", "paindb_unseen")  # action_unit_frames' held-out development estimates
STACK_FOLDS = 5
DEVELOPMENT_DATA = ("PAIN-DB, subject-wise out of fold: every face predicted by the fold model that never saw its "
                    "subject")
SERVED_MODELS = ("Each network used is served as the ensemble of its subject-wise fold models (the models whose held-out "
                 "predictions fitted its calibration, as scikit-learn's CalibratedClassifierCV(ensemble=True)); each fold "
                 "model's p(pain) is calibrated, then averaged.")


def refresh_answer(store: ExperimentStore, settings) -> dict:
    """``answer.json`` as the subject-wise runs are now: the stored one when its digest still matches, else
    refitted and written. ``settings``: the config's [evaluation] section."""
    digest = development_digest(store, settings)
    stored = store.answer()
    if stored and stored.get("digest") == digest:
        return stored
    parameters = fit_answer(store, settings)
    parameters["digest"] = digest
    store.write_answer(parameters)
    return parameters


def development_digest(store: ExperimentStore, settings) -> str:
    """What the parameters depend on: this module's version, the settings, and the finished runs (all of them:
    the learned verdicts compare the networks of a scenario with each other)."""
    parts = [VERSION, json.dumps([settings.ood_pass, settings.ood_neighbours, settings.conformal_level,
                                  settings.bootstrap_resamples]), repr(store.runs_version()),
             store.action_units_fingerprint()]  # the development PSPI
    if settings.serve_cp_adapt:  # off: the digest as before the switch existed
        parts += ["serve_cp_adapt", ADAPTED_VERSION, repr(store.served_adaptations_version())]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


def fit_answer(store: ExperimentStore, settings) -> dict:
    """The parameters (plain JSON) from the development data of ``store``; see the module docstring."""
    from engine.evaluation.results import current_results

    _, summary = current_results(store)
    verdicts = _verdicts(summary)
    # serve_cp_adapt (research): the CP-adapted models, developed on cp_adapt's leave-one-subject-out runs
    development = adapted_development(store) if settings.serve_cp_adapt else _development(store)
    networks, used = {}, []
    for name in sorted(set(verdicts) | set(development), key=_order(store)):
        item, verdict = {"used": False, "members": []}, verdicts.get(name, {})
        item.update({k: verdict.get(k) for k in ("auc", "auc_low", "auc_high")})
        data = development.get(name)
        if data is None:
            item["reason"] = "no subject-wise held-out predictions with kept fold models (it cannot be developed)"
        elif not verdict.get("learned"):
            item["reason"] = f"did not learn on PAIN-DB's subject-wise held-out faces: {verdict.get('learned_reason') or 'no verdict'}"
        else:
            item.update(_fit_network(data, settings.ood_neighbours))
            item["used"], item["reason"] = True, "learned on PAIN-DB's subject-wise held-out faces"
            used.append(name)
        if data is not None:
            item["oof_images"] = int(len(data["table"]))
        networks[name] = item
    parameters = {"version": VERSION, "rule": RULE, "development_data": DEVELOPMENT_DATA, "served_models": SERVED_MODELS,
                  "scenario": DEVELOPMENT_SCENARIO, "test": "CP-PAIN (the external scenario): never read for these "
                  "parameters, only to evaluate them", "networks": networks, "used": used}
    if used:
        pspi = adapted_pspi(store) if settings.serve_cp_adapt else development_pspi(store)  # the faces' own
        if settings.serve_cp_adapt:
            parameters["appearance"], looks_like = {"used": False, "reason": (
                "not fitted for the CP-adapted models (research switch serve_cp_adapt): the networks' features alone "
                "check the face")}, None
        else:  # first: the thresholds below are fitted on the faces that pass both checks, as the answer serves them
            parameters["appearance"], looks_like = _fit_appearance(store, used[0], networks[used[0]]["members"],
                                                                   settings.ood_pass)
        parameters.update(_fit_thresholds({n: development[n] for n in used}, networks, settings, store.samples(), pspi,
                                          looks_like))
    if settings.serve_cp_adapt:
        parameters.update(adapted_parameters(store, parameters, development))
    return parameters


def _fit_appearance(store: ExperimentStore, network: str, folds: list[int],
                    pass_share: float) -> tuple[dict, pd.Series | None]:
    """The appearance check (``engine.evaluation.appearance``) on the subject-wise folds of ``network`` (every
    network's development runs share the folds), its arrays written through the store, and whether each held-out
    face passes it (by image_id); ``used`` False with the reason (and None) when the folds' splits or the face
    crops cannot be read (then only the feature check runs)."""
    from engine.errors import PainLensError
    from engine.evaluation.appearance import fit_appearance

    splits = {fold: store.split(RunKey(network, DEVELOPMENT_SCENARIO, fold)) for fold in folds}
    samples = store.samples()
    if samples is None or not all({"train_image_ids", "test_image_ids"} <= set(split) for split in splits.values()):
        return {"used": False, "reason": "the subject-wise folds' splits are not stored, so the appearance check "
                                         "could not be fitted: the networks' features alone check the face"}, None
    paindb = samples[(samples["dataset"] != "cppain") & (samples.get("status", "ok") == "ok")]
    try:
        parameters, arrays, distances = fit_appearance(paindb, {fold: (split["train_image_ids"], split["test_image_ids"])
                                                        for fold, split in splits.items()}, pass_share)
    except (PainLensError, KeyError, OSError) as exc:  # a face cache gone, a split naming faces not in the samples
        why = str(exc) if isinstance(exc, PainLensError) else "a split names faces the samples table lacks"  # no ids
        return {"used": False, "reason": f"the development faces' crops could not be read ({why}), so the appearance "
                                         "check could not be fitted: the networks' features alone check the face"}, None
    store.write_answer_appearance(arrays)
    return parameters, distances <= parameters["threshold"]


def _order(store: ExperimentStore):
    order, _ = store.plan()
    return lambda name: (order.index(name) if name in order else len(order), name)


def _verdicts(summary: pd.DataFrame) -> dict[str, dict]:
    """Per network, its subject-wise verdict row (AUC, interval, learned, reason), from the current summary."""
    if summary is None or summary.empty or "scenario" not in summary:
        return {}
    rows = summary[(summary["scenario"] == DEVELOPMENT_SCENARIO) & (summary.get("class", "macro") == "macro")]
    out = {}
    for row in rows.to_dict("records"):
        out[row["model"]] = {"auc": _plain(row.get("auc")), "auc_low": _plain(row.get("auc_low")),
                             "auc_high": _plain(row.get("auc_high")), "learned": bool(row.get("learned")),
                             "learned_reason": str(row.get("learned_reason") or "")}
    return out


def _development(store: ExperimentStore) -> dict[str, dict]:
    """Per network whose every subject-wise fold has its kept model and features: the held-out table (image_id,
    subject, true_label, p_pain, fold, distance to that fold's training faces is added later) and per fold
    the unit-length training and held-out features."""
    found: dict[str, list[RunKey]] = {}
    for key in store.finished_runs(DEVELOPMENT_SCENARIO):
        found.setdefault(key.model, []).append(key)
    out = {}
    for name, keys in found.items():
        tables, folds = [], {}
        for key in sorted(keys):
            arrays, predictions = store.features(key), store.predictions(key)
            if arrays is None or predictions is None or not store.kept_model_path(key).exists() \
                    or len(arrays["test"]) != len(predictions):
                break
            tables.append(predictions[["image_id", "subject", "dataset", "true_label", "p_pain"]].assign(fold=key.fold))
            folds[key.fold] = {"train": unit_rows(arrays["train"]), "test": unit_rows(arrays["test"])}
        else:
            if tables:
                out[name] = {"table": pd.concat(tables, ignore_index=True), "folds": folds}
    return out


def _fit_network(data: dict, neighbours: int) -> dict:
    """One used network: its calibration (chosen on held-out subjects), and its out-of-distribution scale."""
    table = data["table"]
    groups = (table["dataset"].astype(str) + "/" + table["subject"].astype(str)).to_numpy()
    calibrator, losses = choose_calibrator(table["p_pain"].to_numpy(), table["true_label"].to_numpy(), groups)
    distances = np.concatenate([neighbour_distance(data["folds"][fold]["test"], data["folds"][fold]["train"], neighbours)
                                for fold in sorted(data["folds"])])
    table["distance"] = distances  # in fold order, as the table was stacked
    return {"members": sorted(int(f) for f in data["folds"]), "calibration": calibrator,
            "calibration_cv_logloss": {m: _plain(v) for m, v in losses.items()},
            "ood_scale": float(np.median(distances))}


def development_pspi(store: ExperimentStore) -> pd.Series | None:
    """The AU estimator's PSPI of PAIN-DB's faces, each by an estimator that never saw its subject (by
    image_id); None when the experiment has no estimator."""
    frames = store.table("action_unit_frames")
    if frames is None or not {"set", "image_id", "PSPI"} <= set(frames):
        return None
    held_out = frames[frames["set"].isin(DEVELOPMENT_PSPI_SETS)]
    return held_out.set_index("image_id")["PSPI"].astype(float) if len(held_out) else None


def _fit_thresholds(development: dict[str, dict], networks: dict, settings, samples: pd.DataFrame | None = None,
                    pspi: pd.Series | None = None, looks_like: pd.Series | None = None) -> dict:
    """The out-of-distribution threshold, the PSPI combination (``_fit_stack``) and the conformal thresholds of
    the answer, from the held-out faces that every used network predicted (each by the fold model that never
    saw its subject), and the person's baseline rule on their answer (``engine.evaluation.baseline``; needs the
    samples' sequences). ``looks_like``: whether each face (by image_id) passes the appearance check (None: no
    such check); the thresholds after the out-of-distribution one are fitted on the faces that pass both."""
    per_network = []
    for name, data in development.items():
        table = data["table"]
        calibrated = apply_calibrator(table["p_pain"].to_numpy(dtype=float), networks[name]["calibration"])
        per_network.append(pd.DataFrame({"image_id": table["image_id"], "true_label": table["true_label"],
                                         "subject": table["dataset"].astype(str) + "/" + table["subject"].astype(str),
                                         f"p:{name}": calibrated,
                                         f"d:{name}": table["distance"] / networks[name]["ood_scale"]}))
    joined = per_network[0]
    for other in per_network[1:]:
        joined = joined.merge(other.drop(columns=["true_label", "subject"]), on="image_id")
    networks_p = joined[[c for c in joined if c.startswith("p:")]].mean(axis=1).to_numpy()
    score = joined[[c for c in joined if c.startswith("d:")]].mean(axis=1).to_numpy()
    threshold = float(np.quantile(score, settings.ood_pass))
    inside = score <= threshold
    if looks_like is not None:  # a face the appearance check sets aside gets no number either
        inside &= looks_like.reindex(joined["image_id"]).fillna(True).to_numpy(dtype=bool)
    y = joined["true_label"].to_numpy(dtype=int)
    face_pspi = (pspi.reindex(joined["image_id"]).to_numpy(dtype=float) if pspi is not None
                 else np.full(len(joined), np.nan))
    stack = _fit_stack(networks_p, face_pspi, y, joined["subject"].to_numpy())
    has = np.isfinite(face_pspi)
    p = np.where(has, stacked_p(networks_p, face_pspi, stack), networks_p) if stack["used"] else networks_p
    fitted = inside & has if stack["used"] else inside  # the stacked answer's thresholds: faces with a PSPI
    conformal = {"level": settings.conformal_level, **_class_thresholds(p, y, fitted, settings.conformal_level),
                 "fitted_on": "the held-out faces that pass the out-of-distribution check, their answer as served "
                              "(each face by the fold models, and the AU estimator, that never saw its subject)"}
    if stack["used"]:  # a face whose action units cannot be measured is answered by the networks alone
        conformal["without_pspi"] = _class_thresholds(networks_p, y, inside, settings.conformal_level)
    pain_in, no_pain_in = prediction_sets(p, conformal)
    # In-sample (the thresholds were fitted on these faces): what a user should expect, not a test figure.
    conformal["development_answered"] = float(np.mean(inside & (pain_in != no_pain_in)))
    ood = {"neighbours": settings.ood_neighbours, "pass_share": settings.ood_pass, "threshold": threshold,
           "images": int(len(score)), "subjects": int(joined["subject"].nunique()),
           "pass_both": float(np.mean(inside)),  # the development faces like the training faces by both checks
           "score": "mean over the networks used of each one's mean distance to its k nearest training faces in its "
                    "penultimate features (unit length), over that network's median held-out distance; ood_score is "
                    "this over the threshold (above 1: unlike the training faces)"}
    baseline = _fit_baseline(joined.assign(p=p, pspi=face_pspi, inside=inside), samples, stack["used"],
                             settings.conformal_level)
    return {"ood": ood, "stack": stack, "conformal": conformal, "baseline": baseline,
            "development": {"images": int(len(joined)), "subjects": int(joined["subject"].nunique()),
                            "pain_images": int(y.sum())}}


def _fit_baseline(joined: pd.DataFrame, samples: pd.DataFrame | None, with_pspi: bool = False,
                  level: float = 0.9) -> dict:
    """The baseline rule on the answer's calibrated p(pain) of the development faces, each subject's reference
    its own calm frames from other sequences; ``answer``: the served answer with a calm reference
    (``engine.evaluation.reference_answer``)."""
    from engine.evaluation.baseline import fit_baseline_rule, sequence_keys
    from engine.evaluation.reference_answer import fit_reference_answer

    if samples is None:
        return {"slope": None, "intercept": None, "reason": "no samples table to tell the calm frames' sequences"}
    columns = ["image_id", "dataset", *(["sequence"] if "sequence" in samples else [])]  # none: leave-one-image-out
    table = joined.merge(samples[columns], on="image_id", how="left")
    rule = fit_baseline_rule(table["p"].to_numpy(), table["true_label"].to_numpy(), table["subject"].to_numpy(),
                             sequence_keys(table))
    if "pspi" in table:
        rule["answer"] = fit_reference_answer(table["p"].to_numpy(), table["true_label"].to_numpy(),
                                              table["subject"].to_numpy(), sequence_keys(table), table["pspi"].to_numpy(),
                                              table["inside"].to_numpy(), with_pspi, level, _class_thresholds)
    return rule


def _fit_stack(networks_p: np.ndarray, pspi: np.ndarray, y: np.ndarray, subjects: np.ndarray) -> dict:
    """The answer as a logistic rule on (logit of the networks' mean calibrated p(pain), the face's PSPI),
    fitted on the development faces with a PSPI; used only when its log-loss on held-out subjects (GroupKFold,
    up to ``STACK_FOLDS`` folds, the rule refitted without each fold's subjects) is below the networks' mean
    alone (whose per-network calibration was fitted on all of them: the comparison favours the mean)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GroupKFold

    has = np.isfinite(pspi)
    out = {"used": False, "features": ["logit of the networks' mean calibrated p(pain)", "PSPI of the action-unit estimator"],
           "images": int(has.sum()), "subjects": int(len(np.unique(subjects[has]))),
           "fitted_on": "PAIN-DB's held-out faces with a PSPI: the networks' p(pain) by the fold models that never saw "
                        "the subject; PSPI by the AU estimator's subject-wise folds (UNBC) or by the estimator fitted on "
                        "UNBC, which never saw the other datasets' people",
           "rule": "p(pain) = sigmoid(networks x logit(mean p) + pspi x PSPI + intercept)"}
    folds = min(STACK_FOLDS, out["subjects"])
    if folds < 2 or len(np.unique(y[has])) < 2:
        out["reason"] = "no development PSPI (no action-unit estimator) or too few subjects: the networks' mean alone"
        return out
    x, target, groups = np.column_stack([logit(networks_p[has]), pspi[has]]), y[has], subjects[has]
    held_out = np.full(len(target), np.nan)
    for train, test in GroupKFold(n_splits=folds).split(x, target, groups):
        if len(np.unique(target[train])) == 2:
            held_out[test] = LogisticRegression().fit(x[train], target[train]).predict_proba(x[test])[:, 1]
    loss = {"networks": _plain(nll(networks_p[has], target)),
            "networks_and_pspi": _plain(nll(held_out, target)) if np.isfinite(held_out).all() else None}
    model = LogisticRegression().fit(x, target)
    out.update({"cv_logloss": loss, "networks": float(model.coef_[0, 0]), "pspi": float(model.coef_[0, 1]),
                "intercept": float(model.intercept_[0])})
    out["used"] = loss["networks_and_pspi"] is not None and loss["networks_and_pspi"] < loss["networks"]
    out["reason"] = (f"its log-loss on held-out subjects ({loss['networks_and_pspi']:.3f}) is below the networks' mean "
                     f"alone ({loss['networks']:.3f})" if out["used"] else
                     "it did not lower the log-loss on held-out subjects: the networks' mean alone")
    return out


def _class_thresholds(p: np.ndarray, y: np.ndarray, rows: np.ndarray, level: float) -> dict:
    """Mondrian conformal thresholds of the answer ``p`` on the ``rows`` faces, and how many faces each had."""
    return {"q_pain": _conformal_quantile(1.0 - p[rows & (y == 1)], level),
            "q_no_pain": _conformal_quantile(p[rows & (y == 0)], level),
            "images_pain": int((rows & (y == 1)).sum()), "images_no_pain": int((rows & (y == 0)).sum())}


def _conformal_quantile(nonconformity: np.ndarray, level: float) -> float | None:
    """The class's threshold: the ceil((n + 1) level)-th smallest nonconformity (None: too few faces, the
    class is always in the set)."""
    n = len(nonconformity)
    rank = math.ceil((n + 1) * level)
    if n == 0 or rank > n:
        return None
    return float(np.sort(nonconformity)[rank - 1])


def _plain(value):
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None
