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

# --- command: ratings ---


if __name__ == "__main__":
    main()
