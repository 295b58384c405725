"""The one progress bar of the command line: description, bar, done/total, elapsed time and ETA."""

from __future__ import annotations

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn


def progress_bar(enabled: bool = True, transient: bool = False, console=None) -> Progress:
    """A rich Progress (use as a context manager, then ``add_task``); silent when not ``enabled``.

    ``console``: where it draws (a ``rich.console.Console``; e.g. standard error, when standard output
    carries the command's JSON)."""
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    TextColumn("ETA"), TimeRemainingColumn(), disable=not enabled, transient=transient, console=console)
