"""Terminal output of ``painlens ratings``: Table 4 with CIs and Fleiss categories, the problems list."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from engine.ratings.forms import ALL_SOURCES, ICC_FORMS, scale_label, source_label
from engine.ratings.pipeline import RatingsReport
from engine.ratings.report import NO_PAIN_ROW, format_icc, table4_cells

KIND_TITLES = {
    "bad_row": "rows with the wrong number of fields",
    "missing_value": "rows with an empty video id or rater",
    "unknown_scale": "unknown scales",
    "unknown_item": "unknown items",
    "non_numeric": "scores that are not numbers",
    "out_of_range": "scores out of range",
    "duplicate": "duplicate ratings",
    "missing_item": "raters missing an item",
    "single_rater": "videos rated by one rater only",
    "missing_rater": "videos missing some raters (kept, left out of the ICC)",
    "source_conflict": "videos with conflicting pain sources (first one used)",
    "unknown_source": "unknown pain sources (kept as their own group)",
}


def print_report(report: RatingsReport, console: Console, examples: int = 5, all_forms: bool = False) -> None:
    """Table 4 (headline ICC with 95 % CI and Fleiss category, pain/no-pain counts), notes, problems."""
    result, load = report.result, report.load
    cells = table4_cells(result, sep="\n")
    table = Table(title=f"Inter-rater agreement: {result.headline_form} ({result.headline_description}), "
                        "95 % CI, Fleiss category", title_justify="left")
    table.add_column("Source of pain", style="bold")
    for column in cells.columns:
        table.add_column(column, justify="right")
    for label, row in cells.iterrows():
        table.add_row(escape(str(label)), *(escape(str(v)) for v in row), end_section=label == source_label(ALL_SOURCES))
    console.print(table)
    videos = result.labels["video"].nunique()
    console.print(f"{videos} videos, {len(load.raters)} raters; rows read {load.rows_read}, used {load.rows_used}, "
                  f"excluded {load.rows_excluded}. '{NO_PAIN_ROW}': every rater gave 0 on that scale.",
                  highlight=False)
    if all_forms:
        _print_all_forms(report, console)
    for note in [*result.notes, *report.notes]:
        console.print(f"[yellow]Note:[/] {escape(note)}", highlight=False)
    _print_problems(report, console, examples)


def _print_all_forms(report: RatingsReport, console: Console) -> None:
    """One table per scale: the six forms (rows) by pain source (columns), ICC and 95 % CI."""
    result = report.result
    for scale, per_scale in result.icc.groupby("scale", sort=False):
        table = Table(title=f"{scale_label(scale)}: all ICC forms, 95 % CI", title_justify="left")
        table.add_column("Form")
        sources = list(dict.fromkeys(per_scale["source"]))
        for source in sources:
            table.add_column(escape(source_label(source)), justify="right")
        values = per_scale.set_index(["form", "source"])
        for form in ICC_FORMS.values():
            cells = []
            for source in sources:
                row = values.loc[(form.name, source)]
                cells.append(format_icc(row, category=False, sep="\n"))
            table.add_row(f"{form.name} {form.pingouin_type}", *(escape(cell) for cell in cells))
        console.print(table)
    console.print("; ".join(f"{form.name}: {form.description}" for form in ICC_FORMS.values()), highlight=False)


def _print_problems(report: RatingsReport, console: Console, examples: int) -> None:
    load = report.load
    if not load.problems:
        console.print("[green]No problems found in the ratings file.[/]")
        return
    console.print(f"[bold]Problems:[/] {len(load.problems)} found, {load.rows_excluded} rows excluded "
                  "(row 1 is the header).", highlight=False)
    by_kind: dict[str, list] = {}
    for problem in load.problems:
        by_kind.setdefault(problem.kind, []).append(problem)
    for kind, problems in by_kind.items():
        console.print(f"  {len(problems)} {KIND_TITLES.get(kind, kind)}:", highlight=False)
        for problem in problems[:examples]:
            console.print(f"    {problem.message}", highlight=False, markup=False)
        if len(problems) > examples:
            console.print(f"    ... and {len(problems) - examples} more (all are listed with --json).", highlight=False)
