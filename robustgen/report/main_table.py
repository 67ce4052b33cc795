"""The study's main table (Table 1): one row per architecture, in the paper's column order.

architecture, params (M), vanilla accuracy, then after PGD-AT: clean, PGD-ℓ∞, AA-ℓ∞, PGD-ℓ2,
PGD-ℓ1, worst case. The vanilla column comes from the `attack=none` run of the same architecture,
variant and data set, joined automatically. Runs that differ only in seed are grouped: each cell
is their mean, with the standard deviation, the number of seeds and a 95% bootstrap interval over
seeds and test points; a single run's cell carries its 95% Wilson interval over the test points.

A column is refused when its runs used different settings for the same attack name (for example
ε, steps or the ℓ1 variant): the numbers would not be comparable. The error names the runs.
"""
from __future__ import annotations

import json

import pandas as pd

from robustgen.report.runs import PAPER_ATTACKS, ReportError, Run
from robustgen.report.stats import seeds_points_interval, wilson_interval

COLUMNS = ("clean", *PAPER_ATTACKS, "worst_case")


def _setting_key(settings: dict | None) -> str:
    return json.dumps({k: v for k, v in (settings or {}).items() if k != "seed"}, sort_keys=True)


def check_comparable(runs: list[Run]) -> None:
    """Raises ReportError if one attack name ran with different settings in `runs`."""
    for name in PAPER_ATTACKS:
        by_setting: dict[str, list[Run]] = {}
        for run in runs:
            if name in run.attacks:
                by_setting.setdefault(_setting_key(run.attack_settings.get(name)), []).append(run)
        if len(by_setting) > 1:
            groups = "; ".join(f"{json.loads(key) or 'unrecorded'}: {', '.join(str(r.path) for r in group)}"
                               for key, group in by_setting.items())
            raise ReportError(f"column {name} would mix different attack settings — {groups}. "
                              "Report those runs separately (pass them as different RUNS).")


def _model_key(run: Run) -> str:
    return json.dumps(run.record.get("arch"), sort_keys=True)


def one_per_seed(runs: list[Run]) -> list[Run]:
    """A configuration's runs, one per seed: a rerun of the same seed replaces the older one (by
    results.json's written_at), so it is not counted as another seed."""
    newest: dict = {}
    for run in sorted(runs, key=lambda r: str(r.record.get("written_at", ""))):
        newest[run.seed] = run
    return list(newest.values())


def cell(values: list[float], n_points: list[int]) -> dict:
    """{mean, std, n, ci, acc, points} of one configuration's seeds (accuracies in %): ci is the
    95% Wilson interval for one run, the bootstrap over seeds and test points for several; acc and
    points keep the per-seed numbers for later bootstraps (the claims)."""
    series = pd.Series(values, dtype=float)
    return {"mean": float(series.mean()), "std": float(series.std(ddof=1)) if len(series) > 1 else 0.0,
            "n": len(series),
            "ci": wilson_interval(values[0], n_points[0]) if len(values) == 1 else seeds_points_interval(values, n_points),
            "acc": list(values), "points": list(n_points)}


def main_table(runs: list[Run], data: str = "cifar10") -> pd.DataFrame:
    """Rows: architectures (label) trained with PGD-AT on `data`; columns: see the module docstring.

    Each accuracy column holds a dict {mean, std, n[, ci]} (or None when no run has it); use
    :func:`flat` for numbers only.
    """
    at = [r for r in runs if r.data == data and not r.vanilla]
    vanilla = [r for r in runs if r.data == data and r.vanilla]
    check_comparable(at)
    rows = []
    for label in sorted({r.label for r in at}, key=str):
        group = one_per_seed([r for r in at if r.label == label])
        first = group[0]
        row: dict = {"architecture": label, "params_m": (first.params or 0) / 1e6, "runs": len(group),
                     "seeds": sorted({r.seed for r in group if r.seed is not None}),
                     "arch_settings": first.record.get("arch") or {}, "arch_choice": first.arch,
                     "family": first.family, "study_default": first.study_default, "paper_row": first.paper_row,
                     "penalised": first.penalised, "external": first.architecture.get("code") is not None,
                     "protocol": {"eval_set": (first.record.get("eval") or {}).get("set"),
                                  "epochs": first.record.get("epochs")}}
        model = _model_key(group[0])  # vanilla: the same network (arch settings) on the same data
        base = one_per_seed([r for r in vanilla if _model_key(r) == model])
        row["vanilla_acc"] = cell([r.clean for r in base], [r.n_points for r in base]) if base else None
        for column in COLUMNS:
            values = [(getattr(r, column) if column in ("clean", "worst_case") else r.attacks.get(column), r.n_points)
                      for r in group]
            values = [(v, n) for v, n in values if v is not None]
            row[column] = cell([v for v, _ in values], [n for _, n in values]) if values else None
        rows.append(row)
    return pd.DataFrame(rows)


# column → printed title, in the paper's order
TITLES = {"vanilla_acc": "vanilla", "clean": "clean", "pgd_linf": "PGD-ℓ∞", "aa_linf": "AA-ℓ∞", "pgd_l2": "PGD-ℓ2",
          "pgd_l1": "PGD-ℓ1", "worst_case": "worst case"}


# every column of the report's tables that holds accuracy cells (a dict, or None where absent)
CELL_COLUMNS = (*TITLES, "vanilla_c_acc", "c_acc")


def cell_columns(table: pd.DataFrame) -> list[str]:
    return [c for c in CELL_COLUMNS if c in table]


def flat(table: pd.DataFrame) -> pd.DataFrame:
    """The table with each accuracy cell reduced to its mean (NaN where absent)."""
    out = table.copy()
    for column in cell_columns(table):
        out[column] = [cell["mean"] if cell else float("nan") for cell in out[column]]
    return out


def formatted(table: pd.DataFrame, titles: dict[str, str] = TITLES) -> pd.DataFrame:
    """Strings for printing: "mean ± std (n)" for seed groups, "mean [low, high]" (95% interval)
    for single runs; the CSV has every group's interval too."""
    def text(cell):
        if not cell:
            return "—"
        if cell["n"] > 1:
            return f"{cell['mean']:.2f} ± {cell['std']:.2f} (n={cell['n']})"
        low, high = cell["ci"]
        return f"{cell['mean']:.2f} [{low:.1f}, {high:.1f}]"

    out = pd.DataFrame({"architecture": table["architecture"]})
    if "params_m" in table:
        out["params (M)"] = table["params_m"].map("{:.2f}".format)
    for column, title in titles.items():
        if column in table:
            out[title] = table[column].map(text)
    return out
