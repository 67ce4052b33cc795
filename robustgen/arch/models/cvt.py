"""CvT (Convolutional vision Transformer, Wu et al. 2021), CvT-13 layout adapted to CIFAR.

Three stages, each opening with a *convolutional token embedding* (a strided convolution followed
by LayerNorm, which also downsamples) and then Transformer blocks whose query/key/value come from
*convolutional projections*: a depth-wise 3×3 convolution + BatchNorm over the token grid (stride 1
for queries, stride 2 for keys and values, which shrinks attention's cost by 4) followed by a linear
projection. There is no position embedding: the convolutions carry position. A class token joins
in the last stage (it bypasses the convolutions) and is classified after a final LayerNorm.

CvT-13: dims 64/192/384, depths 1/2/10, heads 1/3/6, MLP ratio 4. The paper gives only 19.54M for
its CvT, and CvT-13 with a 10-class head is the family's model of that size. CIFAR adaptation:
the first token embedding is a 3×3 stride-1 convolution instead of 7×7 stride 4 (as CIFAR ResNets
drop the ImageNet stem), so the stages see 32×32, 16×16 and 8×8 token grids (the last like ViT's
patch-4 grid). That gives 19,604,426 parameters (+0.33% on 19.54M); above 64 px the original
7×7/4 embedding is used (19,612,106).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from timm.layers import DropPath, Mlp, trunc_normal_
from torch import nn

from robustgen.arch.models.resnet import CIFAR_MAX_SIZE
from robustgen.arch.registry import register_arch
from robustgen.arch.models._linear_head import LinearHeadMixin


class ConvEmbed(nn.Module):
    """Convolutional token embedding: strided conv on the grid, then LayerNorm over channels."""

    def __init__(self, in_chans: int, dim: int, kernel_size: int, stride: int):
        super().__init__()
        self.proj = nn.Conv2d(in_chans, dim, kernel_size, stride, padding=kernel_size // 2)
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.proj(x)
        return self.norm(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


def depthwise_projection(dim: int, stride: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(dim, dim, 3, stride, padding=1, groups=dim, bias=False), nn.BatchNorm2d(dim))


class ConvProjectionAttention(nn.Module):
    """Multi-head self-attention whose q/k/v are depth-wise-conv projections of the token grid.

    With ``class_token_only`` only the prefix (class) tokens ask queries: CvT classifies from the
    class token alone, so in its last block the patch tokens' queries (and their convolution)
    could not affect the output; leaving them out keeps the function and every parameter live.
    """

    def __init__(self, dim: int, num_heads: int, kv_stride: int = 2, attn_drop: float = 0.0,
                 proj_drop: float = 0.0, class_token_only: bool = False):
        super().__init__()
        self.num_heads = num_heads
        self.class_token_only = class_token_only
        self.conv_q = None if class_token_only else depthwise_projection(dim, 1)
        self.conv_k = depthwise_projection(dim, kv_stride)
        self.conv_v = depthwise_projection(dim, kv_stride)
        self.proj_q, self.proj_k, self.proj_v = (nn.Linear(dim, dim) for _ in range(3))
        self.attn_drop = attn_drop
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)

    def _heads(self, x: torch.Tensor) -> torch.Tensor:  # (B, N, C) -> (B, heads, N, C / heads)
        return x.unflatten(-1, (self.num_heads, -1)).transpose(1, 2)

    def forward(self, x: torch.Tensor, grid_size: tuple[int, int], num_prefix: int) -> torch.Tensor:
        prefix, tokens = x[:, :num_prefix], x[:, num_prefix:]
        grid = tokens.transpose(1, 2).unflatten(2, grid_size)

        def project(conv: nn.Module | None, linear: nn.Linear) -> torch.Tensor:
            parts = [prefix] if conv is None else [prefix, conv(grid).flatten(2).transpose(1, 2)]
            return self._heads(linear(torch.cat(parts, dim=1)))

        q = project(self.conv_q, self.proj_q)
        k, v = project(self.conv_k, self.proj_k), project(self.conv_v, self.proj_v)
        x = F.scaled_dot_product_attention(q, k, v, dropout_p=self.attn_drop if self.training else 0.0)
        return self.proj_drop(self.proj(x.transpose(1, 2).flatten(2)))


class CvTBlock(nn.Module):
    """Pre-norm Transformer block; with ``class_token_only`` it returns the updated prefix tokens only."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float, drop: float, attn_drop: float, drop_path: float,
                 class_token_only: bool = False):
        super().__init__()
        self.class_token_only = class_token_only
        self.norm1 = nn.LayerNorm(dim)
        self.attn = ConvProjectionAttention(dim, num_heads, attn_drop=attn_drop, proj_drop=drop,
                                            class_token_only=class_token_only)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), drop=drop)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    def forward(self, x: torch.Tensor, grid_size: tuple[int, int], num_prefix: int) -> torch.Tensor:
        shortcut = x[:, :num_prefix] if self.class_token_only else x
        x = shortcut + self.drop_path(self.attn(self.norm1(x), grid_size, num_prefix))
        return x + self.drop_path(self.mlp(self.norm2(x)))


