"""Wrapper that lets every model take images in [0, 1]: attacks then work in pixel units and can
clamp to the valid box, whatever normalisation the data set uses."""
from __future__ import annotations

import torch
from torch import nn


class Normalized(nn.Module):
    def __init__(self, net: nn.Module, mean: tuple[float, ...], std: tuple[float, ...]):
        super().__init__()
        self.net = net
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net((x - self.mean) / self.std)
