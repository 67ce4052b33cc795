"""A run's results at the console: the table `python -m robustgen` and `python -m robustgen.evaluate`
print when they finish, read from the results record."""
from __future__ import annotations

from pathlib import Path


def print_summary(record: dict, path: Path) -> None:
    """The results table, readable at any terminal width: the metric names fold, the numbers never
    wrap, and the results path goes on its own line unwrapped (a wrapped caption used to break it
    mid-word, so it could not be copied)."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{record['run_name']}: {record['n_points']} test points")
    table.add_column("metric", overflow="fold")
    table.add_column("accuracy %", justify="right", no_wrap=True)
    table.add_row("clean", f"{record['clean_acc']:.2f}")
    for name, acc in record["attack_acc"].items():
        table.add_row(name, f"{acc:.2f}")
    table.add_row("worst case", f"{record['worst_case_acc']:.2f}", style="bold")
    if record.get("chance_acc") is not None:  # what guessing scores: the numbers above mean nothing near it
        table.add_row("chance level", f"{record['chance_acc']:.2f}", style="dim")
    corruptions = record.get("corruptions")
    if corruptions:
        for name, acc in corruptions["acc_by_corruption"].items():
            table.add_row(f"  {name} (mean of severities)", f"{acc:.2f}")
        table.add_row(f"corruptions: mean of {corruptions['cells']} cells", f"{corruptions['mean_acc']:.2f}",
                      style="bold")
        if "mean_worst_case" in corruptions:
            table.add_row("corruptions + attacks: worst case", f"{corruptions['mean_worst_case']:.2f}", style="bold")
    table.add_row("time (s)", f"{record['time_s']['total']:.0f}")
    console = Console()
    console.print(table)
    console.print(f"results: {path}", soft_wrap=True, highlight=False, markup=False)
