"""What every test file shares: the speed classes, the shared tiny experiment, the fast loop's guard, and the
order in which `make test`'s two processes take the files (longest first).

`make test` runs every test; `make test-fast` runs those not marked ``slow`` (the edit-test loop). A test
is slow when it trains a network, starts a process that imports TensorFlow or JAX (`painlens run`, a
server, a backend twin), drives a browser, starts Ray, or needs the trained tiny experiment. Mark a whole
file with ``pytestmark = pytest.mark.slow`` at its top, one test with ``@pytest.mark.slow`` (README, Tests).

Two safety nets keep the fast loop fast as files are added:
- a test that asks for ``tiny_experiment_dir``, ``tiny_predictor`` (the trained experiment) or
  ``synthetic_tiny`` (generated data) is slow whether it says so or not;
- ``--slow-after SECONDS`` (`make test-fast` passes it) fails a test not marked slow whose set-up and
  body use more CPU than that, naming the marker to add. CPU time (this process's and that of the
  child processes it waited for), not wall time: a machine busy with other work does not fail it.
"""

from __future__ import annotations

import json
import os
import resource
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from filelock import FileLock

SHARED_SLOW_FIXTURES = {"tiny_experiment_dir", "tiny_predictor", "synthetic_tiny"}
_CPU_AT_START = pytest.StashKey[float]()


def pytest_addoption(parser):
    parser.addoption("--slow-after", type=float, default=0.0, metavar="SECONDS",
                     help="fail a test not marked slow that uses more CPU seconds than this (0: no limit)")


@pytest.fixture(autouse=True)
def _main_module_restored():
    """Put ``sys.modules["__main__"]`` back after each test: Streamlit's AppTest runs a page as ``__main__`` and
    leaves it there, and a process started later in the same test process by ``spawn`` (face workers, training
    children) imports the parent's ``__main__`` first: a page written by ``AppTest.from_function`` then fails in
    the child (NameError ``__args``) and the child dies, failing whichever test came next on that worker."""
    main = sys.modules.get("__main__")
    yield
    if main is not None:
        sys.modules["__main__"] = main


# --- the shared tiny experiment ----------------------------------------------------------------------

@pytest.fixture(scope="session")
def tiny_experiment_dir(tmp_path_factory) -> Path:
    """The trained tiny experiment of tests/dashboard_fixtures.py (synthetic data, WeiNet and SongNet in
    every scenario, LIME, ratings), built once per session and shared by every file: read it, never
    change it (copy it first, as ``half_finished`` does)."""
    from dashboard_fixtures import tiny_experiment

    return tiny_experiment(shared_experiment_base(tmp_path_factory))


@pytest.fixture(scope="session")
def tiny_predictor(tmp_path_factory):
    """One ``engine.predict.Predictor`` on the tiny experiment, loaded once per session."""
    from serving_fixtures import shared_predictor

    return shared_predictor(shared_experiment_base(tmp_path_factory))


@dataclass(frozen=True)
class SyntheticData:
    root: Path  # the four native trees and SYNTHETIC.json
    record: dict  # what ``engine.synth.generate`` returned


@pytest.fixture(scope="session")
def synthetic_tiny(tmp_path_factory) -> SyntheticData:
    """The generator's ``tiny`` data at seed 0, written once per session by two workers for every file that
    reads it (a config's [data] root can name it: with the same seed and size, `painlens run` uses it as it
    is; tests/test_synth.py compares its bytes with one worker's). Read it, never write into it."""
    from engine.synth import generate

    root = shared_folder(tmp_path_factory) / "synthetic-tiny-0"
    record_path = root.with_name(root.name + ".json")
    with FileLock(str(root) + ".lock"):  # one process writes it, the others wait and read it
        if not record_path.exists():
            record_path.write_text(json.dumps(generate(root, seed=0, size="tiny", workers=2)), encoding="utf-8")
    return SyntheticData(root, json.loads(record_path.read_text(encoding="utf-8")))


