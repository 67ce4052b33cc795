"""ImageNette (the ten-class ImageNet subset) in the standard `imagenette2*` folder layout.

Looked for under `root` as imagenette2-224/, imagenette2-320/, imagenette2-160/ or imagenette2/
(each with train/<wnid>/ and val/<wnid>/). When none exists and `download=True`, torchvision's
Imagenette downloads and md5-checks the official 320 px archive.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import torch
from PIL import Image
from torch import Tensor
from torch.utils.data import Dataset
from torchvision.transforms import v2

from robustgen.data.datasets import apply_transform
from robustgen.errors import DataError

WNIDS = ("n01440764", "n02102040", "n02979186", "n03000684", "n03028079",
         "n03394916", "n03417042", "n03425413", "n03445777", "n03888257")
FOLDERS = ("imagenette2-224", "imagenette2-320", "imagenette2-160", "imagenette2")
DOWNLOAD_SIZE = "320px"  # smallest official archive that still gives 224 px crops without upsampling
MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def _check_layout(folder: Path) -> None:
    for split in ("train", "val"):
        missing = [w for w in WNIDS if not (folder / split / w).is_dir()]
        if missing:
            raise DataError(f"{folder / split}: missing class folders {', '.join(missing)} "
                            f"(expected train/<wnid>/ and val/<wnid>/ for the ten ImageNette classes)")


def ensure_imagenette(root: str | Path, download: bool = True) -> Path:
    root = Path(root).expanduser()
    for name in FOLDERS:
        if (root / name).is_dir():
            _check_layout(root / name)
            return root / name
    advice = (f"Provide ImageNette in {root}/ as one of {', '.join(FOLDERS)} (train/<wnid>/*.JPEG, val/<wnid>/*.JPEG): "
              f"e.g. data.root=../shared/data/imagenette, or download imagenette2-320.tgz from the fast.ai "
              f"imagenette page and unpack it into {root}")
    if not download:
        raise DataError(f"ImageNette not found in {root} (download disabled). {advice}")
    try:
        from torchvision.datasets import Imagenette

        Imagenette(str(root), split="val", size=DOWNLOAD_SIZE, download=True)
    except Exception as err:  # no network, bad checksum
        raise DataError(f"ImageNette not found in {root} and the download failed ({type(err).__name__}: {err}). "
                        f"{advice}") from None
    return ensure_imagenette(root, download=False)


class ImageFolderSplit(Dataset):
    """Image files of one split with labels and ids; images are decoded lazily (too big for memory)."""

    def __init__(self, files: list[Path], labels: Tensor, ids: Tensor | None = None,
                 transform: Callable[[Tensor], Tensor] | None = None):
        self.files, self.labels, self.transform = files, labels, transform
        self.ids = torch.arange(len(files)) if ids is None else ids

    @classmethod
    def scan(cls, folder: Path) -> "ImageFolderSplit":
        files, labels = [], []
        for label, wnid in enumerate(WNIDS):
            found = sorted(p for p in (folder / wnid).iterdir() if p.suffix.lower() in (".jpeg", ".jpg", ".png"))
            files += found
            labels += [label] * len(found)
        if not files:
            raise DataError(f"{folder}: no images found")
        return cls(files, torch.tensor(labels))

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int):
        try:
            with Image.open(self.files[i]) as img:
                image = v2.functional.pil_to_tensor(img.convert("RGB"))
        except OSError as err:
            raise DataError(f"{self.files[i]}: unreadable image ({err})") from None
        image = apply_transform(self.transform, image, self.ids[i])
        return image.float().div_(255), self.labels[i], self.ids[i]

    def subset(self, positions: Tensor, transform: Callable | None = None) -> "ImageFolderSplit":
        """The items at `positions` (ids kept), with `transform` instead of this dataset's if given."""
        pos = positions.tolist()
        return ImageFolderSplit([self.files[p] for p in pos], self.labels[positions], self.ids[positions],
                                transform if transform is not None else self.transform)
