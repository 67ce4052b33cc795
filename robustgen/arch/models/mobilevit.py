"""MobileViT-S as the study trained it on CIFAR-10 (paper: 5.00M; here 5,003,120).

The study's count fits the widely used PyTorch re-implementation of MobileViT-S, whose
Transformers are narrower than the paper's (4 heads × 8 dims, no q/k/v bias) and whose MLPs
are 2× / 4× / 4× wide in the three MobileViT stages; timm's mobilevit_s follows Apple's code instead
(full-width attention, MLP 2×) and has 4,944,042 parameters at 10 classes (-1.1%), and no setting
of timm's MobileVitBlock narrows the attention. So the network is assembled here from timm parts:
timm's InvertedResidual (MobileNetV2 block, expansion 4, SiLU) and vision-transformer Block.

Layout (MobileViT-S): 3×3 stem (16), IR 32, IR 64 ×3, then for (96, 128, 160) channels an IR
block that downsamples followed by a MobileViT block with Transformer width (144, 192, 240) and
depth (2, 4, 3), then a 1×1 conv to 640 and a linear classifier without bias.

CIFAR strides: the ImageNet layout reduces 32×; at ≤ 64 px the stem and the first downsampling
IR block keep stride 1 (as the CIFAR ResNet drops its stem stride and max-pool), so the MobileViT
blocks see 16×16, 8×8 and 4×4 maps, i.e. 64, 16 and 4 patches of 2×2 (with 32× the last block
would see a single 1×1 map that 2×2 patches cannot tile). Strides hold no parameters.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from timm.layers import ConvNormAct
from timm.models._efficientnet_blocks import InvertedResidual
from timm.models.vision_transformer import Attention, Block
from torch import nn

from robustgen.arch.registry import register_arch

CIFAR_MAX_SIZE = 64  # up to this input size the CIFAR strides are used


class NarrowAttention(Attention):
    """timm's Attention with a fixed per-head width independent of the model width."""

    def __init__(self, dim: int, num_heads: int = 4, head_dim: int = 8, **kwargs):
        super().__init__(dim, num_heads=num_heads, attn_head_dim=head_dim, **kwargs)


class MobileViTBlock(nn.Module):
    """Local 3×3 conv, 1×1 to the Transformer width, Transformer across patches, 1×1 back, 3×3 fusion.

    The map is cut into patch_size × patch_size patches; the Transformer attends among the
    patches, separately for each pixel position inside a patch (MobileViT's unfold/fold).
    """

    def __init__(self, chs: int, dim: int, depth: int, mlp_ratio: float, patch_size: int = 2):
        super().__init__()
        self.patch_size = patch_size
        self.conv_local = ConvNormAct(chs, chs, 3, act_layer=nn.SiLU)
        self.conv_in = ConvNormAct(chs, dim, 1, act_layer=nn.SiLU)
        self.transformer = nn.Sequential(*[
            Block(dim, num_heads=4, mlp_ratio=mlp_ratio, qkv_bias=False, act_layer=nn.SiLU,
                  norm_layer=nn.LayerNorm, attn_layer=NarrowAttention) for _ in range(depth)])
        self.conv_out = ConvNormAct(dim, chs, 1, act_layer=nn.SiLU)
        self.conv_fuse = ConvNormAct(2 * chs, chs, 3, act_layer=nn.SiLU)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv_in(self.conv_local(x))
        B, D, H, W = y.shape
        p = self.patch_size
        h, w = math.ceil(H / p) * p, math.ceil(W / p) * p
        if (h, w) != (H, W):  # e.g. 7×7 maps at 224 px; resize as Apple's MobileViT code does
            y = F.interpolate(y, size=(h, w), mode="bilinear", align_corners=False)
        # (B, D, h, w) -> (B * p * p, patches, D): one sequence per pixel position inside a patch
        y = y.reshape(B, D, h // p, p, w // p, p).permute(0, 3, 5, 2, 4, 1).reshape(B * p * p, -1, D)
        y = self.transformer(y)
        y = y.reshape(B, p, p, h // p, w // p, D).permute(0, 5, 3, 1, 4, 2).reshape(B, D, h, w)
        if (h, w) != (H, W):
            y = F.interpolate(y, size=(H, W), mode="bilinear", align_corners=False)
        return self.conv_fuse(torch.cat((x, self.conv_out(y)), dim=1))


def inverted_residual(in_chs: int, out_chs: int, stride: int) -> InvertedResidual:
    return InvertedResidual(in_chs, out_chs, stride=stride, exp_ratio=4.0, act_layer=nn.SiLU)


class MobileViT(nn.Module):
    def __init__(self, num_classes: int = 10, img_size: int = 32, stem_width: int = 16,
                 channels: tuple[int, ...] = (32, 64, 96, 128, 160), dims: tuple[int, ...] = (144, 192, 240),
                 depths: tuple[int, ...] = (2, 4, 3), mlp_ratios: tuple[float, ...] = (2.0, 4.0, 4.0),
                 num_features: int = 640, drop_rate: float = 0.0):
        super().__init__()
        early_stride = 1 if img_size <= CIFAR_MAX_SIZE else 2  # stride of the stem and of the 64-channel stage
        self.stem = ConvNormAct(3, stem_width, 3, stride=early_stride, act_layer=nn.SiLU)
        c1, c2 = channels[:2]
        stages = [nn.Sequential(inverted_residual(stem_width, c1, 1)),
                  nn.Sequential(inverted_residual(c1, c2, early_stride), inverted_residual(c2, c2, 1),
                                inverted_residual(c2, c2, 1))]
        in_chs = c2
        for chs, dim, depth, mlp_ratio in zip(channels[2:], dims, depths, mlp_ratios):
            stages.append(nn.Sequential(inverted_residual(in_chs, chs, 2), MobileViTBlock(chs, dim, depth, mlp_ratio)))
            in_chs = chs
        self.stages = nn.Sequential(*stages)
        self.final_conv = ConvNormAct(in_chs, num_features, 1, act_layer=nn.SiLU)
        self.num_classes, self.num_features = num_classes, num_features
        self.head_drop = nn.Dropout(drop_rate)
        self.reset_classifier(num_classes)

    def reset_classifier(self, num_classes: int, global_pool=None) -> None:
        self.num_classes = num_classes
        self.head = nn.Linear(self.num_features, num_classes, bias=False) if num_classes > 0 else nn.Identity()

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.final_conv(self.stages(self.stem(x)))

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self.head_drop(x.mean((2, 3)))
        return x if pre_logits else self.head(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


@register_arch("mobilevit", family="hybrid", paper_name="MobileViT", paper_params_m=5.00)
def robustgen_mobilevit(num_classes: int = 10, img_size: int = 32, **kwargs) -> MobileViT:
    return MobileViT(num_classes=num_classes, img_size=img_size, **kwargs)
