"""LeViT on CIFAR-10 (paper: 6.67M).

timm's Levit (the plain one: one classification head, no distillation head) at LeViT-128 widths
(embed 128/256/384, key dim 16, heads 4/8/12, attention and MLP ratios 2) and depths (2, 3, 3),
between LeViT-128S (2, 3, 4; 7.00M here) and LeViT-128 (4, 4, 4; 8.44M) — LeViT's sizes differ
only in widths, heads and depths, and this is the nearest such setting to the study's count.
For 32 px it uses LeViT's stride-8 stem (three 3×3/2 convs), so the stages attend over 4×4, 2×2
and 1×1 token grids; the 16× stem would leave 2×2 tokens from the start. The attention-bias tables
are sized by those grids: 6,704,366 parameters, +0.52% from 6.67M. At ImageNette's 224 px the
standard stride-16 stem is used (14×14, 7×7, 4×4 grids).
"""
from __future__ import annotations

from timm.models.levit import Levit

from robustgen.arch.registry import register_arch

CIFAR_MAX_SIZE = 64  # up to this input size the stride-8 stem is used


@register_arch("levit", family="hybrid", paper_name="LeViT", paper_params_m=6.67)
def robustgen_levit(num_classes: int = 10, img_size: int = 32, depth: tuple[int, ...] = (2, 3, 3),
                    **kwargs) -> Levit:
    stem_type = "s8" if img_size <= CIFAR_MAX_SIZE else "s16"
    return Levit(img_size=img_size, num_classes=num_classes, embed_dim=(128, 256, 384), key_dim=16,
                 num_heads=(4, 8, 12), depth=tuple(depth), stem_type=stem_type, **kwargs)