class CvTStage(nn.Module):
    def __init__(self, in_chans: int, dim: int, depth: int, num_heads: int, embed_kernel: int, embed_stride: int,
                 mlp_ratio: float, class_token: bool, drop: float, attn_drop: float, drop_path: float):
        super().__init__()
        self.embed = ConvEmbed(in_chans, dim, embed_kernel, embed_stride)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim)) if class_token else None
        self.blocks = nn.ModuleList([
            CvTBlock(dim, num_heads, mlp_ratio, drop, attn_drop, drop_path * i / max(depth - 1, 1),
                     class_token_only=class_token and i == depth - 1)
            for i in range(depth)])

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """(B, C_in, H, W) -> (grid (B, C, H', W'), None), or (None, class token (B, C)) in the class-token stage."""
        x = self.embed(x)
        grid_size = x.shape[2:]
        x = x.flatten(2).transpose(1, 2)
        num_prefix = 0
        if self.cls_token is not None:
            x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1)
            num_prefix = 1
        for block in self.blocks:
            x = block(x, grid_size, num_prefix)
        if num_prefix:  # the last block returned the class token only
            return None, x[:, 0]
        return x.transpose(1, 2).unflatten(2, grid_size), None


class CvT(LinearHeadMixin, nn.Module):
    def __init__(self, num_classes: int = 10, in_chans: int = 3, dims=(64, 192, 384), depths=(1, 2, 10),
                 num_heads=(1, 3, 6), embed_kernels=(7, 3, 3), embed_strides=(4, 2, 2), mlp_ratio: float = 4.0,
                 drop_rate: float = 0.0, attn_drop_rate: float = 0.0, drop_path_rates=(0.0, 0.0, 0.1)):
        super().__init__()
        self.num_classes = num_classes
        self.num_features = dims[-1]
        chans = (in_chans,) + tuple(dims[:-1])
        self.stages = nn.ModuleList([
            CvTStage(chans[i], dims[i], depths[i], num_heads[i], embed_kernels[i], embed_strides[i], mlp_ratio,
                     class_token=i == len(dims) - 1, drop=drop_rate, attn_drop=attn_drop_rate,
                     drop_path=drop_path_rates[i])
            for i in range(len(dims))])
        self.norm = nn.LayerNorm(self.num_features)
        self.head = nn.Linear(self.num_features, num_classes) if num_classes > 0 else nn.Identity()
        self.apply(self._init_weights)
        trunc_normal_(self.stages[-1].cls_token, std=0.02)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Returns the final class token, layer-normed."""
        for stage in self.stages:
            x, cls = stage(x)
        return self.norm(cls)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        return x if pre_logits else self.head(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


@register_arch("cvt", family="hybrid", paper_name="CvT", paper_params_m=19.54)
def robustgen_cvt(num_classes: int = 10, img_size: int = 32, dims=(64, 192, 384), depths=(1, 2, 10),
                  num_heads=(1, 3, 6), **kwargs) -> CvT:
    """CvT-13; its first token embedding is 3×3/1 up to 64 px and the original 7×7/4 above."""
    first = (3, 1) if img_size <= CIFAR_MAX_SIZE else (7, 4)
    return CvT(num_classes=num_classes, dims=tuple(dims), depths=tuple(depths), num_heads=tuple(num_heads),
               embed_kernels=(first[0], 3, 3), embed_strides=(first[1], 2, 2), **kwargs)
