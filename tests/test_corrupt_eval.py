"""Evaluation on common corruptions: official-layout files read back memory-mapped, every cell
evaluated and resumed, accuracy falling with severity, and clear errors for missing or bad files."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from robustgen.corrupt import CORRUPTIONS, corrupt
from robustgen.data.corrupted import CorruptedArray, cifar10c_source
from robustgen.eval.corruptions import CorruptionSettings, evaluate_corruptions
from robustgen.data.cifar10 import load_cifar10
from robustgen.errors import DataError

pytestmark = pytest.mark.usefixtures("one_thread")
N = 100  # test images per cell


@pytest.fixture(scope="module")
def test_images(cifar_root):
    images, labels = load_cifar10(cifar_root, "test", download=False)
    return images[:N].permute(0, 2, 3, 1).numpy(), labels[:N].numpy()  # HWC uint8, as the files store them


@pytest.fixture(scope="module")
def cifar10c_root(tmp_path_factory, test_images, cifar_root):
    """A data root with cifar-10-batches-py and a CIFAR-10-C folder written in the official layout
    (5 severities × N images per file, uint8 HWC; labels.npy), from the real corruptions."""
    root = tmp_path_factory.mktemp("c10c")
    (root / "cifar-10-batches-py").symlink_to(cifar_root / "cifar-10-batches-py")
    folder = root / "CIFAR-10-C"
    folder.mkdir()
    images, labels = test_images
    for k, name in enumerate(CORRUPTIONS):
        stack = [corrupt(img, name, s, np.random.default_rng([7, k, s, i]))
                 for s in range(1, 6) for i, img in enumerate(images)]
        np.save(folder / f"{name}.npy", np.stack(stack).astype(np.uint8))
    np.save(folder / "labels.npy", np.tile(labels, 5).astype(np.uint8))
    return root


def source(root, labels, names=None):
    return cifar10c_source(root, list(names or CORRUPTIONS), labels)


def test_files_are_read_back_memory_mapped(cifar10c_root, test_images):
    images, labels = test_images
    src = source(cifar10c_root, labels)
    assert src.kind == "official" and src.n_images == N  # no manifest beside them: the official layout
    cell = src.cell("fog", 3, None)
    assert isinstance(cell, CorruptedArray) and isinstance(cell.images.base, np.memmap)
    x, y, i = cell[5]
    stored = np.load(cifar10c_root / "CIFAR-10-C" / "fog.npy")[2 * N + 5]
    assert x.shape == (3, 32, 32) and torch.equal((x * 255).round().byte().permute(1, 2, 0), torch.from_numpy(stored))
    assert int(y) == labels[5] and int(i) == 5


def test_every_cell_is_evaluated_and_accuracy_falls_with_severity(robust_cnn, cifar10c_root, test_images, tmp_path):
    _, labels = test_images
    settings = CorruptionSettings.from_dict({"enabled": True})
    report = evaluate_corruptions(robust_cnn, source(cifar10c_root, labels), settings, {}, n_points=None,
                                  batch_size=50, per_attack=True, output_dir=tmp_path, progress=False)
    assert sorted(report.accuracy) == sorted(CORRUPTIONS) and all(len(by) == 5 for by in report.accuracy.values())
    record = report.record()
    cells = [a for by in report.accuracy.values() for a in by.values()]
    assert record["cells"] == 75 and record["mean_acc"] == pytest.approx(sum(cells) / 75)
    mean_by_severity = [np.mean([report.accuracy[c][s] for c in CORRUPTIONS]) for s in range(1, 6)]
    assert mean_by_severity[0] > mean_by_severity[4] + 5, mean_by_severity  # severity 5 hurts clearly more
    # Per-cell outcomes are kept, keyed on the cell: a rerun evaluates nothing again.
    assert len(list((tmp_path / "corruptions").glob("*_s*.json"))) == 75
    again = evaluate_corruptions(robust_cnn, source(cifar10c_root, labels), settings, {}, n_points=None,
                                 batch_size=50, per_attack=True, output_dir=tmp_path, progress=False)
    assert again.accuracy == report.accuracy and again.resumed_points == 75 * N
    metrics = report.metrics()
    assert metrics["test/corruption/acc/mean"] == pytest.approx(record["mean_acc"])
    assert metrics["test/corruption/acc/fog/s3"] == report.accuracy["fog"][3]


def test_attacks_on_corrupted_images_give_a_worst_case_no_higher(robust_cnn, cifar10c_root, test_images, tmp_path):
    from robustgen.attack import PGD

    _, labels = test_images
    settings = CorruptionSettings.from_dict({"enabled": True, "names": ["contrast"], "severities": [1, 5],
                                             "attacks": True})
    attacks = {"pgd_linf": PGD(norm="linf", eps=8 / 255, steps=3, step_size=3 / 255)}
    report = evaluate_corruptions(robust_cnn, source(cifar10c_root, labels, ["contrast"]), settings, attacks,
                                  n_points=40, batch_size=40, per_attack=True, output_dir=tmp_path, progress=False)
    assert report.n_points == 40
    for s in (1, 5):
        assert report.worst_case["contrast"][s] <= report.accuracy["contrast"][s]


def test_missing_files_name_the_folder_and_the_command(tmp_path, test_images):
    with pytest.raises(DataError, match=r"CIFAR-10-C not found in .*CIFAR-10-C .*missing fog.npy.*make cifar10c"):
        source(tmp_path, test_images[1], ["fog"])


@pytest.mark.parametrize("damage, message", [
    ("shape", r"fog.npy: expected uint8 of shape \(500, 32, 32, 3\)"),
    ("dtype", r"fog.npy: expected uint8 .* found float32"),
    ("labels", "labels are not the CIFAR-10 test labels"),
    ("truncated", "fog.npy: not a readable .npy array"),
])
def test_bad_files_are_named_with_what_is_wrong(cifar10c_root, test_images, tmp_path, damage, message):
    folder = tmp_path / "CIFAR-10-C"
    folder.mkdir()
    shutil.copy(cifar10c_root / "CIFAR-10-C" / "labels.npy", folder)
    fog = np.load(cifar10c_root / "CIFAR-10-C" / "fog.npy")
    if damage == "shape":
        np.save(folder / "fog.npy", fog[:, :16])
    elif damage == "dtype":
        np.save(folder / "fog.npy", fog.astype(np.float32))
    elif damage == "truncated":
        np.save(folder / "fog.npy", fog)
        (folder / "fog.npy").write_bytes((folder / "fog.npy").read_bytes()[:1000])
    else:
        np.save(folder / "fog.npy", fog)
        np.save(folder / "labels.npy", (np.load(folder / "labels.npy") + 1) % 10)
    with pytest.raises(DataError, match=message):
        source(tmp_path, test_images[1], ["fog"])


def test_evaluate_cli_reports_the_corruption_table(cifar10c_root, tmp_path):
    """python -m robustgen.evaluate checkpoint=… eval=corruptions on the files above."""
    import subprocess
    import sys

    from tests.helpers.hydra_helpers import TINY, compose_config
    from robustgen.train import train

    run = tmp_path / "run"
    train(compose_config(TINY + [f"data.root={cifar10c_root}"], output_dir=run))
    out = tmp_path / "eval"
    done = subprocess.run([sys.executable, "-m", "robustgen.evaluate", f"checkpoint={run}/checkpoints/best.ckpt",
                           "eval=corruptions", f"eval.n_points={N}", "eval.corrupted.names=[fog,contrast]",
                           f"data.root={cifar10c_root}", "progress_bar=false", f"hydra.run.dir={out}"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    results = json.loads((out / "results.json").read_text())
    corruptions = results["corruptions"]
    assert corruptions["cells"] == 10 and set(corruptions["acc_by_corruption"]) == {"fog", "contrast"}
    assert results["attack_acc"] == {} and results["worst_case_acc"] == results["clean_acc"]
    assert "corruptions: mean of 10 cells" in done.stdout


def test_imagenette_c_is_made_on_the_fly_and_reproducibly():
    """ImageNette-C: the test set corrupted as it is read, with the ImageNet-C functions, the same
    images for the same seed, more change at a higher severity."""
    from pathlib import Path

    from robustgen.eval.corruptions import CorruptionSettings as Settings
    from robustgen.data import ImagenetteDataModule

    shared = Path(__file__).resolve().parents[2] / "shared" / "data" / "imagenette"
    if not shared.is_dir():
        pytest.skip(f"no ImageNette at {shared}")
    datamodule = ImagenetteDataModule(root=str(shared), download=False, num_workers=0)
    src = datamodule.corruption_source(Settings.from_dict({"enabled": True, "names": ["fog"], "seed": 3}))
    assert src.kind == "on the fly" and src.n_images == len(datamodule.test_dataset())
    clean = [datamodule.test_dataset()[i][0] for i in range(2)]
    mild, strong = src.cell("contrast", 1, 2), src.cell("contrast", 5, 2)
    for i in range(2):
        x, y, example_id = mild[i]
        assert x.shape == (3, 224, 224) and int(example_id) == i and x.min() >= 0 and x.max() <= 1
        assert torch.equal(x, src.cell("contrast", 1, 2)[i][0])  # the same seed: the same image
        assert (strong[i][0] - clean[i]).abs().mean() > (x - clean[i]).abs().mean() > 0
    noisy = src.cell("gaussian_noise", 3, 1)[0][0]
    assert torch.equal(noisy, src.cell("gaussian_noise", 3, 1)[0][0])
