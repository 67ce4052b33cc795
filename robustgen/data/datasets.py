"""Dataset wrappers shared by the data modules: every item is (image in [0, 1], label, example id).

The example id is the image's index in its split, so attacks can seed random starts per example
and evaluations can record per-example outcomes that survive a change of batch size or order.
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor
from torch.utils.data import Dataset


class IndexedTensorDataset(Dataset):
    """uint8 images held in memory (CIFAR-sized data), with an optional uint8 → uint8 transform."""

    def __init__(self, images: Tensor, labels: Tensor, ids: Tensor | None = None,
                 transform: Callable[[Tensor], Tensor] | None = None):
        assert images.dtype == torch.uint8 and len(images) == len(labels)
        self.images, self.labels, self.transform = images, labels, transform
        self.ids = torch.arange(len(images)) if ids is None else ids

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> tuple[Tensor, Tensor, Tensor]:
        image = self.images[i]
        if self.transform is not None:
            image = self.transform(image)
        return image.float().div_(255), self.labels[i], self.ids[i]

    def subset(self, positions: Tensor, transform: Callable | None = None) -> "IndexedTensorDataset":
        """The items at `positions` (ids kept), with `transform` instead of this dataset's if given."""
        return IndexedTensorDataset(self.images[positions], self.labels[positions], self.ids[positions],
                                    transform if transform is not None else self.transform)


def fixed_subset(n_total: int, n: int | None, seed: int) -> Tensor:
    """Positions of a fixed random subset of size `n` (all, in order, when n is None or ≥ n_total)."""
    if n is None or n >= n_total:
        return torch.arange(n_total)
    if n <= 0:
        raise ValueError(f"subset size must be positive, got {n}")
    return torch.randperm(n_total, generator=torch.Generator().manual_seed(seed))[:n].sort().values
