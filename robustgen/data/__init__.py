"""Data modules (mirrors conf/data/): CIFAR-10, CIFAR-100 and ImageNette, yielding (x in [0, 1], y, example id).

The data modules (and Lightning with them) load on first use, so that the data sets' constants and
readers (robustgen.data.cifar10, ...) can be imported alone, e.g. by the architecture registry.
"""
from __future__ import annotations

import importlib

_LAZY = {"CIFAR10DataModule": "robustgen.data.cifar10_datamodule",
         "CIFAR100DataModule": "robustgen.data.cifar10_datamodule",
         "ImagenetteDataModule": "robustgen.data.imagenette_datamodule"}

__all__ = sorted(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'robustgen.data' has no attribute {name!r}")
