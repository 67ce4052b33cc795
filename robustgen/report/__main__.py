"""The study's tables from finished runs (results.json files only: runs copied off a cluster suffice).

    python -m robustgen.report RUNS... [--compare paper] [--out DIR] [--data cifar10]
    python -m robustgen.report compare RUN_A RUN_B [--measure worst_case]
    python -m robustgen.report sparsity RUNS... [--out DIR]     (the sparsity analysis)

RUNS: run folders, sweep folders or globs. The report folder (default ./report) gets report.md,
main_table.csv and main_table.tex (booktabs), and the tables are printed. Sweep jobs without a
results.json are listed as missing. `compare` runs McNemar's exact test on two runs' per-example
outcomes (worst case by default; `--measure clean` or an attack's name).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd
from rich.console import Console
from rich.table import Table

from robustgen.errors import RobustgenError
from robustgen.report.compare import compare_runs
from robustgen.report.main_table import COLUMNS, flat, formatted, main_table
from robustgen.report.paper import beside_paper, compact, hybrids_and_patches
from robustgen.report.runs import collect


def text(value, column: str) -> str:
    """A cell as text: p-values to 3 significant digits, other numbers to 2 decimals, gaps as —."""
    if isinstance(value, float):
        return "—" if pd.isna(value) else f"{value:.3g}" if column.endswith("_p") else f"{value:.2f}"
    return str(value)


def markdown(frame: pd.DataFrame) -> str:
    """A GitHub-style markdown table (no extra dependency for one small table)."""
    head = "| " + " | ".join(map(str, frame.columns)) + " |"
    rule = "|" + "---|" * len(frame.columns)
    body = ["| " + " | ".join(text(v, str(c)) for v, c in zip(row, frame.columns)) + " |"
            for row in frame.itertuples(index=False)]
    return "\n".join([head, rule, *body])


def show(console: Console, title: str, frame: pd.DataFrame) -> None:
    table = Table(title=title)
    for column in frame.columns:
        table.add_column(str(column))
    for row in frame.itertuples(index=False):
        table.add_row(*(text(v, str(c)) for v, c in zip(row, frame.columns)))
    console.print(table)


def numbers(table: pd.DataFrame) -> pd.DataFrame:
    """The CSV form: mean, std, seeds and CI bounds as separate columns."""
    out = flat(table)[["architecture", "params_m", "runs", "vanilla_acc", *COLUMNS]]
    for column in ("vanilla_acc", *COLUMNS):
        cells = table[column]
        out[f"{column}_std"] = [c["std"] if c else None for c in cells]
        out[f"{column}_n"] = [c["n"] if c else None for c in cells]
        out[f"{column}_ci_low"] = [c["ci"][0] if c and "ci" in c else None for c in cells]
        out[f"{column}_ci_high"] = [c["ci"][1] if c and "ci" in c else None for c in cells]
    return out


def write_table(out: Path, name: str, table: pd.DataFrame) -> pd.DataFrame:
    """`name`.csv (the numbers) and `name`.tex (booktabs) of a table; returns its printable form."""
    shown = formatted(table)
    numbers(table).to_csv(out / f"{name}.csv", index=False)
    (out / f"{name}.tex").write_text(
        shown.style.hide(axis="index").to_latex(hrules=True, column_format="l" + "r" * (len(shown.columns) - 1)))
    return shown


def report(paths: list[str], out: Path, data: str, compare: str | None, console: Console) -> int:
    found = collect(paths)
    runs = [r for r in found.runs if r.data == data]
    lines = [f"# robustgen report ({data})", "", f"Runs: {len(runs)} with results.json under {', '.join(paths)}."]
    if found.missing:
        lines += ["", f"Missing ({len(found.missing)} sweep jobs without results.json: failed, killed or running):", ""]
        lines += [f"- {path}" for path in found.missing]
        console.print(f"[yellow]missing: {len(found.missing)} job(s) without results.json[/yellow]: "
                      + ", ".join(map(str, found.missing)))
    if not runs:
        raise RobustgenError(f"no finished runs on data={data} under {', '.join(paths)}")
    table = main_table(runs, data)
    out.mkdir(parents=True, exist_ok=True)
    shown = write_table(out, "main_table", table)
    show(console, f"Main table ({data}): accuracy % (single run: 95% Wilson interval; seeds: mean ± std)", shown)
    lines += ["", "## Main table", "", "Accuracy in %. Single run: [95% Wilson interval over test points]; "
              "several seeds: mean ± std (n).", "", markdown(shown)]
    if compare == "paper":
        if data != "cifar10":
            lines += ["", f"(The paper's numbers cover CIFAR-10 only; no comparison for {data}.)"]
        else:
            cells, rankings = beside_paper(table)
            cells.to_csv(out / "main_table_vs_paper.csv", index=False)
            rankings.to_csv(out / "rank_agreement.csv", index=False)
            show(console, "Ours beside the paper: ours (paper, ours − paper), accuracy %", compact(cells))
            show(console, "Architecture rankings, ours vs the paper", rankings)
            lines += ["", "## Beside the paper", "", "ours (paper, ours − paper), accuracy %; only an "
                      "architecture's default variant has a paper row.", "", markdown(compact(cells)), "",
                      "### Rank agreement per column (Spearman ρ, Kendall τ-b, SciPy)", "",
                      markdown(rankings)]
    hybrid = hybrids_and_patches(table)
    if len(hybrid):
        shown = write_table(out, "hybrids_patches", hybrid)
        show(console, "Hybrids (CoAtNet stage layouts) and patch sizes", shown)
        lines += ["", "## Hybrids and patch sizes", "", markdown(shown)]
        if compare == "paper" and data == "cifar10":
            cells, rankings = beside_paper(hybrid, hybrids=True)
            cells.to_csv(out / "hybrids_patches_vs_paper.csv", index=False)
            show(console, "Hybrids and patch sizes beside the paper: ours (paper, ours − paper)", compact(cells))
            lines += ["", "### Beside the paper", "", markdown(compact(cells))]
    (out / "report.md").write_text("\n".join(lines) + "\n")
    console.print(f"report: {out / 'report.md'}")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    console = Console()
    if argv[:1] == ["sparsity"]:
        from robustgen.analyze import main as analyze

        return analyze(argv)
    try:
        if argv[:1] == ["compare"]:
            parser = argparse.ArgumentParser(prog="python -m robustgen.report compare")
            parser.add_argument("run_a")
            parser.add_argument("run_b")
            parser.add_argument("--measure", default="worst_case", help="worst_case, clean or an attack's name")
            args = parser.parse_args(argv[1:])
            test, n = compare_runs(args.run_a, args.run_b, args.measure)
            console.print(f"McNemar's exact test, {args.measure}, {n} common test points: both correct "
                          f"{test.both_correct}, only A {test.only_a}, only B {test.only_b}, both wrong "
                          f"{test.both_wrong}; p = {test.p_value:.4g}")
            return 0
        parser = argparse.ArgumentParser(prog="python -m robustgen.report", description=__doc__.split("\n\n")[0])
        parser.add_argument("runs", nargs="+", help="run folders, sweep folders or globs")
        parser.add_argument("--out", type=Path, default=Path("report"))
        parser.add_argument("--data", default="cifar10", help="data set of the runs to report (cifar10, imagenette)")
        parser.add_argument("--compare", choices=["paper"], default=None)
        args = parser.parse_args(argv)
        return report(args.runs, args.out, args.data, args.compare, console)
    except RobustgenError as err:
        print(f"robustgen.report: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
