"""The upload page's bounds (dashboard/admission.py): uploads stay in memory in Streamlit's server, the
process-wide gate lets QUEUE analyses in and no more, and an upload holds at most MAX_FILES files.

Where Streamlit puts an upload: its handler (streamlit/web/server/starlette/starlette_routes.py, the PUT of
/_stcore/upload_file) calls Starlette's ``Request.form()``, whose multipart parser spools each file part to
an unnamed temporary file once it passes 1 MB. An unnamed file (O_TMPFILE) never appears in a listing of the
temporary folder, so the measurement lists the files this process holds open (/proc/self/fd) before and
while the parsed upload is held, as Streamlit holds it until it has read the bytes."""

from __future__ import annotations

import os
import sys
import tempfile

import anyio
import pytest

from dashboard import admission

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="lists /proc/self/fd")
PHOTO = os.urandom(3 * 1024 * 1024)  # a 3 MB photo's worth of bytes: three times the spool's 1 MB


def _open_files(folder: str) -> set[str]:
    names = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            names.add(os.readlink(f"/proc/self/fd/{fd}"))
        except OSError:
            continue  # closed between the listing and the look
    return {name for name in names if name.startswith(folder)}


def _files_while_an_upload_is_held(folder: str) -> tuple[set[str], int]:
    """(files opened in ``folder`` while Streamlit's parser holds one upload, the bytes it parsed)."""
    from starlette.requests import Request

    boundary = "painlens-boundary"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"face.jpg\"\r\n"
            f"Content-Type: image/jpeg\r\n\r\n").encode() + PHOTO + f"\r\n--{boundary}--\r\n".encode()

    async def parse() -> tuple[set[str], int]:
        async def receive():
            return {"type": "http.request", "body": body, "more_body": False}

        scope = {"type": "http", "method": "PUT", "path": "/_stcore/upload_file/s/f", "query_string": b"",
                 "headers": [(b"content-type", f"multipart/form-data; boundary={boundary}".encode())]}
        before = _open_files(folder)
        form = await Request(scope, receive).form()  # what Streamlit's upload handler does
        try:
            data = await form["file"].read()
            return _open_files(folder) - before, len(data)
        finally:
            await form.close()

    return anyio.run(parse)


def test_an_upload_over_a_megabyte_stays_in_memory_in_streamlits_server(tmp_path, monkeypatch):
    from starlette.formparsers import MultiPartParser

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where a spooled part would go
    # Starlette's default (1 MB), whatever an app run earlier in this process set; restored afterwards.
    monkeypatch.setattr(MultiPartParser, "spool_max_size", 1024 * 1024)
    spooled, size = _files_while_an_upload_is_held(str(tmp_path))
    assert size == len(PHOTO) and len(spooled) == 1  # Starlette's default: the photo went to a file on disk
    assert list(tmp_path.iterdir()) == []  # ...that no listing of the folder shows (unnamed, O_TMPFILE)
    assert admission.keep_uploads_in_memory(25)
    in_memory, size = _files_while_an_upload_is_held(str(tmp_path))
    assert size == len(PHOTO) and in_memory == set() and list(tmp_path.iterdir()) == []


def test_the_gate_lets_queue_analyses_in_and_no_more():
    admitted = [admission.admit() for _ in range(admission.QUEUE + 3)]
    try:
        assert admitted == [True] * admission.QUEUE + [False] * 3
    finally:
        for _ in range(admitted.count(True)):
            admission.leave()
    assert admission.admit()
    admission.leave()


def test_the_model_card_shows_the_configs_folders_relative_and_no_internal_address():
    from dashboard.model_card import shareable_config

    config = {"base_dir": "/srv/painlens", "data": {"root": "/srv/painlens/data/real", "paths": {"unbc": "/mnt/x/UNBC"}},
              "preprocess": {"cache_dir": ".cache/faces", "u2net_model": "/home/ana/models/u2net.onnx"},
              "training": {"weights_dir": "/srv/painlens/weights", "epochs": 3},
              "execution": {"address": "10.20.30.40:6379", "engine": "ray"}}
    shown = str(shareable_config(config))
    for secret in ("/srv", "/mnt", "/home", "ana", "10.20.30.40"):
        assert secret not in shown
    card = shareable_config(config)
    assert card["data"]["root"] == "data/real" and card["data"]["paths"]["unbc"] == "…/UNBC"
    assert card["preprocess"]["cache_dir"] == ".cache/faces" and card["training"]["epochs"] == 3
    assert config["data"]["root"] == "/srv/painlens/data/real"  # the manifest's own copy is left as it is
