"""A clip's own calm seconds as the person's reference (``engine.person_baseline``: ``calm_seconds``,
``stretch_baseline``, ``answer_with_calm_seconds``): the range read from text, the reference from the clip's answer
record, and a sentence for every stretch that gives none. Records are built here as the timeline builds them; the
path through MTCNN and the networks is ``tests/test_batch_predict.py``'s (``--calm-seconds``) and the demo's figures
``bench/calm_stretch.py``'s."""

from __future__ import annotations

import pytest

from engine.answers import Frame, PhotoAnswer, VideoAnswer, VideoFacts, network_means
from engine.evaluation.baseline import logit, sigmoid
from engine.person_baseline import (MIN_STRETCH_FACES, CalmSeconds, NoBaselineError, PersonBaseline,
                                    answer_with_calm_seconds, calm_seconds, judged_against, stretch_baseline)


@pytest.mark.parametrize("text, expected", [("0-3", (0, 3)), ("1.5-4 s", (1.5, 4)), (" 2 to 5 ", (2, 5)),
                                            ("0.5s-2s", (0.5, 2)), ("2–6", (2, 6)), (".5-1", (0.5, 1))])
def test_calm_seconds_are_read_as_a_start_and_an_end_in_seconds(text, expected):
    assert calm_seconds(text) == CalmSeconds(*expected)


@pytest.mark.parametrize("text, said", [
    ("", "cannot be read: give the stretch of the clip at rest as A-B"),
    ("the first bit", "cannot be read"), ("-1-3", "cannot be read"), ("3", "cannot be read"),
    ("5-2", "end before they start: give the start first (for example 2-5)"),
    ("2-2", "are an empty stretch"), ("9" * 400 + "-" + "9" * 401, "too large")])
def test_a_bad_range_gets_a_sentence_that_says_how_to_write_it(text, said):
    with pytest.raises(NoBaselineError, match=said[:30].replace("(", r"\(")):
        calm_seconds(text)


def clip_record(served: list[float | None], fps: float = 2.0, ood: dict[int, float] | None = None,
                pspi: list[float] | None = None) -> VideoAnswer:
    """A clip's record as ``engine.answers.video_answer`` makes it: one frame per 1/fps, None for a gap."""
    frames = []
    for i, p in enumerate(served):
        frame = Frame(t=i / fps, p_pain=p, face=p is not None, ood_score=(ood or {}).get(i, 0.5),
                      aus=None if p is None else {"AU4": 2.0 + i, "PSPI": float(i if pspi is None else pspi[i])})
        frame._served = p
        frame._networks = None if p is None else {"A": p, "B": p / 2}  # each network's raw p(pain), as video_answer keeps
        frames.append(frame)
    answered = [p for p in served if p is not None]
    return VideoAnswer(path="clip.mp4", frames=frames, fps=fps, p_pain=sum(answered) / len(answered),
                       answered_frames=len(answered), networks=network_means(frames, ["A", "B"]))


def test_the_reference_is_the_mean_logit_and_mean_aus_of_the_stretchs_faces():
    record = clip_record([0.9, 0.95, None, 0.97, 0.99, 0.99, 0.6])
    reference = stretch_baseline(record, calm_seconds("0-2"))  # frames at 0, 0.5, (1.0 a gap), 1.5
    assert reference.kind == "stretch" and reference.frames == 3 and reference.seconds == CalmSeconds(0, 2)
    assert reference.p_pain == pytest.approx(float(sigmoid(logit([0.9, 0.95, 0.97]).mean())))
    assert reference.aus == {"AU4": pytest.approx((2 + 3 + 5) / 3), "PSPI": pytest.approx(4 / 3)}
    assert "this clip's own seconds 0-2" in reference.notes[0] and "not evidence" in reference.notes[0]


def test_a_stretch_past_the_clips_end_is_cut_there_and_one_outside_it_gets_a_sentence():
    record = clip_record([0.9] * 8)  # 8 frames at 2 a second: 0-4 s
    assert stretch_baseline(record, calm_seconds("2-30")).seconds == CalmSeconds(2, 4)
    with pytest.raises(NoBaselineError, match=r"are outside the clip: its analysed part is 0-4 s"):
        stretch_baseline(record, calm_seconds("4-6"))
    record.video = VideoFacts(width=320, height=240, rotation=0, seconds=3.8, codec="h264")  # its last frame is shorter
    with pytest.raises(NoBaselineError, match=r"its analysed part is 0-3.8 s"):
        stretch_baseline(record, calm_seconds("3.9-6"))


@pytest.mark.parametrize("served, ood, seconds, said", [
    ([0.9, None, None, 0.9, 0.9, 0.9], None, "0-2", f"2 of their 4 analysed frames have a usable face .*at least "
                                                     f"{MIN_STRETCH_FACES} are needed"),
    ([0.9, 0.9, 0.9, 0.9, 0.9], {0: 1.5, 1: 2.0, 2: 1.2}, "0-2", "3 of their 4 faces are unlike the faces"),
    ([0.9, 0.9, 0.9, 0.9], {0: 1.5}, "0-1", r"1 of their 2 analysed frames have a usable face \(the face was "
                                           r"followed in 2, 1 of them unlike the training faces\)"),
    ([0.9, 0.9, 0.9, None], None, "0-5", "cover every frame with the face: nothing of the clip is left"),
    ([0.9, 0.9, 0.9, 0.9], None, "0.1-0.2", r"No analysed frame falls in the calm seconds 0.1-0.2 s")])
