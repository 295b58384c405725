"""One answer for a face, and when to withhold it: the single rule every place that sums the networks up follows.

The served answer (its parameters are ``answer.json``, fitted by ``engine.evaluation.answer_fit`` on
development data only: PAIN-DB's subject-wise out-of-fold faces; CP-PAIN is never read for them):

- **Which networks**: those that learned on the development data (their subject-wise out-of-fold ROC-AUC
  verdict, ``engine.evaluation.bootstrap``) and whose fold models were kept. Each is served as the
  ensemble of its subject-wise fold models (as scikit-learn's ``CalibratedClassifierCV(ensemble=True)``):
  the same models whose held-out predictions fitted everything below, so the calibration matches what
  is served.
- **Calibration**: per network, temperature or Platt scaling (slope and intercept), whichever had the
  lower log-loss on held-out subjects; applied to each fold model's p(pain), then averaged.
- **The number**: the mean over the networks used of their calibrated p(pain), combined with the face's PSPI
  from the action-unit estimator by a logistic rule (``stack``) when that rule lowered the log-loss on
  held-out development subjects (a face without a PSPI: the networks' mean alone, with its own conformal
  thresholds); its band runs from the lowest to the highest calibrated fold model, each put through the same
  rule.
- **Unlike the training faces**: each network measures how far the face's penultimate features lie from
  its fold models' training faces (mean distance to the nearest ``neighbours``, unit-length features),
  divided by that network's median held-out distance; ``ood_score`` is the mean over networks divided by
  the threshold that lets ``ood_pass`` of PAIN-DB's held-out faces through. Above 1: no number. A second check
  does not depend on the networks (their features can put very different faces close together): how the face crop
  looks, normalised for brightness and contrast, measured by a PCA of the training faces per subject-wise fold
  (``engine.evaluation.appearance``); ``appearance_score`` is its distance over the threshold that lets the same
  share of PAIN-DB's held-out faces through. Either score above 1: no number, and the sentence says which. An
  ``answer.json`` fitted before this check (no ``appearance``) keeps the feature check alone and says so.
- **Cannot decide**: class-conditional (Mondrian) conformal prediction at ``conformal_level``; when the
  prediction set holds both classes (or neither), the answer is "uncertain": no number.

Research only, off by default: ``[evaluation] serve_cp_adapt`` serves each used network as its external model
adapted on every CP-PAIN subject and refits all of the above on cp_adapt's leave-one-subject-out runs
(``engine.evaluation.adapted_answer``); CP-PAIN is then no sealed test, and ``answer.json`` says so.

When the answer withholds its number, ``p_pain`` is None, ``abstained`` True and ``abstain_reason`` says
why in a sentence. When there is no answer at all (no network learned, no parameters yet), ``reason`` says
why and ``abstained`` is False. Callers build an ``AnswerBasis`` once per experiment (``from_store``) and
call ``one_answer`` per face, or ``combine`` for many faces at once (the CP-PAIN evaluation).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Mapping

import numpy as np
import pandas as pd

from engine.artifacts import ExperimentStore, RunKey
from engine.evaluation.calibration import apply_calibrator, logit

DEVELOPMENT_SCENARIO = "subject"  # the development data: subject-wise out of fold, PAIN-DB only
SCENARIO = "external"  # the sealed test: CP-PAIN
RULE = ("Mean calibrated p(pain) of the networks that learned on PAIN-DB's subject-wise held-out faces, each served as "
        "the ensemble of its subject-wise fold models and calibrated on their held-out predictions, combined with the "
        "face's PSPI from the action-unit estimator by a logistic rule when that rule lowered the log-loss on held-out "
        "subjects; withheld for a face unlike the training faces (in the networks' features or in how the face looks) or "
        "when the answer cannot decide. CP-PAIN is only the "
        "test of this rule.")
NETWORK_COLUMNS = ["model", "p_raw", "p_calibrated", "calibrated", "auc", "auc_low", "auc_high", "learned",
                   "learned_reason", "used", "ood"]
NO_APPEARANCE = ("These parameters were fitted before the appearance check existed (`painlens run` refits them), so only "
                 "the networks' features check whether the face is like the training faces.")
NO_PARAMETERS = ("the answer's parameters are not fitted yet (`painlens run` fits them once the subject-wise runs "
                 "have finished)")


@dataclass(frozen=True)
class NetworkFacts:
    """What the rule knows about one network (from ``answer.json``)."""

    model: str
    learned: bool  # used by the answer (learned on the development data, fold models kept)
    learned_reason: str
    auc: float = math.nan  # subject-wise out-of-fold ROC-AUC and its interval over subjects
    auc_low: float = math.nan
    auc_high: float = math.nan
    calibrator: dict | None = None
    ood_scale: float = math.nan
    members: tuple[int, ...] = ()  # the subject-wise folds whose models serve it


@dataclass(frozen=True)
class AnswerBasis:
    """One experiment's answer parameters; ``networks`` by name, ``references`` the unit-length training
    features of each used network's fold models (in ``members`` order). ``missing``: a sentence when
    there are no parameters yet (then there is no answer)."""

    networks: dict[str, NetworkFacts] = field(default_factory=dict)
    missing: str = ""
    ood_threshold: float = math.inf
    neighbours: int = 10
    conformal: dict = field(default_factory=dict)  # level, q_pain, q_no_pain (, without_pspi: the same without PSPI)
    stack: dict = field(default_factory=dict)  # the PSPI combination (answer_fit._fit_stack); {} or used False: none
    references: dict[str, list[np.ndarray]] = field(default_factory=dict, repr=False)
    parameters: dict = field(default_factory=dict, repr=False)  # answer.json as written
    appearance: dict[str, np.ndarray] | None = field(default=None, repr=False)  # the appearance check's PCAs (None: off)

    @property
    def appearance_threshold(self) -> float:
        """The appearance check's threshold (inf when this answer has no such check)."""
        found = self.parameters.get("appearance") or {}
        return _float(found.get("threshold"), math.inf) if self.appearance is not None else math.inf

    def appearance_distance(self, crops) -> np.ndarray:
        """(N,) the faces' appearance distance (``engine.evaluation.appearance.distance``) from their (S, S, 3)
        crops; NaN when this answer has no appearance check."""
        if self.appearance is None:
            return np.full(len(crops), np.nan)
        from engine.evaluation.appearance import distance

        return distance(crops, self.appearance)

    @property
    def used(self) -> list[str]:
        return [name for name, facts in self.networks.items() if facts.learned]

    @property
    def adapted(self) -> bool:
        """Served as the CP-adapted models (``[evaluation] serve_cp_adapt``): CP-PAIN is no sealed test then."""
        return bool(self.parameters.get("serve_cp_adapt"))

    @classmethod
    def from_store(cls, store: ExperimentStore) -> "AnswerBasis":
        """The parameters of ``answer.json`` and the fold models' training features they refer to."""
        parameters = store.answer()
        if not parameters or "networks" not in parameters:
            return cls(missing=NO_PARAMETERS[0].upper() + NO_PARAMETERS[1:] + ".")
        references = {}
        for name in parameters.get("used", []):
            if parameters.get("serve_cp_adapt"):  # one served model: the external one adapted on all of CP-PAIN, its
                adapted = store.served_adaptation(name)  # training faces PAIN-DB's and CP-PAIN's (adapted_answer)
                if adapted is None:
                    return cls(missing=f"{name}'s adaptation on every CP-PAIN subject is missing: run `painlens run` again.")
                references[name] = [unit_rows(np.concatenate([adapted[1]["paindb"], adapted[1]["cppain"]]))]
                continue
            members = parameters["networks"][name]["members"]
            arrays = [store.features(RunKey(name, DEVELOPMENT_SCENARIO, fold)) for fold in members]
            if any(a is None for a in arrays):
                return cls(missing=f"The training features of {name}'s fold models are missing: run `painlens run` again.")
            references[name] = [unit_rows(a["train"]) for a in arrays]
        appearance = None
        if (parameters.get("appearance") or {}).get("used"):
            appearance = store.answer_appearance()
            if appearance is None or not {"mean", "components"} <= set(appearance):
                return cls(missing="The appearance check's arrays (beside answer.json) are missing: run `painlens run` again.")
        return cls.from_parameters(parameters, references, appearance)

    @classmethod
    def from_parameters(cls, parameters: dict, references: dict[str, list[np.ndarray]],
                        appearance: dict[str, np.ndarray] | None = None) -> "AnswerBasis":
        facts = {}
        for name, item in parameters["networks"].items():
            facts[name] = NetworkFacts(name, bool(item["used"]), item["reason"], _float(item.get("auc")),
                                       _float(item.get("auc_low")), _float(item.get("auc_high")), item.get("calibration"),
                                       _float(item.get("ood_scale")), tuple(item.get("members", ())))
        ood, conformal = parameters.get("ood", {}), parameters.get("conformal", {})
        stack = parameters.get("stack") or {}
        return cls(facts, "", _float(ood.get("threshold"), math.inf), int(ood.get("neighbours", 10)), conformal,
                   stack if stack.get("used") else {}, references, parameters, appearance)


