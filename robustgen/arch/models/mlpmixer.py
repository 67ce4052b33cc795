"""MLP-Mixer as the study trained it on CIFAR-10 (PROTOCOL.md: 681,746 parameters at patch 4).

Hidden size 128, 8 mixer layers, token-mixing MLP 512, channel-mixing MLP 64, patch 4, plus a
class token: the CIFAR Mixer code the study used prepends a learnable token to the 64 patches, so
every token-mixing MLP sees 65 tokens, and classifies from that token after the final LayerNorm.

timm's ``MixerBlock`` and ``PatchEmbed`` are reused as they are; timm's ``MlpMixer`` itself cannot
be, because it has no class token (without it the same widths give 673,418 parameters).
"""
from __future__ import annotations

from functools import partial

import torch
from timm.layers import PatchEmbed, trunc_normal_
from timm.models import named_apply
from timm.models.mlp_mixer import MixerBlock, _init_weights
from torch import nn

from robustgen.arch.models.vit import check_patch_size
from robustgen.arch.registry import register_arch
from robustgen.errors import ConfigError


class ClassTokenMixer(nn.Module):
    """MLP-Mixer whose token-mixing MLPs also mix a learnable class token, used for classification."""

    def __init__(self, num_classes: int = 10, img_size: int = 32, patch_size: int = 4, in_chans: int = 3,
                 embed_dim: int = 128, depth: int = 8, token_mlp_dim: int = 512, channel_mlp_dim: int = 64,
                 class_token: bool = True, drop_rate: float = 0.0, proj_drop_rate: float = 0.0,
                 drop_path_rate: float = 0.0):
        super().__init__()
        self.num_classes = num_classes
        self.num_features = self.embed_dim = embed_dim
        self.stem = PatchEmbed(img_size=img_size, patch_size=patch_size, in_chans=in_chans, embed_dim=embed_dim)
        self.num_prefix_tokens = 1 if class_token else 0
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim)) if class_token else None
        seq_len = self.stem.num_patches + self.num_prefix_tokens
        # MixerBlock takes the two hidden sizes as multiples of embed_dim.
        ratios = (token_mlp_dim / embed_dim, channel_mlp_dim / embed_dim)
        norm_layer = partial(nn.LayerNorm, eps=1e-6)
        self.blocks = nn.Sequential(*[
            MixerBlock(embed_dim, seq_len, mlp_ratio=ratios, norm_layer=norm_layer, drop=proj_drop_rate,
                       drop_path=drop_path_rate * i / max(depth - 1, 1))
            for i in range(depth)])
        built = self.blocks[0].mlp_tokens.fc1.out_features, self.blocks[0].mlp_channels.fc1.out_features
        if built != (token_mlp_dim, channel_mlp_dim):
            raise ConfigError(f"arch=mlpmixer: MLP sizes {token_mlp_dim}, {channel_mlp_dim} are not expressible "
                              f"as ratios of embed_dim={embed_dim} (got {built})")
        self.norm = norm_layer(embed_dim)
        self.head_drop = nn.Dropout(drop_rate)
        self.head = nn.Linear(embed_dim, num_classes) if num_classes > 0 else nn.Identity()
        self.init_weights()

    def init_weights(self) -> None:
        named_apply(_init_weights, self)  # timm's own Mixer init (a private helper)
        if self.cls_token is not None:
            trunc_normal_(self.cls_token, std=0.02)
        # timm zero-initialises Mixer heads; a zero head passes no gradient to the body on the first
        # step (so the first PGD attack would be a no-op), so start it small instead.
        self.reset_classifier(self.num_classes)

    def get_classifier(self) -> nn.Module:
        return self.head

    def reset_classifier(self, num_classes: int) -> None:
        self.num_classes = num_classes
        self.head = nn.Linear(self.embed_dim, num_classes) if num_classes > 0 else nn.Identity()
        if num_classes > 0:
            trunc_normal_(self.head.weight, std=0.02)
            nn.init.zeros_(self.head.bias)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        if self.cls_token is not None:
            x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1)
        return self.norm(self.blocks(x))

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = x[:, 0] if self.cls_token is not None else x.mean(dim=1)
        x = self.head_drop(x)
        return x if pre_logits else self.head(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


@register_arch("mlpmixer", family="mlp", paper_name="MLP-Mixer", paper_params_m=0.68, exact_params=681_746)
def robustgen_mlpmixer(num_classes: int = 10, img_size: int = 32, patch_size: int = 4, embed_dim: int = 128,
                       depth: int = 8, token_mlp_dim: int = 512, channel_mlp_dim: int = 64,
                       class_token: bool = True, **kwargs) -> ClassTokenMixer:
    """At 224 px the same widths apply; the token MLPs grow with the number of patches (use a larger patch)."""
    check_patch_size(img_size, patch_size, "mlpmixer")
    return ClassTokenMixer(num_classes=num_classes, img_size=img_size, patch_size=patch_size, embed_dim=embed_dim,
                           depth=depth, token_mlp_dim=token_mlp_dim, channel_mlp_dim=channel_mlp_dim,
                           class_token=class_token, **kwargs)
