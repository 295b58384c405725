"""The dashboard is safe however it is started: a plain `streamlit run dashboard/app.py` (from any folder)
listens on 127.0.0.1 only and gathers no usage statistics; `painlens dashboard --address` opens it on
purpose with a warning; the upload cap is one number; the camera waits for its toggle; and no page shows
a browser user a folder of the server (installer notices go to the log)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from dashboard import serve
from engine.preprocess.decode import MAX_UPLOAD_MB

ROOT = Path(__file__).resolve().parent.parent


# --- fast: the settings themselves ------------------------------------------------------------------------

def test_the_upload_cap_is_one_number_for_the_widget_the_server_and_the_api():
    with open(serve.SAFE_CONFIG, "rb") as handle:
        assert tomllib.load(handle)["server"]["maxUploadSize"] == MAX_UPLOAD_MB
    argv = serve.command("artifacts")
    assert argv[argv.index("--server.maxUploadSize") + 1] == str(MAX_UPLOAD_MB)
    upload_page = (ROOT / "dashboard" / "views" / "upload.py").read_text()
    assert "max_upload_size" not in upload_page  # the widget takes the server's own cap
    from painlens.api import ApiSettings

    assert ApiSettings().max_upload_mb == MAX_UPLOAD_MB


def test_a_larger_cap_given_to_painlens_dashboard_reaches_the_server():
    argv = serve.command("artifacts", max_upload_mb=120)
    assert argv[argv.index("--server.maxUploadSize") + 1] == "120"


def test_the_served_command_line_carries_every_safe_setting_and_only_the_address_asked():
    argv = serve.command("artifacts")
    flags = dict(zip(argv[5::2], argv[6::2]))
    assert flags["--server.address"] == "127.0.0.1" and flags["--browser.gatherUsageStats"] == "false"
    assert flags["--client.showErrorDetails"] == "none" and flags["--server.headless"] == "true"
    opened = serve.command("artifacts", address="0.0.0.0")
    assert opened[opened.index("--server.address") + 1] == "0.0.0.0"


# --- a real server, started the plain way -----------------------------------------------------------------

def _listening(port: int) -> set[str]:
    """Local addresses (hex, as /proc/net/tcp writes them) listening on ``port``."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            address, _, hex_port = fields[1].rpartition(":")
            if int(hex_port, 16) == port and fields[3] == "0A":  # 0A: LISTEN
                found.add(address)
    return found


def _usage_statistics_flag(port: int) -> bool:
    """What the server tells a new browser session about usage statistics (its NewSession message)."""
    from streamlit.proto.BackMsg_pb2 import BackMsg
    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
    from websockets.sync.client import connect

    with connect(f"ws://127.0.0.1:{port}/_stcore/stream", subprotocols=["streamlit"], open_timeout=30) as socket:
        request = BackMsg()
        request.rerun_script.query_string = ""
        socket.send(request.SerializeToString())
        for _ in range(200):
            message = ForwardMsg()
            message.ParseFromString(socket.recv(timeout=120))
            if message.WhichOneof("type") == "new_session":
                return message.new_session.config.gather_usage_stats
    raise AssertionError("the server sent no NewSession message")