def test_a_stretch_that_gives_no_reference_gets_a_sentence(served, ood, seconds, said):
    with pytest.raises(NoBaselineError, match=said):
        stretch_baseline(clip_record(served, ood=ood), calm_seconds(seconds))


def test_without_a_reference_the_clip_keeps_the_face_alones_answer_and_says_why():
    record = clip_record([0.9, None, None, 0.8, 0.7])
    before = record.model_dump()
    answered = answer_with_calm_seconds(None, record, calm_seconds("0-1.5"))  # no reference: the rule is not asked for
    assert answered.answer_kind == "absolute" and answered.baseline is None
    assert answered.p_pain == before["p_pain"] and [f.p_pain for f in answered.frames] == [0.9, None, None, 0.8, 0.7]
    assert "give no reference" in answered.notes[-1] and "the face alone's (answer_kind absolute)" in answered.notes[-1]
    photo = answer_with_calm_seconds(None, PhotoAnswer(path="face.png", p_pain=0.7), calm_seconds("0-1"))
    assert photo.p_pain == 0.7 and "mark a stretch of a clip, and this is a photo" in photo.notes[-1]


# A baseline rule as answer.json holds it (the demo's shape: the answer with the reference from the change in logit
# and in PSPI, with its own conformal thresholds); the numbers are made up, not fitted.
RULE = {"slope": 1.5, "intercept": -4.8, "rest_threshold": 0.13, "lead_quantile": 0.9, "images": 100, "subjects": 10,
        "answer": {"used": True, "inputs": ["change", "pspi_change"], "weights": [1.0, 1.3], "intercept": -4.5,
                   "with_pspi": True, "conformal": {"level": 0.9, "q_pain": 0.05, "q_no_pain": 0.06},
                   "rule_name": "change_and_pspi_change", "reason": "lowest log-loss", "images": 100, "subjects": 10,
                   "cv_logloss": {"change_and_pspi_change": 0.07}, "cv_logloss_without_reference": 0.11,
                   "reference": "the same subject's calm frames"}}


def test_the_calm_seconds_frames_are_the_reference_not_evidence_and_the_record_says_where_it_came_from():
    # A resting face that reads as pain (0.99) throughout; pain (PSPI up) from 3 s to 4.5 s.
    record = clip_record([0.99] * 10, pspi=[1, 1, 1, 1, 1, 1, 6, 7, 7, 1])
    answered = judged_against(record, stretch_baseline(record, calm_seconds("0-2")), RULE)
    marked = [f for f in answered.frames if f.reference]
    assert [f.t for f in marked] == [0, 0.5, 1.0, 1.5] and all(f.p_pain is None and not f.abstained for f in marked)
    assert answered.answer_kind == "with_reference" and answered.answered_frames <= 6 and answered.peak_t >= 2
    b = answered.baseline
    assert b.reference_from == "calm_seconds" and b.calm_seconds == [0, 2] and b.baseline_frames == 4
    assert b.p_absolute == pytest.approx(0.99)  # the face alone's, over the same frames outside the stretch
    pain = {f.t: f.p_pain for f in answered.frames if f.t >= 2}
    assert pain[3.5] > 0.5 > pain[2.0]  # against its own calm frames: only the frames that moved read as pain
    assert any("this clip's own seconds 0-2" in note for note in answered.notes)
    # Each frame keeps the face alone's value beside its answer with the reference; the stretch's frames have neither.
    assert [f.p_absolute for f in answered.frames] == [None] * 4 + [0.99] * 6
    # Each network's mean leaves the stretch out too, as the score does.
    assert answered.networks == {"A": pytest.approx(0.99), "B": pytest.approx(0.495)}
    uneven = clip_record([0.2, 0.2, 0.2, 0.2, 0.8, 0.8])
    assert judged_against(uneven, stretch_baseline(uneven, calm_seconds("0-2")), None).networks == {"A": 0.8, "B": 0.4}
    json = answered.to_json()
    assert json["frames"][0]["reference"] is True and json["baseline"]["reference_from"] == "calm_seconds"
    photo = judged_against(clip_record([0.99] * 10), PersonBaseline(0.9, 1, "image", aus={"PSPI": 1.0}), RULE)
    assert photo.baseline.reference_from == "photo" and photo.baseline.calm_seconds is None
    assert not any(f.reference for f in photo.frames)  # every frame judged (a number, or withheld as uncertain)
    assert all(f.p_pain is not None or f.abstained for f in photo.frames)


# --- the front doors: painlens predict --calm-seconds, the API's field calm_seconds --------------------------

