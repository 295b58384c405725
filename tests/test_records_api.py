"""The assessment records over HTTP (painlens/records_api.py inside painlens.api's app, FastAPI's in-process
client): behind the token, an answer from /v1/predict saved and read back on the same database the dashboard
uses, bad input 422 with a sentence, a database that cannot be reached 503 with its sentence."""

from __future__ import annotations

import base64

import pytest

from dashboard_fixtures import encode, face_image

pytestmark = pytest.mark.slow  # the tiny experiment's predictor
TOKEN = "records-token-for-the-tests-0123456789"


@pytest.fixture(scope="module")
def client(tiny_predictor, tmp_path_factory):
    from fastapi.testclient import TestClient

    from painlens.api import ApiSettings, create_app

    url = f"sqlite:///{tmp_path_factory.mktemp('records-api') / 'records.sqlite'}"
    app = create_app(tiny_predictor, ApiSettings(address="127.0.0.1", token=TOKEN))
    with TestClient(app, base_url="http://127.0.0.1") as test_client:  # a Host the API's guard accepts
        test_client.database_url, test_client.predictor = url, tiny_predictor
        test_client.headers["Authorization"] = f"Bearer {TOKEN}"
        yield test_client


@pytest.fixture(autouse=True)
def database_url(client, monkeypatch):
    monkeypatch.setenv("PAINLENS_DATABASE_URL", client.database_url)


def test_an_answer_from_predict_is_saved_and_read_back_behind_the_token(client):
    from engine.records.assessments import audit_events
    from engine.records.database import open_database

    photo = encode(face_image(41, size=(320, 320)), "JPEG", quality=90)
    answer = client.post("/v1/predict", content=photo, headers={"Content-Type": "image/jpeg"}).json()
    body = {"person_code": "P-77", "answer": answer, "saved_by": "dr-lopez", "rating_scale": "ncapc",
            "rating_score": 12, "note": "after physiotherapy", "image_base64": base64.b64encode(photo).decode()}
    assert client.post("/v1/assessments", json=body, headers={"Authorization": "Bearer wrong"}).status_code == 401
    saved = client.post("/v1/assessments", json=body)
    assert saved.status_code == 201 and saved.json()["person_code"] == "P-77"
    history = client.get("/v1/persons/P-77/assessments").json()
    kept = history["assessments"][0]
    assert kept["answer"]["networks"] == answer["networks"] and kept["answer"]["p_pain"] == answer["p_pain"]
    assert (kept["saved_by"], kept["rating_score"], kept["image_kept"]) == ("api:dr-lopez", 12.0, True)
    assert kept["experiment"] == "tiny" and kept["experiment_version"].startswith("git ")
    assert kept["answer_kind"] == answer["answer_kind"] == "absolute"  # which answer the number is, as a field
    actions = [e["action"] for e in audit_events(open_database(client.database_url), "P-77")]
    assert actions == ["save", "view_history"]
    assert set(client.app.openapi()["paths"]) >= {"/v1/assessments", "/v1/persons/{code}/assessments"}


def test_bad_input_is_422_and_an_unreachable_database_503_each_with_a_sentence(client, monkeypatch, tmp_path):
    answer = {"p_pain": 0.4}
    bad = client.post("/v1/assessments", json={"person_code": "Jane Doe", "answer": answer, "saved_by": "x"})
    assert bad.status_code == 422 and "never a name" in bad.json()["error"]
    missing = client.post("/v1/assessments", json={"person_code": "P-1", "answer": answer})
    assert missing.status_code == 422 and missing.json()["error"].startswith("The request is not an assessment (saved_by")
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("PAINLENS_DATABASE_URL", f"sqlite:///{blocker / 'records.sqlite'}")
    from fastapi.testclient import TestClient

    from painlens.api import ApiSettings, create_app

    with TestClient(create_app(client.predictor, ApiSettings(token=TOKEN)), base_url="http://127.0.0.1") as other:  # opens the database anew
        down = other.post("/v1/assessments", json={"person_code": "P-1", "answer": answer, "saved_by": "x"},
                          headers={"Authorization": f"Bearer {TOKEN}"})
    assert down.status_code == 503 and down.json()["error"].endswith("nothing was saved.")
    assert "cannot be reached" in down.json()["error"]
