"""One answer for a face: the single rule every place that sums the networks up follows.

The rule: **the mean calibrated p(pain) of the networks that learned in the external scenario**. A
network learned when its CP-PAIN ROC-AUC interval (bootstrap over subjects, p(pain) averaged over
seeds) lies above 0.5 and it does not give every image one class (``engine.evaluation.bootstrap``).
Its p(pain) is calibrated with the temperature fitted on its subject-wise out-of-fold predictions
(``engine.evaluation.calibration``); a network without a temperature enters uncalibrated, and the
answer says so. When no network learned there is no single answer: ``p_pain`` is None and ``reason``
says why. Networks that did not learn are still listed, with their raw and calibrated p(pain).

Callers (upload page, ``painlens report``, HTTP API, batch and video prediction) build an
``AnswerBasis`` once per experiment (``AnswerBasis.from_store``) and call ``one_answer`` per face.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Mapping

import numpy as np
import pandas as pd

from engine.artifacts import ExperimentStore
from engine.evaluation.calibration import apply_temperature

SCENARIO = "external"
RULE = ("Mean calibrated p(pain) of the networks that learned in the external scenario (CP-PAIN ROC-AUC "
        "95 % interval over subjects above 0.5); each network's p(pain) is temperature-scaled on its "
        "subject-wise out-of-fold predictions.")
NETWORK_COLUMNS = ["model", "p_raw", "p_calibrated", "calibrated", "auc", "auc_low", "auc_high", "learned",
                   "learned_reason", "used"]


@dataclass(frozen=True)
class NetworkFacts:
    """What the rule needs to know about one network (from the store)."""

    model: str
    learned: bool
    learned_reason: str
    auc: float = math.nan
    auc_low: float = math.nan
    auc_high: float = math.nan
    temperature: float = math.nan  # NaN: no temperature (p(pain) used as is)


@dataclass(frozen=True)
class AnswerBasis:
    """The per-network facts of one experiment; ``networks`` by name. ``missing``: a sentence when the
    experiment has no external-scenario results yet (then no network counts as learned)."""

    networks: dict[str, NetworkFacts] = field(default_factory=dict)
    missing: str = ""

    @classmethod
    def from_store(cls, store: ExperimentStore) -> "AnswerBasis":
        """Facts as the store's runs are now (current summary and calibration, never stale rows)."""
        from engine.evaluation.calibration import current_calibration
        from engine.evaluation.results import current_results

        _, summary = current_results(store)
        calibration, _ = current_calibration(store)
        return cls.from_tables(summary, calibration)

    @classmethod
    def from_tables(cls, summary: pd.DataFrame, calibration: pd.DataFrame | None) -> "AnswerBasis":
        external = summary[summary["scenario"] == SCENARIO] if len(summary) and "scenario" in summary else summary
        if external is None or external.empty or "learned" not in external:
            return cls({}, "No finished external-scenario runs yet, so no network is known to have learned.")
        temperatures = {} if calibration is None or calibration.empty else \
            dict(zip(calibration["model"], calibration["temperature"].astype(float)))
        facts = {}
        for row in external.drop_duplicates("model").itertuples(index=False):
            facts[row.model] = NetworkFacts(row.model, bool(row.learned), str(row.learned_reason), float(row.auc),
                                            float(row.auc_low), float(row.auc_high),
                                            float(temperatures.get(row.model, math.nan)))
        return cls(facts)


@dataclass(frozen=True)
class FaceAnswer:
    """``p_pain``: the one answer (None when there is none; ``reason`` says why); ``rule``: the text to
    show under it; ``networks``: per network ``NETWORK_COLUMNS`` (``used``: counted in the answer)."""

    p_pain: float | None
    reason: str
    rule: str
    networks: pd.DataFrame


def one_answer(probabilities: pd.DataFrame | Mapping[str, float], basis: AnswerBasis) -> FaceAnswer:
    """The answer for one face from each network's raw p(pain): a frame with ``model`` and ``p_pain``
    (``Predictor.probabilities``: mean over the network's kept seeds) or a {model: p_pain} mapping."""
    if isinstance(probabilities, pd.DataFrame):
        raw = dict(zip(probabilities["model"], probabilities["p_pain"].astype(float)))
    else:
        raw = {str(k): float(v) for k, v in probabilities.items()}
    rows = [_network_row(model, p, basis.networks.get(model)) for model, p in raw.items()]
    networks = pd.DataFrame(rows, columns=NETWORK_COLUMNS)
    used = networks[networks["used"]]
    if len(used):
        uncalibrated = (~used["calibrated"]).sum()
        note = f" {uncalibrated} of them without a temperature (p(pain) as is)." if uncalibrated else ""
        rule = f"{RULE} {len(used)} of {len(networks)} networks learned and are averaged.{note}"
        return FaceAnswer(float(used["p_calibrated"].mean()), "", rule, networks)
    return FaceAnswer(None, _no_answer_reason(basis), RULE, networks)


def _network_row(model: str, p_raw: float, facts: NetworkFacts | None) -> dict:
    if facts is None:
        return {"model": model, "p_raw": p_raw, "p_calibrated": p_raw, "calibrated": False, "auc": math.nan,
                "auc_low": math.nan, "auc_high": math.nan, "learned": False,
                "learned_reason": "no external-scenario result", "used": False}
    calibrated = math.isfinite(facts.temperature)
    p_calibrated = calibrated_p(model, p_raw, basis_facts=facts)
    return {"model": model, "p_raw": p_raw, "p_calibrated": p_calibrated, "calibrated": calibrated,
            "auc": facts.auc, "auc_low": facts.auc_low, "auc_high": facts.auc_high, "learned": facts.learned,
            "learned_reason": facts.learned_reason, "used": facts.learned and bool(np.isfinite(p_raw))}


def calibrated_p(model: str, p_raw: float, basis: AnswerBasis | None = None,
                 basis_facts: NetworkFacts | None = None) -> float:
    """One network's p(pain) as the rule counts it: scaled by its temperature when it has one, else as is
    (also for a network the basis does not know). Give ``basis``, or that network's ``basis_facts``."""
    facts = basis_facts if basis_facts is not None else (basis.networks.get(model) if basis is not None else None)
    if facts is None or not math.isfinite(facts.temperature):
        return p_raw
    return float(apply_temperature(p_raw, facts.temperature))


def _no_answer_reason(basis: AnswerBasis) -> str:
    if basis.missing:
        return f"No single answer: {basis.missing[0].lower()}{basis.missing[1:]}"
    learned = sorted(m for m, facts in basis.networks.items() if facts.learned)
    if learned:  # they learned, but gave no p(pain) here (no kept model)
        return f"No single answer: the networks that learned ({', '.join(learned)}) gave no p(pain) for this face."
    return ("No single answer: no network learned in the external scenario (none has a CP-PAIN ROC-AUC interval "
            "above 0.5), so their p(pain) values are shown only as they are.")