@dataclass(frozen=True)
class FaceAnswer:
    """``p_pain``: the one answer (None when withheld or when there is none); ``low``/``high``: its band;
    ``abstained`` with ``abstain_reason`` when withheld; ``reason`` when there is no answer at all;
    ``ood_score`` (1 = the threshold); ``appearance_score`` (the same for the appearance check; None: not
    measured, or this answer has no such check); ``prediction_set`` (the conformal set: "pain", "no pain");
    ``networks``: per network ``NETWORK_COLUMNS`` (``used``: counted in the answer)."""

    p_pain: float | None
    reason: str
    rule: str
    networks: pd.DataFrame
    low: float = math.nan
    high: float = math.nan
    abstained: bool = False
    abstain_reason: str | None = None
    ood_score: float | None = None
    prediction_set: tuple[str, ...] = ()
    p_served: float | None = None  # the number before abstention (a calm reference face uses it; never shown alone)
    pspi_used: bool = False  # the face's PSPI entered the number (the rule combines it and the face has one)
    appearance_score: float | None = None

    @property
    def unlike(self) -> bool:
        """Unlike the training faces by either check."""
        return unlike_training_faces(self.ood_score, self.appearance_score)


def unlike_training_faces(ood_score: float | None, appearance_score: float | None = None) -> bool:
    """The rule's "unlike the training faces": either score above 1 (None or NaN: that check did not run). Every
    place that sets a face aside as unlike (a calm reference, a clip's frames) asks this."""
    return any(score is not None and score > 1.0 for score in (ood_score, appearance_score))


