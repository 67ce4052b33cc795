"""DenseNet-BC for CIFAR-10 at the study's size (1.12M): timm's DenseNet with a CIFAR stem.

The paper gives only a count (1.12M), so the variant is the family's own CIFAR design (Huang et
al.): DenseNet-BC with three dense blocks of (depth - 4) / 6 bottleneck layers (BN-ReLU-1×1 conv
to 4k, BN-ReLU-3×3 conv to k), transitions halving the channels (compression 0.5) and a 2k-channel
3×3 stem. The paper's CIFAR configurations keep growth k = 12 and vary depth; depth 124 at k = 12
gives 1,111,882 parameters (−0.72% from 1.12M; depth 118 gives 1,020,550 and 130 gives 1,206,982,
and the "densenet_cifar" 4-block k = 12 layout 1,000,618).

timm's DenseNet is that structure with an ImageNet stem; at ≤ 64 px the stem becomes the CIFAR
one: a single 3×3 stride-1 convolution with no BN and no pooling (the first dense layer begins with
its own BN → ReLU). Above 64 px timm's 7×7/2 stem + max-pool is kept.
"""
from __future__ import annotations

from timm.models.densenet import DenseNet
from torch import nn

from robustgen.arch.models.resnet import CIFAR_MAX_SIZE
from robustgen.arch.registry import register_arch
from robustgen.errors import ConfigError


@register_arch("densenet", family="cnn", paper_name="DenseNet", paper_params_m=1.12)
def robustgen_densenet(num_classes: int = 10, img_size: int = 32, depth: int = 124, growth_rate: int = 12,
                       **kwargs) -> DenseNet:
    """DenseNet-BC-`depth` with growth rate `growth_rate` (default 124, k = 12)."""
    if depth < 10 or (depth - 4) % 6:
        raise ConfigError(f"arch=densenet: depth={depth} is not a DenseNet-BC depth; it must be 6n + 4 "
                          f"with n ≥ 1 layers per block (e.g. 40, 100, 124, 190)")
    if growth_rate < 1:
        raise ConfigError(f"arch=densenet: growth_rate must be positive, got {growth_rate}")
    layers_per_block = (depth - 4) // 6
    model = DenseNet(growth_rate=growth_rate, block_config=(layers_per_block,) * 3, num_classes=num_classes,
                     **kwargs)
    if img_size <= CIFAR_MAX_SIZE:
        stem = nn.Conv2d(3, model.features.conv0.out_channels, kernel_size=3, stride=1, padding=1, bias=False)
        nn.init.kaiming_normal_(stem.weight)  # timm's DenseNet init for every convolution
        model.features.conv0 = stem
        model.features.norm0 = nn.Identity()
        model.features.pool0 = nn.Identity()
    return model
