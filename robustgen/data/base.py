"""What every data module shares: the splits' loaders and the fixed subsets used for evaluation.

A subclass loads its splits in `load_splits()` as datasets that yield (x in [0, 1], y, example id)
and support ``subset(positions, transform=None)``; this class picks the training subset, the
validation split (the test set as the study did, or a held-out part of the training set) and
the fixed subset attacked every epoch.
"""
from __future__ import annotations

import lightning as L
import torch
from lightning.pytorch.overrides.distributed import UnrepeatedDistributedSampler
from torch.utils.data import DataLoader

from robustgen.data.datasets import EpochShuffle, SeededAugmentation, fixed_subset
from robustgen.errors import ConfigError


class ClassificationDataModule(L.LightningDataModule):
    num_classes: int
    img_size: int
    mean: tuple[float, ...]
    std: tuple[float, ...]

    def __init__(self, root: str = "./data", batch_size: int = 128, eval_batch_size: int = 256,
                 num_workers: int = 2, train_subset: int | None = None, val_from: str = "test",
                 val_size: int | None = None, val_adv_points: int = 512, download: bool = True, seed: int = 0):
        super().__init__()
        for key, value, least in (("batch_size", batch_size, 1), ("eval_batch_size", eval_batch_size, 1),
                                  ("num_workers", num_workers, 0), ("val_adv_points", val_adv_points, 0),
                                  ("train_subset", train_subset, 1), ("val_size", val_size, 1)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < least):
                raise ConfigError(f"data.{key} must be an integer ≥ {least}"
                                  f"{' or null' if key in ('train_subset', 'val_size') else ''}, got {value!r}")
        if val_from not in ("test", "train"):
            raise ConfigError(f"data.val_from must be 'test' or 'train', got {val_from!r}")
        if val_from == "train" and not val_size:
            raise ConfigError("data.val_from=train needs data.val_size (how many training images to hold out)")
        self.root, self.download, self.seed = root, download, seed
        self.batch_size, self.eval_batch_size, self.num_workers = batch_size, eval_batch_size, num_workers
        self.train_subset, self.val_from, self.val_size = train_subset, val_from, val_size
        self.val_adv_points = val_adv_points
        self._train = self._val = self._test = None

    # --- what subclasses provide -------------------------------------------------------------
    def load_splits(self):
        """Return (train, test) datasets without augmentation."""
        raise NotImplementedError

    def train_augmentation(self):
        raise NotImplementedError

    # --- splits ------------------------------------------------------------------------------
    def setup(self, stage: str | None = None) -> None:
        if self._train is not None:
            return
        train, self._test = self.load_splits()
        if self.val_from == "train":
            order = torch.randperm(len(train), generator=torch.Generator().manual_seed(self.seed))
            self._val = train.subset(order[:self.val_size].sort().values)
            train = train.subset(order[self.val_size:].sort().values)
        else:
            self._val = self._test.subset(fixed_subset(len(self._test), self.val_size, self.seed))
        if len(train) == 0:
            raise ConfigError(f"data.val_size={self.val_size} holds out every training image; "
                              f"choose a smaller data.val_size")
        positions = fixed_subset(len(train), self.train_subset, self.seed)
        self._train_plain = train.subset(positions)
        self.augmentation = SeededAugmentation(self.train_augmentation(), self.seed)
        self._train = train.subset(positions, transform=self.augmentation)

    def _loader(self, dataset, batch_size: int, sampler=None) -> DataLoader:
        # Training workers are not persistent: fresh workers each epoch get a copy of the data
        # set with the epoch's augmentation seed (see EpochShuffle.set_epoch).
        return DataLoader(dataset, batch_size=batch_size, sampler=sampler, num_workers=self.num_workers,
                          persistent_workers=self.num_workers > 0 and sampler is None,
                          pin_memory=torch.cuda.is_available())

    def train_dataloader(self) -> DataLoader:
        """Shuffled and augmented from (seed, epoch) alone, so that a resumed run sees the same
        batches as the uninterrupted one (robustgen/training/resume.py). Under DDP (trainer=ddp) rank r of
        w takes every w-th image of that order, so the ranks' batches k together are batch k of one
        process with a w-times larger batch (Lightning's own sampler would reshuffle: ddp.yaml turns
        it off)."""
        rank, world = _rank_and_world()
        return self._loader(self._train, self.batch_size,
                            EpochShuffle(len(self._train), self.seed, self.augmentation, rank=rank, world=world))

    def val_dataloader(self) -> list[DataLoader]:
        """Two loaders: 0 = every validation image (clean), 1 = the fixed subset that is attacked.

        Under DDP rank r of w validates images r, r + w, r + 2w, ...: every image on exactly one rank
        (Lightning's UnrepeatedDistributedSampler; torch's DistributedSampler would repeat the first
        images to even out the shares, and count them twice). The module logs each accuracy with
        its batch size and `sync_dist`, so Lightning reduces it as the sum of correct over the sum
        of images across ranks: exact for any size.

        Raises:
            ConfigError: a set smaller than the number of ranks (a rank with nothing to validate
                would never join the others' reduction).
        """
        adv = self._val.subset(torch.arange(min(self.val_adv_points, len(self._val))))
        rank, world = _rank_and_world()
        for name, data in (("data.val_size", self._val), ("data.val_adv_points", adv)):
            if len(data) < world:
                raise ConfigError(f"{name}: {len(data)} validation images for {world} DDP ranks; every rank needs "
                                  f"at least one (set {name} ≥ {world})")
        shard = (lambda d: UnrepeatedDistributedSampler(d, num_replicas=world, rank=rank, shuffle=False)) \
            if world > 1 else (lambda d: None)
        return [self._loader(self._val, self.eval_batch_size, shard(self._val)),
                self._loader(adv, self.eval_batch_size, shard(adv))]

    def test_dataset(self):
        """The full test split, un-augmented, in its official order (evaluations use a prefix)."""
        self.setup("test")
        return self._test

    def train_eval_dataset(self, n: int):
        """A fixed subset of `n` training images without augmentation (robust generalization gap)."""
        self.setup("fit")
        return self._train_plain.subset(torch.arange(min(n, len(self._train_plain))))


def _rank_and_world() -> tuple[int, int]:
    """(rank, world size) of this process in torch.distributed's default group, (0, 1) outside DDP."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1
