"""ResNet-50 as the study trained it on CIFAR-10: timm's ResNet with a CIFAR stem.

The CIFAR stem is one 3×3 stride-1 convolution and no max-pool, so 32 px images keep their
resolution through the first stage (a 7×7/2 stem plus pooling would leave 8×8 maps after it).
At ImageNet-like sizes (> 64 px) the standard stem is kept: that is the family's own choice there.
"""
from __future__ import annotations

from timm.models.resnet import Bottleneck, ResNet
from torch import nn

from robustgen.arch.registry import register_arch

CIFAR_MAX_SIZE = 64  # up to this input size the CIFAR stem is used


def cifar_stem(model: ResNet, stem_width: int = 64) -> ResNet:
    """Replace a timm ResNet's 7×7/2 stem and max-pool by a 3×3/1 convolution."""
    model.conv1 = nn.Conv2d(3, stem_width, kernel_size=3, stride=1, padding=1, bias=False)
    model.maxpool = nn.Identity()
    return model


@register_arch("resnet", family="cnn", paper_name="ResNet", paper_params_m=23.52, exact_params=23_520_842)
def robustgen_resnet(num_classes: int = 10, img_size: int = 32, **kwargs) -> ResNet:
    """ResNet-50 (bottleneck blocks [3, 4, 6, 3]) with a CIFAR stem at ≤ 64 px."""
    model = ResNet(block=Bottleneck, layers=(3, 4, 6, 3), num_classes=num_classes, **kwargs)
    return cifar_stem(model) if img_size <= CIFAR_MAX_SIZE else model
