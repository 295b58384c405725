"""Memory of ``painlens run`` at paper scale on the CPU: the runner and all its children, sampled.

    nice -n 15 .venv/bin/python bench/paper_memory.py --work /tmp/paper-cpu [--models WeiNet] [--epochs 2] [--steps 0]

Writes ``WORK/experiments/paper-cpu.toml``: experiments/paper.toml with ``synthetic_size = "paper"``
(about 2,600 PAIN-DB faces as the paper's Table 2, and CP-PAIN), all three scenarios at 5 folds and 5
seeds, only ``--models`` for ``--epochs`` epochs (of ``--steps`` batches each when above 0: memory
depends on what a run loads, not on how long it trains, and a full epoch of 2,000 faces at batch 128 takes
minutes per run on a 2-core CPU), weights "none" and explanations off (LIME at 1,000 samples is a GPU's job). Then runs, each as a child process sampled every ``--every`` seconds from /proc:

  1. ``painlens synth`` (the paper-size trees; skipped when WORK/data/paper already holds them),
  2. ``painlens run`` (scan, PAIN-DB, preprocessing into the face cache, the 15 trainings per network).

For each it prints the wall time, the peak over time of the summed proportional set size (PSS: shared
pages split among the processes sharing them) of the process and all its descendants, and the peak
resident set of the largest single process with its role; then the face cache's size on disk and the
stage times recorded in the experiment's manifest (prepare: scan + PAIN-DB + preprocessing; train).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def config_text(models: list[str], epochs: int, steps: int = 0) -> str:
    """paper.toml with the changes named in the module docstring (TOML written by hand: no writer here)."""
    paper = tomllib.loads((ROOT / "experiments" / "paper.toml").read_text())
    lines = []
    paper["experiment"]["name"] = "paper-cpu"
    paper["data"].update(root="data/paper", synthetic_size="paper", synthetic_seed=0)
    paper["preprocess"]["cache_dir"] = ".cache/faces"
    paper["training"].update(models=models, epochs=epochs, weights="none")
    if steps > 0:
        paper["training"]["steps_per_epoch_per_model"] = {model: steps for model in models}
    paper["explain"] = {"enabled": False}
    for section, values in paper.items():
        lines.append(f"[{section}]")
        lines.extend(f"{key} = {toml_value(value)}" for key, value in values.items())
    return "\n".join(lines) + "\n"


def toml_value(value) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items()) + " }"
    return repr(value)


def descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def memory_kib(pid: int) -> tuple[int, int, str]:
    """(PSS, RSS) in KiB and a short role of one process; zeros when it is gone."""
    try:
        rollup = (Path("/proc") / str(pid) / "smaps_rollup").read_text().splitlines()
        fields = {line.split(":")[0]: int(line.split()[1]) for line in rollup[1:] if line.endswith("kB")}
        argv = (Path("/proc") / str(pid) / "cmdline").read_bytes().split(b"\0")
    except (OSError, ValueError, IndexError):
        return 0, 0, ""
    role = " ".join(a.decode(errors="replace") for a in argv[1:4])[:60]
    return fields.get("Pss", 0), fields.get("Rss", 0), role


def run_sampled(command: list[str], every: float, cwd: Path, log: Path) -> dict:
    """Run ``command``, sampling its process tree; returns wall seconds and the peaks."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    started = time.perf_counter()
    with open(log, "w") as out:
        child = subprocess.Popen(command, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, env=env)
        peak_tree, peak_single, peak_role, peak_processes = 0, 0, "", 0
        while child.poll() is None:
            samples = [memory_kib(pid) for pid in descendants(child.pid)]
            peak_tree = max(peak_tree, sum(pss for pss, _, _ in samples))
            peak_processes = max(peak_processes, sum(1 for _, rss, _ in samples if rss))
            for _, rss, role in samples:
                if rss > peak_single:
                    peak_single, peak_role = rss, role
            time.sleep(every)
    if child.returncode != 0:
        raise SystemExit(f"{' '.join(command[:3])} failed (exit {child.returncode}); see {log}")
    return {"seconds": time.perf_counter() - started, "tree_gib": peak_tree / 2**20,
            "single_gib": peak_single / 2**20, "single_role": peak_role, "processes": peak_processes}


def folder_size(folder: Path) -> tuple[float, int]:
    files = [p for p in folder.rglob("*") if p.is_file()]
    return sum(p.stat().st_size for p in files) / 2**20, len(files)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, required=True, help="folder for the data, face cache and artifacts")
    parser.add_argument("--models", nargs="+", default=["WeiNet"])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--steps", type=int, default=0, help="batches per epoch (0: the whole training set)")
    parser.add_argument("--every", type=float, default=0.5, help="seconds between samples")
    args = parser.parse_args()
    work = args.work.resolve()
    (work / "experiments").mkdir(parents=True, exist_ok=True)
    config = work / "experiments" / "paper-cpu.toml"
    config.write_text(config_text(args.models, args.epochs, args.steps))
    painlens = [sys.executable, "-m", "painlens.cli"]
    print(f"{os.cpu_count()} CPUs; config {config}")
    print(f"{'step':<8}{'wall s':>9}{'peak GiB (tree, PSS)':>22}{'processes':>10}{'peak GiB (one, RSS)':>21}  that one")
    steps = [("synth", [*painlens, "synth", str(work / "data" / "paper"), "--size", "paper", "--seed", "0"])]
    if (work / "data" / "paper" / "SYNTHETIC.json").exists():
        steps = []
    steps.append(("run", [*painlens, "run", str(config), "--out", str(work / "artifacts"), "--no-progress"]))
    for name, command in steps:
        row = run_sampled(command, args.every, work, work / f"{name}.log")
        print(f"{name:<8}{row['seconds']:>9.0f}{row['tree_gib']:>22.2f}{row['processes']:>10}"
              f"{row['single_gib']:>21.2f}  {row['single_role']}", flush=True)
    from engine.artifacts import ExperimentStore

    size, count = folder_size(work / ".cache" / "faces")
    print(f"face cache: {size:.0f} MiB in {count} files")
    manifest = ExperimentStore(work / "artifacts", "paper-cpu").manifest()
    seconds = {k: round(v) for k, v in (manifest.get("seconds") or {}).items()}
    print(f"manifest: {manifest.get('counts')}; stage seconds {seconds}")
    stats = manifest.get("preprocess") or {}
    keys = ("images", "ok", "no_face", "cache_hits", "computed", "workers", "wall_seconds", "step_seconds")
    print(f"preprocessing: { {k: stats[k] for k in keys if k in stats} }")


if __name__ == "__main__":
    main()
