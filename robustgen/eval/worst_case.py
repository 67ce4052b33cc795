"""Worst-case robust accuracy over a set of attacks (the slides' W(f, A)).

A point counts as robust only if it is classified correctly clean and after every attack. Points
misclassified clean are never attacked (they already count as wrong for every attack), as in
AutoAttack. Two schedules give the same per-point outcome:

* cascade (``per_attack=False``): each attack runs only on the points no earlier attack broke, so
  the evaluation gets cheaper as points fall — order the set cheap attacks first;
* every attack on every clean-correct point (``per_attack=True``): also yields each attack's own
  accuracy, at the cost of running all attacks on all points.

Either way `broken_by` names the first attack in set order that broke each point, and the
outcomes are saved after every batch (outcomes.py) so that an interrupted evaluation resumes.
Attacks draw their random starts per example id, so outcomes do not depend on the batch size.

The model's train/eval mode is left as the caller set it (attacks restore each submodule's own); the
caller puts the model in eval mode, as AutoAttack requires of its users.
"""
from __future__ import annotations

import time
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset, Subset

from robustgen.arch.contract import check_classifier
from robustgen.attack.base import Attack
from robustgen.errors import ConfigError
from robustgen.eval.outcomes import (CLEAN, Outcomes, attack_code_version, data_fingerprint, eval_fingerprint,
                                     weights_fingerprint)
from robustgen.eval.progress import EvalProgress, Reporter


@dataclass
class EvalReport:
    n_points: int
    clean_acc: float
    worst_case_acc: float
    attack_acc: dict[str, float] = field(default_factory=dict)  # on all points; empty for a pure cascade
    broken_by: list[str | None] = field(default_factory=list)  # first attack (in set order) that broke each point
    example_ids: list[int] = field(default_factory=list)
    seconds: float = 0.0  # this run's wall time
    resumed_points: int = 0  # points whose outcomes came from a saved state
    seconds_all_runs: float = 0.0  # evaluation time over every run that contributed, resumed ones included
    attacked_points: dict[str, int] = field(default_factory=dict)  # points each attack ran on (its cost)
    seconds_by_attack: dict[str, float] = field(default_factory=dict)  # over every contributing run
    seconds_by_component: dict[str, float] = field(default_factory=dict)  # "aa_linf/fab-t" → seconds, likewise
    points_by_component: dict[str, int] = field(default_factory=dict)  # "aa_linf/fab-t" → points it ran on
    outcomes: Outcomes | None = field(default=None, repr=False, compare=False)  # the per-point columns

    def metrics(self, prefix: str = "test/acc") -> dict[str, float]:
        out = {f"{prefix}/clean": self.clean_acc, f"{prefix}/worst_case": self.worst_case_acc}
        out.update({f"{prefix}/{name}": acc for name, acc in self.attack_acc.items()})
        return out


def report_from_outcomes(outcomes: Outcomes, per_attack: bool, seconds: float = 0.0, resumed: int = 0) -> EvalReport:
    """Accuracies (%) of the recorded points. Per-attack accuracy: points that attack left
    correctly classified; a point misclassified clean counts as wrong for every attack."""
    n = max(len(outcomes), 1)
    clean = sum(b != CLEAN for b in outcomes.broken_by)
    attack_acc = {name: 100.0 * sum(r is True for r in col) / n for name, col in outcomes.robust.items()}
    return EvalReport(
        n_points=len(outcomes), clean_acc=100.0 * clean / n,
        worst_case_acc=100.0 * sum(b is None for b in outcomes.broken_by) / n,
        attack_acc=attack_acc if per_attack else {}, broken_by=list(outcomes.broken_by),
        example_ids=list(outcomes.ids), seconds=seconds, resumed_points=resumed, seconds_all_runs=outcomes.seconds,
        attacked_points={name: sum(r is not None for r in col) for name, col in outcomes.robust.items()},
        seconds_by_attack=dict(outcomes.seconds_by_attack), seconds_by_component=dict(outcomes.seconds_by_component),
        points_by_component=dict(outcomes.points_by_component), outcomes=outcomes)


