"""Two models on the same test points: McNemar's exact test on their per-example outcomes.

Reads each run's eval_outcomes.json (robustgen/eval/outcomes.py writes it): a point is correct
under the worst case when no attack of the set broke it (`broken_by` is null), under one attack
when `robust/<attack>` is true, and clean when `broken_by` is not "clean".
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from robustgen.report.runs import ReportError
from robustgen.report.stats import McNemar, mcnemar_exact

OUTCOMES_FILE = "eval_outcomes.json"


def outcomes(run: str | Path, measure: str = "worst_case") -> tuple[dict[int, bool], str]:
    """{example id: correct} of one run under `measure` ("worst_case", "clean" or an attack's name),
    and the fingerprint of the test data it was measured on."""
    path = Path(run) / OUTCOMES_FILE if Path(run).is_dir() else Path(run)
    if not path.is_file():
        raise ReportError(f"{path}: no per-example outcomes (evaluate the run first: python -m robustgen.evaluate)")
    record = json.loads(path.read_text())
    examples = record["examples"]
    if measure == "worst_case":
        correct = [b is None for b in examples["broken_by"]]
    elif measure == "clean":
        correct = [b != "clean" for b in examples["broken_by"]]
    elif f"robust/{measure}" in examples:
        correct = [bool(v) for v in examples[f"robust/{measure}"]]
    else:
        names = sorted(k.removeprefix("robust/") for k in examples if k.startswith("robust/"))
        raise ReportError(f"{path}: no outcomes for {measure!r}; it has worst_case, clean, {', '.join(names)}")
    about = record.get("about") or {}
    data = about.get("data_content") if isinstance(about, dict) else None
    return dict(zip(map(int, examples["id"]), correct)), str(data)


def compare_runs(run_a: str | Path, run_b: str | Path, measure: str = "worst_case") -> tuple[McNemar, int]:
    """McNemar's exact test of two runs on the test points both evaluated; returns it and that count.

    Raises:
        ReportError: runs evaluated on different test data, or with no points in common.
    """
    a, data_a = outcomes(run_a, measure)
    b, data_b = outcomes(run_b, measure)
    if data_a != data_b:
        raise ReportError(f"{run_a} and {run_b} were evaluated on different test data; McNemar needs the same points")
    common = sorted(set(a) & set(b))
    if not common:
        raise ReportError(f"{run_a} and {run_b} have no evaluated test points in common")
    return mcnemar_exact(np.array([a[i] for i in common]), np.array([b[i] for i in common])), len(common)
