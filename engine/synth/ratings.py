"""Two clinicians rating each CP-PAIN video on the three scales (FACS, Wong-Baker, NCAPC), with realistic noise.

Each rater has, per video and scale, an impression offset (standard deviation in item points, times a
factor of the pain source) shared by all items of the scale, plus item noise. Stretching is the easiest
source to judge and injection the hardest, as in the paper's Table 4; the offsets are set so that the ICCs
come out near the paper's (FACS 0.75 > Wong-Baker 0.64 > NCAPC 0.55).
"""

from __future__ import annotations

import numpy as np

from engine.scales import FACS_ITEMS, NCAPC_COMPONENTS, SCALES

RATERS = ("rater_1", "rater_2")
_OFFSET_SD = {"facs": 0.4, "wong_baker": 2.9, "ncapc": 0.5}
_ITEM_SD = {"facs": 0.45, "wong_baker": 0.0, "ncapc": 0.35}
_SOURCE_FACTOR = {"stretching": 0.55, "other": 1.0, "injection": 1.3}
# How much of the pain each NCAPC component shows (stretching shows most in "protective", see rate_video).
_NCAPC_WEIGHT = {"facial": 0.9, "vocal": 0.5, "emotional": 0.45, "body": 0.5, "protective": 0.7, "physiological": 0.5}
# A video without pain is mostly rated 0; NCAPC least often, having the most items.
_ALL_ZERO_WITHOUT_PAIN = (("facs", 0.97), ("wong_baker", 0.95), ("ncapc", 0.88))


def rate_video(video: dict, true_aus: dict[str, float], rng: np.random.Generator) -> list[dict]:
    """Both raters' rows (video_id, pain_source, rater, scale, item, score) for one planned ``video``.

    ``true_aus`` are the pain moment's AU intensities (the FACS items' truth); the other scales follow the
    video's pain level (0-1).
    """
    rows = []
    for rater in RATERS:
        for scale, item, score in _one_raters_scores(video["pain_source"], video["pain"], true_aus, rng):
            rows.append({"video_id": video["video_id"], "pain_source": video["pain_source"], "rater": rater, "scale": scale,
                         "item": item, "score": int(score)})
    return rows


def _one_raters_scores(source: str, pain: float, true_aus: dict[str, float], rng: np.random.Generator) -> list[tuple[str, str, int]]:
    """(scale, item, score) for every item of the three scales, as one rater scores the video."""
    factor = _SOURCE_FACTOR[source]
    offset = {scale: rng.normal(0, sd * factor) for scale, sd in _OFFSET_SD.items()}
    all_zero = {scale: pain == 0 and rng.random() < share for scale, share in _ALL_ZERO_WITHOUT_PAIN}

    def score(scale: str, mean: float, top: int) -> int:
        return 0 if all_zero[scale] else _noisy_score(rng, mean + offset[scale], _ITEM_SD[scale], top)

    scores = [("facs", au, score("facs", true_aus.get(au, 0.0), 5)) for au in FACS_ITEMS]
    scores.append(("wong_baker", "", score("wong_baker", 10 * pain, 10)))
    for component, items in NCAPC_COMPONENTS.items():
        weight = 0.9 if component == "protective" and source == "stretching" else _NCAPC_WEIGHT[component]
        for item in items:
            mean = 3 * weight * pain * rng.uniform(0.6, 1.0)
            scores.append(("ncapc", item, score("ncapc", mean, 3)))
    return scores


def _noisy_score(rng: np.random.Generator, impression: float, item_sd: float, top: int) -> int:
    """A whole score in [0, top]: the rater's ``impression`` plus item noise."""
    return round(float(np.clip(impression + rng.normal(0, item_sd), 0, top)))


def rated_no_pain_by_both(rows: list[dict]) -> dict[str, bool]:
    """Per scale: did both raters give the video a total of 0?"""
    return {
        scale: all(sum(r["score"] for r in rows if r["rater"] == rater and r["scale"] == scale) == 0 for rater in RATERS)
        for scale in SCALES
    }
