"""BoTNet-50 on CIFAR-10: ResNet-50 whose last stage uses multi-head self-attention (paper: 18.82M).

BoTNet (Srinivas et al., 2021) is a ResNet-50 whose three last-stage bottlenecks replace their 3×3
convolution by 4-head self-attention with 2-D relative position logits (average-pooled after the
first block to keep its stride 2). Here: timm's ResNet-50 with the CIFAR stem of
:mod:`robustgen.arch.models.resnet` and timm's ``BottleneckAttn`` (the BoTNet layer) in layer4,
with biased q/k/v projections as in the CIFAR BoTNet the study's count fits. At 32 px layer4 sees
8×8 maps in its first block and 4×4 after it, and the position tables are sized by those maps:
18,814,282 parameters (-0.03% from 18.82M; that CIFAR code stored absolute row/column
embeddings, 16,384 parameters here 7,424, which is the whole difference).
"""
from __future__ import annotations

from timm.layers.bottleneck_attn import BottleneckAttn
from timm.models.resnet import Bottleneck, ResNet

from robustgen.arch.models.resnet import CIFAR_MAX_SIZE, cifar_stem
from robustgen.arch.registry import register_arch
from robustgen.errors import ConfigError

LAYER4_IN_STRIDE = 4  # layers 2 and 3 each halve the stem's output before layer4 (which halves once more)


def add_bottleneck_attention(model: ResNet, stem_stride: int, img_size: int, num_heads: int = 4) -> ResNet:
    """Replace the 3×3 convolutions of layer4 by BoTNet attention sized for `img_size` inputs."""
    stride = stem_stride * LAYER4_IN_STRIDE
    if img_size % (stride * 2):
        raise ConfigError(f"arch=botnet: img_size={img_size} must be a multiple of {stride * 2} "
                          "(the attention's position tables need a fixed, evenly halving feature map)")
    size = img_size // stride
    for block in model.layer4:
        conv = block.conv2
        block.conv2 = BottleneckAttn(conv.in_channels, conv.out_channels, feat_size=(size, size),
                                     stride=conv.stride[0], num_heads=num_heads, qkv_bias=True)
        size //= conv.stride[0]
    return model


@register_arch("botnet", family="hybrid", paper_name="BoTNet", paper_params_m=18.82)
def robustgen_botnet(num_classes: int = 10, img_size: int = 32, num_heads: int = 4, **kwargs) -> ResNet:
    model = ResNet(block=Bottleneck, layers=(3, 4, 6, 3), num_classes=num_classes, **kwargs)
    if img_size <= CIFAR_MAX_SIZE:
        return add_bottleneck_attention(cifar_stem(model), 1, img_size, num_heads)
    return add_bottleneck_attention(model, 4, img_size, num_heads)  # standard 7×7/2 stem + max-pool
