"""Clinician ratings: validation of ratings files, scale scores, ICC forms, Table 4, the store,
and the agreement of a network's predictions with the clinicians."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import cohen_kappa_score, roc_auc_score

from engine.artifacts import ExperimentStore
from engine.errors import ConfigError, NotADatasetError
from engine.ratings import (agreement, fleiss_category, load_ratings, model_vs_clinicians, resolve_icc_form,
                            scale_scores, summarize_model_agreement, table4, table4_cells, write_ratings)
from engine.ratings.load import HEADER
from engine.scales import FACS_ITEMS, NCAPC_ITEMS

# Shrout, P. E. & Fleiss, J. L. (1979). Intraclass correlations: uses in assessing rater reliability.
# Psychological Bulletin, 86(2), 420-428. Table 2: 6 targets rated by 4 judges; the published
# values (their Table 4) are ICC(1,1)=.17, ICC(2,1)=.29, ICC(3,1)=.71, ICC(1,4)=.44, ICC(2,4)=.62, ICC(3,4)=.91.
SHROUT_FLEISS = [[9, 2, 5, 8], [6, 1, 3, 2], [8, 4, 6, 8], [7, 1, 2, 6], [10, 5, 6, 9], [6, 2, 4, 7]]
SHROUT_FLEISS_ICC = {"ICC1": 0.17, "ICC2": 0.29, "ICC3": 0.71, "ICC1k": 0.44, "ICC2k": 0.62, "ICC3k": 0.91}
ROWS_PER_RATER = 1 + len(NCAPC_ITEMS) + len(FACS_ITEMS)  # one video: Wong-Baker, 18 NCAPC items, 6 AUs


def good_rows(n_videos: int = 6, raters: tuple[str, ...] = ("A", "B"), seed: int = 0) -> list[list[str]]:
    """A complete, valid ratings table: every rater scores every item of every video.

    Scores follow a per-video level plus small rater noise, so every scale has an ICC; the
    sources cycle injection, stretching, other.
    """
    rng = np.random.default_rng(seed)
    rows = []
    for v in range(n_videos):
        video, source, level = f"V{v:02d}", ("injection", "stretching", "other")[v % 3], rng.integers(0, 4)
        for rater in raters:
            noise = lambda: int(rng.integers(0, 2))  # noqa: E731 - 0 or 1 point of rater noise
            rows.append([video, source, rater, "wong_baker", "", str(min(10, 2 * level + noise()))])
            rows += [[video, source, rater, "ncapc", item, str(min(3, level + noise()) if i % 3 else 0)]
                     for i, item in enumerate(NCAPC_ITEMS)]
            rows += [[video, source, rater, "facs", item, str(min(5, level + noise()))] for item in FACS_ITEMS]
    return rows


def write_csv(path, rows, header: str = HEADER, delimiter: str = ",") -> str:
    lines = [header.replace(",", delimiter)] + [delimiter.join(row) for row in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path)


def row_of(rows, video, rater, scale, item="") -> int:
    """File row number (header = 1) of a rating."""
    for index, row in enumerate(rows):
        if row[0] == video and row[2] == rater and row[3] == scale and row[4] == item:
            return index + 2
    raise KeyError((video, rater, scale, item))


def only_problem(load, kind):
    found = [p for p in load.problems if p.kind == kind]
    assert len(found) == 1, [p.message for p in load.problems]
    return found[0]


def videos_scored(load, scale) -> set[str]:
    scores = scale_scores(load.ratings)
    return set(scores.loc[scores["scale"] == scale, "video"])


# --- ICC forms --------------------------------------------------------------------------------


def test_icc_forms_equal_shrout_fleiss_1979_published_values(tmp_path):
    # Their judges' scores are 1-10, valid Wong-Baker scores, so the example runs the whole file path.
    rows = [[f"T{t}", "other", f"J{j}", "wong_baker", "", str(score)]
            for t, judges in enumerate(SHROUT_FLEISS) for j, score in enumerate(judges)]
    load = load_ratings(write_csv(tmp_path / "sf.csv", rows))
    result = agreement(scale_scores(load.ratings))
    overall = result.icc[result.icc["source"] == "all"].set_index("form")
    for form, published in SHROUT_FLEISS_ICC.items():
        assert round(overall.loc[form, "icc"], 2) == published, form
    assert overall.loc["ICC2", "pingouin_type"] == "ICC(A,1)"
    assert overall.loc["ICC2", "ci_low"] < 0.29 < overall.loc["ICC2", "ci_high"]
    assert overall.loc["ICC2", "description"] == "two-way random, absolute agreement, single rater"
    head = result.headline.set_index("source").loc["all"]
    assert (head["form"], round(head["icc"], 2), head["category"]) == ("ICC2", 0.29, "low")


def test_headline_form_is_chosen_by_name_in_any_usual_spelling():
    assert resolve_icc_form("icc2") == "ICC2"
    assert resolve_icc_form("ICC(A,1)") == "ICC2"
    assert resolve_icc_form("ICC(2,1)") == "ICC2"
    assert resolve_icc_form("ICC(C,k)") == "ICC3k"
    assert resolve_icc_form("ICC1k") == "ICC1k"
    with pytest.raises(ConfigError, match="unknown ICC form 'ICC4'; choose one of ICC1") as info:
        resolve_icc_form("ICC4")
    assert info.value.exit_code == 2


def test_headline_form_from_config_picks_that_row():
    scores = pd.DataFrame([{"video": f"T{t}", "pain_source": "other", "rater": f"J{j}", "scale": "wong_baker",
                            "score": float(s)} for t, judges in enumerate(SHROUT_FLEISS) for j, s in enumerate(judges)])
    result = agreement(scores, headline="ICC(C,k)")
    head = result.headline.set_index("source").loc["all"]
    assert (result.headline_form, round(head["icc"], 2), head["category"]) == ("ICC3k", 0.91, "excellent")


def test_fleiss_categories_follow_the_paper_boundaries():
    assert [fleiss_category(v) for v in (-0.2, 0.399, 0.40, 0.639, 0.75, 0.751, math.nan)] == [
        "low", "low", "fair/good", "fair/good", "fair/good", "excellent", "undefined"]


def test_constant_scores_give_a_sentence_not_an_exception(tmp_path):
    rows = [r for r in good_rows(6) if r[3] == "wong_baker"]
    for row in rows:
        row[5] = "0"
    result = agreement(scale_scores(load_ratings(write_csv(tmp_path / "r.csv", rows)).ratings))
    head = result.headline.set_index("source").loc["all"]
    assert math.isnan(head["icc"]) and head["category"] == "undefined"
    assert head["note"] == "ICC for Wong-Baker, All: every score is 0, so agreement is undefined."
    assert table4_cells(result).loc["All", "Wong-Baker"] == "undefined"


def test_a_ci_that_does_not_contain_its_icc_is_left_out_with_a_sentence():
    # 4 videos, 2 raters: pingouin's ICC(A,1) lower bound is below -1, and its Spearman-Brown step to
    # ICC(A,k) gives a lower bound above the upper one.
    pairs = {"V3": (4, 2), "V4": (3, 7), "V5": (9, 6), "V6": (0, 3)}
    scores = pd.DataFrame([{"video": v, "pain_source": "injection", "rater": r, "scale": "wong_baker", "score": float(s)}
                           for v, pair in pairs.items() for r, s in zip("AB", pair)])
    result = agreement(scores)
    forms = result.icc[result.icc["source"] == "all"].set_index("form")
    assert math.isnan(forms.loc["ICC2k", "ci_low"]) and math.isnan(forms.loc["ICC2k", "ci_high"])
    assert round(forms.loc["ICC2k", "icc"], 3) == 0.607
    assert forms.loc["ICC2", "ci_low"] < forms.loc["ICC2", "icc"] < forms.loc["ICC2", "ci_high"]
    assert ("The 95 % CI of ICC2k for Wong-Baker, All from pingouin does not contain the estimate (4 videos are too "
            "few for its approximation), so it is left out.") in result.notes


def test_too_few_videos_for_an_icc_gives_a_sentence(tmp_path):
    rows = [r for r in good_rows(4) if r[3] == "facs"]  # V03 is the only "injection" video but one
    result = agreement(scale_scores(load_ratings(write_csv(tmp_path / "r.csv", rows)).ratings))
    notes = result.headline.set_index("source")["note"]
    assert notes["stretching"] == "ICC for FACS, Muscular stretching: it needs at least 3 videos scored by every rater; there is 1."
    assert notes["all"] == ""  # the 4 videos together do have an ICC


def test_three_raters_work_and_a_video_missing_one_is_kept_for_labels_only(tmp_path):
    rows = good_rows(6, raters=("A", "B", "C"))
    rows = [r for r in rows if not (r[0] == "V05" and r[2] == "C")]
    load = load_ratings(write_csv(tmp_path / "r.csv", rows))
    problem = [p for p in load.problems if p.kind == "missing_rater" and "Wong-Baker" in p.message][0]
    assert problem.message == (f"Row {row_of(rows, 'V05', 'A', 'wong_baker')} and 1 more row: video V05 has Wong-Baker ratings from "
                               "2 of the 3 raters (missing C); it counts for the pain/no-pain labels but is left out "
                               "of the ICC, which needs every rater's score.")
    assert load.rows_excluded == 0
    result = agreement(scale_scores(load.ratings))
    head = result.headline.set_index(["scale", "source"]).loc[("wong_baker", "all")]
    assert (head["n_videos"], head["n_raters"]) == (5, 3) and math.isfinite(head["icc"])
    counts = result.counts.set_index(["scale", "source"]).loc[("wong_baker", "all")]
    assert counts["no_pain"] + counts["pain"] == 6


# --- scale scores -----------------------------------------------------------------------------


def test_facs_pain_score_takes_the_larger_of_paired_action_units(tmp_path):
    aus = {"AU4": 2, "AU6": 1, "AU7": 3, "AU9": 4, "AU10": 0, "AU43": 5}
    rows = [["V1", "other", rater, "facs", au, str(v)] for rater in "AB" for au, v in aus.items()]
    scores = scale_scores(load_ratings(write_csv(tmp_path / "r.csv", rows)).ratings, include_pspi=True)
    by_scale = scores[scores["rater"] == "A"].set_index("scale")["score"]
    assert by_scale["facs"] == 2 + 3 + 4 + 5  # AU4 + max(AU6, AU7) + max(AU9, AU10) + AU43
    assert by_scale["pspi"] == 2 + 3 + 4 + 1  # the same with AU43 as 0/1


def test_ncapc_is_the_sum_of_its_items_and_wong_baker_is_as_given(tmp_path):
    rows = [["V1", "other", "A", "ncapc", item, str(i % 4)] for i, item in enumerate(NCAPC_ITEMS)]
    rows += [["V1", "other", "A", "wong_baker", "", "7"]]
    scores = scale_scores(load_ratings(write_csv(tmp_path / "r.csv", rows + [[*r[:2], "B", *r[3:]] for r in rows]))
                          .ratings).set_index(["rater", "scale"])["score"]
    assert scores[("A", "ncapc")] == sum(i % 4 for i in range(18))
    assert scores[("B", "wong_baker")] == 7


def test_a_video_is_no_pain_only_when_every_rater_gave_zero(tmp_path):
    rows = [r for r in good_rows(6) if r[3] == "wong_baker"]
    for row in rows:
        row[5] = {"V00": "0", "V01": "0" if row[2] == "A" else "1"}.get(row[0], "5")
    result = agreement(scale_scores(load_ratings(write_csv(tmp_path / "r.csv", rows)).ratings))
    labels = result.labels.set_index("video")["label"]
    assert (labels["V00"], labels["V01"], labels["V02"]) == (0, 1, 1)
    counts = result.counts.set_index(["scale", "source"]).loc[("wong_baker", "all")]
    assert (counts["no_pain"], counts["pain"]) == (1, 5)


# --- bad rows: each reported with its row number and a sentence; the good rows are still used --


def test_unknown_scale_row_is_excluded_and_the_rest_used(tmp_path):
    rows = good_rows()
    rows.append(["V00", "injection", "A", "vas", "", "3"])
    load = load_ratings(write_csv(tmp_path / "r.csv", rows))
    problem = only_problem(load, "unknown_scale")
    assert problem.message == (f"Row {len(rows) + 1}: unknown scale 'vas'; the scales are wong_baker, ncapc and "
                               "facs. The row is excluded.")
    assert load.rows_used == len(rows) - 1 and load.rows_excluded == 1
    assert videos_scored(load, "wong_baker") == {f"V{v:02d}" for v in range(6)}


def test_unknown_item_row_is_excluded_and_the_rest_used(tmp_path):
    rows = good_rows()
    rows.append(["V00", "injection", "A", "facs", "AU99", "1"])
    rows.append(["V00", "injection", "A", "wong_baker", "total", "1"])
    load = load_ratings(write_csv(tmp_path / "r.csv", rows))
    messages = [p.message for p in load.problems if p.kind == "unknown_item"]
    assert messages == [
        f"Row {len(rows)}: 'AU99' is not a FACS item; the items are AU4, AU6, AU7, AU9, AU10, AU43. The row is excluded.",
        f"Row {len(rows) + 1}: Wong-Baker takes one score with an empty item, not 'total'; the row is excluded."]
    assert load.rows_used == len(rows) - 2
    assert len(videos_scored(load, "facs")) == 6


def test_score_out_of_range_is_excluded_and_the_rest_used(tmp_path):
    rows = good_rows()
    row = row_of(rows, "V01", "B", "facs", "AU43")
    rows[row - 2][5] = "6"
    load = load_ratings(write_csv(tmp_path / "r.csv", rows))
    assert only_problem(load, "out_of_range").message == (
        f"Row {row}: the score 6 is outside 0-5 for FACS AU43; the row is excluded.")
    # Without AU43, rater B has no FACS score for V01, which leaves V01 with one FACS rater.
    assert only_problem(load, "missing_item").row == row_of(rows, "V01", "B", "facs", "AU4")
    assert only_problem(load, "single_rater").row == row_of(rows, "V01", "A", "facs", "AU4")
    assert videos_scored(load, "facs") == {f"V{v:02d}" for v in range(6)} - {"V01"}
    assert len(videos_scored(load, "ncapc")) == 6


def test_non_numeric_and_empty_scores_are_excluded_and_the_rest_used(tmp_path):
    rows = good_rows()
    first, second = row_of(rows, "V02", "A", "wong_baker"), row_of(rows, "V03", "A", "wong_baker")
    rows[first - 2][5], rows[second - 2][5] = "mild", ""
    load = load_ratings(write_csv(tmp_path / "r.csv", rows))
    messages = [p.message for p in load.problems if p.kind == "non_numeric"]
    assert messages == [f"Row {first}: the score 'mild' is not a number; the row is excluded.",
                        f"Row {second}: the score is empty; the row is excluded."]
    assert videos_scored(load, "wong_baker") == {"V00", "V01", "V04", "V05"}
    assert len(videos_scored(load, "facs")) == 6


def test_duplicate_rating_keeps_the_first_and_reports_the_later(tmp_path):
    rows = good_rows()
    original = row_of(rows, "V04", "B", "ncapc", "crying")
    rows.append(list(rows[original - 2][:5]) + ["3"])
    load = load_ratings(write_csv(tmp_path / "r.csv", rows))
    previous = rows[original - 2][5]
    assert only_problem(load, "duplicate").message == (
        f"Row {len(rows) + 1}: duplicate of row {original} (rater B, NCAPC crying, video V04; {previous} there); "
        f"only row {original} is kept.")
    assert load.rows_used == len(rows) - 1
    kept = load.ratings[(load.ratings["video"] == "V04") & (load.ratings["rater"] == "B") &
                        (load.ratings["item"] == "crying")]
    assert kept["score"].tolist() == [float(previous)]


def test_video_rated_by_one_rater_is_excluded_and_the_rest_used(tmp_path):
    rows = [r for r in good_rows() if not (r[0] == "V05" and r[2] == "B")]
    load = load_ratings(write_csv(tmp_path / "r.csv", rows))
    messages = {p.message for p in load.problems if p.kind == "single_rater"}
    first = row_of(rows, "V05", "A", "ncapc", NCAPC_ITEMS[0])
    assert (f"Row {first} and 17 more rows: video V05 has NCAPC ratings from one rater only (A); agreement needs "
            "two or more raters, so these 18 rows are excluded.") in messages
    assert (f"Row {row_of(rows, 'V05', 'A', 'wong_baker')}: video V05 has Wong-Baker ratings from one rater only "
            "(A); agreement needs two or more raters, so this row is excluded.") in messages
    assert len(messages) == 3 and load.rows_excluded == ROWS_PER_RATER
    result = agreement(scale_scores(load.ratings))
    assert set(result.headline["n_videos"][result.headline["source"] == "all"]) == {5}


def test_rater_missing_an_item_loses_that_scale_score_and_the_rest_is_used(tmp_path):
    rows = [r for r in good_rows() if not (r[0] == "V02" and r[2] == "A" and r[4] == "guarding")]
    load = load_ratings(write_csv(tmp_path / "r.csv", rows))
    first = row_of(rows, "V02", "A", "ncapc", NCAPC_ITEMS[0])
    assert only_problem(load, "missing_item").message == (
        f"Row {first} and 16 more rows: rater A's NCAPC ratings of video V02 lack a usable score for the item(s) "
        "guarding; the NCAPC score needs all 18 items, so these 17 rows are excluded.")
    assert "V02" not in videos_scored(load, "ncapc") and len(videos_scored(load, "ncapc")) == 5
    assert "V02" in videos_scored(load, "facs") and "V02" in videos_scored(load, "wong_baker")


def test_rows_with_missing_fields_or_values_are_reported(tmp_path):
    rows = good_rows()
    rows.append(["V00", "injection", "A", "wong_baker"])  # two fields short
    rows.append(["", "injection", "A", "wong_baker", "", "1"])
    load = load_ratings(write_csv(tmp_path / "r.csv", rows))
    assert only_problem(load, "bad_row").message == (
        f"Row {len(rows)} has 4 fields where the header has 6; the row is excluded.")
    assert only_problem(load, "missing_value").message == f"Row {len(rows) + 1}: the video id is empty; the row is excluded."
    assert load.rows_read == len(rows) and load.rows_used == len(rows) - 2


def test_conflicting_and_unknown_pain_sources_are_reported_and_resolved(tmp_path):
    rows = good_rows()
    conflict = row_of(rows, "V00", "B", "wong_baker")
    rows[conflict - 2][1] = "stretching"
    for row in rows:
        if row[0] == "V01":
            row[1] = "feeding"
    load = load_ratings(write_csv(tmp_path / "r.csv", rows))
    assert only_problem(load, "source_conflict").message == (
        f"Row {conflict}: video V00 has pain source 'stretching' here but 'injection' on row 2; 'injection' is used.")
    assert only_problem(load, "unknown_source").message == (
        f"Row {row_of(rows, 'V01', 'A', 'wong_baker')}: pain source 'feeding' is not one of injection, stretching, "
        "other; video V01 is reported under 'feeding'.")
    assert load.rows_excluded == 0
    assert set(load.ratings.loc[load.ratings["video"] == "V00", "pain_source"]) == {"injection"}


# --- files that are, and are not, ratings files -----------------------------------------------


def test_short_column_names_semicolons_bom_and_decimal_commas_are_accepted(tmp_path):
    rows = good_rows()
    rows[0][5] = "4,5"  # V00 rater A Wong-Baker, as a European spreadsheet writes it
    path = tmp_path / "r.csv"
    write_csv(path, rows, header="video;source;Rater;Scale;Item;Score", delimiter=";")
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    load = load_ratings(path)
    assert (load.delimiter, load.problems, load.rows_used) == (";", [], len(rows))
    assert load.ratings.loc[0, "score"] == 4.5


@pytest.mark.parametrize("content, sentence", [
    (b"a,b,c\n1,2,3\n", "is not a ratings file: its header lacks the column(s) video_id, pain_source, rater, "
                        "scale, item, score; a ratings file is a CSV with the header " + HEADER + "."),
    (b"video_id,rater,score\nV1,A,3\n", "is not a ratings file: its header lacks the column(s) pain_source, scale, "
                                       "item;"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "is not a ratings file: it is binary, not text;"),
    (b"", "is empty: a ratings file is a CSV with the header"),
    ((HEADER + "\n").encode(), "has a ratings header but no ratings; add one row per score and run again."),
])
def test_a_file_that_is_not_a_ratings_file_gets_one_sentence_and_exit_code_2(tmp_path, content, sentence):
    path = tmp_path / "x.csv"
    path.write_bytes(content)
    with pytest.raises(NotADatasetError) as info:
        load_ratings(path)
    assert sentence in str(info.value) and info.value.exit_code == 2
    assert str(info.value).count(". ") == 0  # one sentence


def test_a_cppain_folder_is_read_through_its_ratings_csv(tmp_path):
    rows = good_rows()
    write_csv(tmp_path / "ratings.csv", rows)
    assert load_ratings(tmp_path).rows_used == len(rows)


def test_a_missing_file_is_named_with_what_to_give(tmp_path):
    with pytest.raises(NotADatasetError, match="No ratings file at .*nothere.csv: give the path of a CSV file"):
        load_ratings(tmp_path / "nothere.csv")


# --- Table 4 and the store --------------------------------------------------------------------


def test_table4_has_the_papers_layout_with_counts(tmp_path):
    load = load_ratings(write_csv(tmp_path / "r.csv", good_rows(9)))
    result = agreement(scale_scores(load.ratings))
    table = table4(result)
    assert list(table.index) == ["Intramuscular injection", "Muscular stretching", "Other", "All",
                                 "Videos rated no pain", "Videos rated pain"]
    assert list(table.columns) == ["Wong-Baker", "FACS", "NCAPC"]
    assert (table.loc["Videos rated no pain"] + table.loc["Videos rated pain"]).tolist() == [9.0, 9.0, 9.0]
    head = result.headline.set_index(["scale", "source"])
    assert table.loc["Muscular stretching", "FACS"] == head.loc[("facs", "stretching"), "icc"]
    cell = table4_cells(result).loc["All", "NCAPC"]
    row = head.loc[("ncapc", "all")]
    assert cell == f"{row['icc']:.3f} [{row['ci_low']:.2f}, {row['ci_high']:.2f}] {row['category']}"


def test_write_ratings_stores_readable_files_and_no_temporaries(tmp_path):
    rows = good_rows(9)
    rows.append(["V00", "injection", "A", "vas", "", "1"])
    path = write_csv(tmp_path / "r.csv", rows)
    load = load_ratings(path)
    scores = scale_scores(load.ratings)
    result = agreement(scores)
    store = ExperimentStore(tmp_path, "exp")
    write_ratings(store, result, load, scores=scores, source_file=path)
    folder = tmp_path / "exp" / "ratings"
    assert sorted(p.name for p in folder.iterdir()) == [
        "counts.parquet", "headline.parquet", "icc.parquet", "problems.csv", "scores.parquet", "summary.json",
        "table4.csv", "video_labels.parquet"]
    icc = pd.read_parquet(folder / "icc.parquet")
    assert len(icc) == 3 * 4 * 6 and icc["headline"].sum() == 3 * 4
    problems = pd.read_csv(folder / "problems.csv")
    assert problems.loc[0, "row"] == len(rows) + 1 and problems.loc[0, "kind"] == "unknown_scale"
    import json

    summary = json.loads((folder / "summary.json").read_text())
    assert summary["headline_icc"]["form"] == "ICC2" and summary["rows"]["excluded"] == 1
    assert summary["table4"]["index"][-1] == "Videos rated pain" and len(summary["ratings_sha256"]) == 64
    assert str(tmp_path) not in (folder / "summary.json").read_text()  # no path is stored


# --- model versus clinicians ------------------------------------------------------------------


def clinician_scores(facs_by_video: dict[str, tuple[int, int]]) -> pd.DataFrame:
    return pd.DataFrame([{"video": v, "pain_source": "other", "rater": r, "scale": "facs", "score": float(s)}
                         for v, pair in facs_by_video.items() for r, s in zip("AB", pair)])


def cppain_manifest(videos, labels: dict[str, tuple[str, str]] | None = None) -> pd.DataFrame:
    """Two frames (10, 20) per video; ``labels``: each frame's own label, by video (no column when None)."""
    rows = [{"image": f"images/{v}_{f}.png", "video_id": v, "subject": "S1", "frame": str(f)}
            for v in videos for f in (10, 20)]
    if labels is not None:
        for row in rows:
            row["label"] = labels[row["video_id"]][0 if row["frame"] == "10" else 1]
    return pd.DataFrame(rows)


