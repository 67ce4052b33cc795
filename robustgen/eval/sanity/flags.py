"""The sanity checks' settings and verdicts: :class:`SanitySettings` (conf/eval/sanity/), one
:class:`SanityFlag` per check, their order, and how they are told (log and console)."""
from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field, fields

from torch import Tensor

from robustgen.errors import ConfigError

log = logging.getLogger("robustgen")


@dataclass
class SanitySettings:
    enabled: bool = True
    n_points: int = 100                 # first test points the checks run on
    batch_size: int = 100
    huge_eps_factor: float = 10.0       # huge ε = factor × the set's ε (ℓ∞ capped at 1)
    huge_eps_steps: int = 10
    huge_eps_max_acc: float = 2.0       # % accuracy above which the huge-ε attack "failed"
    steps_tolerance: float = 2.0        # percentage points 2× steps may lower accuracy by (at least one point)
    zero_grad_max_fraction: float = 0.01
    square_queries: int = 300           # where the set has no AutoAttack (with Square) of that norm
    square_tolerance: float = 2.0       # percentage points Square may lower the white-box accuracy by (≥ 1 point)

    @classmethod
    def from_dict(cls, values: dict | None) -> SanitySettings:
        values = dict(values or {})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"eval.sanity: unknown setting(s) {unknown}; valid ones: {sorted(known)}")
        for f in fields(cls):  # a text or a number of the wrong kind fails now, not after the attack set
            value, default = values.get(f.name, f.default), f.default
            kind = bool if isinstance(default, bool) else int if isinstance(default, int) else float
            ok = isinstance(value, bool) if kind is bool else (
                not isinstance(value, bool) and isinstance(value, (int, float) if kind is float else int))
            if not ok:
                what = {bool: "true or false", int: "an integer", float: "a number"}[kind]
                raise ConfigError(f"eval.sanity.{f.name} must be {what}, got {value!r}")
        settings = cls(**values)
        if min(settings.n_points, settings.batch_size, settings.huge_eps_steps, settings.square_queries) < 1:
            raise ConfigError("eval.sanity: n_points, batch_size, huge_eps_steps and square_queries must be ≥ 1")
        return settings


@dataclass
class SanityFlag:
    name: str
    passed: bool
    values: dict = field(default_factory=dict)
    message: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


ORDER = ("huge_eps", "more_steps", "zero_gradients", "black_box")


def ordered(flags: list[SanityFlag], clean: Tensor) -> list[SanityFlag]:
    """In the order of the module docstring (norms in set order), each with the clean accuracy."""
    for flag in flags:
        flag.values["clean_acc"] = percent(clean)
    return sorted(flags, key=lambda f: ORDER.index(f.name.split("/")[0]))


def report_flags(flags: list[SanityFlag], console=None, title: str = "sanity checks") -> None:
    """Log failures as warnings and print a one-line summary (plus the failures) with rich."""
    failed = [f for f in flags if not f.passed]
    for flag in failed:
        log.warning("sanity check %s failed: %s", flag.name, flag.message)
    if console is None:
        from rich.console import Console

        console = Console(stderr=True)
    console.print(f"[bold]{title}[/bold]: {len(flags) - len(failed)}/{len(flags)} passed", soft_wrap=True)
    for flag in failed:
        console.print(f"  [bold yellow]warning[/bold yellow] {flag.name}: {flag.message}", soft_wrap=True,
                      highlight=False)


def percent(mask: Tensor) -> float:
    """The share of true entries of a per-point mask, in % (0 for no points)."""
    return 100.0 * mask.float().mean().item() if mask.numel() else 0.0


def allowed_points(tolerance: float, n: int) -> int:
    """`tolerance` percent of `n` points, rounded down, and at least one: counted, not compared as
    percentages, so that 2 of 100 points is 2% and not 2.0000004%."""
    return max(int(tolerance * n / 100 + 1e-9), 1)
