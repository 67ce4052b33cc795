"""How sparse a network's weights are, per layer kind and overall.

Which weights: the weight matrices and kernels of attention, convolution and MLP layers (the
kinds of robustgen.arch.layer_kinds), i.e. exactly what `regularizer=l1 regularizer.scope=all`
penalises. Norms, biases and free embeddings (position embeddings, class tokens) are left out.

Measures, for each kind present and for all of them together ("overall"):

- ``near_zero``: the fraction of weights with |w| ≤ τ·max|w|, the maximum taken **per tensor**.
  Per tensor rather than per kind because layers live on different scales (a 3×3 stem conv and a
  2048-wide projection are initialised with very different magnitudes); a kind-wide maximum would
  call every weight of the small-scale layers "zero". ≤ rather than < so that an all-zero tensor is
  fully sparse. AdamW never lands a weight exactly on 0 (it oscillates at about the learning rate
  around it), which is why a relative threshold is used rather than exact zeros.
- ``hoyer``: Hoyer's sparsity (√n − ‖w‖₁/‖w‖₂) / (√n − 1) ∈ [0, 1] per tensor: 1 for a tensor with
  a single non-zero entry, 0 for one whose entries all have the same magnitude; threshold-free and
  scale-free. An all-zero tensor counts as 1 (fully sparse).
  Both per-tensor measures are aggregated as parameter-weighted means, so for ``near_zero`` the
  aggregate is exactly the share of the kind's weights that are near zero.
- ``l1`` and ``l2``: ‖·‖₁ and ‖·‖₂ of all the kind's weights as one vector.
- ``params``: how many weights were measured.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from robustgen.arch.layer_kinds import weights_by_kind

MEASURED_KINDS = ("attention", "conv", "mlp")
MEASURES = ("near_zero", "hoyer", "l1", "l2", "params")
DEFAULT_THRESHOLD = 1e-2  # τ: |w| ≤ 1% of the tensor's largest |w| counts as zero


def hoyer_sparsity(w: Tensor) -> float:
    """(√n − ‖w‖₁/‖w‖₂) / (√n − 1); 1 for an all-zero tensor (and for a single weight)."""
    w = w.detach().flatten().double()
    n = w.numel()
    l2 = float(w.norm(2))
    if n < 2 or l2 == 0.0:
        return 1.0
    root_n = math.sqrt(n)
    return (root_n - float(w.norm(1)) / l2) / (root_n - 1)


def near_zero_fraction(w: Tensor, threshold: float = DEFAULT_THRESHOLD) -> float:
    """Share of entries with |w| ≤ threshold·max|w| (max over this tensor)."""
    magnitude = w.detach().abs()
    return float((magnitude <= threshold * magnitude.max()).double().mean())


def _aggregate(tensors: list[Tensor], threshold: float) -> dict[str, float]:
    sizes = [t.numel() for t in tensors]
    total = sum(sizes)
    with torch.no_grad():
        return {
            "near_zero": sum(near_zero_fraction(t, threshold) * n for t, n in zip(tensors, sizes)) / total,
            "hoyer": sum(hoyer_sparsity(t) * n for t, n in zip(tensors, sizes)) / total,
            "l1": float(sum(t.detach().double().abs().sum() for t in tensors)),
            "l2": math.sqrt(float(sum(t.detach().double().pow(2).sum() for t in tensors))),
            "params": total,
        }


def sparsity_measures(model: nn.Module, threshold: float = DEFAULT_THRESHOLD) -> dict[str, dict[str, float]]:
    """{kind: {measure: value}} for each measured kind the model has, plus "overall"."""
    if not 0 <= threshold < 1:
        raise ValueError(f"threshold must be in [0, 1), got {threshold}")
    groups = weights_by_kind(model)
    result: dict[str, dict[str, float]] = {}
    everything: list[Tensor] = []
    for kind in MEASURED_KINDS:
        tensors = [p for _, p in groups.get(kind, [])]
        if tensors:
            result[kind] = _aggregate(tensors, threshold)
            everything += tensors
    if everything:
        result["overall"] = _aggregate(everything, threshold)
    return result


def flatten_measures(measures: dict[str, dict[str, float]], prefix: str = "sparsity") -> dict[str, float]:
    """{"sparsity/<kind>/<measure>": value}: the metric keys logged each epoch (counts left out)."""
    return {f"{prefix}/{kind}/{name}": float(value)
            for kind, values in measures.items() for name, value in values.items() if name != "params"}
