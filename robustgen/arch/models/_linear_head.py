"""timm's classifier API for the hand-written Transformers whose head is one Linear layer.

Shared by cct, ceit, cvt and vitae so the head, its re-creation and the ViT-style init live in
one place. The class needs `num_features` and `head` attributes.
"""
from __future__ import annotations

from timm.layers import trunc_normal_
from torch import nn


class LinearHeadMixin:
    @staticmethod
    def _init_weights(m: nn.Module) -> None:
        """ViT init: truncated normal (std 0.02) for linear weights, zero biases."""
        if isinstance(m, nn.Linear):
            trunc_normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)

    def get_classifier(self) -> nn.Module:
        return self.head

    def reset_classifier(self, num_classes: int, global_pool=None) -> None:
        self.num_classes = num_classes
        self.head = nn.Linear(self.num_features, num_classes) if num_classes > 0 else nn.Identity()
        self.head.apply(self._init_weights)
