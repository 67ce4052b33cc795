"""Cheap checks for signs of a broken evaluation, run on a small subset of the test points.

A robust accuracy is only believable if the attacks behind it work on this model. These are the
checks a reviewer runs first (Carlini et al., "On Evaluating Adversarial Robustness", 2019;
AutoAttack's flags), one per norm of the attack set where it depends on the norm:

* ``huge_eps/<norm>``: PGD with ε ten times the set's (ℓ∞ capped at 1), no random start, must
  drive accuracy to about 0. If it cannot, its gradients do not lead anywhere (gradient masking).
* ``more_steps/<norm>``: PGD with twice the steps (same step size, same random starts) must not
  leave a higher accuracy than with the set's steps, beyond a few flipped points.
* ``zero_gradients``: the share of points whose input gradient of the loss is exactly zero
  (a saturated softmax, a non-differentiable input stage); attacks cannot move such points.
* ``black_box/<norm>``: Square (score-based, no gradients) must not beat the set's white-box
  attacks of that norm (AutoAttack without its own Square, plus the PGD runs above) on the same
  points: if it does, the gradients mislead the attacks, or the set is too weak for this model
  (ℓ∞ and ℓ2 only: torchattacks has no ℓ1 Square).

Each check gives a :class:`SanityFlag` (name, passed, measured values, message); failed ones are
logged as warnings and all go into results.json.
"""
from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field, fields

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from robustgen.attack import PGD, AutoAttack, Square
from robustgen.attack.base import Attack
from robustgen.errors import ConfigError
from robustgen.modes import eval_mode

log = logging.getLogger("robustgen")


@dataclass
class SanitySettings:
    enabled: bool = True
    n_points: int = 100                 # first test points the checks run on
    batch_size: int = 100
    huge_eps_factor: float = 10.0       # huge ε = factor × the set's ε (ℓ∞ capped at 1)
    huge_eps_steps: int = 20
    huge_eps_max_acc: float = 2.0       # % accuracy above which the huge-ε attack "failed"
    steps_tolerance: float = 2.0        # percentage points 2× steps may exceed 1× (at least one point)
    zero_grad_max_fraction: float = 0.01
    square_queries: int = 1000
    square_tolerance: float = 0.0       # percentage points Square may undercut white-box by

    @classmethod
    def from_dict(cls, values: dict | None) -> SanitySettings:
        values = dict(values or {})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"eval.sanity: unknown setting(s) {unknown}; valid ones: {sorted(known)}")
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


# --- helpers -----------------------------------------------------------------------------------
def _correct(model: nn.Module, attack: Attack | None, x: Tensor, y: Tensor, ids: Tensor, batch_size: int,
             among: Tensor | None = None) -> Tensor:
    """Per point: classified correctly after `attack` (clean when None), batched. With `among`,
    only those points are attacked and the others count as not correct."""
    keep = torch.ones(len(x), dtype=torch.bool, device=x.device) if among is None else among.clone()
    idx = keep.nonzero().flatten()
    for k in range(0, len(idx), batch_size):
        at = idx[k:k + batch_size]
        xb, yb = x[at], y[at]
        if attack is not None:
            xb = attack(model, xb, yb, example_ids=ids[at.cpu()])
        with torch.no_grad():
            keep[at] = model(xb).argmax(1) == yb
    return keep


def _pct(mask: Tensor) -> float:
    return 100.0 * mask.float().mean().item()


def zero_gradient_fraction(model: nn.Module, x: Tensor, y: Tensor, batch_size: int = 100) -> float:
    """Share of points whose input gradient of the cross-entropy is exactly zero everywhere."""
    zero = []
    with eval_mode(model), torch.inference_mode(False), torch.enable_grad():
        for k in range(0, len(x), batch_size):
            xb = x[k:k + batch_size].detach().clone().requires_grad_(True)
            loss = F.cross_entropy(model(xb), y[k:k + batch_size].clone(), reduction="sum")
            (grad,) = torch.autograd.grad(loss, xb)
            zero.append((grad.flatten(1) == 0).all(1))
    return torch.cat(zero).float().mean().item()


def reference_pgds(attacks: dict[str, Attack]) -> dict[str, tuple[str, PGD]]:
    """One (name, PGD) per norm of the set: the set's first PGD of that norm, else a 10-step PGD
    at the ε of the set's first attack of that norm (the strong ℓ1 variant where ℓ1 has no PGD)."""
    refs: dict[str, tuple[str, PGD]] = {}
    for name, attack in attacks.items():
        if isinstance(attack, PGD) and attack.norm not in refs:
            refs[attack.norm] = (name, attack)
    for attack in attacks.values():
        norm = getattr(attack, "norm", None)
        if norm in ("linf", "l2", "l1") and norm not in refs:
            refs[norm] = (f"pgd_{norm} (sanity reference)",
                          PGD(norm=norm, eps=attack.eps, steps=10, step_size=2.5 * attack.eps / 10,
                              l1_variant="strong", seed=attack.seed))
    return dict(sorted(refs.items(), key=lambda kv: ("linf", "l2", "l1").index(kv[0])))


