"""Pre-activation ResNet-50 as the study trained it on CIFAR-10: timm's ResNetV2 with a CIFAR stem.

timm's ResNetV2 is He et al.'s pre-activation ResNet (BN → ReLU → conv inside every block, the
projection shortcut taken from the pre-activated input, no BN on it). Configured here as the
CIFAR PreActResNet-50 whose count matches the paper's 23.50M (23,509,066 parameters):

- CIFAR stem: one 3×3 stride-1 convolution and no max-pool at ≤ 64 px (see resnet.py);
- BatchNorm instead of timm's default GroupNorm + weight standardisation (that is BiT's choice);
- no final BN → ReLU before pooling (timm's `norm`): the CIFAR code behind the paper's count has
  none (with it the count would be 23,513,162, i.e. 23.51M);
- a linear classifier (timm's ResNetV2 uses a 1×1 convolution; same parameters, but the layer
  kind must read "mlp" like every other network's classifier).

Helpers here are shared with wideresnet.py, which is the same network with basic blocks.
"""
from __future__ import annotations

from timm.layers import BatchNormAct2d, ClassifierHead, create_conv2d
from timm.models.resnetv2 import ResNetV2
from torch import nn

from robustgen.arch.models.resnet import CIFAR_MAX_SIZE
from robustgen.arch.registry import register_arch
from robustgen.errors import ConfigError

# depth → (blocks per stage, bottleneck?) for the standard pre-activation ResNets
PREACT_DEPTHS = {18: ((2, 2, 2, 2), False), 34: ((3, 4, 6, 3), False), 50: ((3, 4, 6, 3), True),
                 101: ((3, 4, 23, 3), True), 152: ((3, 8, 36, 3), True)}


def adapt_preact_resnet(model: ResNetV2, img_size: int, *, stem_bias: bool = False,
                        final_norm: bool = True, drop_rate: float = 0.0) -> ResNetV2:
    """Give a timm ResNetV2 the CIFAR stem (at ≤ 64 px) and a linear head, then re-initialise.

    Re-running timm's initialisation after the swaps gives the new layers the same init scheme as
    the rest of the network (kaiming convs, N(0, 0.01) classifier) instead of PyTorch's defaults.
    """
    if img_size <= CIFAR_MAX_SIZE:
        model.stem.conv = nn.Conv2d(3, model.stem.conv.out_channels, kernel_size=3, stride=1, padding=1,
                                    bias=stem_bias)
        model.stem.pool = nn.Identity()
    if not final_norm:
        model.norm = nn.Identity()
    model.head = ClassifierHead(model.num_features, model.num_classes, pool_type="avg", drop_rate=drop_rate)
    # Residual branches start non-zero as in He et al. (timm's zero_init_last would zero the last
    # conv of every block, leaving the block's earlier weights without gradient at the first step).
    model.init_weights(zero_init_last=False)
    return model


@register_arch("preactresnet", family="cnn", paper_name="PreActResNet", paper_params_m=23.50)
def robustgen_preactresnet(num_classes: int = 10, img_size: int = 32, depth: int = 50,
                           drop_rate: float = 0.0, **kwargs) -> ResNetV2:
    """Pre-activation ResNet-`depth` (default 50: bottleneck blocks [3, 4, 6, 3]), CIFAR stem at ≤ 64 px."""
    if depth not in PREACT_DEPTHS:
        raise ConfigError(f"arch=preactresnet: depth={depth} is not a standard pre-activation ResNet; "
                          f"choose one of {sorted(PREACT_DEPTHS)}")
    layers, bottleneck = PREACT_DEPTHS[depth]
    channels = (256, 512, 1024, 2048) if bottleneck else (64, 128, 256, 512)
    model = ResNetV2(layers=layers, channels=channels, basic=not bottleneck, bottle_ratio=0.25 if bottleneck else 1.0,
                     num_classes=num_classes, conv_layer=create_conv2d, norm_layer=BatchNormAct2d,
                     drop_rate=drop_rate, **kwargs)
    return adapt_preact_resnet(model, img_size, final_norm=False, drop_rate=drop_rate)
