"""ℓ1 penalty on a network's layer weights: λ · Σ|w|, the study's pathway to sparser weights.

Which weights: those of the layer kinds in `scope` (robustgen.arch.layer_kinds), i.e. weight
matrices and kernels of attention, convolution and MLP layers (relative-position tables inside
attention count as attention weights). Norm parameters, biases (1-D parameters) and free
embeddings (position embeddings, class tokens: kind ``embed``) are never penalised, whatever the
scope: they are not weights of a layer, and shrinking them to zero does not make a layer sparse.

The penalty's gradient is λ·sign(w) on every weight in scope (0 at w = 0, torch's subgradient of
|w|) and exactly zero elsewhere. With AdamW the step each weight takes is normalised per
parameter, so what decides whether the penalty wins is λ against the size of the loss gradient on
that weight, not λ times the network's total ℓ1 norm; see conf/sweep/l1.yaml for the grid.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from robustgen.arch.layer_kinds import weights_by_kind
from robustgen.errors import ConfigError
from robustgen.regularizer.base import Regularizer

# scope → the layer kinds it penalises ("all" = every layer kind that has weights).
SCOPES: dict[str, tuple[str, ...]] = {
    "all": ("attention", "conv", "mlp"),
    "attention": ("attention",),
    "mlp": ("mlp",),
    "conv": ("conv",),
}


def scoped_weights(model: nn.Module, scope: str) -> list[tuple[str, nn.Parameter]]:
    """(name, parameter) of every weight the penalty with this scope acts on, in model order."""
    if scope not in SCOPES:
        raise ConfigError(f"regularizer.scope={scope!r} is not a scope; choose one of: {', '.join(SCOPES)}")
    groups = weights_by_kind(model)  # biases (1-D) are already left out here
    kinds = SCOPES[scope]
    order = {name: i for i, (name, _) in enumerate(model.named_parameters())}
    chosen = [item for kind in kinds for item in groups.get(kind, [])]
    return sorted(chosen, key=lambda item: order[item[0]])


class L1Penalty(Regularizer):
    """λ · Σ|w| over the weights of `scope` ("all", "attention", "mlp" or "conv").

    Args:
        weight: λ ≥ 0. λ = 0 still computes (and logs) the penalty, so that every job of a λ sweep
            has the same `train/loss_reg` column.
        scope: which layer kinds are penalised.
    """

    def __init__(self, weight: float, scope: str = "all"):
        if not weight >= 0:  # also refuses NaN
            raise ConfigError(f"regularizer.weight (λ) must be ≥ 0, got {weight}")
        if scope not in SCOPES:
            raise ConfigError(f"regularizer.scope={scope!r} is not a scope; choose one of: {', '.join(SCOPES)}")
        self.weight = float(weight)
        self.scope = scope
        self._cached: tuple[int, list[nn.Parameter]] | None = None

    def parameters_in_scope(self, model: nn.Module) -> list[nn.Parameter]:
        # Walking the module tree every step is cheap, but the answer never changes for one model.
        if self._cached is None or self._cached[0] != id(model):
            params = [p for _, p in scoped_weights(model, self.scope)]
            if not params:
                kinds = [k for k in SCOPES if k != "all" and any(True for _ in scoped_weights(model, k))]
                raise ConfigError(f"regularizer.scope={self.scope}: this architecture has no {self.scope} "
                                  f"weights to penalise; it has {', '.join(kinds) or 'none of the kinds'}: use "
                                  f"scope=all or one of those (in +sweep=l1_search, add "
                                  f"'regularizer.scope=choice(all,{','.join(kinds)})' to the command)")
            self._cached = (id(model), params)
        return self._cached[1]

    def __call__(self, model: nn.Module) -> Tensor:
        params = self.parameters_in_scope(model)
        l1 = torch.stack([p.abs().sum() for p in params]).sum()
        return self.weight * l1

    def describe(self) -> dict:
        return {"type": type(self).__name__, "weight": self.weight, "scope": self.scope}
