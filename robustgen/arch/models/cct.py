"""CCT (Compact Convolutional Transformer, Hassani et al. 2021) as the study trained it: CCT-7/3×1.

CCT-7/3×1: a convolutional tokenizer of one 3×3 convolution (stride 1, no bias) + ReLU + 3×3/2
max-pool (32 px → 16×16 = 256 tokens), a learnable position embedding, 7 encoder layers of width
256 with 4 heads and MLP ratio 2, and *sequence pooling* instead of a class token: a linear layer
scores every token, and the softmax-weighted sum of tokens is classified. 3,760,139 parameters
at 32 px with 10 classes (the paper's 3.76M).

The encoder layer follows CCT's own: attention on a pre-normed input, then the residual stream
itself is layer-normed before the MLP (``x = norm1(x); x = x + mlp(x)``), unlike timm's ViT block.

At ImageNet sizes (> 64 px) the family's ImageNet tokenizer is used (CCT-14/7×2's: two 7×7/2
convolutions, each followed by ReLU and a 3×3/2 max-pool, 224 px → 14×14 tokens); the 3×1
tokenizer would leave 112×112 = 12,544 tokens, far too many for attention.
"""
from __future__ import annotations

import torch
from timm.layers import Attention, DropPath, Mlp, trunc_normal_
from torch import nn

from robustgen.arch.models.resnet import CIFAR_MAX_SIZE
from robustgen.arch.registry import register_arch
from robustgen.errors import ConfigError
from robustgen.arch.models._linear_head import LinearHeadMixin


class ConvTokenizer(nn.Module):
    """`num_layers` × (conv k×k → ReLU → 3×3/2 max-pool), then flatten to tokens."""

    def __init__(self, in_chans: int, embed_dim: int, kernel_size: int, num_layers: int, hidden_chans: int = 64):
        super().__init__()
        stride = max(1, kernel_size // 2 - 1)  # CCT's rule: 3×3 convs keep resolution, 7×7 halve it
        chans = [in_chans] + [hidden_chans] * (num_layers - 1) + [embed_dim]
        self.layers = nn.Sequential(*[
            nn.Sequential(nn.Conv2d(chans[i], chans[i + 1], kernel_size, stride, kernel_size // 2, bias=False),
                          nn.ReLU(inplace=True), nn.MaxPool2d(3, stride=2, padding=1))
            for i in range(num_layers)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x).flatten(2).transpose(1, 2)

    def num_tokens(self, img_size: int) -> int:
        with torch.no_grad():
            return self.forward(torch.zeros(1, self.layers[0][0].in_channels, img_size, img_size)).shape[1]


class CCTBlock(nn.Module):
    def __init__(self, dim: int, num_heads: int, mlp_ratio: float, drop: float, attn_drop: float, drop_path: float):
        super().__init__()
        self.pre_norm = nn.LayerNorm(dim)
        self.attn = Attention(dim, num_heads=num_heads, qkv_bias=False, attn_drop=attn_drop, proj_drop=drop)
        self.norm1 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), drop=drop)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.norm1(x + self.drop_path(self.attn(self.pre_norm(x))))
        return x + self.drop_path(self.mlp(x))


class SequencePooling(nn.Module):
    """Softmax-weighted average of the tokens, weights scored by one linear layer (CCT's SeqPool)."""

    def __init__(self, dim: int):
        super().__init__()
        self.score = nn.Linear(dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weights = self.score(x).softmax(dim=1)  # (B, N, 1)
        return (weights * x).sum(dim=1)


class CCT(LinearHeadMixin, nn.Module):
    def __init__(self, num_classes: int = 10, img_size: int = 32, in_chans: int = 3, embed_dim: int = 256,
                 depth: int = 7, num_heads: int = 4, mlp_ratio: float = 2.0, kernel_size: int = 3,
                 tokenizer_layers: int = 1, drop_rate: float = 0.0, attn_drop_rate: float = 0.1,
                 drop_path_rate: float = 0.1):
        super().__init__()
        self.num_classes = num_classes
        self.num_features = self.embed_dim = embed_dim
        self.tokenizer = ConvTokenizer(in_chans, embed_dim, kernel_size, tokenizer_layers)
        self.pos_embed = nn.Parameter(torch.zeros(1, self.tokenizer.num_tokens(img_size), embed_dim))
        self.pos_drop = nn.Dropout(drop_rate)
        self.blocks = nn.Sequential(*[
            CCTBlock(embed_dim, num_heads, mlp_ratio, drop_rate, attn_drop_rate,
                     drop_path_rate * i / max(depth - 1, 1))
            for i in range(depth)])
        self.norm = nn.LayerNorm(embed_dim)
        self.pool = SequencePooling(embed_dim)
        self.head = nn.Linear(embed_dim, num_classes) if num_classes > 0 else nn.Identity()
        self.apply(self._init_weights)
        trunc_normal_(self.pos_embed, std=0.2)  # CCT's learnable position embedding init

    @staticmethod
    def _init_weights(m: nn.Module) -> None:
        LinearHeadMixin._init_weights(m)  # linear layers as in ViT; CCT adds He init for its tokenizer
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pos_drop(self.tokenizer(x) + self.pos_embed)
        return self.norm(self.blocks(x))

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self.pool(x)
        return x if pre_logits else self.head(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


@register_arch("cct", family="hybrid", paper_name="CCT", paper_params_m=3.76)
def robustgen_cct(num_classes: int = 10, img_size: int = 32, embed_dim: int = 256, depth: int = 7,
                  num_heads: int = 4, mlp_ratio: float = 2.0, kernel_size: int | None = None,
                  tokenizer_layers: int | None = None, **kwargs) -> CCT:
    """CCT-7/3×1 at CIFAR sizes; `kernel_size`/`tokenizer_layers` default to 7/2 above 64 px."""
    imagenet = img_size > CIFAR_MAX_SIZE
    kernel_size = kernel_size or (7 if imagenet else 3)
    tokenizer_layers = tokenizer_layers or (2 if imagenet else 1)
    if kernel_size % 2 == 0 or tokenizer_layers < 1:
        raise ConfigError(f"arch=cct: kernel_size must be odd and tokenizer_layers ≥ 1, "
                          f"got {kernel_size} and {tokenizer_layers}")
    return CCT(num_classes=num_classes, img_size=img_size, embed_dim=embed_dim, depth=depth, num_heads=num_heads,
               mlp_ratio=mlp_ratio, kernel_size=kernel_size, tokenizer_layers=tokenizer_layers, **kwargs)
