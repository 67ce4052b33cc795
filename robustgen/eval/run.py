"""The final evaluation both entry points run (training's and `python -m robustgen.evaluate`):
the cheap sanity checks on a few points, then the worst case over the attack set with per-example
outcomes saved for resuming, then the sanity checks that compare with the set's own attacks (read
from those outcomes: no attack runs twice on a point), then (with `eval/corrupted=...`) every
common-corruption cell, then the results.json fields. Each phase reports its progress on stderr
(progress.py) and its duration (``eval.seconds_by_phase``).
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from robustgen.arch.contract import check_classifier
from robustgen.attack.base import Attack, check_classes
from robustgen.data.corrupted import CorruptionSource
from robustgen.eval.corruptions import CorruptionReport, CorruptionSettings, evaluate_corruptions
from robustgen.errors import ConfigError
from robustgen.eval.outcomes import OUTCOMES_FILE
from robustgen.eval.progress import Reporter
from robustgen.eval.sanity import SanityFlag, SanitySettings, checks_after, checks_before, ordered, report_flags
from robustgen.eval.worst_case import EvalReport, evaluate_worst_case, evaluated_points, first_images

log = logging.getLogger("robustgen")
# The phases of an evaluation, as its progress lines and results.json (eval.seconds_by_phase) name them.
SANITY_BEFORE, ATTACKS, SANITY_AFTER, CORRUPTIONS = ("sanity checks before", "attack set", "sanity checks after",
                                                     "corruptions")


def parse_shard(value) -> tuple[int, int] | None:
    """"i/n" (0 ≤ i < n) → (i, n); None stays None. Raises ConfigError otherwise."""
    if value is None:
        return None
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", str(value))
    if not match or not int(match.group(1)) < int(match.group(2)):
        raise ConfigError(f"eval.shard must be 'i/n' with 0 ≤ i < n (e.g. eval.shard=0/4), got {value!r}")
    return int(match.group(1)), int(match.group(2))


def shard_positions(n: int, shard: tuple[int, int] | None) -> list[int]:
    """Positions of the test points in shard (i, n_shards) of the first `n`: the i-th of n_shards
    contiguous, disjoint blocks of near-equal size (numpy.array_split's), so shard 0 holds the
    first points (where the sanity checks run)."""
    if shard is None:
        return list(range(n))
    return [int(k) for k in np.array_split(np.arange(n), shard[1])[shard[0]]]


@dataclass
class EvalSettings:
    """conf/eval/<name>.yaml without its attacks (those are built by the entry point)."""

    name: str | None = None             # the attack set: paper, strong, robustbench, quick
    n_points: int | None = None         # first test points evaluated (None: all)
    batch_size: int = 256
    per_attack: bool = True             # every attack on every point (per-attack accuracies) vs cascade
    sanity: SanitySettings = field(default_factory=SanitySettings)
    corrupted: CorruptionSettings = field(default_factory=CorruptionSettings)
    shard: tuple[int, int] | None = None  # (i, n): evaluate the i-th of n disjoint slices (merge.py joins them)

    @classmethod
    def from_dict(cls, values: dict, name: str | None = None) -> EvalSettings:
        """From the eval config as a plain dict (its `attacks` key is ignored here)."""
        n_points, batch_size = values.get("n_points"), values.get("batch_size", 256)
        if n_points is not None and (not isinstance(n_points, int) or n_points < 1):
            raise ConfigError(f"eval.n_points must be an integer ≥ 1 or null (the whole test set), got {n_points!r}")
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ConfigError(f"eval.batch_size must be an integer ≥ 1, got {batch_size!r}")
        settings = cls(name=name, n_points=n_points, batch_size=batch_size,
                       per_attack=bool(values.get("per_attack", True)), sanity=SanitySettings.from_dict(values.get("sanity")),
                       corrupted=CorruptionSettings.from_dict(values.get("corrupted")),
                       shard=parse_shard(values.get("shard")))
        if settings.shard and settings.corrupted.enabled:
            raise ConfigError("eval.shard splits the attack set's test points; evaluate corruptions unsharded "
                              "(drop eval/corrupted=all, or run eval=corruptions separately)")
        if "attacks" in values and not values["attacks"] and not settings.corrupted.enabled:
            raise ConfigError("eval.attacks is empty: the evaluation needs at least one attack "
                              "(or common corruptions: eval=corruptions, or eval/corrupted=all with any set)")
        return settings


@dataclass
class EvalResult:
    report: EvalReport
    flags: list[SanityFlag]
    settings: EvalSettings
    attacks: dict[str, dict]            # name → describe()
    outcomes_path: Path | None
    sanity_seconds: float = 0.0
    sanity_points: int = 0
    corruptions: CorruptionReport | None = None
    seconds_by_phase: dict[str, float] = field(default_factory=dict)
    total_points: int = 0               # points of the whole evaluation (a shard's n_points is its part)

    def metrics(self) -> dict[str, float]:
        """test/acc/... of the test set and, with corruptions, test/corruption/... of every cell."""
        return {**self.report.metrics(), **(self.corruptions.metrics() if self.corruptions else {})}

    def record(self) -> dict:
        """The results.json fields of the evaluation."""
        r, s = self.report, self.settings
        return {
            "n_points": r.n_points, "clean_acc": r.clean_acc, "attack_acc": r.attack_acc,
            "worst_case_acc": r.worst_case_acc, "metrics": self.metrics(),
            **({"corruptions": self.corruptions.record()} if self.corruptions else {}),
            "eval": {"set": s.name, "attacks": self.attacks, "n_points": r.n_points, "per_attack": s.per_attack,
                     "shard": f"{s.shard[0]}/{s.shard[1]}" if s.shard else None,
                     "total_points": self.total_points or r.n_points,
                     "batch_size": s.batch_size,
                     "outcomes_file": str(self.outcomes_path) if self.outcomes_path else None,
                     "resumed_points": r.resumed_points, "seconds_all_runs": r.seconds_all_runs,
                     "attacked_points": r.attacked_points, "seconds_by_attack": r.seconds_by_attack,
                     "seconds_by_component": r.seconds_by_component, "points_by_component": r.points_by_component,
                     "seconds_by_phase": self.seconds_by_phase,
                     "sanity": {"enabled": s.sanity.enabled, "n_points": self.sanity_points,
                                "passed": all(f.passed for f in self.flags),
                                "seconds": self.sanity_seconds,
                                "seconds_before": self.seconds_by_phase.get(SANITY_BEFORE, 0.0),
                                "seconds_after": self.seconds_by_phase.get(SANITY_AFTER, 0.0),
                                "flags": [f.to_dict() for f in self.flags]}},
        }


def sanity_subset(dataset: Dataset, n: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    items = [dataset[i] for i in range(min(n, len(dataset)))]
    x = torch.stack([it[0] for it in items])
    y = torch.as_tensor([int(it[1]) for it in items])
    ids = torch.as_tensor([int(it[2]) for it in items])
    return x, y, ids


def run_evaluation(model: nn.Module, dataset: Dataset, attacks: dict[str, Attack], settings: EvalSettings, *,
                   output_dir: str | Path | None, data_tag: str = "", progress: bool | Reporter = True,
                   num_workers: int = 0, corruptions: CorruptionSource | None = None) -> EvalResult:
    """Evaluate `model` (already in eval mode, on its device) on the first `settings.n_points`
    items of `dataset`. Outcomes go to `output_dir`/eval_outcomes.json (resumed if present).
    With `settings.corrupted.enabled`, also every cell of `corruptions` (see eval/corruptions.py).
    `progress`: report on stderr (a rich bar on a terminal, plain lines otherwise), or a Reporter."""
    if not attacks and not settings.corrupted.enabled:
        raise ConfigError("eval.attacks is empty: the evaluation needs at least one attack")
    if settings.corrupted.enabled and corruptions is None:
        raise ConfigError("eval.corrupted is enabled but no corrupted test sets were given")
    device = next(model.parameters()).device
    n = evaluated_points(settings.n_points, dataset)  # more points than the data set has: refused now
    logits = check_classifier(model, first_images(dataset, device), "evaluation")  # of the right shape, finite
    check_classes(attacks, logits.shape[1])  # every attack of the set can run on this many classes
    positions = shard_positions(n, settings.shard)
    flags: list[SanityFlag] = []
    # sharded: the sanity checks run in shard 0, on its points (the first ones)
    n_sanity = min(settings.sanity.n_points, len(positions)) \
        if settings.sanity.enabled and attacks and (settings.shard is None or settings.shard[0] == 0) else 0
    if 0 < n_sanity < settings.sanity.n_points:
        log.info("sanity checks on %d points: no more than the evaluation's (eval.sanity.n_points=%d)", n_sanity,
                 settings.sanity.n_points)
    path = Path(output_dir) / OUTCOMES_FILE if output_dir is not None else None
    reporter = Reporter.of(progress)
    with reporter:
        if n_sanity:
            x, y, ids = sanity_subset(dataset, n_sanity)
            x, y = x.to(device), y.to(device)
            with reporter.phase(SANITY_BEFORE, f" on {n_sanity} points"):
                before = checks_before(model, x, y, ids, attacks, settings.sanity, reporter)
            report_flags(before.flags, title=SANITY_BEFORE)
        if path is not None:
            log.info("per-example outcomes: %s (an interrupted evaluation resumes from it when rerun into %s)",
                     path, path.parent)
        named = f" `{settings.name}`" if settings.name else ""
        which = f"{named} ({', '.join(attacks)})" if attacks else " (none: clean accuracy)"
        sharded = f" (shard {settings.shard[0]}/{settings.shard[1]} of {n})" if settings.shard else ""
        batches = -(-len(positions) // settings.batch_size)
        with reporter.phase(ATTACKS, f"{which} on {len(positions)} points{sharded}, "
                                     f"{batches} batch{'es' if batches > 1 else ''}"):
            # with sanity checks, the set's reference PGDs keep their final iterates on the sanity points
            report = evaluate_worst_case(model, dataset, before.evaluated(attacks) if n_sanity else attacks,
                                         n_points=n, positions=positions, batch_size=settings.batch_size,
                                         per_attack=settings.per_attack, progress=reporter, state_path=path,
                                         data_tag=data_tag, num_workers=num_workers)
        if n_sanity:
            with reporter.phase(SANITY_AFTER):
                after = checks_after(model, x, y, ids, attacks, settings.sanity, before, report.outcomes, reporter)
            report_flags(after, title=SANITY_AFTER)
            flags = ordered(before.flags + after, before.clean)
        corrupted = _corruptions(model, corruptions, attacks, settings, output_dir, reporter, num_workers)
    phases = dict(reporter.phases)
    log.info("evaluation took %s", reporter.summary())
    return EvalResult(report, flags, settings, {k: a.describe() for k, a in attacks.items()}, path,
                      phases.get(SANITY_BEFORE, 0.0) + phases.get(SANITY_AFTER, 0.0), n_sanity, corrupted, phases, n)


def _corruptions(model: nn.Module, corruptions: CorruptionSource | None, attacks: dict[str, Attack],
                 settings: EvalSettings, output_dir, reporter: Reporter, num_workers: int):
    """Every cell of the corrupted test sets, when the evaluation asks for them (else None)."""
    if not settings.corrupted.enabled:
        return None
    c = settings.corrupted
    with reporter.phase(CORRUPTIONS, f" ({len(c.names) * len(c.severities)} cells)"):
        # The cells report through this reporter too (its _CellProgress takes one for `progress`).
        return evaluate_corruptions(model, corruptions, c, attacks, n_points=settings.n_points,
                                    batch_size=settings.batch_size, per_attack=settings.per_attack,
                                    output_dir=output_dir, progress=reporter, num_workers=num_workers)
