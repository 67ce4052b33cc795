"""Dataset wrappers shared by the data modules: every item is (image in [0, 1], label, example id).

The example id is the image's index in its split, so attacks can seed random starts per example
and evaluations can record per-example outcomes that survive a change of batch size or order.
"""
from __future__ import annotations

from typing import Callable, Iterator

import torch
from torch import Tensor
from torch.utils.data import Dataset, Sampler

_STRIDE = 1_000_003  # a prime above any data set's size: (seed, epoch, id) triples never share a seed


def mixed_seed(*parts: int) -> int:
    seed = 0
    for part in parts:
        seed = (seed * _STRIDE + int(part)) % (2**63 - 1)
    return seed


class SeededAugmentation:
    """A random transform whose draws depend only on (seed, epoch, example id), not on the
    process's random state: epoch e of a resumed run augments every image exactly as epoch e of
    the uninterrupted run did, whichever worker process or batch the image lands in."""

    def __init__(self, transform: Callable[[Tensor], Tensor], seed: int):
        self.transform, self.seed, self.epoch = transform, int(seed), 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __call__(self, image: Tensor, example_id: int) -> Tensor:
        with torch.random.fork_rng(devices=[]):  # leave the caller's generator as it was
            torch.manual_seed(mixed_seed(self.seed, self.epoch, example_id))
            return self.transform(image)


def apply_transform(transform: Callable | None, image: Tensor, example_id: Tensor) -> Tensor:
    if transform is None:
        return image
    if isinstance(transform, SeededAugmentation):
        return transform(image, int(example_id))
    return transform(image)


class EpochShuffle(Sampler[int]):
    """A new order each epoch, drawn from (seed, epoch) alone. Lightning calls `set_epoch` before
    every epoch (resumed ones included); the epoch is passed on to the data set's augmentation."""

    def __init__(self, n: int, seed: int, augmentation: SeededAugmentation | None = None, rank: int = 0,
                 world: int = 1):
        self.n, self.seed, self.epoch, self.augmentation = n, int(seed), 0, augmentation
        self.rank, self.world = rank, world  # DDP: this rank's share is every world-th item of the order

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)
        if self.augmentation is not None:
            self.augmentation.set_epoch(epoch)

    def __iter__(self) -> Iterator[int]:
        order = torch.randperm(self.n, generator=torch.Generator().manual_seed(mixed_seed(self.seed, self.epoch)))
        # equal shares, so no rank waits in an all-reduce for a batch another never takes: the last
        # n mod world images of the epoch's order are left out under DDP (none in one process)
        return iter(order.tolist()[:len(self) * self.world][self.rank::self.world])

    def __len__(self) -> int:
        return self.n // self.world


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
        image = apply_transform(self.transform, self.images[i], self.ids[i])
        return image.float().div_(255), self.labels[i], self.ids[i]

    def fingerprint(self, n: int) -> str | None:
        """sha256 of the first `n` items' pixels, labels and ids, without decoding (no transform);
        with a transform, what the model sees depends on it: hash the decoded items instead."""
        if self.transform is not None:
            from robustgen.data.fingerprint import data_fingerprint

            return data_fingerprint(torch.utils.data.Subset(self, range(n)), n)
        import hashlib

        digest = hashlib.sha256()
        for t in (self.images[:n].contiguous(), self.labels[:n].contiguous(), self.ids[:n].contiguous()):
            digest.update(f"{t.dtype}{tuple(t.shape)}".encode())
            digest.update(t.numpy().tobytes())
        return digest.hexdigest()

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
