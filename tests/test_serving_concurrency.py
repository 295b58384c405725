"""Many people uploading at once: one Predictor serves every session of a server (the dashboard keeps one
per process, the HTTP API one per server), and each upload must get its own face boxes, notes and
probabilities, never another's. Photos are rendered people (never real faces)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from dashboard_fixtures import encode
from engine.predict import predict_bytes
from serving_fixtures import LAYOUTS, crowd_photo

SESSIONS = len(LAYOUTS)  # 8: one photo each
ROUNDS = 2  # uploads per session, all sessions at once


@pytest.fixture(scope="module")
def predictor(tiny_predictor):
    return tiny_predictor  # tests/conftest.py: one per test session


def _differences(got, expected) -> list[str]:
    """What differs between two analyses of the same photo (empty: the same answer)."""
    out = []
    if len(got.face.boxes) != len(expected.face.boxes) or not np.allclose(got.face.boxes, expected.face.boxes, atol=1e-3):
        out.append(f"boxes {np.round(got.face.boxes).tolist()} instead of {np.round(expected.face.boxes).tolist()}")
    if got.notes != expected.notes:
        out.append(f"notes {got.notes} instead of {expected.notes}")
    if not np.array_equal(got.face.crop, expected.face.crop):
        out.append("another crop")
    if not np.allclose(got.probabilities["p_pain"], expected.probabilities["p_pain"], atol=1e-5):
        out.append(f"p(pain) {got.probabilities['p_pain'].tolist()} instead of {expected.probabilities['p_pain'].tolist()}")
    return out


@pytest.mark.slow
def test_eight_sessions_uploading_at_once_each_get_their_own_boxes_notes_and_probabilities(predictor):
    photos = [encode(crowd_photo(i), "PNG") for i in range(SESSIONS)]
    alone = [predict_bytes(predictor, photo) for photo in photos]  # one at a time: the right answers
    assert [len(a.face.boxes) for a in alone] == [len(layout) for layout in LAYOUTS]
    assert len({tuple(np.round(a.face.boxes[0])) for a in alone}) == SESSIONS  # every photo's face is elsewhere

    start = threading.Barrier(SESSIONS)

    def session(index: int) -> list:
        start.wait()  # every session uploads at the same moment
        return [predict_bytes(predictor, photos[index]) for _ in range(ROUNDS)]

    with ThreadPoolExecutor(SESSIONS) as pool:
        answers = list(pool.map(session, range(SESSIONS)))
    wrong = [f"session {i} upload {r}: {'; '.join(diff)}"
             for i, session_answers in enumerate(answers) for r, got in enumerate(session_answers)
             if (diff := _differences(got, alone[i]))]
    assert not wrong, f"{len(wrong)} of {SESSIONS * ROUNDS} analyses differ from the photo's own answer:\n" + "\n".join(wrong)


@pytest.mark.slow
def test_a_networks_seed_ensemble_is_built_once_when_sessions_ask_for_it_together(predictor, monkeypatch):
    import engine.predict as served

    network = next(iter(predictor.networks.values()))
    built, real = [], served.seeds_together
    monkeypatch.setattr(served, "seeds_together", lambda *a, **k: built.append(1) or real(*a, **k))  # counts, builds
    monkeypatch.setattr(network, "together", None)  # as before its first use
    x = np.zeros((1, network.input_size, network.input_size, 3), np.float32)
    start = threading.Barrier(SESSIONS)

    def ask(_):
        start.wait()
        return network.p_pain(x)

    with ThreadPoolExecutor(SESSIONS) as pool:
        answers = list(pool.map(ask, range(SESSIONS)))
    assert built == [1] and all(np.allclose(a, answers[0]) for a in answers)
