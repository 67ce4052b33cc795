"""The study's corruption table (paper_table_cifar10c.csv): per architecture, the vanilla and the
adversarially trained model's clean accuracy beside their mean accuracy over the CIFAR-10-C
(corruption, severity) cells — the `corruptions` block that `eval/corrupted=all` writes into
results.json.

Intervals: a single run's CIFAR-10-C mean gets the Wilson interval over its *images* (not images ×
cells): the cells corrupt the same images, and the mean over cells of each image's outcome varies no
more than one Bernoulli outcome does, so this interval is conservative. Seed groups get the
bootstrap over seeds and images (stats.seeds_points_interval).

Runs whose corruption evaluations differ (cells, images per cell, generator seed or parameters) are
refused, naming them, as main_table refuses mixed attack settings.
"""
from __future__ import annotations

import json

import pandas as pd

from robustgen.report.main_table import cell, one_per_seed
from robustgen.report.runs import ReportError, Run

CORRUPTION_COLUMNS = ("vanilla_acc", "vanilla_c_acc", "clean", "c_acc")
C_TITLES = {"vanilla_acc": "vanilla clean", "vanilla_c_acc": "vanilla CIFAR-10-C", "clean": "AT clean",
            "c_acc": "AT CIFAR-10-C"}
# our column → paper_table_cifar10c.csv's
PAPER_C_COLUMNS = {"vanilla_acc": "vanilla_acc", "vanilla_c_acc": "vanilla_cifar_c_acc", "clean": "at_clean_acc",
                   "c_acc": "at_cifar_c_acc"}


def corruption_setting(run: Run) -> str:
    """What makes two runs' CIFAR-10-C means comparable, as a key."""
    c = run.record["corruptions"]
    source = c.get("source") or {}
    cells = sorted((name, s) for name, by in (c.get("acc") or {}).items() for s in by)
    return json.dumps({"cells": cells, "n_points": c.get("n_points"), "kind": source.get("kind"),
                       "generator": {k: v for k, v in (source.get("manifest") or {}).items() if k != "code_version"}},
                      sort_keys=True)


def check_corruptions_comparable(runs: list[Run]) -> None:
    by_setting: dict[str, list[Run]] = {}
    for run in runs:
        by_setting.setdefault(corruption_setting(run), []).append(run)
    if len(by_setting) > 1:
        groups = "; ".join(f"{len(json.loads(k)['cells'])} cells × {json.loads(k)['n_points']} images "
                           f"({json.loads(k)['kind']}, {json.loads(k)['generator'] or 'official/unrecorded'}): "
                           + ", ".join(str(r.path) for r in group) for k, group in by_setting.items())
        raise ReportError(f"the CIFAR-10-C means would mix different corruption evaluations — {groups}. "
                          "Evaluate them on the same cells and images, or report them separately.")


def corruption_table(runs: list[Run], data: str = "cifar10") -> pd.DataFrame:
    """Rows: the main table's architectures (labels) with a corruption evaluation, adversarially
    trained or vanilla; columns CORRUPTION_COLUMNS, each a cell dict as in main_table (or None)."""
    evaluated = [r for r in runs if r.data == data and r.record.get("corruptions")]
    check_corruptions_comparable(evaluated)
    model = lambda r: json.dumps(r.record.get("arch"), sort_keys=True)  # noqa: E731
    rows = []
    for label in sorted({r.label for r in evaluated if not r.vanilla}, key=str):
        at = one_per_seed([r for r in evaluated if not r.vanilla and r.label == label])
        base = one_per_seed([r for r in evaluated if r.vanilla and model(r) == model(at[0])])
        c_points = lambda group: [int(r.record["corruptions"]["n_points"]) for r in group]  # noqa: E731
        rows.append({
            "architecture": label, "arch_choice": at[0].arch, "study_default": at[0].study_default,
            "family": at[0].family, "paper_row": at[0].paper_row,
            "vanilla_acc": cell([r.clean for r in base], [r.n_points for r in base]) if base else None,
            "vanilla_c_acc": cell([r.record["corruptions"]["mean_acc"] for r in base], c_points(base)) if base else None,
            "clean": cell([r.clean for r in at], [r.n_points for r in at]),
            "c_acc": cell([r.record["corruptions"]["mean_acc"] for r in at], c_points(at)),
        })
    return pd.DataFrame(rows)