# --- the served computation, for one face or many ---------------------------------------------------

def unit_rows(features: np.ndarray) -> np.ndarray:
    """Features scaled to unit length per row (float32): distances then compare directions, not magnitudes."""
    x = np.asarray(features, dtype=np.float32).reshape(len(features), -1)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def neighbour_distance(features: np.ndarray, reference: np.ndarray, neighbours: int) -> np.ndarray:
    """Per row of ``features``: the mean Euclidean distance to its ``neighbours`` nearest rows of
    ``reference`` (both unit-length)."""
    x = unit_rows(features)
    squared = np.maximum(2.0 - 2.0 * (x @ reference.T), 0.0)  # |a - b|² of unit vectors
    k = min(neighbours, reference.shape[0])
    nearest = np.partition(squared, k - 1, axis=1)[:, :k]
    return np.sqrt(nearest).mean(axis=1)


def network_distance(basis: AnswerBasis, name: str, member_features: list[np.ndarray]) -> np.ndarray:
    """(N,) a used network's out-of-distribution distance of N faces: each fold model's mean distance to its
    own training faces, averaged over the fold models, over the network's median held-out distance."""
    facts = basis.networks[name]
    per_member = [neighbour_distance(f, ref, basis.neighbours) for f, ref in zip(member_features, basis.references[name])]
    return np.mean(per_member, axis=0) / facts.ood_scale


