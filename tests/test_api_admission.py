"""`painlens api`'s guard and admission control, in this process on a real uvicorn server (a thread), with a
cheap route included after the application was built (as the records routes are): who may call, which Host,
how many requests are let in, and that memory holds at most the admitted bodies. No networks are loaded:
the analysing routes' own behaviour is in tests/test_api.py."""

from __future__ import annotations

import threading
import tracemalloc
from concurrent.futures import ThreadPoolExecutor, as_completed

import pytest
from fastapi import APIRouter, Request

requests = pytest.importorskip("requests")
uvicorn = pytest.importorskip("uvicorn")

from engine.errors import PainLensError  # noqa: E402
from painlens.api import ApiSettings, check_settings, create_app, with_token  # noqa: E402

TOKEN = "admission-test-token-" + "y" * 12
AUTH = {"Authorization": f"Bearer {TOKEN}"}
QUEUE = 8
CLIENTS = 40
BODY = bytes(1024 * 1024)  # 1 MB each: 40 buffered at once would be 40 MB and more


class LiveApp:
    """The application on a free port, served by uvicorn on a thread; ``gate`` holds the slow route's work."""

    def __init__(self, settings: ApiSettings):
        self.gate, self.entered, self.stopped = threading.Event(), [], threading.Event()
        self.app = create_app(None, settings)  # no predictor: only the routes below and the guard are called
        router = APIRouter()

        @router.post("/v1/slow")
        async def slow(request: Request):
            def work(data, path, check):
                self.entered.append(len(data))
                self.gate.wait(60)
                return {"bytes": len(data)}

            return await request.app.state.answer(request, work)

        @router.post("/v1/endless")
        async def endless(request: Request):
            def work(data, path, check):
                try:
                    while True:  # an analysis that reports progress until it is told to stop
                        check()
                        self.gate.wait(0.01)
                finally:
                    self.stopped.set()

            return await request.app.state.answer(request, work)

        self.app.include_router(router)  # included after create_app: the guard must still apply
        config = uvicorn.Config(self.app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        while not self.server.started:  # the server binds in a few milliseconds
            self.thread.join(0.01)
        self.url = f"http://127.0.0.1:{self.server.servers[0].sockets[0].getsockname()[1]}"

    def stop(self) -> None:
        self.gate.set()
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture()
def live():
    running = LiveApp(ApiSettings(token=TOKEN, queue=QUEUE, analyses_at_once=2,
                                  allowed_hosts=("painlens.hospital.example",)))
    yield running
    running.stop()


def test_forty_clients_against_a_queue_of_eight_get_eight_answers_and_503s_with_retry_after(live):
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        with ThreadPoolExecutor(CLIENTS) as pool:
            calls = [pool.submit(requests.post, f"{live.url}/v1/slow", data=BODY, headers=AUTH, timeout=60)
                     for _ in range(CLIENTS)]
            done = as_completed(calls)
            refused = [next(done).result() for _ in range(CLIENTS - QUEUE)]  # the admitted ones wait at the gate
            assert live.app.state.admission.inside == QUEUE and len(live.entered) <= 2  # 2 analysed at a time
            live.gate.set()
            answered = [call.result() for call in calls if call.result() not in refused]
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    assert [r.status_code for r in refused] == [503] * (CLIENTS - QUEUE)
    assert all(int(r.headers["Retry-After"]) >= 1 and "busy" in r.json()["error"] for r in refused)
    assert [r.status_code for r in answered] == [200] * QUEUE and all(r.json() == {"bytes": len(BODY)} for r in answered)
    assert live.app.state.admission.peak == QUEUE and live.app.state.admission.inside == 0
    # The admitted bodies (read, then copied once) and the clients' own buffers; unadmitted bodies are never read.
    assert peak < (3 * QUEUE + 8) * len(BODY), f"{peak / 1e6:.0f} MB traced at the peak"


def test_the_guard_applies_to_a_route_included_later_and_checks_host_origin_and_token(live):
    slow = f"{live.url}/v1/slow"
    live.gate.set()
    assert requests.post(slow, data=b"x", timeout=10).status_code == 401
    assert requests.post(slow, data=b"x", headers={"Authorization": "Bearer wrong"}, timeout=10).status_code == 401
    assert requests.post(slow, data=b"x", headers=AUTH, timeout=10).status_code == 200
    forged = requests.post(slow, data=b"x", headers={**AUTH, "Host": "attacker.example"}, timeout=10)
    assert forged.status_code == 403 and "Host" in forged.json()["error"]
    proxied = requests.post(slow, data=b"x", headers={**AUTH, "Host": "painlens.hospital.example"}, timeout=10)
    assert proxied.status_code == 200
    cross_site = requests.post(slow, data=b"x", headers={**AUTH, "Origin": "https://attacker.example"}, timeout=10)
    assert cross_site.status_code == 403 and "another site" in cross_site.json()["error"]
    assert requests.get(f"{live.url}/health", timeout=10).json() == {"status": "ok"}  # nothing more without the token
    assert requests.get(f"{live.url}/health", headers={"Host": "attacker.example"}, timeout=10).status_code == 403
    for path in ("/docs", "/openapi.json"):
        assert requests.get(f"{live.url}{path}", timeout=10).status_code == 401
        assert requests.get(f"{live.url}{path}", headers=AUTH, timeout=10).status_code == 200


def test_an_analysis_past_the_time_limit_is_stopped_and_answered_503():
    live = LiveApp(ApiSettings(token=TOKEN, request_seconds=0.5))
    try:
        late = requests.post(f"{live.url}/v1/endless", data=b"x", headers=AUTH, timeout=30)
        assert late.status_code == 503 and "longer than the 0.5 s" in late.json()["error"]
        assert live.stopped.is_set() and live.app.state.admission.inside == 0
    finally:
        live.stop()


def test_an_analysis_stops_when_its_client_goes_away(live):
    with pytest.raises(requests.exceptions.ReadTimeout):
        requests.post(f"{live.url}/v1/endless", data=b"x", headers=AUTH, timeout=0.5)  # gives up, closes the socket
    assert live.stopped.wait(10)  # the server noticed the disconnection and stopped the work


def test_the_api_is_never_open_by_accident():
    with pytest.raises(PainLensError, match="refused on 10.1.2.3"):
        check_settings(ApiSettings(address="10.1.2.3", no_auth=True))
    with pytest.raises(PainLensError, match="shorter than 16"):
        check_settings(ApiSettings(token="short"))
    with pytest.raises(PainLensError, match="--allowed-host"):
        check_settings(ApiSettings(address="0.0.0.0", token=TOKEN))
    # The README's proxy recipe: the loopback server behind nginx, started without a token: it makes one.
    recipe = ApiSettings(address="127.0.0.1", allowed_hosts=("painlens.hospital.example",))
    check_settings(recipe)
    served, generated = with_token(recipe)
    assert generated and len(served.token) >= 32 and with_token(recipe)[0].token != served.token
    assert with_token(ApiSettings(no_auth=True)) == (ApiSettings(no_auth=True), False)  # loopback only, on purpose
