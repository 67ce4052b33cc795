"""ViTAE (Vision Transformer Advanced by Exploring intrinsic inductive bias, Xu et al. 2021), ViTAE-S layout.

ViTAE has two kinds of cells, each with a convolutional branch running beside attention:
- reduction cells (RC) downsample: a *pyramid reduction module* (PRM: parallel strided convolutions
  with different dilations, concatenated, so every token sees several scales) feeds a token
  attention that maps the PRM channels to the token width, while a *parallel convolutional module*
  (PCM: three 3×3 convolutions) computes the same downsampling from the RC's input; the two are
  added and followed by an MLP. The last RC is PRM only.
- normal cells (NC) are Transformer blocks with a grouped-convolution PCM added beside attention.
Features are average-pooled over tokens and classified (no class token, no position embedding:
the convolutions carry position).

ViTAE-S: RC PRM widths 64/64/192 with dilations (1,2,3,4)/(1,2,3)/(1,2), token widths 96/192/384,
14 NCs of width 384 with 6 heads, MLP ratio 3 and PCM groups 96. Changes, and why:
- ViTAE's RCs use Performer attention, a linear-cost approximation needed for 56×56 token grids;
  here exact softmax attention is used (same parameters), which is cheap at CIFAR sizes.
- 32 px: the RCs downsample ×1, ×2, ×2 (token grids 32², 16², 8², as the study's ViT's 8×8)
  instead of ×4, ×2, ×2 (which would leave 2×2 tokens), and the first PRM uses 3×3 kernels like
  the others instead of 7×7 (with dilation 4, a 7×7 kernel spans 25 of the 32 pixels).
  Above 64 px the original ×4 / 7×7 first cell is used.
- Parameter budget (paper: 23.18M): ViTAE-S as above has 23,597,482 at 10 classes (+1.8%), so the
  NCs use the family's shallow PCM (two grouped convolutions, as in ViTAE-B/L/H) instead of three:
  23,387,818 parameters (+0.90%).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from timm.layers import Attention, DropPath, Mlp
from torch import nn

from robustgen.arch.models.resnet import CIFAR_MAX_SIZE
from robustgen.arch.registry import register_arch
from robustgen.arch.models._linear_head import LinearHeadMixin


def tokens_to_grid(x: torch.Tensor, grid_size: tuple[int, int]) -> torch.Tensor:
    return x.transpose(1, 2).unflatten(2, grid_size)


def grid_to_tokens(x: torch.Tensor) -> torch.Tensor:
    return x.flatten(2).transpose(1, 2)


def merge_heads(x: torch.Tensor) -> torch.Tensor:  # (B, heads, N, d) -> (B, N, heads·d)
    return x.transpose(1, 2).flatten(2)


class PyramidReduction(nn.Module):
    """PRM: one strided conv + GELU per dilation rate, outputs concatenated along channels."""

    def __init__(self, in_chans: int, embed_dim: int, kernel_size: int, stride: int, dilations: tuple[int, ...]):
        super().__init__()
        # ViTAE's padding rule: every dilation gives the same output size for any stride.
        self.convs = nn.ModuleList([
            nn.Conv2d(in_chans, embed_dim, kernel_size, stride, dilation=d,
                      padding=math.ceil(((kernel_size - 1) * d + 1 - stride) / 2))
            for d in dilations])
        self.out_chans = embed_dim * len(dilations)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([F.gelu(conv(x)) for conv in self.convs], dim=1)


class ReductionAttention(nn.Module):
    """Token attention of a reduction cell: in_dim → out_dim, with the values as the shortcut
    (T2T's token transformer; the widths differ, so x itself cannot be added)."""

    def __init__(self, in_dim: int, out_dim: int, num_heads: int = 1):
        super().__init__()
        self.num_heads = num_heads
        self.qkv = nn.Linear(in_dim, 3 * out_dim)
        self.proj = nn.Linear(out_dim, out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = self.qkv(x).unflatten(-1, (3, self.num_heads, -1)).permute(2, 0, 3, 1, 4)
        y = F.scaled_dot_product_attention(q, k, v)
        return merge_heads(v) + self.proj(merge_heads(y))


def reduction_pcm(in_chans: int, embed_dim: int, token_dim: int, stride: int) -> nn.Sequential:
    """RC's parallel convolutional module: three 3×3 convs whose strides multiply to `stride`."""
    strides = [2 if stride >= 2 ** (i + 1) else 1 for i in range(3)]
    return nn.Sequential(
        nn.Conv2d(in_chans, embed_dim, 3, strides[0], 1), nn.BatchNorm2d(embed_dim), nn.SiLU(inplace=True),
        nn.Conv2d(embed_dim, embed_dim, 3, strides[1], 1), nn.BatchNorm2d(embed_dim), nn.SiLU(inplace=True),
        nn.Conv2d(embed_dim, token_dim, 3, strides[2], 1))


class ReductionCell(nn.Module):
    def __init__(self, in_chans: int, embed_dim: int, token_dim: int, stride: int, kernel_size: int,
                 dilations: tuple[int, ...], num_heads: int = 1, with_attention: bool = True):
        super().__init__()
        self.prm = PyramidReduction(in_chans, embed_dim, kernel_size, stride, dilations)
        if not with_attention:  # PRM-only cell: its concatenated channels are the tokens
            if self.prm.out_chans != token_dim:
                raise ValueError(f"PRM-only reduction cell gives {self.prm.out_chans} channels, not {token_dim}")
            self.attn = None
            return
        self.norm1 = nn.LayerNorm(self.prm.out_chans)
        self.attn = ReductionAttention(self.prm.out_chans, token_dim, num_heads)
        self.pcm = reduction_pcm(in_chans, embed_dim, token_dim, stride)
        self.norm2 = nn.LayerNorm(token_dim)
        self.mlp = Mlp(token_dim, token_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C_in, H, W) grid -> (B, token_dim, H / stride, W / stride) grid."""
        pyramid = self.prm(x)
        if self.attn is None:
            return pyramid
        grid_size = pyramid.shape[2:]
        y = self.attn(self.norm1(grid_to_tokens(pyramid))) + grid_to_tokens(self.pcm(x))
        y = y + self.mlp(self.norm2(y))
        return tokens_to_grid(y, grid_size)


class NormalCell(nn.Module):
    """Transformer block with a grouped-conv PCM beside attention: x + attn(norm(x)) + pcm(x), then MLP."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float, pcm_groups: int, shallow_pcm: bool,
                 qkv_bias: bool, drop: float, attn_drop: float, drop_path: float):
        super().__init__()
        hidden = int(dim * mlp_ratio)
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, num_heads=num_heads, qkv_bias=qkv_bias, attn_drop=attn_drop, proj_drop=drop)
        pcm = [nn.Conv2d(dim, hidden, 3, 1, 1, groups=pcm_groups), nn.BatchNorm2d(hidden), nn.SiLU(inplace=True),
               nn.Conv2d(hidden, dim, 3, 1, 1, groups=pcm_groups)]
        if not shallow_pcm:
            pcm += [nn.BatchNorm2d(dim), nn.SiLU(inplace=True), nn.Conv2d(dim, dim, 3, 1, 1, groups=pcm_groups),
                    nn.SiLU(inplace=True)]
        self.pcm = nn.Sequential(*pcm)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, hidden, drop=drop)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    def forward(self, x: torch.Tensor, grid_size: tuple[int, int]) -> torch.Tensor:
        conv = grid_to_tokens(self.pcm(tokens_to_grid(x, grid_size)))
        x = x + self.drop_path(self.attn(self.norm1(x))) + self.drop_path(conv)
        return x + self.drop_path(self.mlp(self.norm2(x)))


