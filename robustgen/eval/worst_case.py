"""Worst-case robust accuracy over a set of attacks (the slides' W(f, A)).

A point counts as robust only if it is classified correctly clean and after every attack. Points
misclassified clean are never attacked (they already count as wrong for every attack), as in
AutoAttack. Two schedules give the same per-point outcome:

* cascade (``per_attack=False``): each attack runs only on the points no earlier attack broke, so
  the evaluation gets cheaper as points fall — order the set cheap attacks first;
* every attack on every clean-correct point (``per_attack=True``): also yields each attack's own
  accuracy, at the cost of running all attacks on all points.

The model's train/eval mode is left as the caller set it (attacks restore it themselves); the
caller puts the model in eval mode, as AutoAttack requires of its users.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset, Subset

from robustgen.attack.base import Attack

CLEAN = "clean"  # broken_by value of points misclassified without attack


@dataclass
class EvalReport:
    n_points: int
    clean_acc: float
    worst_case_acc: float
    attack_acc: dict[str, float] = field(default_factory=dict)  # on all points; empty for a pure cascade
    broken_by: list[str | None] = field(default_factory=list)  # first attack (in set order) that broke each point
    example_ids: list[int] = field(default_factory=list)
    seconds: float = 0.0

    def metrics(self, prefix: str = "test/acc") -> dict[str, float]:
        out = {f"{prefix}/clean": self.clean_acc, f"{prefix}/worst_case": self.worst_case_acc}
        out.update({f"{prefix}/{name}": acc for name, acc in self.attack_acc.items()})
        return out


@torch.no_grad()
def _predict(model: nn.Module, x: Tensor) -> Tensor:
    return model(x).argmax(1)


def evaluate_worst_case(model: nn.Module, dataset: Dataset, attacks: dict[str, Attack], *,
                        n_points: int | None = None, batch_size: int = 256, per_attack: bool = True,
                        device: torch.device | str | None = None, progress: bool = True) -> EvalReport:
    """Evaluate `model` on the first `n_points` items (x, y, example_id) of `dataset`."""
    start = time.perf_counter()
    device = torch.device(device) if device is not None else next(model.parameters()).device
    n = len(dataset) if n_points is None else min(int(n_points), len(dataset))
    loader = DataLoader(Subset(dataset, range(n)), batch_size=batch_size, shuffle=False)
    n_clean = 0
    survived = {name: 0 for name in attacks}
    broken_by: list[str | None] = []
    ids: list[int] = []

    with _progress_bar(progress, n, list(attacks)) as advance:
        for x, y, example_ids in loader:
            x, y = x.to(device), y.to(device)
            clean_ok = _predict(model, x) == y
            robust = clean_ok.clone()
            n_clean += int(clean_ok.sum())
            first_break = [None if ok else CLEAN for ok in robust.tolist()]
            for name, attack in attacks.items():
                # Cascade: attack only what is still robust; per_attack: every clean-correct point.
                targets = (clean_ok if per_attack else robust).nonzero().flatten()
                if len(targets) == 0:
                    continue
                x_adv = attack(model, x[targets], y[targets], example_ids=example_ids[targets.cpu()])
                holds = _predict(model, x_adv) == y[targets]
                survived[name] += int(holds.sum())
                for t, ok in zip(targets.tolist(), holds.tolist()):
                    if not ok and first_break[t] is None:
                        first_break[t] = name
                robust[targets[~holds]] = False
                advance(name, len(targets))
            broken_by += first_break
            ids += example_ids.tolist()
            advance(None, len(y))

    worst = sum(b is None for b in broken_by)
    return EvalReport(
        n_points=n, clean_acc=100.0 * n_clean / max(n, 1), worst_case_acc=100.0 * worst / max(n, 1),
        attack_acc={k: 100.0 * v / max(n, 1) for k, v in survived.items()} if per_attack else {},
        broken_by=broken_by, example_ids=ids, seconds=time.perf_counter() - start)


class _progress_bar:
    """A rich progress bar over evaluated points (one line per attack), or nothing."""

    def __init__(self, enabled: bool, total: int, attack_names: list[str]):
        self.enabled, self.total, self.names = enabled, total, attack_names

    def __enter__(self):
        if not self.enabled:
            return lambda name, k: None
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TimeElapsedColumn(), transient=False)
        self.progress.start()
        overall = self.progress.add_task("evaluated points", total=self.total)
        tasks = {name: self.progress.add_task(f"  attacked by {name}", total=None) for name in self.names}

        def advance(name: str | None, k: int) -> None:
            self.progress.advance(overall if name is None else tasks[name], k)

        return advance

    def __exit__(self, *exc) -> None:
        if self.enabled:
            self.progress.stop()
