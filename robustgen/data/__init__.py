"""Data modules (mirrors conf/data/): CIFAR-10 and ImageNette, yielding (x in [0, 1], y, example id)."""
from robustgen.data.cifar10_datamodule import CIFAR10DataModule
from robustgen.data.imagenette_datamodule import ImagenetteDataModule

__all__ = ["CIFAR10DataModule", "ImagenetteDataModule"]
