"""The statistics of the report, from statsmodels and SciPy (no hand-written tests).

* :func:`wilson_interval` — 95% confidence interval of one run's accuracy over its test points
  (Wilson score interval, statsmodels' `proportion_confint(method="wilson")`).
* :func:`mcnemar_exact` — McNemar's exact test of two models on the same test points, from their
  per-example outcomes (statsmodels' `mcnemar(exact=True)`: a binomial test on the discordant pairs).
* :func:`rank_agreement` — Spearman ρ and Kendall τ (with p-values) between two rankings (SciPy).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats
from statsmodels.stats.contingency_tables import mcnemar
from statsmodels.stats.proportion import proportion_confint


def wilson_interval(accuracy: float, n: int, level: float = 0.95) -> tuple[float, float]:
    """Wilson interval (in %) of an accuracy (in %) measured on `n` points."""
    if n <= 0:
        return (float("nan"), float("nan"))
    low, high = proportion_confint(round(accuracy / 100 * n), n, alpha=1 - level, method="wilson")
    return 100 * float(low), 100 * float(high)


@dataclass
class McNemar:
    both_correct: int
    only_a: int          # points A gets right and B wrong
    only_b: int
    both_wrong: int
    p_value: float       # exact two-sided


def mcnemar_exact(correct_a: np.ndarray, correct_b: np.ndarray) -> McNemar:
    """McNemar's exact test on per-example outcomes (booleans, same points in the same order)."""
    a, b = np.asarray(correct_a, bool), np.asarray(correct_b, bool)
    if a.shape != b.shape:
        raise ValueError(f"outcomes of different lengths: {a.shape} vs {b.shape}")
    table = [[int((a & b).sum()), int((a & ~b).sum())], [int((~a & b).sum()), int((~a & ~b).sum())]]
    result = mcnemar(table, exact=True)
    return McNemar(table[0][0], table[0][1], table[1][0], table[1][1], float(result.pvalue))


@dataclass
class RankAgreement:
    n: int
    spearman: float
    spearman_p: float
    kendall: float
    kendall_p: float


def rank_agreement(ours: list[float], theirs: list[float]) -> RankAgreement:
    """Spearman's ρ and Kendall's τ-b between two score lists (same items, same order); NaN when
    either list is constant (no ranking to compare)."""
    if len(set(ours)) < 2 or len(set(theirs)) < 2:
        return RankAgreement(len(ours), float("nan"), float("nan"), float("nan"), float("nan"))
    rho = stats.spearmanr(ours, theirs)
    tau = stats.kendalltau(ours, theirs)
    return RankAgreement(len(ours), float(rho.statistic), float(rho.pvalue), float(tau.statistic), float(tau.pvalue))
