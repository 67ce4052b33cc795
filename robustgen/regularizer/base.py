"""Interface of a training-loss regularizer: ``regularizer(model) -> scalar penalty``."""
from __future__ import annotations

import torch
from torch import Tensor, nn


class Regularizer:
    """A penalty on the model's weights, logged as `train/loss_reg` when `active`."""

    active: bool = True

    def __call__(self, model: nn.Module) -> Tensor:
        raise NotImplementedError

    def describe(self) -> dict:
        return {"type": type(self).__name__}


class NoRegularizer(Regularizer):
    active = False

    def __call__(self, model: nn.Module) -> Tensor:
        return torch.zeros((), device=next(model.parameters()).device)
