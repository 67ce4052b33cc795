"""The checks run before the attack set: the cheap ones, which need nothing from the evaluation —
``huge_eps/<norm>`` and ``zero_gradients`` — so that a broken evaluation shows early."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from robustgen.attack import PGD
from robustgen.attack.base import Attack
from robustgen.eval.progress import Reporter
from robustgen.eval.sanity import common
from robustgen.eval.sanity.flags import SanityFlag, SanitySettings, percent
from robustgen.modes import eval_mode

log = logging.getLogger("robustgen")


def zero_gradient_fraction(model: nn.Module, x: Tensor, y: Tensor, batch_size: int = 100) -> float:
    """Share of points whose input gradient of the cross-entropy is exactly zero everywhere, or
    not finite: a NaN or infinite gradient leads an attack nowhere either."""
    bad = []
    with eval_mode(model), torch.inference_mode(False), torch.enable_grad():
        for k in range(0, len(x), batch_size):
            xb = x[k:k + batch_size].detach().clone().requires_grad_(True)
            loss = F.cross_entropy(model(xb), y[k:k + batch_size].clone(), reduction="sum")
            (grad,) = torch.autograd.grad(loss, xb)
            grad = grad.flatten(1)
            bad.append((grad == 0).all(1) | ~torch.isfinite(grad).all(1))
    return torch.cat(bad).float().mean().item()


@dataclass
class PreChecks:
    """The checks run before the evaluation, and what the checks after it need from them."""

    flags: list[SanityFlag]
    clean: Tensor                           # per point: classified correctly without attack
    refs: dict[str, tuple[str, PGD]]        # norm → (name, reference PGD)
    keeping: dict[str, common.KeepingIterates] = field(default_factory=dict)  # norm → its run, keeping iterates

    def evaluated(self, attacks: dict[str, Attack]) -> dict[str, Attack]:
        """The attack set to evaluate: the same attacks, where each reference PGD of the set runs
        as its :class:`~robustgen.eval.sanity.common.KeepingIterates` (same outcomes), so that
        the checks after the evaluation continue from its iterates on the sanity points."""
        by_ref = {id(self.refs[norm][1]): keeping for norm, keeping in self.keeping.items()}
        return {name: by_ref.get(id(attack), attack) for name, attack in attacks.items()}


def checks_before(model: nn.Module, x: Tensor, y: Tensor, ids: Tensor, attacks: dict[str, Attack],
                  settings: SanitySettings, reporter: Reporter | None = None) -> PreChecks:
    """huge_eps/<norm> and zero_gradients on (x, y, ids). Points misclassified clean count as wrong
    without being attacked."""
    s, flags, r = settings, [], reporter or Reporter(False)
    clean = common.correct(model, None, x, y, ids, s.batch_size)
    if int(clean.sum()) < 10:  # the checks attack only correctly classified points
        log.warning("only %d of the %d sanity points are classified correctly: the sanity checks can show little "
                    "(raise eval.sanity.n_points)", int(clean.sum()), len(x))
    refs = common.reference_pgds(attacks)
    for norm, (_, ref) in refs.items():
        eps = min(ref.eps * s.huge_eps_factor, 1.0) if norm == "linf" else ref.eps * s.huge_eps_factor
        huge = common.variant(ref, eps=eps, steps=s.huge_eps_steps, step_size=2.5 * eps / s.huge_eps_steps,
                              random_start=False)
        held, seconds = common.checked(r, f"huge_eps/{norm}",
                                       lambda: common.correct(model, huge, x, y, ids, s.batch_size, clean))
        acc = percent(held)
        flags.append(common.tell(r, SanityFlag(
            f"huge_eps/{norm}", acc <= s.huge_eps_max_acc, {"eps": eps, "steps": s.huge_eps_steps, "acc": acc},
            f"PGD-{norm} with ε={eps:.4g} ({s.huge_eps_factor:g}× the set's) leaves {acc:.1f}% accuracy "
            f"(expected ≤ {s.huge_eps_max_acc:g}%)"), seconds))

    fraction, seconds = common.checked(r, "zero_gradients", lambda: zero_gradient_fraction(model, x, y, s.batch_size))
    flags.append(common.tell(r, SanityFlag(
        "zero_gradients", fraction <= s.zero_grad_max_fraction, {"fraction": fraction},
        f"{100 * fraction:.1f}% of points have an all-zero or non-finite input gradient (expected ≤ "
        f"{100 * s.zero_grad_max_fraction:g}%)"), seconds))
    keeping = {norm: common.KeepingIterates(ref, ids) for norm, (_, ref) in refs.items()}
    return PreChecks(flags, clean, refs, keeping)
