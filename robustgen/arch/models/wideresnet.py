"""Wide ResNet WRN-40-10 as the study trained it on CIFAR-10: timm's ResNetV2 with basic blocks.

Zagoruyko & Komodakis' CIFAR WRN-d-k is a pre-activation ResNet with three stages of
(d - 4) / 6 basic blocks of widths 16k, 32k, 64k after a 16-channel 3×3 stem, ending in
BN → ReLU → global pooling → linear. timm's ResNetV2 with `basic=True` is exactly that block
structure, so WRN is configured from it rather than written anew.

Parameter count: the paper's 55.85M is matched by WRN-40-10 with biases on every convolution
(55,856,330; without them it would be 55,841,754 = 55.84M, and the paper's counts look truncated,
so 55,856,330 is the closer one). No dropout inside blocks (timm's basic block has none; the
study's recipe does not mention it).

Above 64 px the stem is timm's 7×7/2 convolution + max-pool (16 channels), as resnet.py does.
"""
from __future__ import annotations

from functools import partial

from timm.layers import BatchNormAct2d, create_conv2d
from timm.models.resnetv2 import ResNetV2

from robustgen.arch.models.preactresnet import adapt_preact_resnet
from robustgen.arch.registry import register_arch
from robustgen.errors import ConfigError


@register_arch("wideresnet", family="cnn", paper_name="WideResNet", paper_params_m=55.85,
               exact_params=55_856_330)
def robustgen_wideresnet(num_classes: int = 10, img_size: int = 32, depth: int = 40, widen_factor: int = 10,
                         conv_bias: bool = True, drop_rate: float = 0.0, **kwargs) -> ResNetV2:
    """WRN-`depth`-`widen_factor` (default WRN-40-10), CIFAR stem at ≤ 64 px."""
    if depth < 10 or (depth - 4) % 6:
        raise ConfigError(f"arch=wideresnet: depth={depth} is not a WRN depth; it must be 6n + 4 "
                          f"with n ≥ 1 blocks per stage (e.g. 16, 22, 28, 40)")
    if widen_factor < 1:
        raise ConfigError(f"arch=wideresnet: widen_factor must be a positive integer, got {widen_factor}")
    blocks = (depth - 4) // 6
    model = ResNetV2(layers=(blocks,) * 3, channels=tuple(c * widen_factor for c in (16, 32, 64)),
                     stem_chs=16, basic=True, bottle_ratio=1.0, num_classes=num_classes,
                     conv_layer=partial(create_conv2d, bias=conv_bias), norm_layer=BatchNormAct2d,
                     drop_rate=drop_rate, **kwargs)
    return adapt_preact_resnet(model, img_size, stem_bias=conv_bias, drop_rate=drop_rate)
