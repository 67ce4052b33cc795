"""The study's tables from finished runs (results.json files only: runs copied off a cluster suffice).

    python -m robustgen.report RUNS... [--compare paper] [--out DIR] [--data cifar10|imagenette]
    python -m robustgen.report compare RUN_A RUN_B [--measure worst_case]
    python -m robustgen.report sparsity RUNS... [--out DIR]     (the sparsity analysis)

RUNS: run folders, sweep folders or globs. The report folder (default ./report) gets report.md, a CSV
and a booktabs .tex per table (main table, hybrids and patch sizes, corruptions), the sparsity
analysis, the claims and the figures (PNG); the tables are printed (document.py). Sweep jobs without
a results.json are listed as missing. `compare` runs McNemar's exact test on two runs' per-example
outcomes (worst case by default; `--measure clean` or an attack's name).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rich.console import Console

from robustgen.errors import RobustgenError
from robustgen.report.compare import compare_runs
from robustgen.report.document import report
from robustgen.report.runs import collect


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    console = Console()
    if argv[:1] == ["sparsity"]:
        from robustgen.report.sparsity import main as sparsity

        return sparsity(argv)
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
        parser.add_argument("--data", default=None, help="data set of the runs to report (cifar10, imagenette; "
                                                             "default: each one found, in DIR/<data> when several)")
        parser.add_argument("--compare", choices=["paper"], default=None)
        args = parser.parse_args(argv)
        found = collect(args.runs, complete=architecture_from_today)
        warn_completed(found.completed)
        datasets = [args.data] if args.data else sorted({r.data for r in found.runs}) or ["cifar10"]
        for data in datasets:
            report(args.runs, args.out if len(datasets) == 1 else args.out / data, data, args.compare, console, found)
        return 0
    except RobustgenError as err:
        print(f"robustgen.report: error: {err}", file=sys.stderr)
        return 2


def architecture_from_today(record: dict) -> dict:
    """The `architecture` section of a results.json written before runs recorded it, derived from
    today's conf/ and registry (imported only when such a file is found: Hydra takes a second)."""
    from robustgen.cli.study_defaults import describe_architecture

    return describe_architecture(record)


def warn_completed(files: list[Path]) -> None:
    if files:
        shown = ", ".join(map(str, files[:5])) + (f" and {len(files) - 5} more" if len(files) > 5 else "")
        print(f"robustgen.report: warning: {len(files)} results.json written before robustgen 0.3 have no "
              f"architecture section; derived it from today's conf/ (a change of conf/arch defaults moves "
              f"these runs, not newer ones): {shown}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
