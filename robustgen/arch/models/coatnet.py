"""CoAtNet as the study trained it on CIFAR-10 (PROTOCOL.md: 16,997,816 parameters for CCTT).

The study's count fits the widely used CIFAR re-implementation of coatnet_0, not timm's MaxxVit
family, so the network is written here (timm's MaxxVit differs in block internals: biased SE, a
two-conv stem with its own width, a pre-logits layer; no configuration of it gives the exact count).
Layout: a two-block convolutional stem s0 (64 channels) and four stages s1–s4 with
blocks (2, 3, 5, 2) and channels (96, 192, 384, 768); each stage is either

* ``C``: MBConv blocks (pre-norm BN, 1×1 expand ×4, 3×3 depthwise, SE to in/4, 1×1 project), or
* ``T``: Transformer blocks with relative-position attention over the whole feature map
  (8 heads × 32 dims whatever the width, MLP hidden 4 × the block's input width).

Every stage and the stem halve the resolution (total stride 32, as in the CoAtNet paper), so a
32 px image gives maps of 16, 8, 4, 2 and 1 pixels. The relative-position tables are sized by those
maps, ((2h-1)(2w-1) entries per head), which is why the count depends on the input size and why the
strides must stay: the study's count needs s3 at 2×2 and s4 at 1×1. At 1×1 the attention of s4 has a
single key, so its softmax is constant and its q/k weights and bias table get zero gradient; that
is a property of the study's model at 32 px, not a bug here (at 224 px s4 is 7×7).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from timm.layers import ConvNormAct, Mlp, RelPosBias, SEModule
from torch import nn

from robustgen.arch.registry import register_arch
from robustgen.errors import ConfigError

STEM_WIDTH = 64
DEPTHS = (2, 3, 5, 2)  # blocks in s1–s4 (the stem s0 has 2 conv blocks)
WIDTHS = (96, 192, 384, 768)
TOTAL_STRIDE = 32


def check_stages(stages: str) -> str:
    stages = str(stages)
    if len(stages) != len(DEPTHS) or set(stages) - {"C", "T"}:
        raise ConfigError(f"arch=coatnet: stages={stages!r} must be {len(DEPTHS)} letters from C (MBConv) "
                          f"and T (Transformer), one per stage s1–s4, e.g. CCTT (the study's CoAtNet) or CTTT")
    return stages


class MBConvBlock(nn.Module):
    """Pre-norm inverted bottleneck with squeeze-excitation; downsamples with a max-pool shortcut.

    The stride sits on the depthwise conv (as in the CoAtNet paper); where it sits does not change
    the parameter count.
    """

    def __init__(self, in_chs: int, out_chs: int, stride: int = 1, expand: int = 4):
        super().__init__()
        hidden = in_chs * expand
        self.shortcut = (nn.Sequential(nn.MaxPool2d(3, stride, 1), nn.Conv2d(in_chs, out_chs, 1, bias=False))
                         if stride > 1 else nn.Identity())
        self.pre_norm = nn.BatchNorm2d(in_chs)
        self.conv_expand = ConvNormAct(in_chs, hidden, 1, act_layer=nn.GELU)
        self.conv_dw = ConvNormAct(hidden, hidden, 3, stride=stride, groups=hidden, act_layer=nn.GELU)
        self.se = SEModule(hidden, rd_channels=in_chs // 4, bias=False, act_layer=nn.GELU)
        self.conv_project = ConvNormAct(hidden, out_chs, 1, apply_act=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv_project(self.se(self.conv_dw(self.conv_expand(self.pre_norm(x)))))
        return self.shortcut(x) + y


class RelPosAttention(nn.Module):
    """Multi-head self-attention over all positions of a feature map with a learned relative-position bias."""

    def __init__(self, in_chs: int, out_chs: int, feat_size: tuple[int, int], num_heads: int = 8,
                 head_dim: int = 32):
        super().__init__()
        self.num_heads, self.head_dim = num_heads, head_dim
        self.qkv = nn.Linear(in_chs, 3 * num_heads * head_dim, bias=False)
        self.rel_pos = RelPosBias(feat_size, num_heads)
        self.proj = nn.Linear(num_heads * head_dim, out_chs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (B, N, C) with N = h * w of feat_size
        B, N, _ = x.shape
        q, k, v = self.qkv(x).reshape(B, N, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        x = F.scaled_dot_product_attention(q, k, v, attn_mask=self.rel_pos.get_bias())
        return self.proj(x.transpose(1, 2).reshape(B, N, -1))


class RelPosTransformerBlock(nn.Module):
    """Pre-norm Transformer block on an NCHW map; downsamples both branches with a max-pool."""

    def __init__(self, in_chs: int, out_chs: int, feat_size: tuple[int, int], stride: int = 1):
        super().__init__()
        self.pool = nn.MaxPool2d(3, stride, 1) if stride > 1 else nn.Identity()
        self.shortcut = nn.Conv2d(in_chs, out_chs, 1, bias=False) if in_chs != out_chs else nn.Identity()
        self.norm1 = nn.LayerNorm(in_chs)
        self.attn = RelPosAttention(in_chs, out_chs, feat_size)
        self.norm2 = nn.LayerNorm(out_chs)
        self.mlp = Mlp(out_chs, hidden_features=4 * in_chs, act_layer=nn.GELU)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(x)
        B, _, H, W = x.shape
        tokens = x.flatten(2).transpose(1, 2)
        tokens = self.shortcut(x).flatten(2).transpose(1, 2) + self.attn(self.norm1(tokens))
        tokens = tokens + self.mlp(self.norm2(tokens))
        return tokens.transpose(1, 2).reshape(B, -1, H, W)


class CoAtNet(nn.Module):
    def __init__(self, stages: str = "CCTT", num_classes: int = 10, img_size: int = 32,
                 stem_width: int = STEM_WIDTH, depths: tuple[int, ...] = DEPTHS,
                 widths: tuple[int, ...] = WIDTHS, drop_rate: float = 0.0):
        super().__init__()
        if img_size % TOTAL_STRIDE:
            raise ConfigError(f"arch=coatnet: img_size={img_size} must be a multiple of {TOTAL_STRIDE} "
                              "(the stem and each of the four stages halve the resolution)")
        self.stages_spec = check_stages(stages)
        self.stem = nn.Sequential(ConvNormAct(3, stem_width, 3, stride=2, act_layer=nn.GELU),
                                  ConvNormAct(stem_width, stem_width, 3, act_layer=nn.GELU))
        size, in_chs, stages_ = img_size // 2, stem_width, []
        for kind, depth, width in zip(self.stages_spec, depths, widths):
            size //= 2
            blocks = []
            for i in range(depth):
                stride = 2 if i == 0 else 1
                if kind == "C":
                    blocks.append(MBConvBlock(in_chs, width, stride))
                else:
                    blocks.append(RelPosTransformerBlock(in_chs, width, (size, size), stride))
                in_chs = width
            stages_.append(nn.Sequential(*blocks))
        self.stages = nn.Sequential(*stages_)
        self.num_classes, self.num_features = num_classes, in_chs
        self.head_drop = nn.Dropout(drop_rate)
        self.reset_classifier(num_classes)

    def reset_classifier(self, num_classes: int, global_pool=None) -> None:
        self.num_classes = num_classes
        self.head = nn.Linear(self.num_features, num_classes, bias=False) if num_classes > 0 else nn.Identity()

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.stages(self.stem(x))

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self.head_drop(x.mean((2, 3)))
        return x if pre_logits else self.head(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


@register_arch("coatnet", family="hybrid", paper_name="CoAtNet", paper_params_m=16.99, exact_params=16_997_816)
def robustgen_coatnet(num_classes: int = 10, img_size: int = 32, stages: str = "CCTT", **kwargs) -> CoAtNet:
    """coatnet_0 layout; `stages` picks MBConv (C) or Transformer (T) for s1–s4 (study: CCTT)."""
    return CoAtNet(stages=stages, num_classes=num_classes, img_size=img_size, **kwargs)
