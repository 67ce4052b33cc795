"""ℓ1-APGD (Croce & Hein, "Mind the box: ℓ1-APGD for sparse adversarial attacks", ICCV 2021).

Hand-written because torchattacks' APGD / APGD-T support only ℓ∞ and ℓ2, and the reference
implementation (fra31/auto-attack) is not a dependency of this project. The algorithm, as in the
paper and the reference:

* start: a Gaussian point projected exactly onto the ℓ1 ball ∩ [0, 1] box;
* step: sparse steepest ascent — sign of the gradient on the top `fraction` of coordinates (the
  ones the box does not block), scaled to ℓ1 norm η — then the exact projection (projections.py);
  no momentum (the reference uses none for ℓ1);
* every 4% of the iterations, per example: the sparsity of the best point so far sets the next
  `fraction` (its ℓ0 / d / 1.5); if that sparsity fell by more than 5%, η is reset to ε and the
  iterate restarts from the best point, otherwise η shrinks by 1.5 (never below ε/10);
* optional ε-schedule (the reference's `use_largereps`, used by its standard ℓ1 AutoAttack): run
  30% of the iterations at 3ε, 30% at 2ε, 40% at ε, each stage starting from the previous best.

Everything is per example (step size, sparsity, restarts, random starts via `ExampleRNG`), so a
result does not depend on the batch an example is in. Returns the first misclassified iterate
found for broken points and the clean image for the others (as AutoAttack does).
"""
from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from robustgen.attack.projections import project_l1_box, sparse_l1_step
from robustgen.attack.random_start import ExampleRNG
from robustgen.errors import ConfigError

IMPLEMENTATION = "robustgen apgd_l1 (hand-written: torchattacks has no ℓ1 APGD)"
LossFn = Callable[[Tensor, Tensor], Tensor]  # (logits, labels) -> per-example loss


def check_schedule(name: str, norm: str, eps_schedule: bool, steps: int) -> None:
    if eps_schedule and norm != "l1":
        raise ConfigError(f"{name}: eps_schedule exists only for norm='l1', got norm={norm!r}")
    if eps_schedule and steps < 3:
        raise ConfigError(f"{name}: eps_schedule splits the iterations into 3 stages; steps must be ≥ 3, got {steps}")


# --- losses (per example) ---------------------------------------------------------------------
def dlr_loss(logits: Tensor, y: Tensor) -> Tensor:
    """Difference of logits ratio: −(z_y − max_{i≠y} z_i) / (z_π1 − z_π3); shift/scale invariant."""
    ranked = logits.sort(dim=1, descending=True).values
    z_y = logits.gather(1, y[:, None]).squeeze(1)
    best_other = torch.where(logits.argmax(1) == y, ranked[:, 1], ranked[:, 0])
    return -(z_y - best_other) / (ranked[:, 0] - ranked[:, 2] + 1e-12)


def targeted_dlr_loss(target: Tensor) -> LossFn:
    """−(z_y − z_t) / (z_π1 − (z_π3 + z_π4)/2) for the target class t of each example."""
    def loss(logits: Tensor, y: Tensor) -> Tensor:
        ranked = logits.sort(dim=1, descending=True).values
        z_y = logits.gather(1, y[:, None]).squeeze(1)
        z_t = logits.gather(1, target[:, None]).squeeze(1)
        return -(z_y - z_t) / (ranked[:, 0] - 0.5 * (ranked[:, 2] + ranked[:, 3]) + 1e-12)
    return loss


def ce_loss(logits: Tensor, y: Tensor) -> Tensor:
    return F.cross_entropy(logits, y, reduction="none")


def _loss_and_grad(model: nn.Module, x_adv: Tensor, y: Tensor, loss_fn: LossFn) -> tuple[Tensor, Tensor, Tensor]:
    x_adv = x_adv.detach().requires_grad_(True)
    logits = model(x_adv)
    loss = loss_fn(logits, y)
    (grad,) = torch.autograd.grad(loss.sum(), x_adv)
    return loss.detach(), logits.detach(), grad.detach()


def _l0(delta: Tensor) -> Tensor:
    return (delta.flatten(1) != 0).sum(1).to(delta.dtype)


def _rows(mask: Tensor, like: Tensor) -> Tensor:
    return mask.view(-1, *([1] * (like.ndim - 1)))


