"""Data modules on the real data in ../shared: shapes, ranges, splits, and clear errors."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from robustgen.data import CIFAR10DataModule, ImagenetteDataModule
from robustgen.errors import DataError

SHARED_IMAGENETTE = Path(__file__).resolve().parents[2] / "shared" / "data" / "imagenette"


def test_cifar_holdout_validation_is_disjoint_from_training(cifar_root):
    dm = CIFAR10DataModule(str(cifar_root), num_workers=0, val_from="train", val_size=1000, val_adv_points=100)
    dm.setup()
    train_ids, val_ids = set(dm._train.ids.tolist()), set(dm._val.ids.tolist())
    assert len(train_ids) == 49_000 and len(val_ids) == 1000 and not train_ids & val_ids
    clean, adv = dm.val_dataloader()
    assert len(clean.dataset) == 1000 and len(adv.dataset) == 100
    assert torch.equal(adv.dataset.ids, dm._val.ids[:100])  # the attacked subset is fixed


def test_cifar_train_subset_is_fixed_by_seed(cifar_root):
    a = CIFAR10DataModule(str(cifar_root), num_workers=0, train_subset=300, seed=1)
    b = CIFAR10DataModule(str(cifar_root), num_workers=0, train_subset=300, seed=1)
    a.setup(), b.setup()
    assert torch.equal(a._train.ids, b._train.ids) and len(a._train) == 300
    plain = a.train_eval_dataset(50)
    x, _, _ = plain[0]
    assert torch.equal(x, a._train.images[0].float() / 255)  # no augmentation on the fixed subset


@pytest.mark.skipif(not SHARED_IMAGENETTE.is_dir(), reason="no ImageNette in ../shared")
def test_imagenette_yields_224px_images_in_unit_range():
    dm = ImagenetteDataModule(str(SHARED_IMAGENETTE), num_workers=0, batch_size=4, train_subset=8, val_size=4)
    dm.setup()
    assert len(dm.test_dataset()) == 3925 and len(dm._train) == 8
    x, y, _ = next(iter(dm.train_dataloader()))
    assert x.shape == (4, 3, 224, 224) and 0 <= x.min() and x.max() <= 1 and y.max() < 10
    x, _, _ = dm.test_dataset()[0]
    assert x.shape == (3, 224, 224)


def test_imagenette_missing_class_folder_is_named(tmp_path):
    (tmp_path / "imagenette2-224" / "train" / "n01440764").mkdir(parents=True)
    with pytest.raises(DataError, match="missing class folders n02102040"):
        ImagenetteDataModule(str(tmp_path), download=False).prepare_data()


def test_the_data_defaults_are_the_studys():
    """RobustART cifar10/code/dataloader.py: CIFAR-10 normalised with std (0.2023, 0.1994, 0.2010)
    (lines 17, 21), ImageNette trained without a horizontal flip (lines 49-54); the true std and a
    flip are one setting away."""
    from torchvision.transforms import v2

    from robustgen.cli import build
    from tests.helpers.hydra_helpers import compose_config

    cifar = build(compose_config(["data=cifar10"]).data)
    assert (cifar.mean, cifar.std) == ((0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010))
    assert build(compose_config(["data.normalization=dataset_stats"]).data).std == (0.2471, 0.2435, 0.2616)
    assert any(isinstance(t, v2.RandomHorizontalFlip) for t in cifar.augment.transforms)  # the study flips CIFAR

    def flips(*overrides):
        net = build(compose_config(["data=imagenette", *overrides]).data)
        return any(isinstance(t, v2.RandomHorizontalFlip) for t in net.augment.transforms)

    assert not flips() and flips("data.flip=true")
    assert build(compose_config(["data=imagenette"]).data).mean == (0.485, 0.456, 0.406)
