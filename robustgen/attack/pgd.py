"""Projected gradient descent (Madry et al., 2018) for the ℓ∞ and ℓ2 threat models.

The norms share one loop and differ only in the steepest-ascent step and the projection.
We write PGD ourselves rather than use torchattacks' PGD/PGDL2 because (1) the random start must be
reproducible per example, (2) the model must not be bound at construction, and (3) no library has
the ε-bounded ℓ1 PGD the study evaluates with, which must share this loop.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from robustgen.attack.base import Attack
from robustgen.errors import ConfigError

_TINY = 1e-12


def per_example_generators(example_ids: Tensor | None, n: int, seed: int) -> list[torch.Generator | None]:
    if example_ids is None:
        return [None] * n
    return [torch.Generator().manual_seed(seed * 1_000_003 + int(i)) for i in example_ids.tolist()]


def _norm_per_example(v: Tensor, p: float) -> Tensor:
    return v.flatten(1).norm(p=p, dim=1).clamp_min(_TINY).view(-1, *([1] * (v.ndim - 1)))


class PGD(Attack):
    """PGD with `steps` steps of size `step_size` inside the `norm` ball of radius `eps`.

    Args:
        norm: "linf" or "l2".
        eps: radius in pixel units ([0, 1] images), e.g. 8/255 for ℓ∞.
        steps: number of gradient steps (≥ 1).
        step_size: step length in the same units as eps.
        random_start: start from a uniform point of the ball (ℓ∞) or a random point of it (ℓ2).
    """

    def __init__(self, norm: str = "linf", eps: float = 8 / 255, steps: int = 10, step_size: float = 2 / 255,
                 random_start: bool = True, **kwargs):
        super().__init__(eps, **kwargs)
        if norm not in self.supported_norms():
            raise ConfigError(f"PGD: norm must be one of {self.supported_norms()}, got {norm!r}")
        if steps < 1:
            raise ConfigError(f"PGD: steps must be ≥ 1, got {steps}")
        if not step_size > 0:
            raise ConfigError(f"PGD: step_size must be > 0, got {step_size}")
        if norm == "linf" and eps > 1:
            raise ConfigError(f"PGD-linf: eps={eps} exceeds the [0, 1] pixel range; did you mean {eps}/255?")
        self.norm, self.steps, self.step_size, self.random_start = norm, int(steps), float(step_size), random_start

    @staticmethod
    def supported_norms() -> tuple[str, ...]:
        return ("linf", "l2")

    def describe(self) -> dict:
        return {**super().describe(), "steps": self.steps, "step_size": self.step_size,
                "random_start": self.random_start}

    # --- the three places where norms differ -------------------------------------------------
    def initial_delta(self, x: Tensor, example_ids: Tensor | None) -> Tensor:
        gens = per_example_generators(example_ids, len(x), self.seed)
        noise = torch.stack([torch.rand(x.shape[1:], generator=g) for g in gens]).to(x)
        if self.norm == "linf":
            return (2 * noise - 1) * self.eps
        # ℓ2: a direction from a Gaussian, a radius below eps (uniform in the ball needs r ∝ u^(1/d)).
        gauss = torch.stack([torch.randn(x.shape[1:], generator=g) for g in gens]).to(x)
        radius = noise.flatten(1)[:, :1].pow(1.0 / x[0].numel()).view(-1, *([1] * (x.ndim - 1)))
        return gauss / _norm_per_example(gauss, 2) * radius * self.eps

    def ascent_step(self, grad: Tensor) -> Tensor:
        if self.norm == "linf":
            return self.step_size * grad.sign()
        return self.step_size * grad / _norm_per_example(grad, 2)

    def project(self, delta: Tensor) -> Tensor:
        if self.norm == "linf":
            return delta.clamp(-self.eps, self.eps)
        factor = (self.eps / _norm_per_example(delta, 2)).clamp(max=1.0)
        return delta * factor

    # --- the shared loop ----------------------------------------------------------------------
    def perturb(self, model: nn.Module, x: Tensor, y: Tensor, example_ids: Tensor | None) -> Tensor:
        delta = self.initial_delta(x, example_ids) if self.random_start else torch.zeros_like(x)
        delta = (x + self.project(delta)).clamp(0, 1) - x
        for _ in range(self.steps):
            delta.requires_grad_(True)
            loss = F.cross_entropy(model(x + delta), y)
            (grad,) = torch.autograd.grad(loss, delta)
            delta = self.project(delta.detach() + self.ascent_step(grad))
            delta = (x + delta).clamp(0, 1) - x  # stay a valid image
        return (x + delta).detach()
