"""VGG-16 with batch norm and a CIFAR head, as the study trained it (PROTOCOL.md: 14,728,266).

The CIFAR VGG keeps VGG-16's thirteen 3×3 convolutions (with biases) and five max-pools, adds BN
after every convolution, and replaces the ImageNet classifier (two 4096-wide fully connected
layers) by global average pooling and one linear layer: at 32 px the last feature map is 1×1, so
the head is Linear(512, classes).

Written here rather than taken from timm because timm's VGG always builds its ImageNet head (a
7×7 convolutional MLP of ~120M parameters) in the constructor; the layer layouts are timm's own
(`timm.models.vgg.cfgs`), and the head is timm's ClassifierHead. With global pooling the same
network runs at 224 px (7×7 final maps).
"""
from __future__ import annotations

import torch
from timm.layers import ClassifierHead
from timm.models.vgg import cfgs as TIMM_VGG_LAYOUTS
from torch import nn

from robustgen.arch.registry import register_arch
from robustgen.errors import ConfigError

VGG_DEPTHS = (11, 13, 16, 19)


class CifarVGG(nn.Module):
    """VGG feature stack (conv-BN-ReLU, 'M' = 2×2 max-pool) + global pooling + linear classifier."""

    def __init__(self, layout: list[int | str], num_classes: int = 10, in_chans: int = 3,
                 global_pool: str = "avg", drop_rate: float = 0.0):
        super().__init__()
        self.num_classes = num_classes
        layers: list[nn.Module] = []
        channels = in_chans
        for item in layout:
            if item == "M":
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            else:
                layers += [nn.Conv2d(channels, item, kernel_size=3, padding=1), nn.BatchNorm2d(item),
                           nn.ReLU(inplace=True)]
                channels = item
        self.features = nn.Sequential(*layers)
        self.num_features = self.head_hidden_size = channels
        self.head = ClassifierHead(channels, num_classes, pool_type=global_pool, drop_rate=drop_rate)
        self._init_weights()

    def _init_weights(self) -> None:
        # timm's VGG init: kaiming (fan-out) convolutions, N(0, 0.01) classifier, zero biases.
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(module.bias)
            elif isinstance(module, nn.Linear):
                nn.init.normal_(module.weight, 0.0, 0.01)
                nn.init.zeros_(module.bias)

    def get_classifier(self) -> nn.Module:
        return self.head.fc

    def reset_classifier(self, num_classes: int, global_pool: str | None = None) -> None:
        self.num_classes = num_classes
        self.head.reset(num_classes, global_pool)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        return self.head(x, pre_logits=pre_logits)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


@register_arch("vgg", family="cnn", paper_name="VGG", paper_params_m=14.72, exact_params=14_728_266)
def robustgen_vgg(num_classes: int = 10, img_size: int = 32, depth: int = 16, drop_rate: float = 0.0,
                  width: float = 1.0, **kwargs) -> CifarVGG:
    """VGG-`depth` with batch norm (default VGG-16-BN) and a global-pool + linear head; `width`
    multiplies every layer's channels (0.5: a quarter of the convolutions' cost; the quickstart's)."""
    if depth not in VGG_DEPTHS:
        raise ConfigError(f"arch=vgg: depth={depth} is not a VGG; choose one of {VGG_DEPTHS}")
    if img_size < 32:
        raise ConfigError(f"arch=vgg: five 2×2 max-pools need at least 32 px, got img_size={img_size}")
    if not 0 < width <= 4:
        raise ConfigError(f"arch=vgg: width multiplies the channels; it must lie in (0, 4], got {width}")
    layout = [item if item == "M" else max(1, round(item * width)) for item in TIMM_VGG_LAYOUTS[f"vgg{depth}"]]
    return CifarVGG(layout, num_classes=num_classes, drop_rate=drop_rate, **kwargs)
