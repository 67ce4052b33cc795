"""The norm terms of the study's Theorem 1 (a Rademacher bound on a Transformer's adversarial error).

What the slides give (../shared/reference/seed-slides.txt, "Attention contributes to sparseness";
the paper's proof is not available). For F = {f_W : W = (A₁, W₁), ‖A₁‖_p ≤ s₁, ‖W₁‖_p ≤ s₂,
‖A₁‖₁ ≤ b₁, ‖W_{1,1}‖₁ ≤ b₂}, with probability ≥ 1 − δ, for every f in F:

    adversarial error ≤ (1/n) Σᵢ Eᵢ
                        + (1/γ)·(4/n^{3/2} + 60·log(n)·log(2·d_max)/n · s₁·s₂·C)
                        + 2·ε·b₁·b₂ / (γ·√n) + 3·√(log(2/δ)/(2n)),
    C = ((b₁/s₁)^{2/3} + (b₂/s₂)^{2/3})^{3/2} · ‖X‖_F.

The *complexity term* is the two middle summands (`theorem1_complexity`). Sparser weights at a
fixed spectral norm have smaller ℓ1 norms b, hence a smaller C and a smaller ε-term: the claim.

What this module computes, per **attention unit** (one per Transformer block):

* attention unit: a module all of whose non-norm parameters are of kind ``attention``
  (robustgen.arch.layer_kinds) and whose parent is not — timm's ``blocks.i.attn``, BoTNet's
  self-attention that replaces a 3×3 conv, PVTv2's attention with its spatial-reduction conv.
* **A₁** := the weights of every ``nn.Linear`` / ``nn.ConvNd`` inside the unit (query, key, value
  and output projections, whether fused as ``qkv`` or separate; CvT's and PVTv2's convolutional
  projections), each viewed as a matrix (out, in·kernel), taken together as one block-diagonal
  operator. Relative-position tables are not part of A₁ (they are not linear maps of the tokens).
  If a unit has no Linear/Conv module (hand-written einsum projections), its ≥2-D parameters are used.
* **W₁** := the first MLP layer fed by the attention: the first ``nn.Linear`` of kind ``mlp``
  registered after the unit in its parent module (timm's ``mlp.fc1``); if the parent has none, the
  first ``nn.ConvNd`` of kind ``conv`` after the unit there (BoTNet: the bottleneck's 1×1 ``conv3``);
  if neither, the same search one level up. A unit with no such layer gets W₁ = None and only s₁, b₁.
* s = spectral norm (largest singular value) of the matrix view; for block-diagonal A₁,
  s₁ = maxⱼ ‖A₁ʲ‖₂. ASSUMPTION: the slides write ‖·‖_p without saying which p; we take the
  spectral norm, which is what s stands for in the Bartlett et al. (2017) / Edelman et al. (2022)
  bounds whose form C has. For conv kernels the (out, in·k·k) view is a proxy of the operator norm.
* b = entrywise ℓ1 norm Σ|w| (the slides' ‖A₁‖₁ and ‖W_{1,1}‖₁, read as the (1,1) norm — an
  assumption); for block-diagonal A₁, b₁ = Σⱼ ‖A₁ʲ‖₁.
* ``rademacher_norm`` := s₁·s₂·((b₁/s₁)^{2/3} + (b₂/s₂)^{2/3})^{3/2} = s₁·s₂·C/‖X‖_F, every factor of
  the Rademacher summand that depends on the weights; ``adversarial_norm`` := b₁·b₂, the same for
  the ε summand. (A zero matrix has b = s = 0; its ratio b/s is taken as 0.)
* The full complexity term needs n, γ, ε, ‖X‖_F and d_max as well. γ (the margin) is a free
  parameter of the theorem that the slides do not fix, so it is only evaluated when a caller
  supplies γ; d_max is taken as the largest dimension of the block's A₁ and W₁ matrices.
* Model summary: mean and max over blocks. The theorem is stated for one block; the mean is our
  choice (it does not grow with depth, so models of different depth can be compared).

**CNN analogue** (computed for every architecture, so all can be put side by side): the same s and b
for every Linear/Conv layer, and the same two-matrix term for each pair of consecutive layers in
registration order (A₁ := layer i, W₁ := layer i+1). Registration order is the data-flow order for
plain stacks but not always (a residual downsample conv is registered after the block's last conv),
so this is a like-for-like norm statistic, not an instance of the theorem.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from torch import Tensor, nn

from robustgen.arch.layer_kinds import parameter_kinds

_LAYERS = (nn.Linear, nn.modules.conv._ConvNd)


def spectral_norm(w: Tensor) -> float:
    """Largest singular value of `w` viewed as (out, everything else)."""
    matrix = w.detach().reshape(w.shape[0], -1).float()
    return float(torch.linalg.matrix_norm(matrix, ord=2))


def l1_norm(w: Tensor) -> float:
    return float(w.detach().double().abs().sum())


def _ratio(b: float, s: float) -> float:
    return b / s if s > 0 else 0.0


def rademacher_norm(s1: float, s2: float, b1: float, b2: float) -> float:
    """s₁·s₂·((b₁/s₁)^{2/3} + (b₂/s₂)^{2/3})^{3/2}: Theorem 1's s₁·s₂·C without ‖X‖_F."""
    return s1 * s2 * (_ratio(b1, s1) ** (2 / 3) + _ratio(b2, s2) ** (2 / 3)) ** 1.5