@torch.no_grad()
def _predict(model: nn.Module, x: Tensor) -> Tensor:
    return model(x).argmax(1)


@dataclass
class BatchOutcomes:
    """Outcomes of one batch, per point: the first attack that broke it (or CLEAN / None), whether
    it survived each attack (None: not attacked), and which component broke it, for attacks made
    of components (AutoAttack)."""

    broken_by: list[str | None]
    robust: dict[str, list[bool | None]]
    component: dict[str, list[str | None]]


def attack_batch(model: nn.Module, x: Tensor, y: Tensor, example_ids: Tensor, attacks: dict[str, Attack],
                 per_attack: bool, progress: EvalProgress | None = None,
                 ledger: Outcomes | None = None) -> BatchOutcomes:
    """Run the set on one batch. Each attack's (and component's) wall time and points go into
    `ledger`'s seconds_by_attack / seconds_by_component / points_by_component when given."""
    clean_ok = _predict(model, x) == y
    robust = clean_ok.clone()
    out = BatchOutcomes([None if ok else CLEAN for ok in clean_ok.tolist()], {}, {})
    for name, attack in attacks.items():
        # Cascade: attack only what is still robust; per_attack: every clean-correct point.
        targets = (clean_ok if per_attack else robust).nonzero().flatten()
        column: list[bool | None] = [None] * len(y)
        watch = getattr(attack, "watch", None)
        breaker: list[str | None] | None = [None] * len(y) if watch is not None else None
        if len(targets):
            start = time.perf_counter()
            rows = targets.tolist()
            with _watching(watch, name, rows, breaker, progress, ledger), \
                    (progress.attack(name, len(rows)) if progress else nullcontext()):
                x_adv = attack(model, x[targets], y[targets], example_ids=example_ids[targets.cpu()])
                holds = _predict(model, x_adv) == y[targets]
            for t, ok in zip(rows, holds.tolist()):
                column[t] = ok
                if not ok and out.broken_by[t] is None:
                    out.broken_by[t] = name
                if ok and breaker is not None:
                    breaker[t] = None  # a component's break that did not survive the dtype round-trip
            robust[targets[~holds]] = False
            seconds = time.perf_counter() - start
            if ledger is not None:
                ledger.seconds_by_attack[name] = ledger.seconds_by_attack.get(name, 0.0) + seconds
            if progress is not None:
                progress.attack_done(name, len(rows), int((~holds).sum()), seconds)
        out.robust[name] = column
        if breaker is not None:
            out.component[name] = breaker
    return out


@contextmanager
def _watching(watch, name: str, rows: list[int], breaker: list | None, progress: EvalProgress | None,
              ledger: Outcomes | None) -> Iterator[None]:
    """While an attack with components runs: record which component broke which point (rows of
    the batch), each component's cost, and show its progress."""
    if watch is None:
        yield
        return
    show = progress.component(name) if progress is not None else None

    def listen(event) -> None:
        if event.broken is not None:
            for r in event.broken.tolist():
                breaker[rows[r]] = event.component
            if ledger is not None:
                key = f"{name}/{event.component}"
                ledger.seconds_by_component[key] = ledger.seconds_by_component.get(key, 0.0) + event.seconds
                ledger.points_by_component[key] = ledger.points_by_component.get(key, 0) + event.points
        if show is not None:
            show(event)

    with watch(listen):
        yield


def dataset_ids(dataset: Dataset, n: int) -> list[int]:
    """Example ids of the first `n` items: the data set's `ids` column, or the positions (ids are
    the index in the split, see robustgen/data/datasets.py) — without decoding any image."""
    ids = getattr(dataset, "ids", None)
    return [int(i) for i in ids[:n]] if ids is not None else list(range(n))


