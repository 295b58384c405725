"""How a preprocessing run is shown: counts, background methods and the share of time per step."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from engine.preprocess.batch import PreprocessStats


def step_shares(stats: PreprocessStats) -> dict[str, float]:
    """Each step's share (0..1) of the summed step time of the run (worker time plus the lookup)."""
    total = sum(stats.step_seconds.values())
    return {step: (seconds / total if total else 0.0) for step, seconds in stats.step_seconds.items()}


def render_stats(stats: PreprocessStats, console: Console) -> None:
    counts = Table(title="Face preprocessing", show_header=False)
    rate = stats.images / stats.wall_seconds if stats.wall_seconds else 0.0
    rows = [
        ("images", stats.images),
        ("faces (ok)", stats.ok),
        ("no face (excluded)", stats.no_face),
        ("unreadable (excluded)", stats.unreadable),
        ("from the cache", stats.cache_hits),
        ("computed now", stats.computed),
        ("worker processes", stats.workers),
        ("background methods", ", ".join(f"{k}: {v}" for k, v in stats.background_methods.items()) or "-"),
        ("time", f"{stats.wall_seconds:.2f} s ({rate:.1f} images/s)"),
    ]
    for name, value in rows:
        counts.add_row(name, str(value))
    console.print(counts)
    if stats.computed:
        steps = Table(title="Time per step (all workers)")
        steps.add_column("step")
        steps.add_column("seconds", justify="right")
        steps.add_column("share", justify="right")
        for step, share in step_shares(stats).items():
            steps.add_row(step, f"{stats.step_seconds[step]:.2f}", f"{100 * share:.1f} %")
        console.print(steps)
    # stats.background_note is not repeated here: the run already logged it once.
