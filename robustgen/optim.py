"""Optimiser and learning-rate schedule of the study: AdamW, linear warm-up, then cosine.

The schedule steps every batch (smoother than per-epoch for short runs); warm-up and decay are
given in epochs as in the study and converted with the trainer's steps per epoch.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.optim.lr_scheduler import CosineAnnealingLR, LinearLR, SequentialLR

from robustgen.errors import ConfigError


@dataclass
class OptimConfig:
    lr: float = 1e-4
    weight_decay: float = 0.01
    betas: tuple[float, float] = (0.9, 0.999)
    warmup_epochs: float = 8
    min_lr: float = 5e-6

    def __post_init__(self) -> None:
        if not self.lr > 0:
            raise ConfigError(f"optim.lr must be > 0, got {self.lr}")
        if self.weight_decay < 0 or self.warmup_epochs < 0 or self.min_lr < 0:
            raise ConfigError("optim.weight_decay, optim.warmup_epochs and optim.min_lr must be ≥ 0")
        if self.min_lr > self.lr:
            raise ConfigError(f"optim.min_lr={self.min_lr} exceeds optim.lr={self.lr}")


def build_optimizer(params, cfg: OptimConfig, total_steps: int, steps_per_epoch: int):
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay, betas=tuple(cfg.betas))
    warmup = min(int(round(cfg.warmup_epochs * steps_per_epoch)), max(total_steps - 1, 0))
    cosine = CosineAnnealingLR(optimizer, T_max=max(total_steps - warmup, 1), eta_min=cfg.min_lr)
    if warmup == 0:
        return optimizer, cosine
    ramp = LinearLR(optimizer, start_factor=1.0 / warmup, end_factor=1.0, total_iters=warmup)
    return optimizer, SequentialLR(optimizer, [ramp, cosine], milestones=[warmup])

