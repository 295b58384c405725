"""The ``painlens`` command line.

Every command turns a :class:`engine.errors.PainLensError` into its sentence on stderr and the
error's exit code; tracebacks are for bugs only. Heavy imports (TensorFlow, MTCNN) happen inside the
commands so that ``painlens --help`` and ``painlens scan`` stay fast.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from engine.errors import PainLensError

app = typer.Typer(add_completion=False, no_args_is_help=True, help="PainLens: facial pain recognition research tool.")
console = Console()
err_console = Console(stderr=True)


def main() -> None:
    try:
        app()
    except PainLensError as exc:
        err_console.print(f"[bold red]Error:[/] {exc}", highlight=False)
        sys.exit(exc.exit_code)


# --- command: synth ---

# --- command: scan ---

# --- command: paindb ---

# --- command: preprocess ---

# --- command: run ---
@app.command("run")
def run_command(
    config_path: Path = typer.Argument(..., metavar="CONFIG", help="Experiment TOML, e.g. experiments/demo.toml."),
    models: Optional[list[str]] = typer.Option(None, "--models", help="Only these networks (repeatable)."),
    scenarios: Optional[list[str]] = typer.Option(None, "--scenarios", help="Only these scenarios: image, subject, external."),
    out: Optional[Path] = typer.Option(None, "--out", help="Artifact root (default: artifacts/ in the project)."),
    force: bool = typer.Option(False, "--force", help="Redo finished runs."),
    progress: bool = typer.Option(True, "--progress/--no-progress"),
) -> None:
    """Prepare data, train and evaluate every (network, scenario, fold), compute metrics and ratings."""
    from engine.pipeline import run_experiment

    report = run_experiment(config_path, models=models, scenarios=scenarios, out=out, force=force, progress=progress)
    console.print(report.render())


# --- command: ratings ---


if __name__ == "__main__":
    main()
