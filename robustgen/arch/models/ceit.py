"""CeiT (Convolution-enhanced image Transformer, Yuan et al. 2021), CeiT-T adapted to CIFAR.

CeiT changes ViT in three places:
- Image-to-Tokens (I2T): a small conv stem (conv → BatchNorm → max-pool) extracts low-level
  features, and patches are cut from its feature map instead of from pixels;
- LeFF (locally-enhanced feed-forward): the MLP of every block expands the patch tokens, lays them
  out on their grid, mixes neighbours with a depth-wise 3×3 convolution and projects back (each
  step followed by BatchNorm and GELU); the class token bypasses it;
- LCA (layer-wise class-token attention): one more attention + MLP block in which the class token
  of the last layer attends to the class tokens of all layers; its output is classified.

CeiT-T widths: embedding 192, 3 heads, LeFF expansion 4, q/k/v bias, 32-channel I2T stem, patch 4
on the stem's map. CIFAR adaptation: the I2T conv is 3×3 stride 1 and its max-pool 3×3 stride 1
(ImageNet: 7×7/2 and 3×3/2), so patch 4 gives an 8×8 token grid as for the study's ViT.

Parameter budget (paper: 5.56M). CeiT-T's 12 blocks + LCA would be 6.03M at 10 classes, so in the
family's own terms: 12 attention blocks, LeFF in the first 11 only (the last block's LeFF could not
reach the classifier: LeFF never touches class tokens, and only class tokens are classified, so
the original model carries it as dead weight), and an LCA whose MLP has hidden size 2 × 192 (as in
the popular CeiT PyTorch port). Result: 5,576,042 parameters (+0.29%).
"""
from __future__ import annotations

import torch
from timm.layers import Attention, DropPath, Mlp, PatchEmbed, trunc_normal_
from torch import nn

from robustgen.arch.models.resnet import CIFAR_MAX_SIZE
from robustgen.arch.models.vit import check_patch_size
from robustgen.arch.registry import register_arch
from robustgen.arch.models._linear_head import LinearHeadMixin


class Image2Tokens(nn.Module):
    """I2T: conv → BatchNorm → max-pool, then a patch embedding of the resulting feature map."""

    def __init__(self, img_size: int, patch_size: int, in_chans: int, stem_chans: int, embed_dim: int,
                 kernel_size: int, stride: int):
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(in_chans, stem_chans, kernel_size, stride, kernel_size // 2, bias=False),
            nn.BatchNorm2d(stem_chans),
            nn.MaxPool2d(3, stride, padding=1))
        self.feature_size = img_size // (stride * stride)
        check_patch_size(self.feature_size, patch_size, "ceit (on the I2T feature map)")
        self.patch_embed = PatchEmbed(self.feature_size, patch_size, stem_chans, embed_dim)
        self.grid_size = self.patch_embed.grid_size
        self.num_patches = self.patch_embed.num_patches

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.patch_embed(self.stem(x))


