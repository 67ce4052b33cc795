"""Steps and projections of the ℓ∞, ℓ2 and ℓ1 threat models, vectorised over the batch.

Every projection takes a perturbation `delta` of clean images `x` (in [0, 1]) and returns one that
lies in the ε-ball *and* keeps `x + delta` in [0, 1].

* ℓ∞: clamping is the exact projection onto the intersection (both sets are boxes).
* ℓ2: rescale onto the ball, then clip to the box — what torchattacks, foolbox and ART do; not the
  exact projection onto the intersection, but the standard one PGD-ℓ2 results are quoted with.
* ℓ1, the study's variant: clip to the box, then rescale onto the ball (the order ART, the study's
  toolkit, uses; rescaling towards x cannot leave the box because the box is convex and holds x).
* ℓ1, exact: the Euclidean projection onto {‖δ‖₁ ≤ ε} ∩ {0 ≤ x + δ ≤ 1} (Croce & Hein 2021).
  No library we depend on provides it (torchattacks has no ℓ1 ball at all), so it is written here.
"""
from __future__ import annotations

import torch
from torch import Tensor

_TINY = 1e-12


def _per_example(v: Tensor, like: Tensor) -> Tensor:
    return v.view(-1, *([1] * (like.ndim - 1)))


def lp_norm(v: Tensor, p: float) -> Tensor:
    """Norm of each example (shape N)."""
    return v.flatten(1).norm(p=p, dim=1)


def clip_to_box(delta: Tensor, x: Tensor) -> Tensor:
    """The perturbation that keeps x + delta in [0, 1]; only ever shrinks |delta_i|."""
    return (x + delta).clamp(0, 1) - x


def project_linf(delta: Tensor, x: Tensor, eps: float) -> Tensor:
    return clip_to_box(delta.clamp(-eps, eps), x)


def project_l2(delta: Tensor, x: Tensor, eps: float) -> Tensor:
    factor = (eps / lp_norm(delta, 2).clamp_min(_TINY)).clamp(max=1.0)
    return clip_to_box(delta * _per_example(factor, x), x)


def project_l1_rescale(delta: Tensor, x: Tensor, eps: float) -> Tensor:
    """Clip to the box, then rescale onto the ℓ1 ball. The rescaling runs in float64: a float32 sum
    of 3,072 coordinates is off by ~1e-6 relative, enough to leave ‖δ‖₁ above eps after a rescale
    computed from it; in float64 only the final rounding to delta's dtype remains (≤ 6e-8 relative)."""
    clipped = clip_to_box(delta, x)
    wide = clipped.double()
    factor = (eps / lp_norm(wide, 1).clamp_min(_TINY)).clamp(max=1.0)
    return (wide * _per_example(factor, x)).to(clipped.dtype)


def project_l1_box(delta: Tensor, x: Tensor, eps: float) -> Tensor:
    """Exact Euclidean projection of `delta` onto {‖δ‖₁ ≤ eps} ∩ {0 ≤ x + δ ≤ 1}, per example.

    The KKT conditions give δ_i = sign(v_i) · min(max(|v_i| − λ, 0), c_i), where c_i is the room
    the box leaves in the direction of v_i (1 − x_i or x_i), with λ = 0 if that point (plain
    clipping) is inside the ball, else the λ > 0 at which f(λ) = Σ_i min(max(|v_i| − λ, 0), c_i)
    equals eps. f is piecewise linear and non-increasing with breakpoints at |v_i| (coordinate i
    starts moving) and |v_i| − c_i (it stops at the box); sorting the 2d breakpoints and taking
    cumulative sums evaluates f at all of them at once, and λ is solved on the linear piece where
    f crosses eps. Computed in float64 so the ℓ1 norm of the result is eps to ~1e-12.
    """
    if eps <= 0:
        return torch.zeros_like(delta)
    v = delta.flatten(1).double()
    x64 = x.flatten(1).double()
    mag = v.abs()
    room = torch.where(v > 0, 1 - x64, x64).clamp_min(0)
    clipped_l1 = torch.minimum(mag, room).sum(1)

    points = torch.cat([mag, mag - room], dim=1)
    weights = torch.cat([torch.ones_like(mag), -torch.ones_like(mag)], dim=1)
    points, order = points.sort(dim=1, descending=True)
    weights = weights.gather(1, order)
    moving = weights.cumsum(1)                    # coordinates moving just below each breakpoint
    f_at = (weights * points).cumsum(1) - points * moving  # f at each breakpoint (descending λ)
    # f grows as λ decreases: the first breakpoint where f ≥ eps bounds λ from below.
    k = (f_at < eps).sum(1).clamp(1, points.shape[1] - 1).unsqueeze(1)
    p_k, f_k = points.gather(1, k), f_at.gather(1, k)
    slope = moving.gather(1, k - 1).clamp_min(1)
    p_above = points.gather(1, k - 1)
    lam = (p_k + (f_k - eps) / slope).clamp(min=p_k, max=p_above).clamp_min(0)
    lam = torch.where((clipped_l1 <= eps).unsqueeze(1), torch.zeros_like(lam), lam)

    out = v.sign() * torch.minimum((mag - lam).clamp_min(0), room)
    return out.view_as(delta).to(delta.dtype)


def dense_l1_step(grad: Tensor, step_size: float) -> Tensor:
    """The study's ℓ1 step: the gradient normalised to unit ℓ1 norm (dense), times step_size."""
    return grad * _per_example(step_size / lp_norm(grad, 1).clamp_min(_TINY), grad)


def sparse_l1_step(grad: Tensor, x_adv: Tensor, fraction: Tensor | float, step_size: Tensor | float) -> Tensor:
    """Steepest-ascent ℓ1 step on the largest gradient coordinates (SLIDE, Tramèr & Boneh 2019;
    APGD-ℓ1, Croce & Hein 2021): sign(g_i) on the top `fraction` of coordinates by |g_i|, scaled
    so the step has ℓ1 norm `step_size` (both may be per-example tensors).

    Coordinates that the box blocks (already at 1 with g_i > 0, or at 0 with g_i < 0) are left out
    of the ranking, so no step mass is spent where the projection would cancel it.
    """
    g = grad.flatten(1)
    pos = x_adv.flatten(1)
    movable = ((g > 0) & (pos < 1)) | ((g < 0) & (pos > 0))
    score = g.abs() * movable
    d = g.shape[1]
    fraction = torch.as_tensor(fraction, dtype=g.dtype, device=g.device).expand(len(g))
    k = (fraction * d).ceil().long().clamp(1, d)
    threshold = score.sort(dim=1, descending=True).values.gather(1, (k - 1).unsqueeze(1))
    chosen = (score >= threshold) & (score > 0)
    direction = g.sign() * chosen
    count = chosen.sum(1, keepdim=True).clamp_min(1)
    step_size = torch.as_tensor(step_size, dtype=g.dtype, device=g.device).expand(len(g)).unsqueeze(1)
    return (direction * step_size / count).view_as(grad)
