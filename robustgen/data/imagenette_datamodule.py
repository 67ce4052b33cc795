"""Lightning data module for ImageNette at 224 px with the study's ImageNet-style augmentation:
RandomResizedCrop(224) + AutoAugment (ImageNet policy) for training — no horizontal flip, as the
study trained (RobustART cifar10/code/dataloader.py:49-54; `flip=True` adds one) — and Resize(256) +
CenterCrop(224) for evaluation."""
from __future__ import annotations

from torchvision.transforms import v2

from robustgen.data import imagenette
from robustgen.data.base import ClassificationDataModule


class ImagenetteDataModule(ClassificationDataModule):
    num_classes = 10
    mean, std = imagenette.MEAN, imagenette.STD

    def __init__(self, root: str = "./data", img_size: int = 224, autoaugment: bool = True, flip: bool = False,
                 **kwargs):
        super().__init__(root=root, **kwargs)
        self.img_size = img_size
        train_steps = [v2.RandomResizedCrop(img_size, antialias=True)]
        train_steps += [v2.AutoAugment(v2.AutoAugmentPolicy.IMAGENET)] if autoaugment else []
        train_steps += [v2.RandomHorizontalFlip()] if flip else []
        self.augment = v2.Compose(train_steps)
        self.eval_transform = v2.Compose([v2.Resize(round(img_size * 256 / 224), antialias=True),
                                          v2.CenterCrop(img_size)])

    def prepare_data(self) -> None:
        imagenette.ensure_imagenette(self.root, self.download)

    def load_splits(self):
        folder = imagenette.ensure_imagenette(self.root, self.download)
        train = imagenette.ImageFolderSplit.scan(folder / "train")
        test = imagenette.ImageFolderSplit.scan(folder / "val")
        train.transform = test.transform = self.eval_transform
        return train, test

    def train_augmentation(self):
        return self.augment

    def corruption_source(self, settings):
        """ImageNette-C: the test set corrupted on the fly with the ImageNet-C parameters (224 px)."""
        from robustgen.data.corrupted import CorruptionSource

        test = self.test_dataset()
        return CorruptionSource("on the fly", None, len(test), base=test, seed=settings.seed)