class LeFF(nn.Module):
    """Locally-enhanced feed-forward on patch tokens (B, N, C) of an H×W grid."""

    def __init__(self, dim: int, hidden_dim: int, grid_size: tuple[int, int], kernel_size: int = 3):
        super().__init__()
        self.grid_size = grid_size
        self.fc1 = nn.Linear(dim, hidden_dim)
        self.bn1 = nn.BatchNorm1d(hidden_dim)
        self.dwconv = nn.Conv2d(hidden_dim, hidden_dim, kernel_size, padding=kernel_size // 2, groups=hidden_dim)
        self.bn2 = nn.BatchNorm2d(hidden_dim)
        self.fc2 = nn.Linear(hidden_dim, dim)
        self.bn3 = nn.BatchNorm1d(dim)
        self.act = nn.GELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act(self.bn1(self.fc1(x).transpose(1, 2)))  # (B, hidden, N): BatchNorm over channels
        x = self.act(self.bn2(self.dwconv(x.unflatten(2, self.grid_size))))
        x = self.fc2(x.flatten(2).transpose(1, 2))
        return self.act(self.bn3(x.transpose(1, 2))).transpose(1, 2)


class CeiTBlock(nn.Module):
    """Pre-norm attention over all tokens, then (if `leff`) a LeFF on the patch tokens only."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float, grid_size: tuple[int, int], leff: bool,
                 qkv_bias: bool, drop: float, attn_drop: float, drop_path: float):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, num_heads=num_heads, qkv_bias=qkv_bias, attn_drop=attn_drop, proj_drop=drop)
        self.norm2 = nn.LayerNorm(dim) if leff else None
        self.leff = LeFF(dim, int(dim * mlp_ratio), grid_size) if leff else None
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.drop_path(self.attn(self.norm1(x)))
        if self.leff is None:
            return x
        cls, tokens = x[:, :1], x[:, 1:]
        tokens = tokens + self.drop_path(self.leff(self.norm2(tokens)))
        return torch.cat([cls, tokens], dim=1)


class LayerClassTokenBlock(nn.Module):
    """LCA: the last layer's class token attends to the class tokens of every layer, then an MLP."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float, qkv_bias: bool, drop: float, attn_drop: float):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, num_heads=num_heads, qkv_bias=qkv_bias, attn_drop=attn_drop, proj_drop=drop)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), drop=drop)

    def forward(self, class_tokens: torch.Tensor) -> torch.Tensor:
        """(B, layers, C) -> (B, C). Self-attention over the few class tokens, keeping the last row,
        equals attention with the last class token as the only query."""
        x = class_tokens[:, -1] + self.attn(self.norm1(class_tokens))[:, -1]
        return x + self.mlp(self.norm2(x))


class CeiT(LinearHeadMixin, nn.Module):
    def __init__(self, num_classes: int = 10, img_size: int = 32, patch_size: int = 4, in_chans: int = 3,
                 stem_chans: int = 32, stem_kernel: int = 3, stem_stride: int = 1, embed_dim: int = 192,
                 depth: int = 12, num_heads: int = 3, mlp_ratio: float = 4.0, lca: bool = True,
                 lca_mlp_ratio: float = 2.0, qkv_bias: bool = True, drop_rate: float = 0.0,
                 attn_drop_rate: float = 0.0, drop_path_rate: float = 0.1):
        super().__init__()
        self.num_classes = num_classes
        self.num_features = self.embed_dim = embed_dim
        self.i2t = Image2Tokens(img_size, patch_size, in_chans, stem_chans, embed_dim, stem_kernel, stem_stride)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, self.i2t.num_patches + 1, embed_dim))
        self.pos_drop = nn.Dropout(drop_rate)
        self.blocks = nn.ModuleList([
            CeiTBlock(embed_dim, num_heads, mlp_ratio, self.i2t.grid_size, leff=i < depth - 1, qkv_bias=qkv_bias,
                      drop=drop_rate, attn_drop=attn_drop_rate, drop_path=drop_path_rate * i / max(depth - 1, 1))
            for i in range(depth)])
        self.lca = LayerClassTokenBlock(embed_dim, num_heads, lca_mlp_ratio, qkv_bias, drop_rate,
                                        attn_drop_rate) if lca else None
        self.norm = nn.LayerNorm(embed_dim)
        self.head = nn.Linear(embed_dim, num_classes) if num_classes > 0 else nn.Identity()
        self.apply(self._init_weights)
        trunc_normal_(self.pos_embed, std=0.02)
        trunc_normal_(self.cls_token, std=0.02)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Returns the classified representation (B, C): the LCA output (or last class token), normed."""
        x = self.i2t(x)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1)
        x = self.pos_drop(x + self.pos_embed)
        class_tokens = []
        for block in self.blocks:
            x = block(x)
            class_tokens.append(x[:, 0])
        x = self.lca(torch.stack(class_tokens, dim=1)) if self.lca is not None else class_tokens[-1]
        return self.norm(x)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        return x if pre_logits else self.head(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


@register_arch("ceit", family="hybrid", paper_name="CeiT", paper_params_m=5.56)
def robustgen_ceit(num_classes: int = 10, img_size: int = 32, patch_size: int = 4, embed_dim: int = 192,
                   depth: int = 12, num_heads: int = 3, lca: bool = True, **kwargs) -> CeiT:
    """CeiT-T-like; `patch_size` applies to the I2T feature map (the image at CIFAR sizes, ¼ of it above)."""
    stem = dict(stem_kernel=3, stem_stride=1) if img_size <= CIFAR_MAX_SIZE else dict(stem_kernel=7, stem_stride=2)
    return CeiT(num_classes=num_classes, img_size=img_size, patch_size=patch_size, embed_dim=embed_dim, depth=depth,
                num_heads=num_heads, lca=lca, **stem, **kwargs)
