"""``generate(out, seed, size)``: the four synthetic trees and ``SYNTHETIC.json``, the record of what was written.

Writes ``out/unbc``, ``out/mintpain``, ``out/delaware`` and ``out/cppain`` in the native layouts of
``DATASETS.md``, and ``out/videos`` (short clips of the CP-PAIN subjects and ``clips.csv``, ``engine.synth.clips``); the record (subjects, sequences, images per binary label, black frames...) is what tests
compare adapters against. Every random choice comes from an RNG derived from (seed, dataset, subject, ...),
so the same seed and size give byte-identical files whatever the number of worker processes.
"""

from __future__ import annotations

import functools
import os
import shutil
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Callable

from engine.errors import PainLensError
from engine.progress import progress_bar
from engine.synth.clips import CLIP_SIZES, FOLDER as CLIPS_FOLDER, clip_jobs, render_clip_job, write_clip_table
from engine.synth.cppain import CpJob, cp_plan, render_cp_subject, write_cp_tables
from engine.synth.delaware import DelawareJob, delaware_counts, delaware_record, render_delaware_subject, write_characterization_csv
from engine.synth.files import write_json
from engine.synth.mintpain import MintJob, mint_record, render_mint_subject
from engine.synth.seeding import derived_rng
from engine.synth.sizes import SIZES, SizeSpec
from engine.synth.unbc import UnbcJob, render_unbc_subject, unbc_record

# 2: pain AUs drawn twice as strongly (action_units.PAIN_VISUAL_GAIN); 3: clips in videos/ (the trees unchanged);
# 4: CP-PAIN subjects hold an atypical resting face (cppain.resting_pattern); 5: their clips show it too
GENERATOR_VERSION = 5
DATASETS = ("unbc", "mintpain", "delaware", "cppain")
RECORD_NAME = "SYNTHETIC.json"
_PARTIAL = ".partial"  # trees are written here and moved into place when all are complete

Tasks = dict[str, tuple[Callable, list]]  # dataset -> (job function, its jobs)


def generate(out: Path, seed: int, size: str, progress: bool = False, workers: int | None = None) -> dict:
    """Write the four synthetic datasets under ``out`` and return the record also saved as SYNTHETIC.json.

    ``size`` is tiny, demo or paper. ``workers`` processes render in parallel (default: up to 2);
    the files do not depend on it. With ``progress`` a rich progress bar is shown.
    """
    if size not in SIZES:
        raise PainLensError(f"Unknown synthetic size '{size}'; choose tiny, demo or paper.")
    spec = SIZES[size]
    out = Path(out)
    partial = _prepare(out)
    workers = workers if workers is not None else max(1, min(2, os.cpu_count() or 1))
    roots = _make_roots(partial)
    plan = cp_plan(seed, spec)
    tasks = _tasks(seed, spec, roots, plan)
    units = sum(len(jobs) for _, jobs in tasks.values()) + CLIP_SIZES[size].clips
    with progress_bar(progress) as bar:
        tick = functools.partial(bar.advance, bar.add_task("Rendering subjects", total=units))
        done = _run_all(tasks, workers, tick)
        cp_record = write_cp_tables(roots["cppain"], done["cppain"], plan)
        # The clips film CP-PAIN's subjects, whose identities and resting faces are known once their jobs are done.
        jobs = clip_jobs(seed, size, roots[CLIPS_FOLDER], cp_record["identities"], cp_record["resting_patterns"])
        clips = _run_all({CLIPS_FOLDER: (render_clip_job, jobs)}, workers, tick)[CLIPS_FOLDER]
    write_characterization_csv(roots["delaware"], done["delaware"])
    record = {
        "generator": "painlens.synth",
        "version": GENERATOR_VERSION,
        "seed": int(seed),
        "size": size,
        "datasets": {
            "unbc": unbc_record(done["unbc"]),
            "mintpain": mint_record(done["mintpain"]),
            "delaware": delaware_record(done["delaware"]),
            "cppain": cp_record,
        },
        "videos": write_clip_table(roots[CLIPS_FOLDER], clips),
    }
    for name in (*DATASETS, CLIPS_FOLDER):
        target = out / name
        if target.exists():
            shutil.rmtree(target)
        roots[name].rename(target)
    shutil.rmtree(partial)
    write_json(out / RECORD_NAME, record)
    return record