@pytest.fixture(scope="session")
def postgres_server():
    """A real PostgreSQL server on a free local port (tests/postgres_fixtures.py), started once per test process
    and stopped at its end; its database is empty but for what the tests write. Skips where Debian's
    ``postgresql`` is not installed, outside CI (.ci/run installs it; in CI its absence fails)."""
    from postgres_fixtures import PostgresServer, missing

    problem = missing()
    if problem:
        if os.environ.get("CI"):
            pytest.fail(f"The PostgreSQL tests must run in CI: {problem}")
        pytest.skip(problem)
    server = PostgresServer()
    yield server
    server.remove()


def shared_folder(tmp_path_factory) -> Path:
    """The folder that every process of this test session shares: pytest's base temporary folder, or,
    under pytest-xdist (`make test` runs two worker processes), the folder that holds the workers' own.
    What is built there is built once per session behind a file lock."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


def shared_experiment_base(tmp_path_factory) -> Path:
    return shared_folder(tmp_path_factory) / "dashboard-experiment"


# --- speed classes -----------------------------------------------------------------------------------

@pytest.hookimpl(tryfirst=True)  # before `-m "not slow"` deselects
def pytest_collection_modifyitems(config, items):
    for item in items:
        if SHARED_SLOW_FIXTURES & set(item.fixturenames) and not item.get_closest_marker("slow"):
            item.add_marker(pytest.mark.slow)
    items.sort(key=_file_rank)  # stable: the tests of a file keep their order


# --- the order the two test processes take the files in -----------------------------------------------

# `make test` gives whole files (`--dist loadfile`) to its two processes from one queue: each takes the next
# file when it has almost run out. The longest files go first, so that the last ones handed out are short and
# both processes end together (pytest-xdist would order the queue by the number of tests in a file, and
# test_pipeline.py, the longest with few tests, came late and made the run's tail). The first one builds the
# shared tiny experiment (tests/dashboard_fixtures.py) while the other process runs the three after it, which do
# not need it, so neither process waits for the build. After this list, every other file in collection order:
# a file that grows past about 15 s takes its place here (tests/test_suite_order.py checks that each name
# exists). Seconds: the file's tests in one full `make test` on the 2-core machine while other work ran (628 s in
# all, where a quiet machine takes 361-378 s).
LONGEST_FIRST = (
    "test_pipeline.py",  # 265 s with the shared experiment's build: the longest chain, so first
    "test_train.py",  # 93 s, without the shared experiment
    "test_preprocess_pipeline.py",  # 63 s, without it
    "test_preprocess_rembg.py",  # 50 s, without it
    "test_dashboard.py",  # 86 s
    "test_ray_engine.py",  # 69 s
    "test_batch_predict.py",  # 60 s
    "test_train_jax.py",  # 52 s
    "test_browser_dashboard.py",  # 48 s
    "test_api.py",  # 37 s
    "test_models.py",  # 37 s
    "test_report.py",  # 31 s
    "test_browser_records.py",  # 29 s
    "test_paindb.py",  # 28 s
    "test_gpu_protocol.py",  # 24 s
    "test_explain_scorecard.py",  # 22 s
    "test_explain_au_signal.py",  # 22 s
    "test_dashboard_units.py",  # 21 s
    "test_native_log.py",  # 21 s
    "test_synth.py",  # 21 s
    "test_predict.py",  # 21 s
    "test_explain_experiment.py",  # 20 s
    "test_serving_defaults.py",  # 17 s
)


def _file_rank(item) -> int:
    name = item.path.name
    return LONGEST_FIRST.index(name) if name in LONGEST_FIRST else len(LONGEST_FIRST)


def pytest_configure(config):
    if hasattr(config.option, "loadscopereorder"):  # pytest-xdist: keep the queue in the order above
        config.option.loadscopereorder = False


def _cpu_seconds() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_setup(item):
    item.stash[_CPU_AT_START] = _cpu_seconds()
    return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    limit = item.config.getoption("slow_after")
    if report.when != "call" or not limit or report.failed or item.get_closest_marker("slow"):
        return report
    spent = _cpu_seconds() - item.stash.get(_CPU_AT_START, _cpu_seconds())
    if spent > limit:
        report.outcome = "failed"
        report.longrepr = (f"Used {spent:.1f} s of CPU (set-up included), over the fast loop's "
                           f"{limit:g} s: make it cheaper, or mark it @pytest.mark.slow (or the whole file with "
                           "pytestmark = pytest.mark.slow) so that only `make test` runs it.")
    return report
