"""The Ray execution engine on a real two-node cluster on this machine (``ray start --head`` and
``ray start --address``), against the local engine: the same metrics, also after one node's worker
processes are killed with SIGKILL in the middle of a grid. Plus the [execution] settings' checks.

Every Ray process the test starts lives in a session of its own (one per node), and the teardown
kills those sessions, also when a test fails; nothing else on the machine is touched.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from engine.artifacts import ExperimentStore
from engine.config import config_from_dict
from engine.errors import ConfigError
from engine.evaluation.metrics import RUN_KEYS, run_metrics
from engine.pipeline import with_execution

PAINLENS = [sys.executable, "-m", "painlens.cli"]
RAY = str(Path(sys.executable).with_name("ray"))
# The cluster's own token (Ray 2.60 authenticates every connection), given to nodes and drivers.
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "token",
       "RAY_AUTH_TOKEN": secrets.token_hex(32)}
AGENTS = ("ray::DashboardAgent", "ray::RuntimeEnvAgent")  # per-node helpers, not workers
# The shared tiny experiment (tests/conftest.py, built by the local engine) is the reference: the Ray
# runs train its config on its data and face cache (every face a cache hit: nothing of it is written),
# one network in two scenarios (the external one tests on CP-PAIN), 2 folds / seeds: 4 runs.
RAY_RUNS = ["--models", "WeiNet", "--scenarios", "image", "--scenarios", "external"]


# --- the [execution] settings ------------------------------------------------------------------------

def test_execution_settings_are_checked_when_the_config_is_read():
    config = config_from_dict({"execution": {"engine": "ray", "address": "10.0.0.1:6379", "gpus_per_run": 1}})
    assert (config.execution.engine, config.execution.gpus_per_run, config.execution.cpus_per_run) == ("ray", 1.0, 1.0)
    for section, words in (({"engine": "dask"}, "engine must be one of"),
                           ({"engine": "ray", "gpus_per_run": -1}, "gpus_per_run must be 0 or more"),
                           ({"engine": "ray", "cpus_per_run": 0}, "cpus_per_run must be positive"),
                           ({"address": "10.0.0.1:6379"}, 'set engine = "ray"'),
                           ({"engine": "ray", "address": "10.0.0.1 6379"}, "without spaces")):
        with pytest.raises(ConfigError, match=words):
            config_from_dict({"execution": section})


def test_command_line_engine_and_address_override_the_config():
    ray_config = config_from_dict({"execution": {"engine": "ray", "address": "10.0.0.1:6379"}})
    assert with_execution(ray_config, None, None) is ray_config
    assert with_execution(ray_config, "local", None).execution.address == ""  # --engine local leaves the cluster
    joined = with_execution(config_from_dict({}), None, "10.0.0.2:6379")  # an address means Ray
    assert (joined.execution.engine, joined.execution.address) == ("ray", "10.0.0.2:6379")
    with pytest.raises(ConfigError, match="engine must be one of"):
        with_execution(ray_config, "spark", None)


# --- a two-node cluster on this machine -----------------------------------------------------------------

@dataclass
class Cluster:
    address: str
    sessions: dict[str, int]  # node name -> process group (= session) of its Ray processes
    temp_dir: Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_node(name: str, temp_dir: Path, head_port: int, head: bool) -> int:
    """``ray start`` for one node with 1 CPU and a resource named after it; returns its session's id.

    Each node gets free ports of its own (both nodes share this machine's ports)."""
    command = [RAY, "start", "--node-ip-address=127.0.0.1", "--num-cpus=1", "--num-gpus=0",
               f'--resources={{"{name}": 1}}', "--object-store-memory=100000000", "--disable-usage-stats",
               "--include-log-monitor=false", f"--temp-dir={temp_dir}",
               f"--dashboard-agent-listen-port={free_port()}", f"--dashboard-agent-grpc-port={free_port()}",
               f"--metrics-export-port={free_port()}", f"--runtime-env-agent-port={free_port()}"]
    if head:
        command += ["--head", f"--port={head_port}", f"--ray-client-server-port={free_port()}",
                    "--include-dashboard=false"]
    else:
        command += [f"--address=127.0.0.1:{head_port}"]
    # A session of its own: the node's daemons and workers inherit it, so the teardown kills
    # exactly them (``ray stop`` would stop every Ray process on the machine).
    starter = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=ENV,
                               start_new_session=True)
    try:
        output, _ = starter.communicate(timeout=300)
    finally:
        if starter.poll() is None or starter.returncode != 0:
            kill_session(starter.pid)
    assert starter.returncode == 0, f"ray start failed for {name}:\n{output[-3000:]}"
    return starter.pid


def session_processes(session: int) -> dict[int, str]:
    """pid -> command line of the live processes in ``session``."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if os.getsid(int(entry.name)) == session:
                found[int(entry.name)] = (entry / "cmdline").read_bytes().split(b"\0")[0].decode(errors="replace")
        except (OSError, ProcessLookupError):
            continue
    return found


def kill_session(session: int, wait: float = 15.0) -> None:
    """SIGKILL every process of ``session``, then wait (a while) until the system has reaped them."""
    deadline = time.monotonic() + wait
    while (found := session_processes(session)) and time.monotonic() < deadline:
        for pid in found:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.2)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory, tiny_experiment_dir) -> Path:
    """A folder with the shared experiment's config, its data and face cache named by absolute path."""
    from dashboard_fixtures import TINY_TOML

    shared = tiny_experiment_dir.parent.parent  # <base>/artifacts/tiny: data and cache live in <base>
    folder = tmp_path_factory.mktemp("ray_engine")
    config = TINY_TOML.replace('root = "data"', f'root = "{shared / "data"}"')
    config = config.replace('cache_dir = ".cache/faces"', f'cache_dir = "{shared / ".cache" / "faces"}"')
    assert config.count(str(shared)) == 2, "the shared experiment's config changed: update this fixture"
    (folder / "tiny.toml").write_text(config)
    return folder