def evaluate_worst_case(model: nn.Module, dataset: Dataset, attacks: dict[str, Attack], *,
                        n_points: int | None = None, batch_size: int = 256, per_attack: bool = True,
                        device: torch.device | str | None = None, progress: bool | Reporter = True,
                        state_path: str | Path | None = None, data_tag: str = "", num_workers: int = 0,
                        positions: list[int] | None = None) -> EvalReport:
    """Evaluate `model` on the first `n_points` items (x, y, example_id) of `dataset`.

    With `state_path`, per-example outcomes are saved there after every batch, and points already
    recorded there by the same evaluation (same weights, attack settings and code, schedule, and
    data: `data_tag` and the data set's content) are not evaluated again. `n_points` may grow
    between runs: only the new points are evaluated. `progress`: a Reporter (progress.py) to report
    through, or whether to report at all (a rich bar on a terminal, plain lines otherwise).
    `positions`: only these of the first `n_points` (a shard, run.shard_positions); the outcomes'
    fingerprint does not depend on them, so shards of one evaluation merge (merge.py).
    """
    start = time.perf_counter()
    device = torch.device(device) if device is not None else next(model.parameters()).device
    n = evaluated_points(n_points, dataset)
    check_classifier(model, first_images(dataset, device), "evaluation")  # before any attack runs
    # Everything that decides a point's outcome. The data part hashes the whole data set's content,
    # not only the first n items, so that a later run asking for more points still matches.
    about = {"weights": weights_fingerprint(model), "data": data_tag or f"{type(dataset).__name__}[{len(dataset)}]",
             "data_content": data_fingerprint(dataset, len(dataset)), "per_attack": per_attack,
             "code": attack_code_version(),
             "attacks": [[name, a.describe(), getattr(a, "seed", None)] for name, a in attacks.items()]}
    path = Path(state_path) if state_path is not None else None
    with_components = [name for name, a in attacks.items() if callable(getattr(a, "watch", None))]
    outcomes = Outcomes.resume_or_start(path, list(attacks), eval_fingerprint(about), about, with_components)
    all_ids = dataset_ids(dataset, n)
    chosen = range(n) if positions is None else positions
    ids = [all_ids[pos] for pos in chosen]
    todo = [pos for pos in chosen if all_ids[pos] not in outcomes]
    resumed = len(ids) - len(todo)
    loader = DataLoader(Subset(dataset, todo), batch_size=batch_size, shuffle=False, num_workers=num_workers)

    reporter = Reporter.of(progress)
    with reporter, reporter.evaluation(len(ids), resumed, list(attacks), len(loader)) as tracker:
        for x, y, example_ids in loader:
            batch_start = time.perf_counter()
            tracker.start_batch(len(y))
            got = attack_batch(model, x.to(device), y.to(device), example_ids, attacks, per_attack, tracker, outcomes)
            for k, (i, label) in enumerate(zip(example_ids.tolist(), y.tolist())):
                outcomes.add(i, label, got.broken_by[k], {name: col[k] for name, col in got.robust.items()},
                             {name: col[k] for name, col in got.component.items()})
            outcomes.seconds += time.perf_counter() - batch_start
            if path is not None:
                outcomes.save(path)
            tracker.end_batch(len(y), sum(b is None for b in got.broken_by))

    return report_from_outcomes(outcomes.select(ids), per_attack, time.perf_counter() - start, resumed)


def evaluated_points(n_points: int | None, dataset: Dataset) -> int:
    """`n_points` (None: every item of `dataset`), refused when the data set has fewer items: an
    evaluation never silently measures fewer points than asked for."""
    if n_points is not None and int(n_points) > len(dataset):
        raise ConfigError(f"eval.n_points={n_points} but the test set has {len(dataset)} images: ask for at most "
                          f"{len(dataset)} (eval.n_points={len(dataset)}, or eval.n_points=null for all of them)")
    return len(dataset) if n_points is None else int(n_points)


def first_images(dataset: Dataset, device, n: int = 4) -> torch.Tensor:
    """The first `n` images of `dataset`, on `device`: enough for one check of the model's output."""
    return torch.stack([dataset[i][0] for i in range(min(n, len(dataset)))]).to(device)
