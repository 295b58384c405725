"""`painlens api`: the real server process (uvicorn) on a free port, driven over HTTP with `requests`, on the
tiny experiment of tests/dashboard_fixtures.py. Every endpoint, the bad inputs the upload page handles (same
sentences), a too-large body, videos, auth on a non-local address, and that uploads leave no trace on disk
or in the log. The module's server is started as the README's proxy recipe starts it (127.0.0.1, the proxy's
name allowed, no token set): it makes its own token and refuses every request without it. Photos are rendered
people (never real faces)."""

from __future__ import annotations

import base64
import io
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

requests = pytest.importorskip("requests")

from dashboard_fixtures import encode, face_image  # noqa: E402
from engine.errors import BadImageError  # noqa: E402
from engine.preprocess.decode import UPLOAD_LONGEST_SIDE, decode  # noqa: E402
from serving_fixtures import LAYOUTS, crowd_photo  # noqa: E402

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parent.parent
UPLOAD_MB = 2  # the test server's cap: a small body is enough to cross it
TOKEN = "t0ken-for-the-tests-" + "x" * 12
SECRET_NAME = "Jane-Doe-patient-Q93X.jpg"  # a file name that must never reach the log
PROXY_NAME = "painlens.hospital.example"  # the README's recipe: nginx forwards this Host to 127.0.0.1


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """A `painlens api` process in its own session (stopped by its id), its log in a file."""

    def __init__(self, experiment: Path, folder: Path, *args: str, token: str = ""):
        folder.mkdir(parents=True, exist_ok=True)
        self.token = token  # "": the one the server prints at start (read in wait_until_up)
        self.port, self.log_path, self.tmp = _free_port(), folder / "server.log", folder / "tmp"
        self.tmp.mkdir(exist_ok=True)
        env = {**os.environ, "PAINLENS_API_TOKEN": token, "TMPDIR": str(self.tmp), "TF_CPP_MIN_LOG_LEVEL": "2"}
        argv = [sys.executable, "-m", "painlens.cli", "api", "--artifacts", str(experiment), "--port", str(self.port),
                "--max-upload-mb", str(UPLOAD_MB), *args]
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(argv, cwd=folder, env=env, stdout=log, stderr=subprocess.STDOUT,
                                            start_new_session=True)
        self.url = f"http://127.0.0.1:{self.port}"

    def wait_until_up(self, timeout: float = 180.0) -> "Server":
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.log()
            try:
                if requests.get(f"{self.url}/health", timeout=2).status_code == 200:
                    if not self.token:
                        printed = self.log().split("this run's token is", 1)[1].splitlines()
                        self.token = printed[1].strip()
                    return self
            except requests.ConnectionError:
                pass
            time.sleep(0.2)  # polling a starting server, not waiting for a result
        raise TimeoutError(f"the API did not answer within {timeout:.0f} s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    @property
    def auth(self) -> dict:
        return {"Authorization": f"Bearer {self.token}"}

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=30)


@pytest.fixture(scope="module")
def experiment(tiny_experiment_dir) -> Path:
    return tiny_experiment_dir  # tests/conftest.py: built once per test session


@pytest.fixture(scope="module")
def server(experiment, tmp_path_factory):
    running = Server(experiment, tmp_path_factory.mktemp("api"), "--allowed-host", PROXY_NAME).wait_until_up()
    yield running
    running.stop()


def post(server: Server, path: str, data: bytes | None = None, name: str | None = None, **kwargs):
    kwargs["headers"] = {**server.auth, **kwargs.get("headers", {})}
    if name is not None:
        kwargs["files"] = {"file": (name, data, "application/octet-stream")}
    else:
        kwargs["data"] = data
    return requests.post(f"{server.url}{path}", timeout=120, **kwargs)


# --- endpoints -------------------------------------------------------------------------------------------

def test_health_says_the_networks_are_loaded_only_to_a_caller_with_the_token(server):
    answer = requests.get(f"{server.url}/health", headers=server.auth, timeout=10).json()
    assert answer == {"status": "ok", "experiment": "tiny", "networks": 2}
    assert requests.get(f"{server.url}/health", timeout=10).json() == {"status": "ok"}


