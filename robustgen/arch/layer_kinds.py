"""Tell a network's parameters apart by the kind of layer they belong to.

Kinds: ``attention`` (everything inside an attention/token-mixing-by-attention block except its
norms: q/k/v and output projections, relative-position tables, convolutional projections as in
CvT or PVTv2's spatial reduction), ``conv`` (convolutions outside attention), ``mlp`` (linear layers
outside attention: Transformer MLPs, classifier heads, MLP-Mixer token/channel MLPs), ``norm``
(BatchNorm/LayerNorm/GroupNorm weights and biases, wherever they sit) and ``embed`` (position
embeddings, class tokens and other free parameters that belong to no layer).

The sparsity work uses this to put an ℓ1 penalty on one kind only and to report sparsity per kind.

How a module is recognised as attention: a module class may declare ``rg_layer_kind = "attention"``
(or any other kind) to tag its whole subtree; otherwise a class whose name contains "Attention",
"Attn" or "SelfAttn" (timm's convention) is attention.
"""
from __future__ import annotations

from collections import defaultdict

from torch import nn

KINDS = ("attention", "conv", "mlp", "norm", "embed")

_NORMS = (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm, nn.LocalResponseNorm)
_CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose2d)
_ATTENTION_MARKERS = ("Attention", "Attn", "SelfAttn")


def _declared_kind(module: nn.Module) -> str | None:
    kind = getattr(type(module), "rg_layer_kind", None)
    if kind is None and any(m in type(module).__name__ for m in _ATTENTION_MARKERS):
        kind = "attention"
    return kind


def _own_kind(module: nn.Module) -> str | None:
    if isinstance(module, _NORMS) or "Norm" in type(module).__name__:
        return "norm"
    if isinstance(module, _CONVS):
        return "conv"
    if isinstance(module, nn.Linear):
        return "mlp"
    return None


def parameter_kinds(model: nn.Module) -> dict[str, str]:
    """Map every parameter name of `model` to its kind (one of KINDS)."""
    kinds: dict[str, str] = {}

    def visit(module: nn.Module, prefix: str, inherited: str | None) -> None:
        declared = _declared_kind(module) or inherited
        own = _own_kind(module)
        for pname, _ in module.named_parameters(recurse=False):
            if own == "norm":
                kind = "norm"  # norms are never counted as attention weights
            elif declared is not None:
                kind = declared
            else:
                kind = own or "embed"
            kinds[f"{prefix}{pname}"] = kind
        for cname, child in module.named_children():
            visit(child, f"{prefix}{cname}.", declared)

    visit(model, "", None)
    return kinds


def weights_by_kind(model: nn.Module, include_biases: bool = False) -> dict[str, list[tuple[str, nn.Parameter]]]:
    """Group parameters by kind. Biases (1-D parameters) are left out unless asked for."""
    groups: dict[str, list[tuple[str, nn.Parameter]]] = defaultdict(list)
    kinds = parameter_kinds(model)
    for name, param in model.named_parameters():
        if not include_biases and param.ndim < 2 and kinds[name] != "embed":
            continue
        groups[kinds[name]].append((name, param))
    return dict(groups)
