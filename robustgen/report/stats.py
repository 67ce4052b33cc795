"""The statistics of the report, from statsmodels and SciPy (no hand-written tests).

* :func:`wilson_interval` — 95% confidence interval of one run's accuracy over its test points
  (Wilson score interval, statsmodels' `proportion_confint(method="wilson")`).
* :func:`mcnemar_exact` — McNemar's exact test of two models on the same test points, from their
  per-example outcomes (statsmodels' `mcnemar(exact=True)`: a binomial test on the discordant pairs).
* :func:`rank_agreement` — Spearman ρ and Kendall τ (with p-values) between two rankings (SciPy).
* :func:`seeds_points_interval` — 95% bootstrap interval of a seed group's mean accuracy, over seeds
  and test points; :func:`group_difference` — a family's mean minus another's (the study's claims),
  with a bootstrap interval over architectures, seeds and test points.
"""
from __future__ import annotations

import math
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
    return _clip(100 * float(low)), _clip(100 * float(high))


def _clip(value: float) -> float:
    """A bound in [0, 100]: statsmodels' Wilson bound at 0 successes can come out as 1e-16."""
    return min(100.0, max(0.0, value))


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


# up to this many architectures Spearman's p-value is exact (SciPy permutation_test over all n!
# pairings: 5,040 at n = 7); above, SciPy's t approximation
EXACT_SPEARMAN_MAX_N = 7


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
    rho_p = float(rho.pvalue)
    if len(ours) <= EXACT_SPEARMAN_MAX_N:  # SciPy's t approximation gives p = 0 at ρ = ±1 for n = 3
        rho_p = float(stats.permutation_test(
            (list(ours),), lambda x: stats.spearmanr(x, theirs).statistic, permutation_type="pairings",
            n_resamples=math.inf, alternative="two-sided").pvalue)
    return RankAgreement(len(ours), float(rho.statistic), rho_p, float(tau.statistic), float(tau.pvalue))


# Bootstrap resamples: enough that the 2.5% / 97.5% percentiles move by < 0.1 point between seeds
# of the resampler on the study's sizes (10,000 points, 3 seeds).
N_RESAMPLES = 4000


def _seeds_points_draws(accuracies: list[float], n_points: list[int], rng: np.random.Generator,
                        size: int) -> np.ndarray:
    """`size` bootstrap draws (in %) of the mean accuracy of one configuration's seeds: resample the
    seeds with replacement, then each drawn seed's test points with replacement. Resampling n
    Bernoulli outcomes with replacement gives Binomial(n, p̂)/n exactly, so the point level needs
    only the accuracy, not the per-example file."""
    acc = np.asarray(accuracies, float) / 100
    n = np.asarray(n_points, int)
    picks = rng.integers(0, len(acc), size=(size, len(acc)))
    return 100 * (rng.binomial(n[picks], acc[picks]) / n[picks]).mean(axis=1)


def seeds_points_interval(accuracies: list[float], n_points: list[int], level: float = 0.95,
                          seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval (in %) of a seed group's mean accuracy, over seeds and test
    points (two-level: seeds, then points within each seed).

    Hand-written because SciPy's `bootstrap` resamples one level only; this is the hierarchical
    bootstrap of Davison & Hinkley (1997, §3.8) with the point level drawn in closed form."""
    if not accuracies or min(n_points) <= 0:
        return (float("nan"), float("nan"))
    draws = _seeds_points_draws(accuracies, n_points, np.random.default_rng(seed), N_RESAMPLES)
    low, high = np.percentile(draws, [50 * (1 - level), 50 * (1 + level)])
    return _clip(float(low)), _clip(float(high))


@dataclass
class GroupDifference:
    difference: float            # mean over group A's architectures minus mean over group B's (points)
    ci: tuple[float, float]      # bootstrap percentile interval
    n_a: int
    n_b: int


def group_difference(group_a: list[tuple[list[float], list[int]]], group_b: list[tuple[list[float], list[int]]],
                     level: float = 0.95, seed: int = 0) -> GroupDifference:
    """Mean accuracy of the architectures in A minus that of B, with a bootstrap interval over
    architectures (resampled within each group), their seeds and their test points.

    Each group member is one architecture: (accuracies of its seeds in %, test points of each).
    Same hierarchical scheme as :func:`seeds_points_interval`, one level up (architectures)."""
    if not group_a or not group_b:
        raise ValueError("both groups need at least one architecture")
    rng = np.random.default_rng(seed)

    def draws(group):
        per_arch = np.stack([_seeds_points_draws(acc, n, rng, N_RESAMPLES) for acc, n in group], axis=1)
        picks = rng.integers(0, len(group), size=(N_RESAMPLES, len(group)))
        return np.take_along_axis(per_arch, picks, axis=1).mean(axis=1)

    mean = lambda group: float(np.mean([np.mean(acc) for acc, _ in group]))  # noqa: E731
    diff = draws(group_a) - draws(group_b)
    low, high = np.percentile(diff, [50 * (1 - level), 50 * (1 + level)])
    return GroupDifference(mean(group_a) - mean(group_b), (float(low), float(high)), len(group_a), len(group_b))


@dataclass
class RankAmong:
    rank: int                    # 1 = best: 1 + how many of the others score higher
    of: int                      # the others and this one
    ci: tuple[int, int]          # 95% bootstrap interval of the rank


def rank_among(accuracies: list[float], n_points: list[int], others: list[float], level: float = 0.95,
               seed: int = 0) -> RankAmong:
    """Rank of a configuration's mean accuracy (its seeds `accuracies`, in %, on `n_points` test
    points each) among `others` (the paper's architectures, in %), with a percentile bootstrap
    interval of the rank: the mean is redrawn over seeds and test points as in
    :func:`seeds_points_interval`; the others' numbers are the paper's and held fixed.

    Example: 45.0% on 1,000 points among 20 architectures of which 2 score higher is "3rd of 21"."""
    theirs = np.asarray(others, float)
    mean = float(np.mean(accuracies))
    draws = _seeds_points_draws(accuracies, n_points, np.random.default_rng(seed), N_RESAMPLES)
    ranks = 1 + (theirs[None, :] > draws[:, None]).sum(axis=1)
    tail = 100 * (1 - level) / 2
    low, high = np.percentile(ranks, [tail, 100 - tail])
    return RankAmong(1 + int((theirs > mean).sum()), len(theirs) + 1, (int(np.floor(low)), int(np.ceil(high))))


def ordinal(k: int) -> str:
    return f"{k}{'th' if 10 <= k % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(k % 10, 'th')}"
