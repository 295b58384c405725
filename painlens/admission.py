"""Bounded work for ``painlens api``: how many requests are let in, how long each may take, and stopping an
analysis nobody waits for any more.

    request ──[``queue`` inside already? 503 + Retry-After, before a byte of the body is read]──► admitted
            ──body read (capped, by the deadline)──► waits for one of ``at_once`` worker threads ──► analysed
            ──► answer; the deadline passed or the client went away: the analysis stops at its next step

``queue`` counts every admitted request (reading its body, waiting, or analysed), so memory holds at most
``queue`` bodies and ``at_once`` analyses, however many clients call. An analysis runs on a worker thread
and cannot be interrupted from outside; it is asked to stop through its progress callback (``check``),
which raises ``Cancelled`` once the deadline passed or the client disconnected (a video stops between
batches of frames, LIME between batches of samples; a photo takes a second and runs to its end).
"""

from __future__ import annotations

import math
import threading
import time
from contextlib import asynccontextmanager
from typing import Callable

import anyio

QUEUE = 8  # requests admitted at once (analysing or waiting their turn); more are answered 503 at once
REQUEST_SECONDS = 120.0  # from admission to the answer: a 60 s video at 5 fps takes about a minute on 2 cores


class Busy(Exception):
    """The server already holds as many requests as it admits."""

    def __init__(self, retry_after: int):
        super().__init__(f"The server is busy with as many requests as it takes at once; try again in "
                         f"{retry_after} s.")
        self.retry_after = retry_after


class Cancelled(Exception):
    """Raised inside an analysis (from its progress callback) once nobody waits for its answer."""


class Late(Exception):
    """The request's time ran out (``reason``: "body" or "analysis")."""

    def __init__(self, reason: str, seconds: float):
        super().__init__(reason)
        self.reason, self.seconds = reason, seconds


class Admission:
    """Admission control for one server (see the module docstring); used from the event loop only, so its
    count needs no lock."""

    def __init__(self, queue: int = QUEUE, at_once: int = 2, seconds: float = REQUEST_SECONDS):
        self.queue, self.at_once, self.seconds = queue, at_once, seconds
        self.inside = 0  # admitted requests not answered yet
        self.peak = 0  # the most that were inside at once (for tests and benchmarks)
        self.limiter = anyio.CapacityLimiter(at_once)
        self.seconds_per_analysis = 1.0  # a running mean, for Retry-After

    def retry_after(self) -> int:
        """Seconds until a place is likely free: the queue ahead, worked through ``at_once`` at a time."""
        return max(1, math.ceil(self.seconds_per_analysis * self.queue / self.at_once))

    @asynccontextmanager
    async def admitted(self):
        """Let the request in, or raise Busy at once; yields its deadline (``anyio.current_time()`` clock)."""
        if self.inside >= self.queue:
            raise Busy(self.retry_after())
        self.inside += 1
        self.peak = max(self.peak, self.inside)
        try:
            yield anyio.current_time() + self.seconds
        finally:
            self.inside -= 1

    async def read(self, deadline: float, reader):
        """``await reader()`` (the body), or Late("body") when it has not arrived by the deadline."""
        with anyio.move_on_after(max(0.0, deadline - anyio.current_time())) as scope:
            return await reader()
        if scope.cancelled_caught:
            raise Late("body", self.seconds)

    async def run(self, request, deadline: float, work: Callable[[Callable[..., None]], object]):
        """``work(check)`` on a worker thread, ``at_once`` at a time; ``check`` (its progress callback) raises
        Cancelled once the deadline passed or the client went away. Late("analysis") when the deadline
        stopped it; Cancelled when the client did (nobody reads that answer)."""
        stop, why = threading.Event(), []

        def check(*_) -> None:
            if stop.is_set():
                raise Cancelled(why[0] if why else "")

        def timed() -> object:
            check()  # the deadline may have passed, or the client left, while it waited for a thread
            start = time.perf_counter()
            try:
                return work(check)
            finally:  # a running mean for Retry-After (a float written from threads: a lost update is harmless)
                self.seconds_per_analysis = 0.8 * self.seconds_per_analysis + 0.2 * (time.perf_counter() - start)

        async def client_gone() -> None:
            while (await request.receive())["type"] != "http.disconnect":
                pass
            why.append("gone")
            stop.set()

        async def time_up() -> None:
            await anyio.sleep(max(0.0, deadline - anyio.current_time()))
            why.append("late")
            stop.set()

        result, failure = None, None
        async with anyio.create_task_group() as watchers:  # raised inside, an error would come out as a group
            watchers.start_soon(client_gone)
            watchers.start_soon(time_up)
            try:
                result = await anyio.to_thread.run_sync(timed, limiter=self.limiter)
            except Exception as exc:  # noqa: BLE001  raised below, after the watchers stopped
                failure = exc
            watchers.cancel_scope.cancel()
        if isinstance(failure, Cancelled) and why and why[0] == "late":
            raise Late("analysis", self.seconds) from None
        if failure is not None:
            raise failure
        return result
