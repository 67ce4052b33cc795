"""Projected gradient descent (Madry et al., 2018) for the ℓ∞, ℓ2 and ℓ1 threat models.

The norms share one loop and differ only in the random start, the steepest-ascent step and the
projection. We write PGD ourselves rather than use torchattacks' PGD/PGDL2 because (1) the random
start must be reproducible per example, (2) the model must not be bound at construction, and
(3) no library has the ε-bounded ℓ1 PGD the study evaluates with, which must share this loop.

ℓ1 comes in two variants that differ by tens of accuracy points (PROTOCOL.md), so results say
which one ran (`describe()["l1_variant"]`):

* ``"study"`` — what the study's toolkit (ART's ProjectedGradientDescent, norm=1) does: a dense
  step along the ℓ1-normalised gradient, projection by clipping to [0, 1] and rescaling onto the
  ℓ1 ball, one random start inside the ball. Use it to compare with the paper's PGD-ℓ1 column.
* ``"strong"`` — steepest ascent for ℓ1: a sparse step on the largest gradient coordinates
  (SLIDE / APGD-ℓ1 style) and the exact projection onto the ℓ1 ball ∩ [0, 1] box.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from robustgen.attack import projections as proj
from robustgen.attack.base import Attack
from robustgen.attack.random_start import START_KINDS, ExampleRNG, random_start
from robustgen.errors import ConfigError

L1_VARIANTS = ("study", "strong")


def start_kind(name: str, norm: str, value) -> str | None:
    """The random-start kind `value` names (see random_start.py), or None for no random start.

    Raises:
        ConfigError: an unknown kind, or "radius" for ℓ∞, naming the setting's allowed values.
    """
    if value is None or value is False or value == "none":
        return None
    kind = "ball" if value is True else value
    if kind not in START_KINDS:
        raise ConfigError(f"{name}: random_start must be one of {START_KINDS} or none, got {value!r}")
    if norm == "linf" and kind != "ball":
        raise ConfigError(f"{name}: an ℓ∞ start is uniform in the ε-box in every toolkit; "
                          f"set random_start: ball (or none), not {kind!r}")
    return kind


def check_common(name: str, norm: str, eps: float, norms: tuple[str, ...]) -> None:
    """Checks every attack shares: a known norm and an ℓ∞ radius inside the pixel range."""
    if norm not in norms:
        raise ConfigError(f"{name}: norm must be one of {norms}, got {norm!r}")
    if norm == "linf" and eps > 1:
        raise ConfigError(f"{name}-linf: eps={eps} exceeds the [0, 1] pixel range; did you mean {eps}/255?")


class PGD(Attack):
    """PGD with `steps` steps of size `step_size` inside the `norm` ball of radius `eps`.

    Args:
        norm: "linf", "l2" or "l1".
        eps: radius in pixel units ([0, 1] images), e.g. 8/255 for ℓ∞, 1.5 for ℓ2, 40 for ℓ1.
        steps: number of gradient steps (≥ 1).
        step_size: length of each step in the norm of the threat model, same units as eps.
        random_start: how the start is drawn: "ball" (uniform in the ε-ball: foolbox's and ART
            1.11.1–1.17's, the study's toolkits, for every norm), "radius" (radius uniform in [0, eps]:
            torchattacks' PGDL2; ℓ2 and ℓ1 only) or None/"none" (start from the clean image).
            True means "ball", False means None. See random_start.py.
        l1_variant: "study" or "strong" (see the module docstring); only used when norm="l1".
        sparsity: for the strong ℓ1 variant, the share of (movable) coordinates each step leaves
            untouched: 0.99 steps along the top 1% of gradient coordinates (SLIDE's q = 99).
        eval_mode, seed: see :class:`Attack`.
    """

    def __init__(self, norm: str = "linf", eps: float = 8 / 255, steps: int = 10, step_size: float = 2 / 255,
                 random_start: str | bool | None = "ball", l1_variant: str = "study", sparsity: float = 0.99, **kwargs):
        super().__init__(eps, **kwargs)
        check_common("PGD", norm, eps, self.supported_norms())
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
            raise ConfigError(f"PGD: steps must be an integer ≥ 1, got {steps!r}")
        if not step_size > 0:
            raise ConfigError(f"PGD: step_size must be > 0, got {step_size}")
        if l1_variant not in L1_VARIANTS:
            raise ConfigError(f"PGD: l1_variant must be one of {L1_VARIANTS}, got {l1_variant!r}")
        if not 0 <= sparsity < 1:
            raise ConfigError(f"PGD: sparsity is the share of coordinates a sparse ℓ1 step leaves out; "
                              f"it must lie in [0, 1), got {sparsity}")
        self.norm, self.steps, self.step_size = norm, int(steps), float(step_size)
        self.random_start = start_kind(f"PGD-{norm}", norm, random_start)
        self.l1_variant, self.sparsity = l1_variant, float(sparsity)

    @staticmethod
    def supported_norms() -> tuple[str, ...]:
        return ("linf", "l2", "l1")

    def describe(self) -> dict:
        out = {**super().describe(), "steps": self.steps, "step_size": self.step_size,
               "random_start": self.random_start or "none"}
        if self.norm == "l1":
            out["l1_variant"] = self.l1_variant
            if self.l1_variant == "strong":
                out["sparsity"] = self.sparsity
        return out

    # --- the three places where norms differ -------------------------------------------------
    def initial_delta(self, x: Tensor, rng: ExampleRNG) -> Tensor:
        return random_start(self.norm, self.random_start, rng, x, self.eps)

    def ascent_step(self, grad: Tensor, x_adv: Tensor) -> Tensor:
        if self.norm == "linf":
            return self.step_size * grad.sign()
        if self.norm == "l2":
            norm = proj.lp_norm(grad, 2).clamp_min(1e-12).view(-1, *([1] * (grad.ndim - 1)))
            return self.step_size * grad / norm
        if self.l1_variant == "study":
            return proj.dense_l1_step(grad, self.step_size)
        return proj.sparse_l1_step(grad, x_adv, 1.0 - self.sparsity, self.step_size)

    def project(self, delta: Tensor, x: Tensor) -> Tensor:
        """Into the ε-ball and the [0, 1] box (see projections.py for each norm's choice)."""
        if self.norm == "linf":
            return proj.project_linf(delta, x, self.eps)
        if self.norm == "l2":
            return proj.project_l2(delta, x, self.eps)
        if self.l1_variant == "study":
            return proj.project_l1_rescale(delta, x, self.eps)
        return proj.project_l1_box(delta, x, self.eps)

    # --- the shared loop ----------------------------------------------------------------------
    def loss_target(self, model: nn.Module, x: Tensor, y: Tensor) -> Tensor:
        """What :meth:`loss` compares the logits with: the labels (TRADES' variant: clean outputs)."""
        return y

    def loss(self, logits: Tensor, target: Tensor) -> Tensor:
        """The objective the steps ascend. Summed, not averaged: each example's gradient is then
        independent of the batch size."""
        return F.cross_entropy(logits, target, reduction="sum")

    def perturb(self, model: nn.Module, x: Tensor, y: Tensor, example_ids: Tensor | None) -> Tensor:
        return self.perturb_with_delta(model, x, y, example_ids)[0]

    def perturb_with_delta(self, model: nn.Module, x: Tensor, y: Tensor,
                           example_ids: Tensor | None) -> tuple[Tensor, Tensor]:
        """(x_adv, δ): the adversarial images and the final perturbation they were made from
        (x_adv = clamp(x + δ, 0, 1)), from which :meth:`iterate` continues exactly: `steps` more
        steps from δ equal a PGD with 2× steps from the same random start (eval/sanity/)."""
        delta = self.initial_delta(x, ExampleRNG(example_ids, self.seed)) if self.random_start else torch.zeros_like(x)
        delta = self.iterate(model, x, y, self.project(delta, x), self.steps)
        return (x + delta).clamp(0, 1).detach(), delta

    def iterate(self, model: nn.Module, x: Tensor, y: Tensor, delta: Tensor, steps: int) -> Tensor:
        """`steps` steps from the perturbation `delta` (inside the ball); returns the last one."""
        target = self.loss_target(model, x, y)
        for _ in range(steps):
            delta.requires_grad_(True)
            loss = self.loss(model(x + delta), target)
            (grad,) = torch.autograd.grad(loss, delta)
            delta = delta.detach()
            delta = self.project(delta + self.ascent_step(grad, x + delta), x)
        return delta.detach()