def predictions_for(p_by_video: dict[str, float | tuple[float, float]], predicted: dict[str, int] | None = None,
                    fold: int = 0, own: dict[str, tuple[int, int]] | None = None) -> pd.DataFrame:
    """Frames 10 and 20 of each video; p(pain) one value or one per frame; ``own``: frames' own labels."""
    rows = []
    for v, p in p_by_video.items():
        pair = p if isinstance(p, tuple) else (p, p)
        for k, f in enumerate((10, 20)):
            rows.append({"model": "VGG16", "scenario": "external", "fold": fold, "image_id": f"cppain/S1/{v}/{f:05d}",
                         "subject": "S1", "dataset": "cppain", "true_label": own[v][k] if own else 1,
                         "p_pain": pair[k], "predicted_label": predicted[v] if predicted else int(pair[k] >= 0.5)})
    return pd.DataFrame(rows)


def test_model_agreement_compares_each_video_by_the_mean_p_of_its_frames():
    facs = {"V1": (0, 0), "V2": (0, 0), "V3": (0, 2), "V4": (3, 5), "V5": (6, 8), "V6": (9, 11)}
    # (pain moment, calm moment) per video; video means 0.05, 0.05, 0.3, 0.6, 0.8, 0.9: the ranks of the scores
    p_pain = {"V1": (0.1, 0.0), "V2": (0.0, 0.1), "V3": (0.2, 0.4), "V4": (0.9, 0.3), "V5": (0.7, 0.9),
              "V6": (1.0, 0.8)}
    own = {v: (int(max(pair) > 0), 0) for v, pair in facs.items()}  # the calm frame is labelled no pain
    preds = predictions_for(p_pain, own=own)
    preds = pd.concat([preds, preds.assign(model="SongNet", dataset="unbc")], ignore_index=True)  # not CP-PAIN
    labels = {v: tuple("pain" if x else "no_pain" for x in pair) for v, pair in own.items()}
    out = model_vs_clinicians(preds, cppain_manifest(facs, labels), clinician_scores(facs))
    assert out[["model", "level", "scale"]].values.tolist() == [["VGG16", "video", "facs"],
                                                                ["VGG16", "frame", "frame_label"]]
    video, frame = out.iloc[0], out.iloc[1]
    assert (video["n_images"], video["n_videos"], video["n_unlinked"]) == (12, 6, 0)
    assert video["spearman_rho"] == pytest.approx(1.0) and video["roc_auc"] == pytest.approx(1.0)
    # videos predicted (mean >= 0.5) 0 0 0 1 1 1 against FACS 0 0 1 1 1 1: agreement 5/6, chance 1/2 -> kappa 2/3
    assert video["kappa"] == pytest.approx(2 / 3)
    assert video["pain_share"] == pytest.approx(4 / 6) and video["note"] == ""
    assert video["comparison"].startswith("per video: mean p(pain) of its frames")
    cp = preds[preds["model"] == "VGG16"]
    assert frame["roc_auc"] == pytest.approx(roc_auc_score(cp["true_label"], cp["p_pain"]))
    assert frame["kappa"] == pytest.approx(cohen_kappa_score(cp["true_label"], cp["p_pain"] >= 0.5))
    assert math.isnan(frame["spearman_rho"]) and frame["n_images"] == 12
    # The old way (each frame given its video's label) counts V4's right "no pain" on its calm frame as wrong.
    video_label_per_frame = np.repeat([int(max(facs[v]) > 0) for v in facs], 2)
    assert cohen_kappa_score(video_label_per_frame, cp["p_pain"] >= 0.5) < video["kappa"]


