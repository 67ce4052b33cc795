"""CPVT: the study's CIFAR ViT with conditional position encodings instead of a position table.

CPVT (Chu et al., "Conditional Positional Encodings for Vision Transformers") removes ViT's absolute
position embedding and inserts a position encoding generator (PEG) after the first encoder block:
a 3×3 depth-wise convolution over the patch tokens laid out on their grid, added back to them. The
encoding is produced from the tokens' neighbourhood, so it works at any input size.

Widths are those of the study's ViT (robustgen/arch/models/vit.py: patch 4, dim 512, depth 6,
8 heads, MLP 512, no q/k/v bias, dropout 0.1). With CPVT's own head (LayerNorm → Linear) and global
average pooling (CPVT-GAP, the paper's recommended variant) this gives 9,495,050 parameters, the
paper's 9.49M; with a class token instead (``global_pool="token"``) 9,495,562.
"""
from __future__ import annotations

import torch
from timm.models.vision_transformer import VisionTransformer
from torch import nn

from robustgen.arch.models.vit import check_patch_size
from robustgen.arch.registry import register_arch
from robustgen.errors import ConfigError


class PositionEncodingGenerator(nn.Module):
    """PEG: depth-wise 3×3 convolution over the patch-token grid, added to the tokens.

    Prefix tokens (a class token) have no grid position and pass through unchanged.
    """

    def __init__(self, dim: int, grid_size: tuple[int, int], num_prefix_tokens: int = 0):
        super().__init__()
        self.grid_size = grid_size
        self.num_prefix_tokens = num_prefix_tokens
        self.proj = nn.Conv2d(dim, dim, kernel_size=3, padding=1, groups=dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        prefix, tokens = x[:, :self.num_prefix_tokens], x[:, self.num_prefix_tokens:]
        b, n, c = tokens.shape
        grid = tokens.transpose(1, 2).reshape(b, c, *self.grid_size)
        tokens = tokens + self.proj(grid).flatten(2).transpose(1, 2)
        return torch.cat([prefix, tokens], dim=1)


class CPVT(VisionTransformer):
    """timm VisionTransformer without a position table and with a PEG after block `peg_after`."""

    def __init__(self, *args, peg_after: int = 0, **kwargs):
        super().__init__(*args, pos_embed="none", **kwargs)
        self.peg_after = peg_after
        self.peg = PositionEncodingGenerator(self.embed_dim, self.patch_embed.grid_size, self.num_prefix_tokens)

    def forward_features(self, x: torch.Tensor, **_) -> torch.Tensor:
        x = self._pos_embed(self.patch_embed(x))  # with pos_embed="none" this only prepends the class token
        x = self.norm_pre(self.patch_drop(x))
        for i, block in enumerate(self.blocks):
            x = block(x)
            if i == self.peg_after:
                x = self.peg(x)
        return self.norm(x)


@register_arch("cpvt", family="transformer", paper_name="CPVT", paper_params_m=9.49)
def robustgen_cpvt(num_classes: int = 10, img_size: int = 32, patch_size: int = 4, embed_dim: int = 512,
                   depth: int = 6, num_heads: int = 8, mlp_ratio: float = 1.0, drop_rate: float = 0.1,
                   global_pool: str = "avg", **kwargs) -> CPVT:
    check_patch_size(img_size, patch_size, "cpvt")
    if global_pool not in ("avg", "token"):
        raise ConfigError(f"arch=cpvt: global_pool must be 'avg' (CPVT-GAP) or 'token', got {global_pool!r}")
    return CPVT(img_size=img_size, patch_size=patch_size, num_classes=num_classes, embed_dim=embed_dim,
                depth=depth, num_heads=num_heads, mlp_ratio=mlp_ratio, qkv_bias=False,
                drop_rate=drop_rate, pos_drop_rate=drop_rate, proj_drop_rate=drop_rate,
                global_pool=global_pool, class_token=global_pool == "token", **kwargs)
