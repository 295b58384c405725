"""The ratings step end to end: a ratings file alone (``painlens ratings``) or an experiment's CP-PAIN
ratings plus the model-versus-clinician agreement (``painlens run``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from engine.ratings.agreement import AgreementResult, agreement
from engine.ratings.load import RatingsLoad, load_ratings
from engine.ratings.model_agreement import (SERVED, answer_beside_raters, model_vs_clinicians, read_cppain_manifest,
                                            summarize_model_agreement)
from engine.ratings.report import write_ratings
from engine.ratings.scores import scale_scores


@dataclass
class RatingsReport:
    load: RatingsLoad
    scores: pd.DataFrame  # scale_scores output
    result: AgreementResult
    model_agreement: pd.DataFrame | None = None  # model_vs_clinicians output (per run and scale)
    model_summary: pd.DataFrame | None = None  # mean/std over runs
    beside_raters: pd.DataFrame | None = None  # answer_beside_raters output: the served answer among the raters
    notes: list[str] = field(default_factory=list)  # sentences about steps that could not run


def rate_file(path: str | Path, headline: str = "ICC2", include_pspi: bool = False) -> RatingsReport:
    """Load, validate, score and compute agreement for one ratings CSV (NotADatasetError if it is not one)."""
    load = load_ratings(path)
    scores = scale_scores(load.ratings, include_pspi=include_pspi)
    return RatingsReport(load, scores, agreement(scores, headline))


def rate_experiment(config, store, predictions: pd.DataFrame | None = None) -> RatingsReport | None:
    """The ratings step of ``painlens run``: CP-PAIN ratings -> ``<experiment>/ratings/``.

    ``config``: ExperimentConfig; ``store``: ExperimentStore. Returns None when the CP-PAIN folder
    has no ratings.csv (nothing is written). Predictions default to the store's finished external
    runs and the served answer (``SERVED``: its answered CP-PAIN faces; withheld ones are left out, like
    gaps); without a manifest or predictions the model comparison is skipped with a note.
    """
    folder = config.dataset_path("cppain")
    ratings_file = folder / "ratings.csv"
    if not ratings_file.is_file():
        return None
    report = rate_file(ratings_file, headline=config.ratings.headline_icc)
    if predictions is None:  # every network's external runs, and the served answer beside them
        from engine.evaluation.answer_evaluation import served_predictions

        predictions = pd.concat([store.finished_predictions("external"), served_predictions(store)], ignore_index=True)
    if predictions.empty:
        report.notes.append("No finished external-scenario predictions yet: the model-versus-clinician "
                            "agreement is left out.")
    elif not (folder / "manifest.csv").is_file():
        report.notes.append("CP-PAIN has no manifest.csv, so images cannot be linked to their videos: the "
                            "model-versus-clinician agreement is left out.")
    else:
        manifest = read_cppain_manifest(folder / "manifest.csv")
        report.model_agreement = model_vs_clinicians(predictions, manifest, report.scores)
        report.model_summary = summarize_model_agreement(report.model_agreement)
        served = predictions[predictions["model"] == SERVED] if "model" in predictions else predictions.iloc[0:0]
        report.beside_raters = answer_beside_raters(served, manifest, report.scores, seed=config.experiment.seed)
    write_ratings(store, report.result, report.load, scores=report.scores,
                  model_agreement=report.model_agreement, model_summary=report.model_summary,
                  beside_raters=report.beside_raters, source_file=ratings_file)
    return report