def theorem1_complexity(s1: float, s2: float, b1: float, b2: float, *, n: int, margin: float, eps: float,
                        x_fro: float, d_max: int) -> float:
    """(1/γ)(4/n^{3/2} + 60·log n·log(2·d_max)/n·s₁s₂C) + 2εb₁b₂/(γ√n), C as in the slides."""
    if n < 2 or margin <= 0 or d_max < 1:
        raise ValueError(f"need n ≥ 2, margin > 0, d_max ≥ 1; got n={n}, margin={margin}, d_max={d_max}")
    rademacher = 4 / n ** 1.5 + 60 * math.log(n) * math.log(2 * d_max) / n * rademacher_norm(s1, s2, b1, b2) * x_fro
    return rademacher / margin + 2 * eps * b1 * b2 / (margin * math.sqrt(n))


@dataclass
class BlockNorms:
    """Theorem 1's norm terms for one attention unit."""

    unit: str  # module path of the attention unit
    a1: list[str]  # parameter names making up A₁
    w1: str | None  # parameter name of W₁
    s1: float
    b1: float
    s2: float | None = None
    b2: float | None = None
    d_max: int = 0

    @property
    def complete(self) -> bool:
        return self.w1 is not None

    def record(self) -> dict:
        out = asdict(self)
        if self.complete:
            out["rademacher_norm"] = rademacher_norm(self.s1, self.s2, self.b1, self.b2)
            out["adversarial_norm"] = self.b1 * self.b2
        return out


# --- finding A₁ and W₁ ----------------------------------------------------------------------------

def _parent(name: str) -> str:
    return name.rsplit(".", 1)[0] if "." in name else ""


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix and name else prefix or name


def attention_units(model: nn.Module) -> list[str]:
    """Module paths of the attention units, in registration order."""
    kinds = parameter_kinds(model)
    modules = dict(model.named_modules())

    def attention_only(path: str) -> bool:
        found = {kinds[_join(path, p)] for p, _ in modules[path].named_parameters()} - {"norm"}
        return found == {"attention"}

    units = []
    for path, module in modules.items():
        if path and attention_only(path) and not attention_only(_parent(path)):
            if any(p.ndim >= 2 for p in module.parameters()):
                units.append(path)
    return units


def _a1_parameters(model: nn.Module, unit: str) -> list[tuple[str, Tensor]]:
    module = model.get_submodule(unit)
    layers = [(_join(_join(unit, path), "weight"), m.weight) for path, m in module.named_modules()
              if isinstance(m, _LAYERS)]
    return layers or [(_join(unit, n), p) for n, p in module.named_parameters() if p.ndim >= 2]