class ViTAE(LinearHeadMixin, nn.Module):
    def __init__(self, num_classes: int = 10, in_chans: int = 3, embed_dims=(64, 64, 192), token_dims=(96, 192, 384),
                 strides=(4, 2, 2), kernel_sizes=(7, 3, 3), dilations=((1, 2, 3, 4), (1, 2, 3), (1, 2)),
                 depth: int = 14, num_heads: int = 6, mlp_ratio: float = 3.0, pcm_groups: int = 96,
                 shallow_pcm: bool = True, qkv_bias: bool = True, drop_rate: float = 0.0,
                 attn_drop_rate: float = 0.0, drop_path_rate: float = 0.1):
        super().__init__()
        self.num_classes = num_classes
        self.num_features = token_dims[-1]
        chans = (in_chans,) + tuple(token_dims[:-1])
        last = len(token_dims) - 1
        self.reductions = nn.Sequential(*[
            ReductionCell(chans[i], embed_dims[i], token_dims[i], strides[i], kernel_sizes[i], tuple(dilations[i]),
                          with_attention=i < last)
            for i in range(len(token_dims))])
        self.blocks = nn.ModuleList([
            NormalCell(self.num_features, num_heads, mlp_ratio, pcm_groups, shallow_pcm, qkv_bias, drop_rate,
                       attn_drop_rate, drop_path_rate * i / max(depth - 1, 1))
            for i in range(depth)])
        self.head_drop = nn.Dropout(drop_rate)
        self.head = nn.Linear(self.num_features, num_classes) if num_classes > 0 else nn.Identity()
        self.apply(self._init_weights)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Returns the normal cells' tokens (B, N, C)."""
        x = self.reductions(x)
        grid_size = x.shape[2:]
        x = grid_to_tokens(x)
        for block in self.blocks:
            x = block(x, grid_size)
        return x

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self.head_drop(x.mean(dim=1))
        return x if pre_logits else self.head(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


@register_arch("vitae", family="hybrid", paper_name="ViTAE", paper_params_m=23.18)
def robustgen_vitae(num_classes: int = 10, img_size: int = 32, depth: int = 14, mlp_ratio: float = 3.0,
                    shallow_pcm: bool = True, **kwargs) -> ViTAE:
    """ViTAE-S-like; the first reduction cell is 3×3 / stride 1 up to 64 px and 7×7 / stride 4 above."""
    first_kernel, first_stride = (3, 1) if img_size <= CIFAR_MAX_SIZE else (7, 4)
    return ViTAE(num_classes=num_classes, strides=(first_stride, 2, 2), kernel_sizes=(first_kernel, 3, 3),
                 depth=depth, mlp_ratio=mlp_ratio, shallow_pcm=shallow_pcm, **kwargs)
