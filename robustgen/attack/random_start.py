"""Random starts drawn per example, so that results do not depend on batch size or order.

With `example_ids` (e.g. the index of each image in its split), every example gets its own
generator seeded from (attack seed, example id): the same example gets the same start whatever
batch it lands in, and successive draws (restarts) continue that example's own stream. Without
ids (training, where fresh randomness every step is wanted) the draws come from torch's global
generator, one batched call per draw.

Draws are made and returned in float32 (float64 for float64 images), never in the images' half
precision: a U[0, 1) draw rounded to bfloat16 can be 1.0, and log1p(−u) in the ℓ1 start is then −∞.
"""
from __future__ import annotations

import torch
from torch import Tensor

_SEED_STRIDE = 1_000_003  # a prime larger than any data set, so (seed, id) pairs never collide


class ExampleRNG:
    """Draws one tensor of `x`'s per-example shape per example, on `x`'s device, in float32 or wider."""

    def __init__(self, example_ids: Tensor | None, seed: int):
        self.generators = None if example_ids is None else [
            torch.Generator().manual_seed(seed * _SEED_STRIDE + int(i)) for i in example_ids.tolist()]

    def subset(self, index: Tensor) -> "ExampleRNG":
        """The generators of the examples at `index` (same objects: their streams continue)."""
        sub = ExampleRNG(None, 0)
        if self.generators is not None:
            sub.generators = [self.generators[i] for i in index.tolist()]
        return sub

    def _draw(self, sample, like: Tensor) -> Tensor:
        shape = like.shape[1:]
        to = {"device": like.device, "dtype": torch.promote_types(like.dtype, torch.float32)}
        if self.generators is None:
            return sample((len(like), *shape), None).to(**to)
        if len(self.generators) != len(like):
            raise ValueError(f"{len(self.generators)} example ids for a batch of {len(like)}")
        return torch.stack([sample(shape, g) for g in self.generators]).to(**to)

    def uniform(self, like: Tensor) -> Tensor:
        """U[0, 1) per coordinate (drawn in float32, so u < 1 holds)."""
        return self._draw(lambda s, g: torch.rand(s, generator=g, dtype=torch.float32), like)

    def normal(self, like: Tensor) -> Tensor:
        """N(0, 1) per coordinate."""
        return self._draw(lambda s, g: torch.randn(s, generator=g, dtype=torch.float32), like)


# How a PGD's random start is distributed: a setting, because the toolkits differ and it moves
# accuracy by points (PROTOCOL.md). Every start is a point of the ε-ball; what differs is how far.
START_KINDS = ("ball", "radius")


def uniform_linf(rng: ExampleRNG, x: Tensor, eps: float) -> Tensor:
    """Uniform in the ℓ∞ ball (the ε-box) of radius eps: every toolkit's ℓ∞ start."""
    return (2 * rng.uniform(x) - 1) * eps


def _unit_l2(rng: ExampleRNG, x: Tensor) -> Tensor:
    """A direction uniform on the unit ℓ2 sphere (normalised Gaussian), shape of x."""
    direction = rng.normal(x)
    return direction / _per_example(direction.flatten(1).norm(dim=1).clamp_min(1e-12), x)


def _unit_l1(rng: ExampleRNG, x: Tensor) -> Tensor:
    """A point uniform on the unit ℓ1 sphere: normalised Exp(1) variates (uniform on the simplex,
    equivalent to uniform spacings) with random signs."""
    spread = -torch.log1p(-rng.uniform(x))  # Exp(1), finite since u < 1
    signs = torch.where(rng.uniform(x) < 0.5, -1.0, 1.0).to(spread)
    return signs * spread / _per_example(spread.flatten(1).sum(1).clamp_min(1e-12), x)


def _per_example(v: Tensor, like: Tensor) -> Tensor:
    return v.view(-1, *([1] * (like.ndim - 1)))


def random_start(norm: str, kind: str, rng: ExampleRNG, x: Tensor, eps: float) -> Tensor:
    """A random point of the `norm` ball of radius `eps` (pixel units), one per example; shape of x.

    kind:
        "ball": uniform over the ball's volume: ℓ∞ uniform in the box; ℓ2 and ℓ1 a uniform
            direction at radius eps·u^(1/d), d = values per image (C·H·W); in d = 3,072 dimensions that
            is eps to within 0.2% for 99.8% of draws. What the study's toolkits draw: foolbox 3's
            LinfPGD / L2PGD (Voelker et al. 2017's n-ball sampler) and ART 1.11.1–1.17's random_sphere
            (ℓ2 by the regularised incomplete gamma function, ℓ1 by uniform spacings).
        "radius": a uniform direction at radius eps·u, u ~ U[0, 1] — torchattacks' PGDL2 (ℓ2);
            for ℓ1 the same construction. Starts closer to the image than "ball" does. Not defined
            for ℓ∞, whose start is the box in every toolkit.

    Raises:
        ValueError: for an unknown kind, or "radius" with ℓ∞.
    """
    if kind not in START_KINDS:
        raise ValueError(f"random start must be one of {START_KINDS}, got {kind!r}")
    if norm == "linf":
        if kind != "ball":
            raise ValueError("an ℓ∞ random start is uniform in the ε-box (kind 'ball'); "
                             "'radius' is defined for ℓ2 and ℓ1")
        return uniform_linf(rng, x, eps)
    direction = {"l2": _unit_l2, "l1": _unit_l1}[norm](rng, x)
    u = rng.uniform(x).flatten(1)[:, 0]
    radius = u.pow(1.0 / x[0].numel()) if kind == "ball" else u
    return direction * _per_example(radius * eps, x)
