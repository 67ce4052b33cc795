"""PoolFormer on CIFAR-10: PoolFormer-S12 with a CIFAR stem (paper: 11.39M).

timm's MetaFormer as poolformer_s12 (depths (2, 2, 6, 2), widths (64, 128, 320, 512), 3×3
average-pool token mixer, GroupNorm, layer scale), 10 classes. For 32 px the 7×7/4 patch-embedding
stem becomes a 3×3/1 convolution, as the CIFAR ResNet stem does, so the stages see 32, 16, 8 and 4
pixel maps (the 4× stem would leave 8×8 after the stem and 1×1 in the last stage). That gives
11,399,626 parameters, which the study's truncated 11.39M fits (the 7×7 stem would give 11,407,306).
At ImageNette's 224 px the standard 7×7/4 stem is kept.

Family "mlp": the token mixer (average pooling) has no weights, so as in MLP-Mixer every learned
token- or channel-mixing weight is an MLP; the study lists both among the attention replacements.
"""
from __future__ import annotations

from timm.layers import Mlp
from timm.models.metaformer import MetaFormer, MetaFormerBlock, poolformer_s12
from torch import nn

from robustgen.arch.registry import register_arch

CIFAR_MAX_SIZE = 64  # up to this input size the CIFAR stem is used


class ChannelMlp(Mlp):
    """timm's Mlp tagged for layer_kinds: on NCHW maps it is built from 1×1 convs, yet it is an MLP."""

    rg_layer_kind = "mlp"


@register_arch("poolformer", family="mlp", paper_name="PoolFormer", paper_params_m=11.39)
def robustgen_poolformer(num_classes: int = 10, img_size: int = 32, **kwargs) -> MetaFormer:
    model = poolformer_s12(num_classes=num_classes, **kwargs)
    for block in model.modules():
        if isinstance(block, MetaFormerBlock):
            block.mlp.__class__ = ChannelMlp  # same module and weights, only the kind tag differs
    if img_size <= CIFAR_MAX_SIZE:
        stem = model.stem.conv
        model.stem.conv = nn.Conv2d(stem.in_channels, stem.out_channels, kernel_size=3, stride=1, padding=1)
    return model