def stacked_p(networks_p: np.ndarray, pspi: np.ndarray, stack: dict) -> np.ndarray:
    """The answer's combination of the networks' mean calibrated p(pain) with the face's PSPI (``stack``'s
    logistic rule); NaN where PSPI is NaN."""
    z = stack["networks"] * logit(networks_p) + stack["pspi"] * np.asarray(pspi, dtype=float) + stack["intercept"]
    return 1.0 / (1.0 + np.exp(-z))


def stack_sentence(stack: dict | None) -> str:
    """What the answer.json's ``stack`` says, in one sentence for the model card ("" without one)."""
    if not stack or not stack.get("features"):
        return ""
    if not stack.get("used"):
        return f"The face's PSPI (action-unit estimator) is not combined with the networks: {stack.get('reason', '')}."
    loss = stack.get("cv_logloss") or {}
    return (f"The number combines the networks with the face's PSPI from the action-unit estimator: p(pain) = "
            f"sigmoid({stack['networks']:.2f} x logit(networks' mean) {_signed(stack['pspi'])} x PSPI "
            f"{_signed(stack['intercept'])}), "
            f"fitted on {stack['images']} {stack.get('faces', 'PAIN-DB held-out faces')} of {stack['subjects']} subjects ({stack['fitted_on']}); "
            f"log-loss on held-out subjects {loss.get('networks_and_pspi', math.nan):.3f} against "
            f"{loss.get('networks', math.nan):.3f} for the networks alone. A face whose action units cannot be measured "
            "is answered by the networks alone, with their own conformal thresholds.")


def prediction_sets(p: np.ndarray, conformal: dict) -> tuple[np.ndarray, np.ndarray]:
    """(pain in the set, no pain in the set) per calibrated p(pain): a class is in the conformal set when its
    nonconformity (1 - p(that class)) is at most the class's threshold."""
    p = np.asarray(p, dtype=float)
    q_pain, q_no_pain = (np.inf if conformal.get(q) is None else conformal[q] for q in ("q_pain", "q_no_pain"))
    return (1.0 - p) <= q_pain, p <= q_no_pain


def combine(member_p: Mapping[str, np.ndarray], distances: Mapping[str, np.ndarray], basis: AnswerBasis,
            pspi: np.ndarray | None = None, appearance: np.ndarray | None = None) -> dict:
    """The served answer of N faces from the used networks' fold-model p(pain) ``member_p[name]`` (N, M),
    their ``network_distance`` (N,), the faces' PSPI (N,; NaN or None: not measured) and their
    ``AnswerBasis.appearance_distance`` (N,; NaN or None: not measured): arrays ``p_pain`` (NaN where withheld),
    ``p_served`` (the number before abstention), ``low``, ``high``, ``ood_score``, ``appearance_score``,
    ``in_pain_set``, ``in_no_pain_set``, ``unlike_features`` / ``unlike_appearance`` (each check's verdict),
    ``ood`` (unlike the training faces: either), ``undecided`` (the set is not one class) and ``pspi_used``."""
    used = basis.used
    calibrated = [np.asarray(apply_calibrator(np.asarray(member_p[n], dtype=float), basis.networks[n].calibrator))
                  for n in used]
    per_network = np.stack([c.mean(axis=1) for c in calibrated], axis=1)  # (N, networks)
    every_member = np.concatenate(calibrated, axis=1)
    p_served = per_network.mean(axis=1)
    rows = len(p_served)
    face_pspi = np.full(rows, np.nan) if pspi is None else np.asarray(pspi, dtype=float).reshape(rows)
    pspi_used = np.isfinite(face_pspi) & bool(basis.stack)
    if pspi_used.any():
        p_served = np.where(pspi_used, stacked_p(p_served, face_pspi, basis.stack), p_served)
        every_member = np.where(pspi_used[:, None], stacked_p(every_member, face_pspi[:, None], basis.stack), every_member)
    ood_score = np.mean([distances[n] for n in used], axis=0) / basis.ood_threshold
    pain, no_pain = prediction_sets(p_served, basis.conformal)
    if basis.stack and not pspi_used.all():  # faces without a PSPI: the networks' own thresholds
        alone = prediction_sets(p_served, basis.conformal.get("without_pspi", basis.conformal))
        pain, no_pain = np.where(pspi_used, pain, alone[0]), np.where(pspi_used, no_pain, alone[1])
    appearance_score = (np.full(rows, np.nan) if appearance is None or basis.appearance is None else
                        np.asarray(appearance, dtype=float).reshape(rows) / basis.appearance_threshold)
    unlike_features, unlike_appearance = ood_score > 1.0, np.nan_to_num(appearance_score, nan=0.0) > 1.0
    ood = unlike_features | unlike_appearance
    undecided = pain == no_pain  # both classes, or neither
    withheld = ood | undecided
    return {"p_pain": np.where(withheld, np.nan, p_served), "p_served": p_served, "low": every_member.min(axis=1),
            "high": every_member.max(axis=1), "ood_score": ood_score, "appearance_score": appearance_score,
            "in_pain_set": pain, "in_no_pain_set": no_pain, "unlike_features": unlike_features,
            "unlike_appearance": unlike_appearance, "ood": ood, "undecided": undecided, "pspi_used": pspi_used}


