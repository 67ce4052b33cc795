"""A network of "your own", as a user brings it to robustgen (arch=custom arch.factory=<this file>:build):
a 20-line CNN with a factory taking the data's class count and image size."""
from __future__ import annotations

from torch import nn


class TinyNet(nn.Module):
    def __init__(self, num_classes: int, width: int = 16):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(width, 2 * width, 3, padding=1), nn.BatchNorm2d(2 * width), nn.ReLU(),
            nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Linear(2 * width, num_classes)

    def forward(self, x):
        return self.head(self.features(x))


def build(num_classes: int, img_size: int, width: int = 16) -> nn.Module:
    return TinyNet(num_classes, width)


def not_a_module(num_classes: int, img_size: int):
    return "a string"


def needs_large_images(num_classes: int, img_size: int) -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 4, 64), nn.Flatten(), nn.LazyLinear(num_classes))


def wrong_classes(num_classes: int, img_size: int) -> nn.Module:
    return TinyNet(num_classes + 2)


class _WithFeatures(TinyNet):
    def forward(self, x):
        features = self.features(x)
        return self.head(features), features


def with_features(num_classes: int, img_size: int) -> nn.Module:
    return _WithFeatures(num_classes)