# --- one run ----------------------------------------------------------------------------------
def single_run(model: nn.Module, x: Tensor, y: Tensor, eps: float, steps: int, loss_fn: LossFn,
               rng: ExampleRNG, x_init: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
    """One ℓ1-APGD run. Returns (best-loss point, fooled mask, first misclassified iterate)."""
    d = x[0].numel()
    if x_init is None:
        delta = project_l1_box(rng.normal(x), x, eps)
        fraction = torch.full((len(x),), 0.2, device=x.device)
        sparsity_old = torch.full((len(x),), float(d), device=x.device)
    else:
        delta = project_l1_box(x_init - x, x, eps)
        sparsity_old = _l0(delta)
        fraction = sparsity_old / d / 1.5
    x_adv = (x + delta).clamp(0, 1)
    loss, logits, grad = _loss_and_grad(model, x_adv, y, loss_fn)
    fooled = logits.argmax(1) != y
    x_fooled = torch.where(_rows(fooled, x), x_adv, x)
    x_best, loss_best, grad_best = x_adv.clone(), loss.clone(), grad.clone()
    step = torch.full((len(x),), float(eps), device=x.device)
    check_every = max(int(0.04 * steps), 1)

    for i in range(steps):
        delta = project_l1_box(x_adv - x + sparse_l1_step(grad, x_adv, fraction, step), x, eps)
        x_adv = (x + delta).clamp(0, 1)
        loss, logits, grad = _loss_and_grad(model, x_adv, y, loss_fn)
        newly = (logits.argmax(1) != y) & ~fooled
        x_fooled = torch.where(_rows(newly, x), x_adv, x_fooled)
        fooled |= newly
        better = loss > loss_best
        x_best = torch.where(_rows(better, x), x_adv, x_best)
        grad_best = torch.where(_rows(better, x), grad, grad_best)
        loss_best = torch.where(better, loss, loss_best)

        if (i + 1) % check_every == 0:
            sparsity = _l0(x_best - x)
            got_sparser = sparsity / sparsity_old.clamp_min(1) < 0.95
            fraction = sparsity / d / 1.5
            step = torch.where(got_sparser, torch.full_like(step, eps), step / 1.5).clamp(eps / 10, eps)
            sparsity_old = sparsity
            x_adv = torch.where(_rows(got_sparser, x), x_best, x_adv)
            grad = torch.where(_rows(got_sparser, x), grad_best, grad)
    return x_best, fooled, x_fooled


def scheduled_run(model, x, y, eps, steps, loss_fn, rng):
    """The ε-schedule: 30% of the steps at 3ε, 30% at 2ε, 40% at ε, each from the last best point."""
    stages = [math.ceil(0.3 * steps), math.ceil(0.3 * steps)]
    stages.append(steps - sum(stages))
    x_init = x + rng.normal(x)
    for factor, n in zip((3.0, 2.0, 1.0), stages):
        x_init, fooled, x_fooled = single_run(model, x, y, factor * eps, max(n, 1), loss_fn, rng, x_init)
    return x_init, fooled, x_fooled


# --- the attack with restarts and target classes ------------------------------------------------
def attack(model: nn.Module, x: Tensor, y: Tensor, *, eps: float, steps: int, loss: str, n_restarts: int = 1,
           n_target_classes: int = 9, eps_schedule: bool = False, example_ids: Tensor | None = None,
           seed: int = 0) -> Tensor:
    """ℓ1-APGD on `loss` ("ce", "dlr" or "dlr-targeted"), each restart / target class on the points
    still classified correctly. The model mode is the caller's (see Attack.__call__)."""
    rng = ExampleRNG(example_ids, seed)
    with torch.no_grad():
        clean_logits = model(x)
    robust = clean_logits.argmax(1) == y
    x_adv = x.clone()
    run = scheduled_run if eps_schedule else single_run
    if loss == "dlr-targeted":
        ranking = clean_logits.argsort(dim=1, descending=True)
        n_targets = min(n_target_classes, clean_logits.shape[1] - 1)
        plans = [(lambda idx, r=rank: targeted_dlr_loss(ranking[idx, r])) for rank in range(1, n_targets + 1)]
    else:
        base = {"ce": ce_loss, "dlr": dlr_loss}[loss]
        plans = [lambda idx: base]
    for make_loss in plans:
        for _ in range(n_restarts):
            idx = robust.nonzero().flatten()
            if len(idx) == 0:
                return x_adv
            _, fooled, x_fooled = run(model, x[idx], y[idx], eps, steps, make_loss(idx), rng.subset(idx))
            x_adv[idx[fooled]] = x_fooled[fooled]
            robust[idx[fooled]] = False
    return x_adv