def _prepare(out: Path) -> Path:
    """Make ``out`` ready and return an empty partial folder in it; refuse a folder that holds other things
    than an earlier synthetic run."""
    out.mkdir(parents=True, exist_ok=True)
    ours = set(DATASETS) | {CLIPS_FOLDER, RECORD_NAME, _PARTIAL}
    foreign = [p.name for p in out.iterdir() if p.name not in ours and not p.name.startswith(".")]
    present = [p for p in out.iterdir() if p.name in DATASETS]
    if foreign or (present and not (out / RECORD_NAME).is_file()):
        raise PainLensError(
            f"{out} already holds files that are not synthetic PainLens data; give an empty or new folder for synth."
        )
    partial = out / _PARTIAL
    if partial.exists():
        shutil.rmtree(partial)
    partial.mkdir()
    return partial


def _make_roots(partial: Path) -> dict[str, Path]:
    """Each dataset's root folder inside ``partial``, with the fixed subfolders the jobs write into."""
    roots = {name: partial / name for name in (*DATASETS, CLIPS_FOLDER)}
    for root in roots.values():
        root.mkdir()
    (roots["delaware"] / "pain").mkdir()
    (roots["delaware"] / "neutral").mkdir()
    (roots["cppain"] / "images").mkdir()
    return roots


def _tasks(seed: int, spec: SizeSpec, roots: dict[str, Path], plan: list[dict]) -> Tasks:
    """One job per subject of every dataset; the heaviest (640x480 videos) first, so the workers finish together."""
    low_pain = {}
    if spec.unbc_low_pain:  # which subjects have few pain frames: drawn from the seed
        picks = derived_rng(seed, "unbc", "low").choice(spec.unbc_subjects, len(spec.unbc_low_pain), replace=False)
        low_pain = {int(pick): frames for pick, frames in zip(picks, spec.unbc_low_pain)}
    by_subject: dict[str, list[dict]] = {}
    for video in plan:
        by_subject.setdefault(video["subject"], []).append(video)
    return {
        "mintpain": (render_mint_subject, [MintJob(seed, roots["mintpain"], i, spec) for i in range(spec.mint_subjects)]),
        "cppain": (render_cp_subject, [CpJob(seed, roots["cppain"], subject, videos) for subject, videos in sorted(by_subject.items())]),
        "unbc": (render_unbc_subject, [UnbcJob(seed, roots["unbc"], i, spec, low_pain.get(i)) for i in range(spec.unbc_subjects)]),
        "delaware": (render_delaware_subject,
                     [DelawareJob(seed, roots["delaware"], i, photos) for i, photos in enumerate(delaware_counts(spec))]),
    }


def _run_all(tasks: Tasks, workers: int, tick: Callable[[], None]) -> dict[str, list]:
    """Run every job of every dataset, in one process pool; results per dataset in job order.

    Each job draws its randomness from its own seeded RNG and writes its own files, so neither the
    number of workers nor the completion order changes a byte.
    """
    flat = [(name, i, run, job) for name, (run, jobs) in tasks.items() for i, job in enumerate(jobs)]
    results: dict[str, list] = {name: [None] * len(jobs) for name, (_, jobs) in tasks.items()}
    if workers <= 1:
        for name, i, run, job in flat:
            results[name][i] = run(job)
            tick()
        return results
    with ProcessPoolExecutor(max_workers=workers) as pool:
        futures = {pool.submit(run, job): (name, i) for name, i, run, job in flat}
        for future in as_completed(futures):
            name, i = futures[future]
            results[name][i] = future.result()
            tick()
    return results
