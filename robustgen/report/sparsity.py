"""Sparsity vs robustness (the report's fourth table), computed from results.json files only.

    python -m robustgen.report sparsity RUNS... [--out DIR]    (alias: python -m robustgen.analyze sparsity)

`sparsity`: for every results.json under RUNS (run folders or a whole multirun folder, searched
recursively) a table of the weight sparsity, Theorem 1's norm term and the robust generalization
gap next to the worst-case accuracy; Spearman rank correlations of each sparsity / complexity
measure with the robust gap and with the worst-case accuracy; and a scatter plot of the same,
written to DIR (default: the first RUNS path) as sparsity_analysis.png, with the table as
sparsity_analysis.csv. Rank correlations because the measures live on very different scales across
architectures and only their order is claimed (PROTOCOL.md, claim 2).
"""
from __future__ import annotations

import argparse
import csv
import math
import sys
from pathlib import Path

from robustgen.errors import RobustgenError
from robustgen.record.results import RESULTS_FILE, read_results

# (column key, label) of the measures and of the outcomes they are correlated with.
MEASURES = (("near_zero", "overall near-zero"), ("hoyer", "overall Hoyer"), ("attention_hoyer", "attention Hoyer"),
            ("complexity", "Thm 1 norm term (attn)"), ("layer_pair", "layer-pair norm term"))
OUTCOMES = (("robust_gap", "robust gap (pts)"), ("worst_case", "worst-case acc %"))


def find_results(paths: list[str | Path]) -> list[Path]:
    """Every results.json at or under `paths` (sorted, without duplicates; globs allowed), found as
    the report finds them (robustgen.report.runs.results_files)."""
    from robustgen.report.runs import results_files

    found, _ = results_files(paths)
    if not found:
        raise RobustgenError(f"no {RESULTS_FILE} under {', '.join(map(str, paths))}: pass run output folders "
                             f"(outputs/<date>/<time>) or a multirun folder (multirun/<date>/<time>)")
    return found


def _get(record: dict, *keys):
    for key in keys:
        if not isinstance(record, dict) or key not in record:
            return None
        record = record[key]
    return record


def run_row(path: Path, base: Path | None = None) -> dict:
    """One table row from one results.json (None where the run did not measure something)."""
    record = read_results(path)
    folder = path.parent
    label = str(folder.relative_to(base)) if base is not None and folder != base and base in folder.parents \
        else folder.name
    regularizer = record.get("regularizer") or {}
    return {
        "run": label,
        "arch": _get(record, "arch", "name") or _get(record, "choices", "arch"),
        "lambda": float(regularizer.get("weight", 0.0)),
        "scope": regularizer.get("scope", "-"),
        "near_zero": _get(record, "sparsity", "overall", "near_zero"),
        "hoyer": _get(record, "sparsity", "overall", "hoyer"),
        "attention_hoyer": _get(record, "sparsity", "attention", "hoyer"),
        "complexity": _get(record, "bound", "rademacher_norm_mean"),
        "layer_pair": _get(record, "bound", "layer_pair_norm_mean"),
        "robust_gap": _get(record, "robust_gap", "final"),
        "worst_case": record.get("worst_case_acc"),
        "path": str(path),
    }


def rank_correlations(rows: list[dict]) -> list[dict]:
    """Spearman ρ (and its p-value) of every measure against every outcome, over the runs that have both."""
    from scipy.stats import spearmanr

    out = []
    for measure, measure_label in MEASURES:
        for outcome, outcome_label in OUTCOMES:
            pairs = [(r[measure], r[outcome]) for r in rows if r[measure] is not None and r[outcome] is not None]
            entry = {"measure": measure_label, "outcome": outcome_label, "n": len(pairs), "rho": None, "p": None}
            if len(pairs) < 3:
                entry["note"] = "fewer than 3 runs"
            elif len({a for a, _ in pairs}) < 2 or len({b for _, b in pairs}) < 2:
                entry["note"] = "constant"
            else:
                rho, p = spearmanr([a for a, _ in pairs], [b for _, b in pairs])
                entry.update(rho=float(rho), p=float(p))
            out.append(entry)
    return out


def _fmt(value, spec: str = ".3g") -> str:
    return "—" if value is None else format(value, spec)


