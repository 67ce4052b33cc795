"""ViT as the study trained it on CIFAR-10 (PROTOCOL.md: 9,786,378 parameters at patch 4).

timm's VisionTransformer with: embedding 512, depth 6, 8 heads, MLP hidden 512 (ratio 1), no
q/k/v bias, dropout 0.1, class-token pooling, and the head of the CIFAR ViT code the study used:
LayerNorm → Linear(512, 512) → GELU → Linear(512, classes). timm's final norm plays the head's
LayerNorm, so only the two linear layers are added.
"""
from __future__ import annotations

from timm.models.vision_transformer import VisionTransformer
from torch import nn

from robustgen.arch.registry import register_arch
from robustgen.errors import ConfigError


def check_patch_size(img_size: int, patch_size: int, arch: str) -> None:
    if patch_size < 1 or img_size % patch_size:
        divisors = [p for p in range(1, img_size + 1) if img_size % p == 0]
        raise ConfigError(f"arch={arch}: patch_size={patch_size} does not tile a {img_size}px image; "
                          f"valid patch sizes divide {img_size}: {divisors}")


class CifarViT(VisionTransformer):
    """VisionTransformer whose classifier is an MLP head (Linear → GELU → Linear)."""

    def __init__(self, *args, head_hidden: int = 512, **kwargs):
        self.head_hidden = head_hidden
        super().__init__(*args, **kwargs)
        self.reset_classifier(self.num_classes)

    def reset_classifier(self, num_classes: int, global_pool=None) -> None:
        super().reset_classifier(num_classes, global_pool)
        if num_classes > 0:
            self.head = nn.Sequential(nn.Linear(self.embed_dim, self.head_hidden), nn.GELU(),
                                      nn.Linear(self.head_hidden, num_classes))


@register_arch("vit", family="transformer", paper_name="ViT", paper_params_m=9.78, exact_params=9_786_378,
               patch_sizes=(8, 4, 2))
def robustgen_vit(num_classes: int = 10, img_size: int = 32, patch_size: int = 4,
                  embed_dim: int = 512, depth: int = 6, num_heads: int = 8, mlp_ratio: float = 1.0,
                  drop_rate: float = 0.1, **kwargs) -> CifarViT:
    check_patch_size(img_size, patch_size, "vit")
    return CifarViT(img_size=img_size, patch_size=patch_size, num_classes=num_classes, embed_dim=embed_dim,
                    depth=depth, num_heads=num_heads, mlp_ratio=mlp_ratio, qkv_bias=False,
                    drop_rate=drop_rate, pos_drop_rate=drop_rate, proj_drop_rate=drop_rate,
                    head_hidden=embed_dim, global_pool="token", **kwargs)