def test_openapi_describes_every_endpoint_and_docs_show_it(server):
    spec = requests.get(f"{server.url}/openapi.json", headers=server.auth, timeout=10).json()
    assert spec["openapi"].startswith("3.") and {"/health", "/v1/models", "/v1/predict", "/v1/explain"} <= set(spec["paths"])
    page = requests.get(f"{server.url}/docs", headers=server.auth, timeout=10)
    assert page.status_code == 200 and "POST /v1/predict" in page.text and "<script" not in page.text


def test_models_lists_the_kept_networks_with_their_auc_per_scenario(server):
    answer = requests.get(f"{server.url}/v1/models", headers=server.auth, timeout=60).json()
    assert [n["name"] for n in answer["networks"]] == ["WeiNet", "SongNet"]
    for network in answer["networks"]:
        assert network["input_size"] == 32 and network["seeds"] == [0]
        assert set(network["scenarios"]) == {"image", "subject", "external"}
        subject = network["scenarios"]["subject"]
        assert subject["auc"] is None or 0.0 <= subject["auc"] <= 1.0
        assert subject["runs"] == 2
    assert answer["answer_rule"]


def test_predict_answers_a_photo_in_the_body_with_every_network(server):
    response = post(server, "/v1/predict", encode(face_image(7, size=(640, 480)), "JPEG", quality=90),
                    headers={"Content-Type": "image/jpeg"})
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["kind"] == "image" and answer["error"] is None and answer["path"] is None
    assert set(answer["networks"]) == {"WeiNet", "SongNet"}
    assert all(0.0 <= p <= 1.0 for p in answer["networks"].values())
    assert answer["rule"] and (answer["p_pain"] is None or 0.0 <= answer["p_pain"] <= 1.0)  # None: no network learned
    assert answer["face"]["faces_found"] == 1 and answer["face"]["image_size"] == [640, 480]
    assert len(answer["face"]["box"]) == 4


def test_a_multipart_file_gets_the_same_answer_as_the_body_and_its_name_back(server):
    data = encode(face_image(8), "PNG")
    body = post(server, "/v1/predict", data).json()
    multipart = post(server, "/v1/predict", data, name=SECRET_NAME).json()
    assert multipart["path"] == SECRET_NAME
    assert multipart["networks"] == body["networks"] and multipart["face"] == body["face"]


def test_explain_returns_a_heatmap_png_over_the_crop_and_its_scores(server):
    data = encode(face_image(12), "PNG")
    answer = post(server, "/v1/explain?network=SongNet&samples=40", data).json()
    assert answer["network"] == "SongNet" and answer["label"] in (0, 1) and answer["samples"] == 40
    heatmap = Image.open(io.BytesIO(base64.b64decode(answer["heatmap_png"])))
    assert heatmap.size == (32, 32) and heatmap.mode == "L"
    assert np.asarray(heatmap).max() in (0, 255)  # scaled to the strongest superpixel
    assert len(answer["superpixel_weights"]) >= 2
    png = post(server, "/v1/explain?samples=40&label=1", data, headers={"Accept": "image/png"})
    assert png.headers["content-type"] == "image/png" and png.headers["x-painlens-label"] == "1"
    assert png.headers["x-painlens-network"] == "WeiNet"  # the first network when none is named
    assert Image.open(io.BytesIO(png.content)).size == (32, 32)


def test_explain_refuses_an_unknown_network_and_a_bad_label(server):
    data = encode(face_image(12), "PNG")
    unknown = post(server, "/v1/explain?network=NoSuchNet&samples=40", data)
    assert unknown.status_code == 422 and "NoSuchNet" in unknown.json()["error"]
    bad_label = post(server, "/v1/explain?label=7", data)
    assert bad_label.status_code == 400 and "label must be 0 (no pain) or 1 (pain)" in bad_label.json()["error"]
    assert "samples" not in bad_label.json()["error"]  # the sentence names what was wrong, not every rule
    bad_samples = post(server, "/v1/explain?samples=5", data).json()["error"]
    assert "samples must be a whole number between 20 and" in bad_samples and "label" not in bad_samples