def test_without_frame_labels_only_videos_are_compared_and_the_summary_keeps_levels_apart():
    facs = {"V1": (0, 0), "V2": (2, 3), "V3": (4, 4)}
    out = model_vs_clinicians(predictions_for({"V1": 0.2, "V2": 0.5, "V3": 0.7}), cppain_manifest(facs),
                              clinician_scores(facs))
    assert set(out["level"]) == {"video"}
    both = pd.concat([out, out.assign(fold=1, roc_auc=0.5)], ignore_index=True)
    summary = summarize_model_agreement(both)
    assert summary[["level", "scale", "runs"]].values.tolist() == [["video", "facs", 2]]
    assert summary["roc_auc_mean"].iloc[0] == pytest.approx((1.0 + 0.5) / 2)


def test_model_agreement_links_by_file_name_when_the_image_id_differs_and_counts_the_rest():
    facs = {"V1": (0, 0), "V2": (2, 3), "V3": (4, 4)}
    preds = predictions_for({"V1": 0.2, "V2": 0.5, "V3": 0.7}, {"V1": 0, "V2": 1, "V3": 1})
    preds.loc[0, "image_id"] = "cppain/S1/clip-one/V1_10"  # an adapter that names frames by file stem
    preds.loc[1, "image_id"] = "cppain/S1/unknown/99999"
    out = model_vs_clinicians(preds, cppain_manifest(facs), clinician_scores(facs)).iloc[0]
    assert (out["n_images"], out["n_unlinked"]) == (5, 1)