def print_tables(rows: list[dict], correlations: list[dict]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=160)
    table = Table(title=f"Sparsity vs robust generalization ({len(rows)} runs)")
    for name in ("run", "arch", "λ", "scope", "near-zero", "Hoyer", "attn Hoyer", "Thm 1 term", "layer-pair term",
                 "robust gap", "worst-case %"):
        table.add_column(name, justify="left" if name in ("run", "arch", "scope") else "right")
    for r in rows:
        table.add_row(r["run"], str(r["arch"]), _fmt(r["lambda"], "g"), str(r["scope"]), _fmt(r["near_zero"], ".4f"),
                      _fmt(r["hoyer"], ".4f"), _fmt(r["attention_hoyer"], ".4f"), _fmt(r["complexity"], ".4g"),
                      _fmt(r["layer_pair"], ".4g"), _fmt(r["robust_gap"], ".2f"), _fmt(r["worst_case"], ".2f"))
    console.print(table)
    corr = Table(title="Spearman rank correlations")
    for name in ("measure", "outcome", "n", "ρ", "p"):
        corr.add_column(name, justify="left" if name in ("measure", "outcome") else "right")
    for c in correlations:
        corr.add_row(c["measure"], c["outcome"], str(c["n"]), _fmt(c["rho"], "+.3f") if c["rho"] is not None
                     else c.get("note", "—"), _fmt(c["p"], ".3f"))
    console.print(corr)


def plot(rows: list[dict], correlations: list[dict], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rho = {(c["measure"], c["outcome"]): c["rho"] for c in correlations}
    fig, axes = plt.subplots(len(OUTCOMES), len(MEASURES), figsize=(3.4 * len(MEASURES), 3.0 * len(OUTCOMES)),
                             squeeze=False)
    for j, (measure, measure_label) in enumerate(MEASURES):
        for i, (outcome, outcome_label) in enumerate(OUTCOMES):
            ax = axes[i][j]
            points = [r for r in rows if r[measure] is not None and r[outcome] is not None]
            xs, ys = [r[measure] for r in points], [r[outcome] for r in points]
            ax.scatter(xs, ys, s=22)
            for r, x, y in zip(points, xs, ys):
                ax.annotate(r.get("label") or f"{r['arch']} λ={r['lambda']:g}", (x, y), fontsize=7, alpha=0.8)
            if xs and min(xs) > 0 and max(xs) / min(xs) > 100:
                ax.set_xscale("log")  # norm terms differ by orders of magnitude across architectures
            r_value = rho[(measure_label, outcome_label)]
            ax.set_title(f"ρ = {r_value:+.2f}" if r_value is not None and not math.isnan(r_value) else "ρ: n/a",
                         fontsize=9)
            ax.set_xlabel(measure_label, fontsize=8)
            if j == 0:
                ax.set_ylabel(outcome_label, fontsize=8)
            ax.tick_params(labelsize=7)
    fig.suptitle("Sparsity and Theorem 1's norm term against the robust generalization gap and the worst case "
                 "(Spearman ρ per panel)", fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def write_csv(rows: list[dict], path: Path) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def analyze_sparsity(paths: list[str], out: str | None = None) -> dict:
    files = find_results(paths)
    first = Path(paths[0])
    base = (first if first.is_dir() else first.parent).resolve()
    rows = sorted((run_row(f, base) for f in files), key=lambda r: (str(r["arch"]), r["lambda"], r["run"]))
    correlations = rank_correlations(rows)
    out_dir = Path(out) if out else base
    out_dir.mkdir(parents=True, exist_ok=True)
    print_tables(rows, correlations)
    png = plot(rows, correlations, out_dir / "sparsity_analysis.png")
    table = write_csv(rows, out_dir / "sparsity_analysis.csv")
    print(f"wrote {png} and {table}")
    return {"rows": rows, "correlations": correlations, "png": png, "csv": table}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m robustgen.report", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    sparsity = commands.add_parser("sparsity", help="sparsity / Theorem 1 norm term vs robust gap and worst case")
    sparsity.add_argument("runs", nargs="+", help="run folders, multirun folders or results.json files")
    sparsity.add_argument("--out", default=None, help="folder for the PNG and CSV (default: the first RUNS path)")
    args = parser.parse_args(argv)
    try:
        analyze_sparsity(args.runs, args.out)
    except RobustgenError as err:
        print(f"robustgen: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