@pytest.fixture(scope="module")
def local_metrics(tiny_experiment_dir) -> pd.DataFrame:
    """The local engine's metrics of the runs the Ray runs redo."""
    metrics = metric_columns(ExperimentStore.open(tiny_experiment_dir))
    chosen = metrics[(metrics["model"] == "WeiNet") & metrics["scenario"].isin(["image", "external"])]
    return chosen.reset_index(drop=True)


@pytest.fixture(scope="module")
def cluster():
    # A short root: Ray's socket paths below it must stay under the 107 characters of a Unix socket.
    temp_dir = Path(tempfile.mkdtemp(prefix="plray", dir="/tmp"))
    sessions: dict[str, int] = {}
    head_port = free_port()
    try:
        started = time.perf_counter()
        sessions["head"] = start_node("head", temp_dir, head_port, head=True)
        sessions["node_b"] = start_node("node_b", temp_dir, head_port, head=False)
        print(f"two-node cluster started in {time.perf_counter() - started:.1f} s")
        yield Cluster(f"127.0.0.1:{head_port}", sessions, temp_dir)
    finally:
        for session in sessions.values():
            kill_session(session)
        shutil.rmtree(temp_dir, ignore_errors=True)


def metric_columns(store: ExperimentStore) -> pd.DataFrame:
    """The stored metrics table's metric columns, in a fixed row order."""
    metrics = store.table("metrics")
    assert metrics is not None and len(metrics)
    columns = list(run_metrics(store.finished_predictions()).columns)
    return metrics[columns].sort_values([*RUN_KEYS, "class"]).reset_index(drop=True)


def run_watching(args: list[str], cluster: Cluster, until=None) -> tuple[subprocess.CompletedProcess, dict]:
    """Run ``painlens`` while noting which node's workers train (their process title is
    ``ray::train MODEL/SCENARIO/FOLD``); ``until(workers_by_node)`` may act once mid-run and return True."""
    # Output to files, not pipes: nobody reads a pipe while this loop watches, and a full one would block.
    stdout, stderr = tempfile.TemporaryFile("w+"), tempfile.TemporaryFile("w+")
    child = subprocess.Popen([*PAINLENS, *args, "--no-progress"], stdout=stdout, stderr=stderr, text=True, env=ENV)
    trained: dict[str, set[str]] = {name: set() for name in cluster.sessions}
    try:
        deadline = time.monotonic() + 900
        while child.poll() is None and time.monotonic() < deadline:
            workers = {name: {pid: title for pid, title in session_processes(session).items()
                              if title.startswith("ray::") and title not in AGENTS}
                       for name, session in cluster.sessions.items()}
            for name, found in workers.items():
                trained[name].update(t.removeprefix("ray::train ") for t in found.values() if t.startswith("ray::train "))
            if until is not None and until(workers):
                until = None
            time.sleep(0.1)
        child.wait(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    stdout.seek(0)
    stderr.seek(0)
    return subprocess.CompletedProcess(child.args, child.returncode, stdout.read(), stderr.read()), trained


@pytest.mark.slow
def test_a_two_node_cluster_whose_node_b_workers_are_killed_mid_grid_gives_the_local_engines_metrics(
        workspace, local_metrics, cluster):
    # One grid on the two-node cluster shows both: runs are spread over the nodes, and a node whose
    # workers die mid-run costs a retry, not a result (each case once cost a grid of its own).
    out = workspace / "killed"
    store = ExperimentStore(out, "tiny")
    killed: dict[str, object] = {}

    def kill_node_b(workers: dict[str, dict[int, str]]) -> bool:
        training = [t for t in workers["node_b"].values() if t.startswith("ray::train ")]
        if not training:
            return False
        killed["finished_before"] = len(store.finished_runs())
        for pid in workers["node_b"]:
            try:
                os.kill(pid, signal.SIGKILL)  # a real, unannounced death of the node's workers
            except ProcessLookupError:
                pass
        killed["runs"] = training
        return True

    started = time.perf_counter()
    result, trained = run_watching(["run", str(workspace / "tiny.toml"), *RAY_RUNS, "--out", str(out), "--engine",
                                    "ray", "--address", cluster.address], cluster, until=kill_node_b)
    assert killed, "no training task was seen on node_b to kill"
    assert result.returncode == 0, result.stderr[-3000:]
    assert trained["head"] and trained["node_b"], f"each node should have trained a run: {trained}"
    print(f"ray engine, node_b's workers killed while training {killed['runs']}: {time.perf_counter() - started:.1f} s")
    assert killed["finished_before"] < 4  # the grid was not finished when they died
    assert len(store.finished_runs()) == 4
    pd.testing.assert_frame_equal(metric_columns(store), local_metrics)
    assert not list(out.rglob(".*.tmp"))