# --- bad input: the upload page's sentences ---------------------------------------------------------------

def _bomb() -> bytes:
    import struct
    import zlib

    data = bytearray(encode(np.zeros((8, 8, 3), np.uint8), "PNG"))
    ihdr = bytearray(data[12:29])
    ihdr[4:12] = struct.pack(">II", 9000, 9000)
    data[12:29] = ihdr
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(ihdr)) & 0xFFFFFFFF)
    return bytes(data)


BAD_FILES = {
    "empty": b"",
    "text": b"name,score\nA,3\n",
    "truncated": encode(face_image(0), "JPEG")[:3000],
    "bomb": _bomb(),
    "tiny": encode(np.zeros((20, 30, 3), np.uint8), "PNG"),
    "eps": b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 64 64\nnewpath 0 0 moveto 64 64 lineto stroke\nshowpage\n",
}


@pytest.mark.parametrize("kind", list(BAD_FILES))
def test_a_bad_file_answers_422_with_the_upload_pages_sentence(server, kind):
    with pytest.raises(BadImageError) as expected:
        decode(BAD_FILES[kind], longest_side=UPLOAD_LONGEST_SIDE)  # what the upload page shows
    response = post(server, "/v1/predict", BAD_FILES[kind], name="photo.jpg")
    assert response.status_code == 422
    answer = response.json()
    assert answer["error"] == str(expected.value) and answer["p_pain"] is None and answer["path"] == "photo.jpg"


def test_a_photo_without_a_face_answers_422_with_a_sentence(server):
    scene = np.empty((240, 320, 3), np.uint8)
    scene[:] = np.linspace(80, 200, 320, dtype=np.uint8)[None, :, None]
    response = post(server, "/v1/predict", encode(scene, "PNG"))
    assert response.status_code == 422 and response.json()["error"].startswith("No face was found")


def test_a_video_gets_its_timeline_and_a_damaged_one_a_sentence(server):
    import video_fixtures

    response = post(server, "/v1/predict", video_fixtures.clip(seconds=1.0), name="clip.mp4")
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["kind"] == "video" and answer["error"] is None and answer["path"] == "clip.mp4"
    assert [f["t"] for f in answer["frames"]] == pytest.approx([0.0, 0.2, 0.4, 0.6, 0.8], abs=1e-3)
    assert {"peak_t", "score", "networks", "notes"} <= set(answer)
    mp4 = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + bytes(2000)  # starts like an MP4, holds nothing
    damaged = post(server, "/v1/predict", mp4, name="clip.mp4")
    assert damaged.status_code == 422 and damaged.json()["kind"] == "video"
    assert "damaged or cut short" in damaged.json()["error"]
    explained = post(server, "/v1/explain", video_fixtures.clip(seconds=0.4), name="clip.mp4")
    assert explained.status_code == 415 and "/v1/predict" in explained.json()["error"]
    assert requests.get(f"{server.url}/health", timeout=10).status_code == 200


def test_a_body_over_the_limit_answers_413_declared_or_streamed_and_the_server_stays_up(server):
    big = bytes(UPLOAD_MB * 1024 * 1024 + 200_000)
    declared = post(server, "/v1/predict", big)
    assert declared.status_code == 413 and f"{UPLOAD_MB} MB" in declared.json()["error"]
    streamed = requests.post(f"{server.url}/v1/predict", data=(big[i:i + 65536] for i in range(0, len(big), 65536)),
                             headers=server.auth, timeout=60)  # chunked: no Content-Length to refuse up front
    assert streamed.status_code == 413
    assert requests.get(f"{server.url}/health", timeout=10).status_code == 200


def test_a_multipart_body_without_a_file_answers_400(server):
    response = requests.post(f"{server.url}/v1/predict", files={"note": (None, "hello")}, headers=server.auth, timeout=30)
    assert response.status_code == 400 and "file" in response.json()["error"]