def test_undefined_model_metrics_say_why():
    facs = {"V1": (1, 2), "V2": (2, 3), "V3": (4, 4)}  # every video is "pain" on FACS
    preds = predictions_for({"V1": 0.5, "V2": 0.5, "V3": 0.5}, {"V1": 1, "V2": 1, "V3": 1})
    row = model_vs_clinicians(preds, cppain_manifest(facs), clinician_scores(facs)).iloc[0]
    assert math.isnan(row["spearman_rho"]) and math.isnan(row["roc_auc"]) and math.isnan(row["kappa"])
    assert row["note"] == ("Spearman's rho is undefined: p(pain) is constant. ROC-AUC is undefined: every linked "
                           "video is rated pain on FACS. Cohen's kappa is undefined: the network and the clinicians "
                           "use one and the same class only.")


def test_the_served_answer_stands_beside_the_raters_with_the_same_measures_on_the_same_videos():
    from scipy.stats import spearmanr

    from engine.ratings.model_agreement import CONSENSUS, SERVED, answer_beside_raters

    rng = np.random.default_rng(3)
    videos = [f"V{i:02d}" for i in range(12)]
    first = rng.integers(0, 6, 12).astype(float)
    second = np.where(rng.random(12) < 0.8, first, rng.integers(0, 6, 12)).astype(float)
    scores = pd.DataFrame([(v, "injection", rater, "wong_baker", s) for rater, values in (("A", first), ("B", second))
                           for v, s in zip(videos, values)], columns=["video", "pain_source", "rater", "scale", "score"])
    manifest = pd.DataFrame({"image": [f"{v}_1.png" for v in videos], "video_id": videos})
    p_pain = np.clip(first / 6 + 0.05, 0, 1)  # follows rater A's score
    served = pd.DataFrame({"model": SERVED, "image_id": [f"cppain/s/{v}/1" for v in videos], "p_pain": p_pain})
    served = served.iloc[:10]  # the last two videos: every frame withheld
    table = answer_beside_raters(served, manifest, scores, seed=0)
    rows = table.set_index(["first", "second", "measure"])
    raters = rows.loc[("A", "B", "kappa")]
    assert raters.n_videos == 12 and raters.n_withheld == 0
    assert raters.value == pytest.approx(cohen_kappa_score((first > 0).astype(int), (second > 0).astype(int)))
    answer_a = rows.loc[(SERVED, "A", "spearman_rho")]
    assert answer_a.n_videos == 10 and answer_a.n_withheld == 2
    assert answer_a.value == pytest.approx(spearmanr(p_pain[:10], first[:10])[0])
    assert answer_a.low <= answer_a.value <= answer_a.high
    consensus = rows.loc[(SERVED, CONSENSUS, "kappa")]
    paper_label = ((np.maximum(first, second) > 0).astype(int))[:10]
    assert consensus.value == pytest.approx(cohen_kappa_score(paper_label, (p_pain[:10] >= 0.5).astype(int)))
    constant = answer_beside_raters(served.assign(p_pain=0.9), manifest, scores)
    row = constant.set_index(["first", "second", "measure"]).loc[(SERVED, "A", "spearman_rho")]
    assert math.isnan(row.value) and "constant" in row.note
