"""Lightning data module for CIFAR-10 with the study's augmentation."""
from __future__ import annotations

from torchvision.transforms import v2

from robustgen.data import cifar10
from robustgen.data.base import ClassificationDataModule
from robustgen.data.datasets import IndexedTensorDataset
from robustgen.errors import ConfigError


def train_transform(autoaugment: bool, crop_padding: int, flip: bool, img_size: int = 32) -> v2.Compose:
    """The study's CIFAR-10 training augmentation: AutoAugment (CIFAR10 policy), crop, flip."""
    steps = []
    if autoaugment:
        steps.append(v2.AutoAugment(v2.AutoAugmentPolicy.CIFAR10))
    if crop_padding > 0:
        steps.append(v2.RandomCrop(img_size, padding=crop_padding))
    if flip:
        steps.append(v2.RandomHorizontalFlip())
    return v2.Compose(steps)


class CIFAR10DataModule(ClassificationDataModule):
    """CIFAR-10 as (image in [0, 1], label, example id) batches, held in memory as uint8.

    Args (besides ClassificationDataModule's): autoaugment, crop_padding, flip — the augmentation;
    normalization — the mean and std the model normalises its [0, 1] input with: "study" (the
    study's constants, std (0.2023, 0.1994, 0.2010)) or "dataset_stats" (the true per-pixel std).

    Raises:
        ConfigError: an unknown normalization.
    """

    num_classes = 10
    img_size = 32
    layout = cifar10.CIFAR10
    normalizations = cifar10.NORMALIZATIONS

    def __init__(self, root: str = "./data", autoaugment: bool = True, crop_padding: int = 4, flip: bool = True,
                 normalization: str = "study", **kwargs):
        super().__init__(root=root, **kwargs)
        if normalization not in self.normalizations:
            raise ConfigError(f"data.normalization={normalization!r}; choose one of "
                              f"{', '.join(self.normalizations)}")
        self.mean, self.std = self.normalizations[normalization]
        self.augment = train_transform(autoaugment, crop_padding, flip)

    def prepare_data(self) -> None:
        cifar10.ensure_cifar10(self.root, self.download, self.layout)

    def load_splits(self):
        train = IndexedTensorDataset(*cifar10.load_cifar10(self.root, "train", self.download, self.layout))
        test = IndexedTensorDataset(*cifar10.load_cifar10(self.root, "test", self.download, self.layout))
        return train, test

    def train_augmentation(self):
        return self.augment

    def corruption_source(self, settings):
        """CIFAR-10-C in `settings.folder` (default <root>/CIFAR-10-C), checked against the test labels."""
        from robustgen.data.corrupted import cifar10c_source

        return cifar10c_source(self.root, settings.names, self.test_dataset().labels.numpy(), settings.folder)


class CIFAR100DataModule(CIFAR10DataModule):
    """CIFAR-100 (the official cifar-100-python layout, fine labels) with CIFAR-10's augmentation,
    as the study trained it (RobustART cifar10/code/dataloader.py:29-39), normalised with the
    study's CIFAR-100 constants. No CIFAR-100-C: `eval/corrupted=all` is refused."""

    num_classes = 100
    layout = cifar10.CIFAR100
    normalizations = cifar10.CIFAR100_NORMALIZATIONS

    def corruption_source(self, settings):
        raise ConfigError("CIFAR-100-C is not supported: evaluate corruptions with data=cifar10 (CIFAR-10-C) or "
                          "data=imagenette (ImageNette-C)")