# --- the person's calm reference (the multipart field `reference`) ---------------------------------------

def with_reference(server: Server, path: str, photo: bytes, calm: bytes, calm_name: str = "calm.png"):
    return requests.post(f"{server.url}{path}", files={"file": ("face.png", photo), "reference": (calm_name, calm)},
                         headers=server.auth, timeout=120)


def test_a_calm_reference_gives_the_answer_with_it_or_a_422_that_says_why(server, experiment):
    from engine.artifacts import ExperimentStore

    photo, calm = encode(face_image(25, size=(320, 320)), "PNG"), encode(face_image(24, size=(320, 320)), "PNG")
    response = with_reference(server, "/v1/predict", photo, calm)
    answer = response.json()
    if ExperimentStore.open(experiment).answer().get("used"):  # the answer has a number, so the calm face has one
        assert response.status_code == 200 and answer["answer_kind"] == "with_reference", response.text
        assert answer["baseline"]["p_baseline"] is not None and "calm reference" in answer["rule"]
    else:  # the tiny experiment's one-epoch networks do not learn: no answer, so no reference either
        assert response.status_code == 422 and answer["path"] == "face.png" and answer["p_pain"] is None
        assert answer["error"].startswith("The calm photo gives no reference: No single answer: no network learned")
    unfilled = requests.post(f"{server.url}/v1/predict", files={"file": ("face.png", photo), "reference": ("", b"")},
                             headers=server.auth, timeout=120)  # a form's calm-photo field left empty: none given
    assert unfilled.status_code == 200 and unfilled.json()["answer_kind"] == "absolute"


def test_a_bad_calm_reference_answers_4xx_with_a_sentence_naming_it_and_the_server_stays_up(server):
    photo = encode(face_image(25, size=(320, 320)), "PNG")
    scene = np.full((240, 320, 3), 140, np.uint8)
    for calm, status, sentence in ((BAD_FILES["text"], 422, "The calm reference cannot be used: The file is not an image"),
                                   (BAD_FILES["truncated"], 422, "The calm reference cannot be used: "),
                                   (encode(scene, "PNG"), 422, "The calm reference cannot be used: No face was found"),
                                   (b"", 422, "The calm reference is empty"),
                                   (bytes(UPLOAD_MB * 1024 * 1024 + 1), 413, f"The calm reference is larger than the "
                                                                             f"{UPLOAD_MB} MB")):
        response = with_reference(server, "/v1/predict", photo, calm)
        assert response.status_code == status and response.json()["error"].startswith(sentence), response.text
    explained = with_reference(server, "/v1/explain?samples=20", photo, encode(scene, "PNG"))
    assert explained.status_code == 400 and "takes no calm reference" in explained.json()["error"]
    spec = requests.get(f"{server.url}/openapi.json", headers=server.auth, timeout=10).json()
    form = spec["paths"]["/v1/predict"]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert form["required"] == ["file"] and "with_reference" in form["properties"]["reference"]["description"]
    assert requests.get(f"{server.url}/health", timeout=10).status_code == 200


# --- concurrency, privacy -------------------------------------------------------------------------------

def test_eight_clients_at_once_each_get_their_own_faces(server):
    photos = [encode(crowd_photo(i), "JPEG", quality=92) for i in range(len(LAYOUTS))]
    with ThreadPoolExecutor(len(photos)) as pool:
        answers = list(pool.map(lambda data: post(server, "/v1/predict", data).json(), photos))
    assert [a["face"]["faces_found"] for a in answers] == [len(layout) for layout in LAYOUTS]
    alone = [post(server, "/v1/predict", data).json() for data in photos[:2]]
    assert [a["face"]["box"] for a in alone] == [a["face"]["box"] for a in answers[:2]]


