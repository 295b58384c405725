"""The allocator settings handed to child processes (engine.native_memory)."""

from __future__ import annotations

import os
import subprocess
import sys

from engine.native_memory import TUNABLES, for_child_processes


def test_children_get_the_settings_unless_the_user_chose_their_own(monkeypatch):
    monkeypatch.delenv("GLIBC_TUNABLES", raising=False)
    for_child_processes()
    assert os.environ["GLIBC_TUNABLES"] == TUNABLES
    monkeypatch.setenv("GLIBC_TUNABLES", "glibc.malloc.arena_max=2")
    for_child_processes()
    assert os.environ["GLIBC_TUNABLES"] == "glibc.malloc.arena_max=2"


def test_a_child_started_with_the_settings_runs_and_allocates_large_buffers():
    code = "import numpy as np; a = np.ones((4096, 4096), np.float32); b = a @ a[:, :8]; print(float(b[0, 0]))"
    done = subprocess.run([sys.executable, "-c", code], env={**os.environ, "GLIBC_TUNABLES": TUNABLES},
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "4096.0"


def test_a_benchmark_restarts_itself_with_the_settings_of_the_training_children(tmp_path):
    script = tmp_path / "bench.py"
    script.write_text("import os, sys\nprint('start', sys.argv[1:])\nfrom engine.native_memory import "
                      "as_the_training_children\nas_the_training_children()\nprint(os.environ['GLIBC_TUNABLES'])\n")
    env = {k: v for k, v in os.environ.items() if k != "GLIBC_TUNABLES"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [os.getcwd(), env.get("PYTHONPATH", "")]))
    done = subprocess.run([sys.executable, str(script), "--steps", "3"], env=env, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    # Started twice (the second time with the settings, and the same arguments), then ran on.
    assert done.stdout.splitlines() == ["start ['--steps', '3']", "start ['--steps', '3']", TUNABLES]
    mine = subprocess.run([sys.executable, str(script)], env={**env, "GLIBC_TUNABLES": "glibc.malloc.arena_max=2"},
                          capture_output=True, text=True, timeout=60)
    assert mine.stdout.splitlines() == ["start []", "glibc.malloc.arena_max=2"]  # the user's own: no restart
