"""Swin Transformer on CIFAR-10: Swin-T configured for 32 px images (paper: 27.42M).

timm's SwinTransformer at Swin-T size (embed 96, depths (2, 2, 6, 2), heads (3, 6, 12, 24), MLP
ratio 4) with the usual CIFAR settings: patch 2 and window 4, so the four stages see 16×16, 8×8,
4×4 and 2×2 maps (timm shrinks a window to the map and drops the shift when the map is no larger
than the window, so stages 3 and 4 attend globally). Relative-position tables are sized by the
windows: 27,505,108 parameters, +0.31% from the study's 27.42M (Swin-T at ImageNet settings with 10
classes, patch 4 and window 7, has 27,527,044).

At ImageNette's 224 px the defaults become Swin-T's own patch 4 and window 7; `patch_size` and
`window_size` override either.
"""
from __future__ import annotations

from timm.models.swin_transformer import SwinTransformer

from robustgen.arch.models.vit import check_patch_size
from robustgen.arch.registry import register_arch

CIFAR_MAX_SIZE = 64  # up to this input size the CIFAR patch and window are the defaults


@register_arch("swin", family="transformer", paper_name="Swin Transformer", paper_params_m=27.42)
def robustgen_swin(num_classes: int = 10, img_size: int = 32, patch_size: int | None = None,
                   window_size: int | None = None, **kwargs) -> SwinTransformer:
    cifar = img_size <= CIFAR_MAX_SIZE
    patch_size = patch_size or (2 if cifar else 4)
    window_size = window_size or (4 if cifar else 7)
    check_patch_size(img_size, patch_size, "swin")
    return SwinTransformer(img_size=img_size, patch_size=patch_size, window_size=window_size,
                           num_classes=num_classes, embed_dim=96, depths=(2, 2, 6, 2),
                           num_heads=(3, 6, 12, 24), **kwargs)