def test_uploads_leave_no_file_and_no_name_in_the_log(server, experiment):
    before = {p: p.stat().st_mtime_ns for p in experiment.rglob("*")}
    data = encode(face_image(13, size=(1000, 800)), "PNG")  # Starlette would spool a part over 1 MB to a file
    assert len(data) > 1024 * 1024
    assert post(server, "/v1/predict", data, name=SECRET_NAME).status_code == 200
    assert post(server, "/v1/predict", b"not an image", name=SECRET_NAME).status_code == 422
    assert list(server.tmp.iterdir()) == [] and {p.name for p in server.log_path.parent.iterdir()} == {"server.log", "tmp"}
    assert {p: p.stat().st_mtime_ns for p in experiment.rglob("*")} == before
    log = server.log()
    assert "POST /v1/predict" in log  # the access log is there...
    assert "Jane" not in log and "Q93X" not in log  # ...but never the file's name...
    assert not [line for line in log.splitlines() if "POST /v1/predict" in line and "127.0.0.1" in line]  # ...nor the client


def test_the_proxy_recipe_without_a_token_is_not_open_and_a_forged_host_is_refused(server):
    """The README's recipe: nginx on the hospital network forwards to 127.0.0.1 with Host painlens.hospital.example;
    started without PAINLENS_API_TOKEN, the server printed a token of its own and wants it."""
    data = encode(face_image(7), "JPEG")
    through_proxy = requests.post(f"{server.url}/v1/predict", data=data, headers={"Host": PROXY_NAME}, timeout=60)
    assert through_proxy.status_code == 401 and "bearer token" in through_proxy.json()["error"]
    assert post(server, "/v1/predict", data, headers={"Host": PROXY_NAME}).status_code == 200
    rebound = post(server, "/v1/predict", data, headers={"Host": "attacker.example"})  # DNS rebinding
    assert rebound.status_code == 403 and "Host" in rebound.json()["error"]
    cross_site = post(server, "/v1/predict", data, headers={"Origin": "https://attacker.example"})
    assert cross_site.status_code == 403


# --- who may connect ------------------------------------------------------------------------------------

def test_no_auth_on_another_address_and_every_address_without_its_names_refuse_to_start(experiment, tmp_path):
    for options, token, sentence in ((["--address", "10.1.2.3", "--no-auth"], "", "--no-auth is refused"),
                                     (["--address", "0.0.0.0"], TOKEN, "--allowed-host"),
                                     (["--address", "0.0.0.0", "--allowed-host", PROXY_NAME], "short", "shorter than 16")):
        result = subprocess.run([sys.executable, "-m", "painlens.cli", "api", "--artifacts", str(experiment),
                                 "--port", str(_free_port()), *options], capture_output=True, text=True,
                                env={**os.environ, "PAINLENS_API_TOKEN": token}, timeout=60)
        assert result.returncode != 0 and sentence in result.stderr and "Traceback" not in result.stderr


def test_another_address_with_a_token_answers_only_requests_that_send_it(experiment, tmp_path):
    other = Server(experiment, tmp_path / "open", "--address", "0.0.0.0", "--allowed-host", PROXY_NAME,
                   token=TOKEN).wait_until_up()
    try:
        assert "Warning: serving on 0.0.0.0" in other.log()
        data = encode(face_image(7), "JPEG")
        missing = requests.post(f"{other.url}/v1/predict", data=data, timeout=60)
        assert missing.status_code == 401 and missing.headers["www-authenticate"] == "Bearer"
        assert "bearer token" in missing.json()["error"]
        assert requests.get(f"{other.url}/v1/models", headers={"Authorization": "Bearer wrong"}, timeout=30).status_code == 401
        auth = {"Authorization": f"Bearer {TOKEN}"}
        assert post(other, "/v1/predict", data, headers=auth).status_code == 200
        assert requests.get(f"{other.url}/v1/models", headers=auth, timeout=60).status_code == 200
        spec = requests.get(f"{other.url}/openapi.json", headers=auth, timeout=10).json()
        assert spec["paths"]["/v1/predict"]["post"]["security"] == [{"bearer": []}]
    finally:
        other.stop()
    assert TOKEN not in other.log()