def one_answer(probabilities: pd.DataFrame | Mapping[str, float], basis: AnswerBasis,
               pspi: float | None = None) -> FaceAnswer:
    """The answer for one face from ``Predictor.probabilities``'s table: per network ``model``, ``p_pain``
    (mean over its served models) and, for the networks the answer uses, ``p_members`` (each fold model's
    p(pain)) and ``ood`` (``network_distance``); ``appearance``: the face's ``AnswerBasis.appearance_distance``
    (the same on every row; absent or NaN: not measured). A {model: p_pain} mapping gives the table without them.
    ``pspi``: the face's PSPI from the action-unit estimator (None: not measured)."""
    table = probabilities if isinstance(probabilities, pd.DataFrame) else \
        pd.DataFrame({"model": list(probabilities), "p_pain": [float(v) for v in probabilities.values()]})
    rows = {row["model"]: row for row in table.to_dict("records")}
    networks = pd.DataFrame([_network_row(model, row, basis) for model, row in rows.items()], columns=NETWORK_COLUMNS)
    if basis.missing or not basis.used:
        return FaceAnswer(None, _no_answer_reason(basis), RULE, networks)
    missing = [n for n in basis.used if n not in rows or not _has_members(rows[n])]
    if missing:
        return FaceAnswer(None, f"No single answer: the networks the answer uses ({', '.join(missing)}) gave no p(pain) "
                                "for this face.", RULE, networks)
    appearance = float(table["appearance"].iloc[0]) if "appearance" in table and len(table) else math.nan
    served = combine({n: np.asarray([rows[n]["p_members"]], dtype=float) for n in basis.used},
                     {n: np.asarray([rows[n]["ood"]], dtype=float) for n in basis.used}, basis,
                     np.asarray([np.nan if pspi is None else pspi], dtype=float), np.asarray([appearance]))
    one = {key: value[0] for key, value in served.items()}
    members = sum(len(basis.networks[n].members) for n in basis.used)
    served = "CP-adapted models" if basis.adapted else "fold models"
    rule = (f"{basis.parameters.get('rule', RULE)} {len(basis.used)} of {len(networks)} networks are used "
            f"({', '.join(basis.used)}; {members} {served})")
    if basis.stack:
        rule += ("; this face's PSPI is combined with them." if one["pspi_used"] else
                 "; this face has no PSPI (its action units could not be measured), so the networks answer alone.")
    else:
        rule += "."
    if "appearance" not in basis.parameters:
        rule += " " + NO_APPEARANCE
    sets = tuple(name for name, inside in (("pain", one["in_pain_set"]), ("no pain", one["in_no_pain_set"])) if inside)
    appearance_score = float(one["appearance_score"]) if math.isfinite(one["appearance_score"]) else None
    reason = abstain_reason(bool(one["ood"]), bool(one["undecided"]), sets, float(one["ood_score"]), basis,
                            appearance_score)
    p = None if reason else float(one["p_served"])
    return FaceAnswer(p, "", rule, networks, float(one["low"]), float(one["high"]), bool(reason), reason or None,
                      float(one["ood_score"]), sets, float(one["p_served"]), bool(one["pspi_used"]), appearance_score)


