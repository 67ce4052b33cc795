"""CIFAR-10 in the official `cifar-10-batches-py` layout, read safely and checked for structure.

Where the data is looked for: `root/cifar-10-batches-py/` with `root` from `data.root`, which
defaults to $ROBUSTGEN_DATA, then ./data. When it is missing and `download=True`, the official
archive is downloaded and its md5 verified (torchvision's helper); when that fails (no network),
the error says where we looked and how to provide the data. A local copy is checked by structure,
not md5, so re-encoded copies (like the one in ../shared/data) are accepted.
"""
from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from robustgen.data.safe_pickle import load_pickle
from robustgen.errors import DataError

URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
MD5 = "c58f30108f718f92721af3b95e74349a"
FOLDER = "cifar-10-batches-py"
SPLITS = {"train": [f"data_batch_{k}" for k in range(1, 6)], "test": ["test_batch"]}
CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
MEAN = (0.4914, 0.4822, 0.4465)
STD = (0.2471, 0.2435, 0.2616)  # the training set's true per-pixel std (robustgen < 0.3's default)
# The std the study trained and tested with (DIG-Beihang/RobustART, cifar10/code/dataloader.py:17,21,
# and test.py's ART classifier): the widely copied (0.2023, 0.1994, 0.2010), not the true one. The
# network sees inputs scaled ~1.22x otherwise, which changes what the recipe trains.
STUDY_STD = (0.2023, 0.1994, 0.2010)
NORMALIZATIONS = {"study": (MEAN, STUDY_STD), "dataset_stats": (MEAN, STD)}
# CIFAR-100's: the study's constants (RobustART cifar10/code/dataloader.py:34,38) are its true stats.
CIFAR100_MEAN, CIFAR100_STD = (0.5070, 0.4865, 0.4409), (0.2673, 0.2564, 0.2761)
CIFAR100_NORMALIZATIONS = {"study": (CIFAR100_MEAN, CIFAR100_STD), "dataset_stats": (CIFAR100_MEAN, CIFAR100_STD)}


@dataclass(frozen=True)
class Layout:
    """One of the official CIFAR archives: where its files are, where they come from, how labels are kept."""

    name: str
    url: str
    md5: str
    folder: str
    splits: dict
    label_key: str
    n_classes: int
    local_pack: str | None = None   # a script that writes the folder from ../shared, if there is one


CIFAR10 = Layout("CIFAR-10", URL, MD5, FOLDER, SPLITS, "labels", 10, "../shared/data/cifar10/prepare_cifar10.py")
# CIFAR-100: the official cifar-100-python layout (files train, test, meta; 100 fine labels).
CIFAR100 = Layout("CIFAR-100", "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
                  "eb9058c3a382ffc7106e4002c42a8d85", "cifar-100-python", {"train": ["train"], "test": ["test"]},
                  "fine_labels", 100)


def _how_to_provide(root: Path, layout: Layout = CIFAR10) -> str:
    files = ", ".join(layout.splits["train"] + layout.splits["test"])
    pack = f"  - python {layout.local_pack} {root}   (from the local pack)\n" if layout.local_pack else ""
    return (f"Provide {layout.name} in {root / layout.folder}/ (files {files}) by one of:\n{pack}"
            f"  - downloading and unpacking {layout.url} into {root}\n"
            f"  - pointing data.root=... (or $ROBUSTGEN_DATA) at a folder that holds {layout.folder}/")


def ensure_cifar10(root: str | Path, download: bool = True, layout: Layout = CIFAR10) -> Path:
    """Return the folder of `layout` (default `cifar-10-batches-py`) under `root`, downloading it if allowed."""
    root = Path(root).expanduser()
    folder = root / layout.folder
    if all((folder / name).is_file() for names in layout.splits.values() for name in names):
        return folder
    if not download:
        raise DataError(f"{layout.name} not found in {folder} (download disabled).\n{_how_to_provide(root, layout)}")
    try:
        from torchvision.datasets.utils import download_and_extract_archive

        download_and_extract_archive(layout.url, download_root=str(root), md5=layout.md5)
    except Exception as err:  # no network, proxy, bad checksum: all end in the same advice
        raise DataError(f"{layout.name} not found in {folder} and the download failed "
                        f"({type(err).__name__}: {err}).\n{_how_to_provide(root, layout)}") from None
    return folder


def read_batch(path: Path, layout: Layout = CIFAR10) -> tuple[np.ndarray, np.ndarray]:
    """Read one batch file as (uint8 images N×3×32×32, int64 labels N), checking its structure."""
    if not path.is_file():
        raise DataError(f"{path}: file missing")
    try:
        batch = load_pickle(path)
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as err:
        why = str(err) or f"{type(err).__name__}: the file ends early (truncated?)"
        again = f"write the folder again with python {layout.local_pack} {path.parent.parent}, or " \
            if layout.local_pack else ""
        raise DataError(f"{path}: not a readable {layout.name} batch ({why}); {again}delete it to download the "
                        f"official archive") from None
    if isinstance(batch, dict):  # pickled from Python 2 and read with encoding="bytes", keys are bytes
        batch = {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in batch.items()}
    if not isinstance(batch, dict) or "data" not in batch or layout.label_key not in batch:
        keys = sorted(batch) if isinstance(batch, dict) else type(batch).__name__
        raise DataError(f"{path}: expected a dict with keys 'data' and '{layout.label_key}', found {keys}")
    data, labels = np.asarray(batch["data"]), np.asarray(batch[layout.label_key])
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        raise DataError(f"{path}: 'data' must be uint8 of shape (N, 3072), found {data.dtype} {data.shape}")
    if labels.shape != (len(data),):
        raise DataError(f"{path}: {len(labels)} labels for {len(data)} images")
    if len(labels) and (labels.min() < 0 or labels.max() >= layout.n_classes):
        raise DataError(f"{path}: labels must lie in 0..{layout.n_classes - 1}, found {labels.min()}..{labels.max()}")
    return data.reshape(-1, 3, 32, 32), labels.astype(np.int64)


def load_cifar10(root: str | Path, split: str, download: bool = True,
                 layout: Layout = CIFAR10) -> tuple[torch.Tensor, torch.Tensor]:
    """All images of `split` ("train" or "test") as (uint8 N×3×32×32, int64 N) tensors (of CIFAR-100
    with `layout=CIFAR100`)."""
    folder = ensure_cifar10(root, download, layout)
    parts = [read_batch(folder / name, layout) for name in layout.splits[split]]
    images = np.concatenate([p[0] for p in parts])
    labels = np.concatenate([p[1] for p in parts])
    return torch.from_numpy(images), torch.from_numpy(labels)
