"""End to end on real CIFAR-10 images: tiny adversarial training, evaluation, results.json."""
from __future__ import annotations

import json
import pickle
import re

import pytest
import torch

from robustgen.record.checkpoint import load_model
from robustgen.errors import CheckpointError, ConfigError, DataError
from robustgen.train import train
from tests.helpers.hydra_helpers import TINY, compose_config

RESULT_FIELDS = {"choices", "seed", "code_version", "params", "clean_acc", "attack_acc", "worst_case_acc",
                 "n_points", "time_s", "train_attack", "eval_attacks", "hardware", "best_checkpoint"}


def run_tiny(tmp_path, cifar_root, *extra: str) -> tuple[float, dict]:
    cfg = compose_config(TINY + [f"data.root={cifar_root}", *extra], output_dir=tmp_path)
    worst = train(cfg)
    return worst, json.loads((tmp_path / "results.json").read_text())


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, cifar_root):
    out = tmp_path_factory.mktemp("tiny")
    return out, *run_tiny(out, cifar_root)


def test_train_and_evaluate_writes_results(tiny_run):
    out, worst, results = tiny_run
    assert RESULT_FIELDS <= results.keys()
    assert results["choices"]["arch"] == "vit" and results["choices"]["attack"] == "pgd_linf"
    assert results["n_points"] == 32 and results["seed"] == 34257
    assert results["code_version"]["package"]
    assert results["params"] == sum(p.numel() for p in load_model(results["best_checkpoint"])[0].parameters())
    assert worst == results["worst_case_acc"]
    assert results["metrics"]["test/acc/worst_case"] == worst
    assert (out / "checkpoints" / "last.ckpt").is_file()


def test_robust_accuracy_never_exceeds_clean(tiny_run):
    _, worst, results = tiny_run
    assert 0 <= worst <= min(results["attack_acc"].values()) <= results["clean_acc"] <= 100


def test_fixed_seed_reproduces_the_numbers(tiny_run, tmp_path, cifar_root):
    _, worst, first = tiny_run
    again, second = run_tiny(tmp_path, cifar_root)
    assert again == worst
    for key in ("clean_acc", "attack_acc", "worst_case_acc", "best_val_acc_clean"):
        assert second[key] == first[key], key


def test_checkpoint_of_another_arch_is_refused(tiny_run):
    _, _, results = tiny_run
    with pytest.raises(CheckpointError, match="arch=vit"):
        load_model(results["best_checkpoint"], expected_arch="resnet")


def test_vanilla_training_runs(tmp_path, cifar_root):
    worst, results = run_tiny(tmp_path, cifar_root, "attack=none")
    assert results["train_attack"]["type"] == "NoAttack"
    assert worst <= results["clean_acc"]


@pytest.mark.parametrize("override,message", [
    ("attack.eps=-0.1", "eps must be ≥ 0"),
    ("attack.steps=0", "steps must be an integer ≥ 1"),
    ("eval.attacks.pgd_linf.eps=8", "exceeds the [0, 1] pixel range"),
    ("arch.patch_size=3", "patch_size=3"),
])
def test_bad_settings_are_refused_before_training(override, message, tmp_path, cifar_root):
    cfg = compose_config(TINY + [f"data.root={cifar_root}", override], output_dir=tmp_path)
    with pytest.raises(ConfigError, match=re.escape(message)):
        train(cfg)
    assert not (tmp_path / "checkpoints").exists()


def test_missing_data_says_where_it_looked(tmp_path):
    cfg = compose_config(TINY + [f"data.root={tmp_path / 'nowhere'}", "data.download=false"], output_dir=tmp_path)
    with pytest.raises(DataError, match="prepare_cifar10.py"):
        train(cfg)


def test_malformed_batch_is_named(tmp_path, cifar_root):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    for name in ["data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch"]:
        (folder / name).write_bytes((cifar_root / "cifar-10-batches-py" / name).read_bytes())
    (folder / "data_batch_3").write_bytes(pickle.dumps({"data": [1, 2, 3], "labels": [0]}))
    cfg = compose_config(TINY + [f"data.root={tmp_path}", "data.download=false"], output_dir=tmp_path / "out")
    with pytest.raises(DataError, match="data_batch_3"):
        train(cfg)


def test_pickle_with_code_is_refused(tmp_path):
    from robustgen.data.cifar10 import read_batch

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    path = tmp_path / "data_batch_1"
    path.write_bytes(pickle.dumps({"data": Evil(), "labels": []}))
    with pytest.raises(DataError, match="refusing to load builtins.print"):
        read_batch(path)


def test_data_loader_yields_images_in_unit_range(cifar_root):
    from robustgen.data import CIFAR10DataModule

    dm = CIFAR10DataModule(str(cifar_root), batch_size=16, num_workers=0, train_subset=32, val_size=16)
    dm.setup()
    x, y, ids = next(iter(dm.train_dataloader()))
    assert x.shape == (16, 3, 32, 32) and x.dtype == torch.float32
    assert 0 <= x.min() and x.max() <= 1 and y.max() < 10 and len(set(ids.tolist())) == 16
