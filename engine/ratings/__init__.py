"""Clinician ratings: import and validation, scale scores (FACS pain score, NCAPC, Wong-Baker, PSPI),
inter-rater ICC (pingouin) with Fleiss categories in the paper's Table 4 layout, and the agreement of
each network with the clinicians on CP-PAIN.

Typical use::

    load = load_ratings("cppain/ratings.csv")          # problems in load.problems, with row numbers
    scores = scale_scores(load.ratings)
    result = agreement(scores, headline="ICC2")
    table4(result); write_ratings(store, result, load, scores=scores)
"""

from engine.ratings.agreement import AgreementResult, agreement, icc_forms, pain_counts
from engine.ratings.forms import ICC_FORMS, IccForm, fleiss_category, resolve_icc_form
from engine.ratings.load import RatingsLoad, RowProblem, load_ratings, validate_ratings
from engine.ratings.model_agreement import (link_images_to_videos, model_vs_clinicians, read_cppain_manifest,
                                            summarize_model_agreement)
from engine.ratings.pipeline import RatingsReport, rate_experiment, rate_file
from engine.ratings.report import result_dict, table4, table4_cells, write_ratings
from engine.ratings.scores import scale_scores, video_labels

__all__ = [
    "AgreementResult", "ICC_FORMS", "IccForm", "RatingsLoad", "RatingsReport", "RowProblem", "agreement",
    "fleiss_category", "icc_forms", "link_images_to_videos", "load_ratings", "model_vs_clinicians",
    "pain_counts", "rate_experiment", "rate_file", "read_cppain_manifest",
    "resolve_icc_form", "result_dict", "scale_scores", "summarize_model_agreement", "table4", "table4_cells",
    "validate_ratings", "video_labels", "write_ratings",
]
