"""AutoAttack (Croce & Hein, 2020), "standard" version, composed from our wrappers.

ℓ∞ / ℓ2: APGD-CE, APGD-T (9 target classes), FAB-T (9 target classes), Square (5,000 queries),
each with the reference's settings (100 iterations, one restart) — torchattacks provides the
components. We compose them ourselves rather than call ``torchattacks.AutoAttack`` because the
latter builds its components with torchattacks' defaults (10 iterations for APGD, APGD-T and FAB,
Square's rescaled schedule), which is weaker than the reference "standard" version.

ℓ1 (RobustBench's ℓ1 threat model): APGD-CE with 5 restarts and APGD-T with 5 target classes,
both with the ε-schedule, as the reference runs them; FAB-T and Square are left out (torchattacks
has no ℓ1 FAB or Square, and RobustBench's ℓ1 evaluation rests on the two APGD attacks).

Like the reference, each component attacks only the points no earlier component broke, so the
cost falls as points fall; a broken point keeps the first adversarial example found.

Which component broke which point, and how long each took, is told to whoever listens
(:meth:`AutoAttack.watch`): the evaluation records it per point and shows it as progress, so
the sanity checks can tell white-box breaks from Square's without running a component again.
"""
from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterator

import torch
from torch import Tensor, nn

from robustgen.attack.base import Attack, check_classes
from robustgen.attack.pgd import check_common
from robustgen.attack.torchattacks_wrap import APGD, APGDT, FAB, Square
from robustgen.errors import ConfigError

VERSIONS = ("standard", "custom")


@dataclass
class ComponentEvent:
    """A component starts (`broken` is None) or has run on `points` rows of the call; `broken`
    holds the rows (positions in the call's batch) it broke, `seconds` its wall time."""

    component: str
    points: int
    broken: Tensor | None = None
    seconds: float = 0.0


class AutoAttack(Attack):
    """AutoAttack for norm "linf", "l2" or "l1" at radius eps (pixel units of [0, 1] images).

    `version="custom"` with `components` (e.g. ["apgd-ce", "apgd-t"]) runs only those of the
    standard components, in the standard order — the reference's ``version='custom',
    attacks_to_run=[...]``; describe() records which, so such results never pass for the standard
    version. Raises ConfigError for an unknown version or component, or components without custom."""

    def __init__(self, norm: str = "linf", eps: float = 8 / 255, version: str = "standard",
                 components: list[str] | None = None, **kwargs):
        super().__init__(eps, **kwargs)
        check_common("AutoAttack", norm, eps, ("linf", "l2", "l1"))
        if version not in VERSIONS:
            raise ConfigError(f"AutoAttack: version must be one of {VERSIONS}, got {version!r}")
        if (version == "custom") != bool(components):
            raise ConfigError("AutoAttack: components go with version=custom (and custom needs components), "
                              f"got version={version!r}, components={components!r}")
        self.norm, self.version = norm, version
        self.components = self._components()
        if components:
            unknown = sorted(set(components) - set(self.components))
            if unknown:
                raise ConfigError(f"AutoAttack-{norm}: unknown component(s) {', '.join(unknown)}; "
                                  f"choose from {', '.join(self.components)}")
            self.components = {k: v for k, v in self.components.items() if k in components}
        self._listeners: list[Callable[[ComponentEvent], None]] = []

    @contextmanager
    def watch(self, listener: Callable[[ComponentEvent], None]) -> Iterator[None]:
        """Inside the block, `listener` hears when each component starts and what it broke."""
        self._listeners.append(listener)
        try:
            yield
        finally:
            self._listeners.remove(listener)

    def _tell(self, event: ComponentEvent) -> None:
        for listener in list(self._listeners):
            listener(event)

    def _components(self) -> dict[str, Attack]:
        common = {"norm": self.norm, "eps": self.eps, "eval_mode": self.eval_mode, "seed": self.seed}
        if self.norm == "l1":
            return {"apgd-ce": APGD(loss="ce", steps=100, n_restarts=5, eps_schedule=True, **common),
                    "apgd-t": APGDT(steps=100, n_target_classes=5, eps_schedule=True, **common)}
        return {"apgd-ce": APGD(loss="ce", steps=100, n_restarts=1, **common),
                "apgd-t": APGDT(steps=100, n_target_classes=9, **common),
                "fab-t": FAB(steps=100, targeted=True, n_target_classes=9, **common),
                "square": Square(n_queries=5000, p_init=0.8, **common)}

    def min_classes(self) -> tuple[int, str]:
        need = {name: c.min_classes() for name, c in self.components.items()}
        name = max(need, key=lambda k: need[k][0])
        return need[name][0], f"its {name}: {need[name][1]}"

    def runnable_components(self, n_classes: int) -> list[str]:
        """The components that can run on `n_classes` classes (for the message of check_classes)."""
        return [name for name, c in self.components.items() if c.min_classes()[0] <= n_classes]

    def perturb(self, model: nn.Module, x: Tensor, y: Tensor, example_ids: Tensor | None) -> Tensor:
        with torch.no_grad():
            logits = model(x)
        check_classes({f"autoattack-{self.norm}": self}, logits.shape[1], "attack")  # before any component runs
        robust = logits.argmax(1) == y
        x_adv = x.clone()
        for name, component in self.components.items():
            idx = robust.nonzero().flatten()
            if len(idx) == 0:
                break
            self._tell(ComponentEvent(name, len(idx)))
            start = time.perf_counter()
            ids = example_ids[idx.cpu()] if example_ids is not None else None
            candidate = component.perturb(model, x[idx], y[idx], ids)
            with torch.no_grad():
                broken = model(candidate).argmax(1) != y[idx]
            x_adv[idx[broken]] = candidate[broken]
            robust[idx[broken]] = False
            self._tell(ComponentEvent(name, len(idx), idx[broken].cpu(), time.perf_counter() - start))
        return x_adv

    def describe(self) -> dict:
        return {**super().describe(), "version": self.version,
                "components": {name: c.describe() for name, c in self.components.items()}}