def white_box_attacks(attacks: dict[str, Attack], norm: str) -> dict[str, Attack]:
    """The set's gradient-based attacks of `norm`: AutoAttack counts with its components minus Square."""
    out: dict[str, Attack] = {}
    for name, attack in attacks.items():
        if getattr(attack, "norm", None) != norm or isinstance(attack, Square):
            continue
        if isinstance(attack, AutoAttack):
            out.update({f"{name}/{c}": a for c, a in attack.components.items() if not isinstance(a, Square)})
        else:
            out[name] = attack
    return out


def _variant(ref: PGD, **changes) -> PGD:
    settings = {"norm": ref.norm, "eps": ref.eps, "steps": ref.steps, "step_size": ref.step_size,
                "random_start": ref.random_start, "l1_variant": ref.l1_variant, "sparsity": ref.sparsity,
                "seed": ref.seed}
    return PGD(**{**settings, **changes})


# --- the checks ----------------------------------------------------------------------------------
def run_sanity_checks(model: nn.Module, x: Tensor, y: Tensor, ids: Tensor, attacks: dict[str, Attack],
                      settings: SanitySettings) -> list[SanityFlag]:
    """All checks on the points (x, y, ids); the model is used in eval mode."""
    s, flags = settings, []
    clean = _correct(model, None, x, y, ids, s.batch_size)
    refs = reference_pgds(attacks)

    for norm, (_, ref) in refs.items():
        eps = min(ref.eps * s.huge_eps_factor, 1.0) if norm == "linf" else ref.eps * s.huge_eps_factor
        huge = _variant(ref, eps=eps, steps=s.huge_eps_steps, step_size=2.5 * eps / s.huge_eps_steps,
                        random_start=False)
        acc = _pct(_correct(model, huge, x, y, ids, s.batch_size))
        flags.append(SanityFlag(
            f"huge_eps/{norm}", acc <= s.huge_eps_max_acc, {"eps": eps, "steps": s.huge_eps_steps, "acc": acc},
            f"PGD-{norm} with ε={eps:.4g} ({s.huge_eps_factor:g}× the set's) leaves {acc:.1f}% accuracy "
            f"(expected ≤ {s.huge_eps_max_acc:g}%)"))

    white_box: dict[str, Tensor] = {}
    # PGD returns its last iterate, so a point or two may flip back with more steps: allow the
    # larger of `steps_tolerance` and one point of the subset.
    allowed = max(s.steps_tolerance, 100.0 / len(x))
    for norm, (_, ref) in refs.items():
        once = _correct(model, ref, x, y, ids, s.batch_size)
        twice = _correct(model, _variant(ref, steps=2 * ref.steps), x, y, ids, s.batch_size)
        white_box[norm] = once & twice
        a1, a2 = _pct(once), _pct(twice)
        flags.append(SanityFlag(
            f"more_steps/{norm}", a2 <= a1 + allowed,
            {"steps": ref.steps, "acc": a1, "steps_2x": 2 * ref.steps, "acc_2x": a2, "allowed_excess": allowed},
            f"PGD-{norm}: {a1:.1f}% with {ref.steps} steps, {a2:.1f}% with {2 * ref.steps} "
            f"(2× steps may exceed 1× by at most {allowed:.3g} points)"))

    fraction = zero_gradient_fraction(model, x, y, s.batch_size)
    flags.append(SanityFlag(
        "zero_gradients", fraction <= s.zero_grad_max_fraction, {"fraction": fraction},
        f"{100 * fraction:.1f}% of points have an all-zero input gradient (expected ≤ "
        f"{100 * s.zero_grad_max_fraction:g}%)"))

    for norm in ("linf", "l2"):
        if norm not in refs:
            continue
        ref_name, ref = refs[norm]
        others = {k: a for k, a in white_box_attacks(attacks, norm).items() if a is not ref}  # ref: run above
        for attack in others.values():  # cascade: each only on the points still standing
            white_box[norm] = _correct(model, attack, x, y, ids, s.batch_size, among=white_box[norm])
        square = Square(norm=norm, eps=ref.eps, n_queries=s.square_queries, seed=ref.seed)
        held = _correct(model, square, x, y, ids, s.batch_size)
        sq, wb = _pct(held), _pct(white_box[norm])
        only_square = int((~held & white_box[norm]).sum())
        flags.append(SanityFlag(
            f"black_box/{norm}", sq >= wb - s.square_tolerance,
            {"square_queries": s.square_queries, "square_acc": sq, "white_box_acc": wb,
             "white_box": [f"{ref_name} (1× and 2× steps)", *others], "broken_only_by_square": only_square},
            f"Square-{norm} ({s.square_queries} queries) leaves {sq:.1f}% vs {wb:.1f}% for the white-box "
            f"attacks of the set; {only_square} point(s) broken only by Square"))

    for flag in flags:
        flag.values["clean_acc"] = _pct(clean)
    return flags


def report_flags(flags: list[SanityFlag], console=None) -> None:
    """Log failures as warnings and print a one-line summary (plus the failures) with rich."""
    failed = [f for f in flags if not f.passed]
    for flag in failed:
        log.warning("sanity check %s failed: %s", flag.name, flag.message)
    if console is None:
        from rich.console import Console

        console = Console(stderr=True)
    console.print(f"[bold]sanity checks[/bold]: {len(flags) - len(failed)}/{len(flags)} passed")
    for flag in failed:
        console.print(f"  [bold yellow]warning[/bold yellow] {flag.name}: {flag.message}")