def _w1_parameter(model: nn.Module, unit: str, kinds: dict[str, str]) -> tuple[str, Tensor] | None:
    ancestor = unit
    while ancestor:
        ancestor = _parent(ancestor)
        after, seen_unit = [], False
        for path, module in model.get_submodule(ancestor).named_modules():
            full = _join(ancestor, path)
            if full == unit:
                seen_unit = True
            elif seen_unit and not full.startswith(unit + ".") and isinstance(module, _LAYERS):
                after.append((_join(full, "weight"), module.weight))
        for wanted in ("mlp", "conv"):
            for name, weight in after:
                if kinds.get(name) == wanted:
                    return name, weight
    return None


def block_norms(model: nn.Module) -> list[BlockNorms]:
    """Theorem 1's s₁, b₁, s₂, b₂ for every attention unit of `model` (empty for attention-free nets)."""
    kinds = parameter_kinds(model)
    blocks = []
    for unit in attention_units(model):
        a1 = _a1_parameters(model, unit)
        dims = [d for _, w in a1 for d in (w.shape[0], w[0].numel())]
        block = BlockNorms(unit=unit, a1=[n for n, _ in a1], w1=None,
                           s1=max(spectral_norm(w) for _, w in a1), b1=sum(l1_norm(w) for _, w in a1))
        w1 = _w1_parameter(model, unit, kinds)
        if w1 is not None:
            name, weight = w1
            block.w1, block.s2, block.b2 = name, spectral_norm(weight), l1_norm(weight)
            dims += [weight.shape[0], weight[0].numel()]
        block.d_max = int(max(dims))
        blocks.append(block)
    return blocks


def layer_norms(model: nn.Module) -> list[dict]:
    """s and b of every Linear/Conv layer (all kinds but norm), in registration order."""
    kinds = parameter_kinds(model)
    rows = []
    for path, module in model.named_modules():
        if isinstance(module, _LAYERS):
            name = _join(path, "weight")
            rows.append({"layer": name, "kind": kinds[name], "s": spectral_norm(module.weight),
                         "b": l1_norm(module.weight)})
    return rows


# --- the record that goes into results.json ----------------------------------------------------------

def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def bound_record(model: nn.Module, *, with_layers: bool = True) -> dict:
    """Per-block terms, their mean/max over blocks, and (with_layers) the per-layer CNN analogue."""
    blocks = [b.record() for b in block_norms(model)]
    complete = [b for b in blocks if "rademacher_norm" in b]
    record: dict = {
        "blocks": blocks,
        "n_blocks": len(blocks),
        "rademacher_norm_mean": _mean([b["rademacher_norm"] for b in complete]),
        "rademacher_norm_max": max((b["rademacher_norm"] for b in complete), default=None),
        "adversarial_norm_mean": _mean([b["adversarial_norm"] for b in complete]),
    }
    if with_layers:
        layers = layer_norms(model)
        pairs = [rademacher_norm(a["s"], w["s"], a["b"], w["b"]) for a, w in zip(layers, layers[1:])]
        record["layers"] = layers
        record["layer_pair_norm_mean"] = _mean(pairs)
        record["layer_ratio_mean"] = _mean([_ratio(r["b"], r["s"]) for r in layers])  # mean b/s per layer
    return record


def block_input_fro(model: nn.Module, units: list[str], batches) -> dict[str, float]:
    """‖X‖_F of each unit's input over `batches` of images (forward pre-hooks, no gradients)."""
    squares = dict.fromkeys(units, 0.0)
    handles = []
    for unit in units:
        def hook(module, args, unit=unit):
            if args and torch.is_tensor(args[0]):
                squares[unit] += float(args[0].detach().double().pow(2).sum())
        handles.append(model.get_submodule(unit).register_forward_pre_hook(hook))
    try:
        with torch.no_grad():
            for x in batches:
                model(x)
    finally:
        for handle in handles:
            handle.remove()
    return {unit: math.sqrt(total) for unit, total in squares.items()}
