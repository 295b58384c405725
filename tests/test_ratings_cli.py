"""``painlens ratings`` on a file, and the ratings step of an experiment (``painlens run``)."""

from __future__ import annotations

import json
import sys

import pandas as pd
import pytest

from painlens import cli
from engine.artifacts import ExperimentStore, RunKey
from engine.config import config_from_dict
from engine.errors import ConfigError
from engine.ratings import rate_experiment
from engine.ratings.load import HEADER
from engine.scales import FACS_ITEMS, NCAPC_ITEMS


def ratings_rows(n_videos: int = 6) -> list[str]:
    """Two raters who agree but for one point on odd videos; sources cycle injection, stretching, other."""
    rows = []
    for v in range(n_videos):
        video, source, level = f"V{v}", ("injection", "stretching", "other")[v % 3], v % 4
        for rater, bump in (("A", 0), ("B", v % 2)):
            rows.append(f"{video},{source},{rater},wong_baker,,{2 * level + bump}")
            rows += [f"{video},{source},{rater},ncapc,{item},{min(3, level + bump)}" for item in NCAPC_ITEMS]
            rows += [f"{video},{source},{rater},facs,{item},{min(5, level + bump)}" for item in FACS_ITEMS]
    return rows


def write_ratings_csv(path, rows) -> str:
    path.write_text(HEADER + "\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return str(path)


def run_cli(monkeypatch, capsys, *args) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "argv", ["painlens", *args])
    with pytest.raises(SystemExit) as info:
        cli.main()
    out, err = capsys.readouterr()
    return info.value.code or 0, out, err


def test_ratings_command_prints_table4_and_the_problems(tmp_path, monkeypatch, capsys):
    rows = ratings_rows() + ["V0,injection,A,facs,AU44,1"]
    code, out, err = run_cli(monkeypatch, capsys, "ratings", write_ratings_csv(tmp_path / "r.csv", rows))
    assert code == 0 and err == ""
    for text in ("ICC2 (two-way random, absolute agreement, single", "Intramuscular injection", "Muscular stretching",
                 "Videos rated no pain", "Wong-Baker", "NCAPC", "rows read 301, used 300, excluded 1",
                 "1 unknown items:", f"Row {len(rows) + 1}: 'AU44' is not a FACS item"):
        assert text in out, text


def test_ratings_command_json_lists_every_problem_with_its_row(tmp_path, monkeypatch, capsys):
    rows = ratings_rows(9) + ["V0,injection,A,wong_baker,,11", "V1,stretching,A,ncapc,crying,x"]
    code, out, _ = run_cli(monkeypatch, capsys, "ratings", write_ratings_csv(tmp_path / "r.csv", rows), "--json",
                           "--headline", "ICC(C,1)")
    assert code == 0
    data = json.loads(out)
    assert data["headline_icc"] == {"form": "ICC3", "pingouin_type": "ICC(C,1)",
                                    "description": "two-way mixed, consistency, single rater"}
    assert [(p["row"], p["kind"]) for p in data["problems"]][:2] == [(452, "out_of_range"), (453, "non_numeric")]
    assert data["rows"] == {"read": 452, "used": 450, "excluded": 2}
    assert data["table4"]["columns"] == ["Wong-Baker", "FACS", "NCAPC"]
    assert len(data["icc"]) == 3 * 4 * 6


def test_ratings_command_exits_2_with_a_sentence_for_a_file_that_is_not_ratings(tmp_path, monkeypatch, capsys):
    path = tmp_path / "samples.csv"
    path.write_text("image,subject,label\na.png,S1,pain\n")
    code, out, err = run_cli(monkeypatch, capsys, "ratings", str(path))
    assert code == 2 and out == ""
    assert "is not a ratings file: its header lacks the column(s) video_id" in " ".join(err.split())
    assert "Traceback" not in err


def test_ratings_command_refuses_an_unknown_headline_form(tmp_path, monkeypatch, capsys):
    code, _, err = run_cli(monkeypatch, capsys, "ratings", write_ratings_csv(tmp_path / "r.csv", ratings_rows()),
                           "--headline", "ICC5")
    assert code == 2 and "--headline: unknown ICC form 'ICC5'" in " ".join(err.split())


def test_ratings_command_exits_1_when_no_row_is_usable(tmp_path, monkeypatch, capsys):
    code, _, err = run_cli(monkeypatch, capsys, "ratings", write_ratings_csv(tmp_path / "r.csv", ["V0,other,A,vas,,1"]))
    assert code == 1 and "all 1 rows have problems" in " ".join(err.split())


def test_config_refuses_an_unknown_headline_form():
    assert config_from_dict({"ratings": {"headline_icc": "ICC(A,k)"}}).ratings.headline_icc == "ICC(A,k)"
    with pytest.raises(ConfigError, match=r"\[ratings\] headline_icc: unknown ICC form 'ICC22'"):
        config_from_dict({"ratings": {"headline_icc": "ICC22"}})


def test_experiment_ratings_step_writes_agreement_and_model_comparison(tmp_path):
    cppain = tmp_path / "data" / "cppain"
    cppain.mkdir(parents=True)
    write_ratings_csv(cppain / "ratings.csv", ratings_rows())
    manifest = pd.DataFrame([{"image": f"V{v}_{f}.png", "video_id": f"V{v}", "subject": "S1", "frame": f,
                              "label": "pain" if f else "no_pain", "pain_source": "other"}
                             for v in range(6) for f in (0, 1)])
    manifest.to_csv(cppain / "manifest.csv", index=False)
    config = config_from_dict({"experiment": {"name": "t"}, "data": {"root": "data"}}, base_dir=tmp_path)
    store = ExperimentStore(tmp_path / "artifacts", "t")
    for fold, done in ((0, True), (1, False)):  # fold 1 never finished: it must be ignored
        key = RunKey("InceptionV3", "external", fold)
        store.write_predictions(key, pd.DataFrame({
            "image_id": [f"cppain/S1/V{v}/{f:05d}" for v in range(6) for f in (0, 1)],
            "true_label": [f for _ in range(6) for f in (0, 1)],
            "p_pain": [0.1 * v + 0.05 * f for v in range(6) for f in (0, 1)],
            "predicted_label": [int(v >= 2) for v in range(6) for _ in (0, 1)]}))
        if done:
            store.finish_run(key, {})
    report = rate_experiment(config, store)
    assert report is not None and report.notes == []
    agreement = store.ratings_table("model_agreement")
    videos = agreement[agreement["level"] == "video"]
    assert set(agreement["fold"]) == {0} and set(videos["scale"]) == {"wong_baker", "facs", "ncapc"}
    assert (videos["n_videos"] == 6).all() and (agreement["n_images"] == 12).all() and (agreement["n_unlinked"] == 0).all()
    assert agreement.loc[agreement["level"] == "frame", "scale"].tolist() == ["frame_label"]  # frames carry labels
    summary = store.ratings_table("model_agreement_summary")
    assert summary.set_index("scale").loc["facs", "runs"] == 1
    assert store.ratings_summary()["model_agreement"] is True


def test_experiment_without_ratings_file_skips_the_step(tmp_path):
    config = config_from_dict({"data": {"root": "data"}}, base_dir=tmp_path)
    assert rate_experiment(config, ExperimentStore(tmp_path / "artifacts", "x")) is None
