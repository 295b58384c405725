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
