"""Optimiser and learning-rate schedule of the study: AdamW, linear warm-up, then cosine.

The schedule steps every batch (smoother than per-epoch for short runs); warm-up and decay are
given in epochs as in the study and converted with the trainer's steps per epoch.
`schedule: cyclic` is fast AT's one-cycle schedule instead (Wong et al., 2020): linear from 0 up to
`lr` at `cyclic_peak` of training, then linear back to 0. `fused: true` uses PyTorch's fused AdamW
kernel (one kernel for all parameters; same arithmetic).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch.optim.lr_scheduler import CosineAnnealingLR, LambdaLR, LinearLR, SequentialLR

from robustgen.errors import ConfigError


SCHEDULES = ("warmup_cosine", "cyclic")


@dataclass
class OptimConfig:
    lr: float = 1e-4
    weight_decay: float = 0.01
    betas: tuple[float, float] = (0.9, 0.999)
    warmup_epochs: float = 8
    min_lr: float = 5e-6
    schedule: str = "warmup_cosine"
    cyclic_peak: float = 0.4
    fused: bool = False

    def __post_init__(self) -> None:
        if self.schedule not in SCHEDULES:
            raise ConfigError(f"optim.schedule must be one of {SCHEDULES}, got {self.schedule!r}")
        if not 0 < self.cyclic_peak < 1:
            raise ConfigError(f"optim.cyclic_peak is the share of training before the peak: in (0, 1), "
                              f"got {self.cyclic_peak}")
        if not self.lr > 0:
            raise ConfigError(f"optim.lr must be > 0, got {self.lr}")
        if self.weight_decay < 0 or self.warmup_epochs < 0 or self.min_lr < 0:
            raise ConfigError("optim.weight_decay, optim.warmup_epochs and optim.min_lr must be ≥ 0")
        if self.min_lr > self.lr:
            raise ConfigError(f"optim.min_lr={self.min_lr} exceeds optim.lr={self.lr}")


def build_optimizer(params, cfg: OptimConfig, total_steps: int, steps_per_epoch: int):
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay, betas=tuple(cfg.betas),
                                  fused=cfg.fused or None)
    if cfg.schedule == "cyclic":
        peak = max(cfg.cyclic_peak * total_steps, 1.0)
        # np.interp over [0, peak, total] → [0, 1, 0], as a factor of lr (LambdaLR multiplies).
        return optimizer, LambdaLR(optimizer, lambda step: float(np.interp(step, [0, peak, max(total_steps, peak + 1)],
                                                                            [0.0, 1.0, 0.0])))
    warmup = min(int(round(cfg.warmup_epochs * steps_per_epoch)), max(total_steps - 1, 0))
    cosine = CosineAnnealingLR(optimizer, T_max=max(total_steps - warmup, 1), eta_min=cfg.min_lr)
    if warmup == 0:
        return optimizer, cosine
    ramp = LinearLR(optimizer, start_factor=1.0 / warmup, end_factor=1.0, total_iters=warmup)
    return optimizer, SequentialLR(optimizer, [ramp, cosine], milestones=[warmup])

