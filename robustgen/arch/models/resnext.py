"""ResNeXt-29 2×64d as the study trained it on CIFAR-10: timm's ResNet with grouped bottlenecks.

Xie et al.'s CIFAR ResNeXt-29 has three stages of three bottleneck blocks; with cardinality C and
bottleneck width d, stage s has grouped 3×3 convolutions C·d·2^s wide and outputs 4× the stage
planes (256, 512, 1024 for 2×64d). timm's ResNet `Bottleneck` computes exactly these widths from
`cardinality` and `base_width`, so the network is timm's ResNet with three stages; timm's forward
always runs `layer4`, which is left as an empty stage (the convention timm itself uses when it
prunes stages).

Stem at ≤ 64 px: one 1×1 stride-1 convolution to 64 channels (+ BN, ReLU), no max-pool. That is
what the CIFAR ResNeXt code behind the paper's count uses; with resnet.py's 3×3 stem the count
would be 9,130,314 instead of the study's 9,128,778. Above 64 px timm's 7×7/2 stem + max-pool.
"""
from __future__ import annotations

from timm.models.resnet import Bottleneck, ResNet
from torch import nn

from robustgen.arch.models.resnet import CIFAR_MAX_SIZE
from robustgen.arch.registry import register_arch
from robustgen.errors import ConfigError


@register_arch("resnext", family="cnn", paper_name="ResNeXt", paper_params_m=9.12, exact_params=9_128_778)
def robustgen_resnext(num_classes: int = 10, img_size: int = 32, depth: int = 29, cardinality: int = 2,
                      base_width: int = 64, **kwargs) -> ResNet:
    """ResNeXt-`depth` `cardinality`×`base_width`d (default 29, 2×64d) for CIFAR."""
    if depth < 11 or (depth - 2) % 9:
        raise ConfigError(f"arch=resnext: depth={depth} is not a CIFAR ResNeXt depth; it must be 9n + 2 "
                          f"with n ≥ 1 blocks per stage (e.g. 29)")
    if cardinality < 1 or base_width < 1:
        raise ConfigError(f"arch=resnext: cardinality and base_width must be positive, "
                          f"got {cardinality} and {base_width}")
    blocks = (depth - 2) // 9
    model = ResNet(block=Bottleneck, layers=(blocks,) * 3, channels=(64, 128, 256), cardinality=cardinality,
                   base_width=base_width, num_classes=num_classes, **kwargs)
    model.layer4 = nn.Sequential()
    if img_size <= CIFAR_MAX_SIZE:
        model.conv1 = nn.Conv2d(3, 64, kernel_size=1, stride=1, bias=False)
        model.maxpool = nn.Identity()
        # re-run timm's init so the new stem gets the same kaiming init as every other convolution
        model.init_weights(zero_init_last=kwargs.get("zero_init_last", True))
    return model
