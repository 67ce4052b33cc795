"""CIFAR-100 (`data=cifar100`) end to end on a small file written in the official cifar-100-python
format, the one-line error when it is missing, and the attack sets at 100 classes."""
from __future__ import annotations

import json
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch
from torch import nn

from robustgen.attack import AutoAttack
from robustgen.data.cifar10 import load_cifar10
from tests.helpers.hydra_helpers import TINY_ANY_ARCH

HERE = Path(__file__).parent
SMALL = [*TINY_ANY_ARCH, "data.download=false", "arch=custom",
         f"arch.factory={HERE / 'helpers' / 'custom_nets.py'}:build", "arch.family=cnn"]


def write_official(root: Path, cifar_root: Path, n_train: int = 200, n_test: int = 100) -> Path:
    """cifar-100-python/{train,test,meta} as the official archive has them: Python-2-style pickles
    with byte keys, 'data' uint8 (N, 3072), 'fine_labels' and 'coarse_labels' lists (pixels borrowed
    from CIFAR-10, labels 0..99)."""
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for split, n in (("train", n_train), ("test", n_test)):
        images, _ = load_cifar10(cifar_root, split, download=False)
        fine = rng.integers(0, 100, n)
        batch = {b"filenames": [f"{k}.png".encode() for k in range(n)], b"batch_label": split.encode(),
                 b"fine_labels": fine.tolist(), b"coarse_labels": (fine // 5).tolist(),
                 b"data": images[:n].reshape(n, -1).numpy()}
        (folder / split).write_bytes(pickle.dumps(batch, protocol=2))
    (folder / "meta").write_bytes(pickle.dumps({b"fine_label_names": [f"c{k}".encode() for k in range(100)]}))
    return root


def test_cifar100_trains_and_evaluates_end_to_end(tmp_path, cifar_root):
    root = write_official(tmp_path / "data", cifar_root)
    done = subprocess.run([sys.executable, "-m", "robustgen", *SMALL, "data=cifar100", f"data.root={root}",
                           f"hydra.run.dir={tmp_path / 'run'}"], capture_output=True, text=True, cwd=tmp_path,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    record = json.loads((tmp_path / "run" / "results.json").read_text())
    assert record["data"]["num_classes"] == 100 and record["chance_acc"] == 1.0
    assert record["data"]["mean"] == [0.5070, 0.4865, 0.4409] and record["data"]["std"] == [0.2673, 0.2564, 0.2761]
    assert record["n_points"] == 32 and 0 <= record["worst_case_acc"] <= record["clean_acc"]


def test_missing_cifar100_is_one_line_naming_what_to_put_where(tmp_path):
    done = subprocess.run([sys.executable, "-m", "robustgen", *SMALL, "data=cifar100",
                           f"data.root={tmp_path / 'empty'}", f"hydra.run.dir={tmp_path / 'run'}"],
                          capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "CIFAR-100 not found in" in done.stderr and "cifar-100-python.tar.gz" in done.stderr
    assert "(files train, test)" in done.stderr


def test_autoattack_runs_at_100_classes_with_the_references_nine_targets():
    """The targeted components attack the 9 most likely wrong classes, as the reference's standard
    version does; nothing is refused or cut at 100 classes."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 100))
    x, y = torch.rand(4, 3, 2, 2), torch.tensor([0, 17, 42, 99])
    attack = AutoAttack("linf", 8 / 255)
    assert attack.describe()["components"]["apgd-t"]["n_target_classes"] == 9
    x_adv = attack(model, x, y)
    assert x_adv.shape == x.shape and (x_adv - x).abs().max() <= 8 / 255 + 1e-6