def abstain_reason(ood: bool, undecided: bool, prediction_set: tuple[str, ...], ood_score: float,
                   basis: AnswerBasis, appearance_score: float | None = None) -> str:
    """The sentence that says why a face's number is withheld ("" when it is not): which check of "unlike the
    training faces" fired, with its score."""
    if ood:
        share = basis.parameters.get("ood", {}).get("pass_share", 0.95)
        held_out = basis.parameters.get("held_out", "PAIN-DB's held-out faces")
        fired = []
        if ood_score is not None and ood_score > 1.0:
            fired.append(f"to the networks, its features lie far from the training faces' (score {ood_score:.2f})")
        if appearance_score is not None and appearance_score > 1.0:
            fired.append("it looks unlike them, whatever the lighting: in its shapes and colours, or in the fine texture "
                         f"of a photograph (appearance score {appearance_score:.2f})")
        return (f"No number: this face is unlike the faces the networks were trained on: {'; and '.join(fired)}. "
                f"Above 1 is unusual: {share:.0%} of {held_out} stay under 1 on each check, so the networks' p(pain) "
                "would have no basis here.")
    if undecided:
        level = basis.conformal.get("level", 0.9)
        which = "both pain and no pain" if prediction_set else "neither class"
        return (f"Uncertain: at the {level:.0%} conformal level the answer fits {which}, so no number is given "
                "(a clinician's judgement is needed).")
    return ""


def _has_members(row: dict) -> bool:
    members = row.get("p_members")
    return members is not None and len(members) > 0 and np.all(np.isfinite(members)) and np.isfinite(row.get("ood", np.nan))


def _network_row(model: str, row: dict, basis: AnswerBasis) -> dict:
    p_raw = float(row.get("p_pain", math.nan))
    facts = basis.networks.get(model)
    if facts is None:
        return {"model": model, "p_raw": p_raw, "p_calibrated": p_raw, "calibrated": False, "auc": math.nan,
                "auc_low": math.nan, "auc_high": math.nan, "learned": False,
                "learned_reason": "not in the answer's parameters", "used": False, "ood": math.nan}
    calibrated = facts.learned and bool(facts.calibrator)
    p_calibrated = float(np.mean(apply_calibrator(np.asarray(row["p_members"], dtype=float), facts.calibrator))) \
        if calibrated and _has_members(row) else p_raw
    return {"model": model, "p_raw": p_raw, "p_calibrated": p_calibrated, "calibrated": calibrated, "auc": facts.auc,
            "auc_low": facts.auc_low, "auc_high": facts.auc_high, "learned": facts.learned,
            "learned_reason": facts.learned_reason, "used": facts.learned and bool(np.isfinite(p_raw)),
            "ood": float(row.get("ood", math.nan)) if facts.learned else math.nan}


def _no_answer_reason(basis: AnswerBasis) -> str:
    if basis.missing:
        return f"No single answer: {basis.missing[0].lower()}{basis.missing[1:]}"
    return ("No single answer: no network learned on PAIN-DB's subject-wise held-out faces (none has an ROC-AUC "
            "interval above 0.5 there, or its fold models were not kept), so their p(pain) values are shown only as "
            "they are.")


def _signed(value: float) -> str:
    """A term of a sum: "+ 2.09", "- 4.57"."""
    return f"{'-' if value < 0 else '+'} {abs(value):.2f}"


def _float(value, default: float = math.nan) -> float:
    return default if value is None else float(value)