def _api(predictor=None):
    from fastapi.testclient import TestClient

    from painlens.api import ApiSettings, create_app

    return TestClient(create_app(predictor, ApiSettings(token="t" * 20)), base_url="http://127.0.0.1",
                      headers={"Authorization": "Bearer " + "t" * 20})


@pytest.mark.parametrize("fields, said", [
    ({"calm_seconds": "5-2"}, "end before they start: give the start first (for example 2-5). (the field `calm_seconds`)"),
    ({"calm_seconds": "the start"}, "cannot be read: give the stretch of the clip at rest as A-B"),
    ({"calm_seconds": "0-2", "reference": ("calm.png", b"\x89PNG")}, "(the field `reference`) or as seconds of this clip"
                                                                      " (the field `calm_seconds`), not both.")])
def test_the_api_answers_a_bad_calm_seconds_field_with_422_and_a_sentence_before_analysing(fields, said):
    reference = fields.pop("reference", None)
    files = {"file": ("clip.mp4", b"\x00\x00\x00\x18ftypmp42 not analysed"), **({"reference": reference} if reference else {})}
    with _api() as client:  # no predictor: a range that cannot be used is refused before any analysis
        response = client.post("/v1/predict", files=files, data=fields)
        assert response.status_code == 422 and said in response.json()["error"], response.text
        form = client.get("/openapi.json").json()["paths"]["/v1/predict"]["post"]["requestBody"]["content"]
        described = form["multipart/form-data"]["schema"]["properties"]["calm_seconds"]
        assert described["type"] == "string" and "marked `reference`" in described["description"]
        frame = client.get("/openapi.json").json()["components"]["schemas"]["Frame"]["properties"]
        assert "face alone's answer" in frame["p_absolute"]["description"]  # each frame's two answers, in the API too


def test_the_timeline_shows_the_calm_seconds_as_a_span_of_their_own_with_no_values_in_it():
    import pandas as pd

    from dashboard.video_charts import CALM_COLOUR, timeline

    curve = pd.DataFrame({"t": [i / 2 for i in range(8)], "face": True, "p_pain": 0.99, "low": 0.98, "high": 1.0})
    spec = timeline(curve, 3.5, 0.5, "p(pain) over the clip", calm=(0.0, 2.0)).to_dict()
    datasets = spec["datasets"].values()
    calm = [layer for layer in spec["layer"] if layer["mark"].get("color") == CALM_COLOUR]
    assert len(calm) == 2  # the span and its label
    drawn = [row for rows in datasets for row in rows if "p_pain" in row and row["p_pain"] is not None]
    assert drawn and all(row["t"] >= 2 for row in drawn)  # the line and band only outside the calm seconds
    spans = [row for rows in datasets for row in rows if "what" in row]
    assert spans and {row["what"].split(":")[0] for row in spans} == {"calm reference"}  # not drawn as a gap


def test_a_clip_judged_against_its_calm_seconds_is_drawn_with_that_answer_the_face_alone_only_a_grey_dashed_line():
    import pandas as pd

    from dashboard.video_charts import ALONE, ALONE_COLOUR, ANSWER_WITH, answer_curve, timeline

    record = clip_record([0.99] * 10, pspi=[1, 1, 1, 1, 1, 1, 6, 7, 7, 1])
    analysed = pd.DataFrame({"t": [f.t for f in record.frames], "face": True, "p_pain": 0.99, "low": 0.98, "high": 1.0})
    assert answer_curve(record, analysed)["p_pain"].tolist() == [0.99] * 10 and "p_absolute" not in answer_curve(
        record, analysed)  # the face alone's answer: its own line, its band
    answered = judged_against(record, stretch_baseline(record, calm_seconds("0-2")), RULE)
    curve = answer_curve(answered, analysed)
    assert [None if pd.isna(v) else v for v in curve["p_pain"]] == [f.p_pain for f in answered.frames]  # the record's
    assert curve["low"].isna().all() and curve["reference"].tolist() == [True] * 4 + [False] * 6
    spec = timeline(curve, answered.peak_t, 0.5, "p(pain) over the clip", calm=(0.0, 2.0)).to_dict()
    rows = [row for rows in spec["datasets"].values() for row in rows if row.get("series")]
    main = {row["t"]: row["p_pain"] for row in rows if row["series"] == ANSWER_WITH}
    alone = {row["t"]: row["p_pain"] for row in rows if row["series"] == ALONE}
    assert main == {f.t: f.p_pain for f in answered.frames if f.p_pain is not None} and max(main.values()) > 0.5
    assert alone == {f.t: 0.99 for f in answered.frames if not f.reference}  # nothing drawn in the calm span
    lines = [layer for layer in spec["layer"] if layer["mark"].get("type") == "line"]
    grey = [layer for layer in lines if layer["mark"].get("strokeDash")]
    assert len(lines) == 2 and len(grey) == 1 and grey[0]["mark"]["strokeWidth"] < lines[-1]["mark"]["strokeWidth"]
    assert lines[-1]["encoding"]["color"]["scale"] == {"domain": [ANSWER_WITH, ALONE], "range": ["#D55E00", ALONE_COLOUR]}
