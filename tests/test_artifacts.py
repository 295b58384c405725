import signal
import subprocess
import sys
import time

import pandas as pd
import pytest

from engine.artifacts import ExperimentStore, RunKey
from engine.files import atomic_path, read_json, write_json, write_parquet


def test_failed_write_leaves_neither_target_nor_temp_file(tmp_path):
    target = tmp_path / "out.json"
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed")
    assert list(tmp_path.iterdir()) == []


def test_write_replaces_previous_content_whole(tmp_path):
    target = tmp_path / "a" / "done.json"
    write_json(target, {"v": 1})
    write_json(target, {"v": 2})
    assert read_json(target) == {"v": 2}
    write_parquet(tmp_path / "t.parquet", pd.DataFrame({"x": [1, 2]}))
    assert pd.read_parquet(tmp_path / "t.parquet")["x"].tolist() == [1, 2]



KILLED_WRITER = """
import contextlib, os, signal, sys
from engine.files import atomic_path
with contextlib.ExitStack() as stack:
    for target in sys.argv[1:]:
        tmp = stack.enter_context(atomic_path(target, extension=".keras" if target.endswith(".keras") else ""))
        tmp.write_bytes(b"half")
    os.kill(os.getpid(), signal.SIGKILL)  # killed mid-write: no rename, no cleanup
"""


def test_killed_writes_leave_nothing_once_a_command_starts_but_a_live_write_keeps_its_file(tmp_path):
    """Temp files of writes killed anywhere in an experiment (a table, the heatmaps, a ratings file, a run's
    file, its masks, a kept model) go; a temp file written since the command started (a live writer's,
    of this command or another) and the store's own files stay."""
    store = ExperimentStore(tmp_path, "exp")
    key = RunKey("WeiNet", "image", 0)
    store.write_table("reliability", pd.DataFrame({"x": [1]}))
    store.write_ratings_file("icc", pd.DataFrame({"x": [1]}))
    store.write_predictions(key, pd.DataFrame({"x": [1]}))
    targets = [store.root / "reliability.parquet", store.root / "heatmaps.npz", store.kept_model_path(key),
               store.mask_part_path(key, 0), store.root / "ratings" / "icc.parquet"]
    killed = subprocess.run([sys.executable, "-c", KILLED_WRITER, *map(str, targets)])
    assert killed.returncode == -signal.SIGKILL
    stale = [p for p in store.root.rglob(".*") if p.is_file()]
    assert len(stale) == len(targets)  # what the kill left behind
    started = time.time()
    time.sleep(0.05)  # file times are coarser than the clock
    with atomic_path(store.root / "summary.parquet") as live:  # another writer, writing right now
        live.write_bytes(b"in progress")
        assert store.remove_stale_temp_files(written_before=started) == len(targets)
        assert live.exists()
    left = sorted(p.relative_to(store.root).as_posix() for p in store.root.rglob("*") if p.is_file())
    assert left == ["ratings/icc.parquet", "reliability.parquet", "runs/WeiNet/image/0/predictions.parquet",
                    "summary.parquet"]


def test_a_command_run_in_a_long_lived_process_removes_what_a_command_killed_after_its_start_left(tmp_path):
    """The sweep's moment is the command's, not the process's: this test process imported the engine long before
    the killed writer below ran (as a notebook, a server or the suite's in-process `painlens run` did), and its next
    command must still remove that writer's temp file (a resumed run once left `.subjects.parquet.*.tmp`)."""
    store = ExperimentStore(tmp_path, "exp")
    target = store.root / "subjects.parquet"
    killed = subprocess.run([sys.executable, "-c", KILLED_WRITER, str(target)])
    assert killed.returncode == -signal.SIGKILL and len(list(store.root.glob(".subjects.parquet.*.tmp"))) == 1
    assert store.remove_stale_temp_files() == 1
    assert list(store.root.iterdir()) == []
