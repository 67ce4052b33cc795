"""PROTOCOL.md's claims, checked on the runs given: each as a difference of mean accuracies with a
95% bootstrap interval (stats.group_difference: over architectures, seeds and test points), beside
the same difference in the paper's tables over the same architectures, and a verdict on its sign.

1. Transformers and hybrids generalise better to unseen attacks (PGD-ℓ2, PGD-ℓ1, worst case) than
   CNNs, which do better on the training attack (PGD-ℓ∞): mean(Transformers ∪ hybrids) − mean(CNNs).
3. More attention stages help (CoAtNet CTTT − CCCC, worst case); larger patches give a better worst
   case and a worse clean accuracy (largest − smallest patch, ViT and PVTv2).
(Claim 2, sparsity, is the sparsity table's rank correlations.)
"""
from __future__ import annotations

import math

import pandas as pd

from robustgen.report.paper import hybrid_patch_paper, paper_table
from robustgen.report.stats import group_difference

FAMILY_MEASURES = ("pgd_linf", "pgd_l2", "pgd_l1", "worst_case")
PAPER_COLUMN = {"clean": "at_clean_acc"}


def verdict(ours: float, ci: tuple[float, float], paper: float) -> str:
    """How our difference stands against the paper's sign."""
    if any(math.isnan(v) for v in (ours, *ci, paper)):
        return "not testable"
    sign = math.copysign(1.0, paper)
    if ours == 0:
        return "no difference"
    if ci[0] > 0 or ci[1] < 0:  # the interval excludes 0
        return "supported" if math.copysign(1.0, ours) == sign else "contradicted"
    return "same sign, interval includes 0" if math.copysign(1.0, ours) == sign else "opposite sign, interval includes 0"


def _member(cell: dict) -> tuple[list[float], list[int]]:
    return cell["acc"], cell["points"]


def _row(claim: str, measure: str, a: list[dict], b: list[dict], paper: float, names: str) -> dict:
    if not a or not b:
        return {"claim": claim, "measure": measure, "ours": math.nan, "ci_low": math.nan, "ci_high": math.nan,
                "architectures": names, "paper": paper, "verdict": "not testable (a group has no runs)"}
    result = group_difference([_member(c) for c in a], [_member(c) for c in b])
    return {"claim": claim, "measure": measure, "ours": result.difference, "ci_low": result.ci[0],
            "ci_high": result.ci[1], "architectures": names, "paper": paper,
            "verdict": verdict(result.difference, result.ci, paper)}


def family_claims(table: pd.DataFrame) -> list[dict]:
    """Claim 1 on main_table's rows that are the study's default configurations."""
    rows = table[table["study_default"]].copy()
    rows["paper_name"] = rows["paper_row"]
    attention = rows[rows["family"].isin(["transformer", "hybrid"])]
    cnn = rows[rows["family"] == "cnn"]
    paper = paper_table().set_index("architecture")
    out = []
    for measure in FAMILY_MEASURES:
        a = attention[attention[measure].notna().astype(bool)]
        b = cnn[cnn[measure].notna().astype(bool)]
        theirs = (paper.loc[[n for n in a["paper_name"] if n in paper.index], measure].mean()
                  - paper.loc[[n for n in b["paper_name"] if n in paper.index], measure].mean())
        names = f"{', '.join(a['architecture'])} − {', '.join(b['architecture'])}"
        out.append(_row("1: Transformers and hybrids − CNNs", measure, list(a[measure]), list(b[measure]),
                        float(theirs), names))
    return out


def design_claims(hybrids: pd.DataFrame) -> list[dict]:
    """Claim 3 on hybrids_and_patches' rows, matched on the paper's row names (`paper_name`): every
    row of a layout or patch size (several scales or budgets of one) is a member of its group."""
    if not len(hybrids):
        return []
    ours, names = hybrids, set(hybrids["paper_name"])
    paper = hybrid_patch_paper().set_index("architecture")
    pairs = [("3: more attention stages (CoAtNet CTTT − CCCC)", "worst_case", "CoAtNet-CTTT", "CoAtNet-CCCC")]
    for model in ("ViT", "PVTv2"):
        sizes = sorted(int(n.split("p=")[1]) for n in names if n.startswith(f"{model} p="))
        if len(sizes) >= 2:
            big, small = f"{model} p={sizes[-1]}", f"{model} p={sizes[0]}"
            pairs += [(f"3: larger patches ({big} − {small})", m, big, small) for m in ("worst_case", "clean")]
    out = []
    for claim, measure, a, b in pairs:
        if a not in names and b not in names:
            continue
        column = PAPER_COLUMN.get(measure, measure)
        theirs = paper.loc[a, column] - paper.loc[b, column] if a in paper.index and b in paper.index else math.nan
        cells = [[c for c in ours.loc[ours["paper_name"] == n, measure] if c] for n in (a, b)]
        labels = [", ".join(ours.loc[ours["paper_name"] == n, "architecture"]) or n for n in (a, b)]
        out.append(_row(claim, measure, cells[0], cells[1], float(theirs), " − ".join(labels)))
    return out


def claims(table: pd.DataFrame, hybrids: pd.DataFrame) -> pd.DataFrame:
    """Every claim that the runs given can speak to (see the module docstring)."""
    return pd.DataFrame(family_claims(table) + design_claims(hybrids))