@pytest.mark.slow
def test_a_plain_streamlit_run_from_another_folder_listens_on_loopback_only_without_usage_statistics(tmp_path):
    port = serve.free_port()
    # No flag at all; the port comes from the environment only so that the test never takes 8501.
    env = {**os.environ, "STREAMLIT_SERVER_PORT": str(port)}
    process = subprocess.Popen([sys.executable, "-m", "streamlit", "run", str(serve.APP)], cwd=tmp_path, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        serve.wait_until_up(f"http://127.0.0.1:{port}", process)
        assert _listening(port) == {"0100007F"}  # 127.0.0.1, and no 0.0.0.0 or :: socket
        assert _usage_statistics_flag(port) is False
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
    output = process.stdout.read().decode(errors="replace")
    assert "Collecting usage statistics" not in output and "Network URL" not in output


@pytest.mark.slow
def test_painlens_dashboard_on_another_address_says_so(tmp_path):
    from engine.records import users

    users.add(tmp_path / "users.json", "alice", "clinician", "correct horse battery")  # without users it refuses
    process = subprocess.Popen([sys.executable, "-m", "painlens.cli", "dashboard", "--artifacts", str(tmp_path),
                                "--address", "0.0.0.0", "--port", str(serve.free_port())],
                               env={**os.environ, "PAINLENS_USERS": str(tmp_path / "users.json")},
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    try:
        warning = process.stderr.readline().decode()  # printed before Streamlit replaces the process
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
    assert warning.startswith("Warning: serving on 0.0.0.0") and "HTTPS" in warning


# --- what a browser user sees (AppTest, on a copy of the tiny experiment) ---------------------------------

@pytest.fixture(scope="module")
def experiment_without_u2net(tiny_experiment_dir, tmp_path_factory) -> Path:
    """The tiny experiment as if run with background = "auto" where rembg's model was missing: its
    manifest carries the run's notice, which names a folder of that machine."""
    source = tiny_experiment_dir
    copy = tmp_path_factory.mktemp("no-u2net") / "artifacts" / "tiny"
    shutil.copytree(source, copy, ignore=shutil.ignore_patterns("explanations"))
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["config"]["preprocess"]["background"] = "auto"
    manifest.setdefault("preprocess", {})["background_note"] = (
        "rembg's u2net_human_seg.onnx is not at /srv/secret-install-folder/models (...)")
    (copy / "manifest.json").write_text(json.dumps(manifest))
    return copy


def _page(location: Path, page: str):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(serve.APP), default_timeout=240)
    at.session_state["artifacts_location"] = str(location)
    at.run()
    if page != "overview.py":
        at.switch_page(f"views/{page}")
        at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _text(at) -> str:
    kinds = ("title", "header", "subheader", "markdown", "caption", "info", "warning", "error", "success", "metric")
    return "\n".join(str(getattr(e, "value", "")) + str(getattr(e, "label", "")) for k in kinds for e in getattr(at, k))


@pytest.mark.slow
def test_the_upload_page_shows_no_installer_notice_and_the_camera_waits_for_its_toggle(experiment_without_u2net,
                                                                                        tmp_path, monkeypatch):
    from dashboard_fixtures import encode, face_image

    monkeypatch.setenv("U2NET_HOME", str(tmp_path / "empty-u2net-home"))  # no model there: the fallback's notice
    at = _page(experiment_without_u2net.parent, "upload.py")
    assert len(at.camera_input) == 0 and len(at.toggle) == 1
    at.toggle[0].set_value(True).run()
    assert len(at.camera_input) == 1  # only now would the browser ask for the camera
    at.toggle[0].set_value(False).run()
    at.file_uploader[0].upload("face.jpg", encode(face_image(5), "JPEG", quality=92), "image/jpeg").run()
    text = _text(at)
    assert "LIME explanation" in text  # shown only once a photo was analysed
    for leak in (str(tmp_path), "empty-u2net-home", "u2net_human_seg", "/srv/"):
        assert leak not in text


@pytest.mark.slow
@pytest.mark.parametrize("page", ["overview.py", "comparison.py", "per_class.py", "heatmaps.py", "browse.py",
                                  "raters.py", "upload.py"])
def test_no_page_shows_a_folder_of_the_server(experiment_without_u2net, page):
    text = _text(_page(experiment_without_u2net.parent, page))
    for leak in (str(experiment_without_u2net.parent), "/srv/secret-install-folder", str(ROOT)):
        assert leak not in text, f"{page} shows {leak}"
    if page == "overview.py":
        assert "U2-Net's model file was not installed" in text  # the notice, in plain words
