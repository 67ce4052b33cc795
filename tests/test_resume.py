"""Resuming a training run restores all of its selection state, wherever it resumes to."""
from __future__ import annotations

import csv
import json
import shutil

import pytest
import torch

from robustgen.errors import CheckpointError, ConfigError
from robustgen.train import train
from tests.helpers.hydra_helpers import TINY, compose_config

# The setting, scaled to test size: vanilla training (no attack), val accuracy on 200 images.
VANILLA = ["attack=none", "data.train_subset=256", "data.val_size=200", "data.val_adv_points=16",
           "callbacks.sparsity.train_points=32", "eval.n_points=16"]


def run(out, cifar_root, *extra: str) -> dict:
    cfg = compose_config(TINY + VANILLA + [f"data.root={cifar_root}", *extra], output_dir=out)
    train(cfg)
    return json.loads((out / "results.json").read_text())


def val_accuracies(out) -> dict[int, float]:
    """val/acc_clean per epoch, from every CSV log version in the run folder (last one wins)."""
    accs = {}
    for path in sorted(out.glob("csv/version_*/metrics.csv")):
        for row in csv.DictReader(path.open()):
            if row.get("val/acc_clean"):
                accs[int(row["epoch"])] = float(row["val/acc_clean"])
    return accs


def weights(path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)["state_dict"]


@pytest.fixture(scope="module")
def four_epochs(tmp_path_factory, cifar_root):
    out = tmp_path_factory.mktemp("resume") / "first"
    return out, run(out, cifar_root, "trainer.max_epochs=4", "logger=[csv,wandb]")


def test_resume_into_a_new_folder_keeps_the_best_checkpoint(four_epochs, tmp_path, cifar_root, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    first_dir, first = four_epochs
    pristine = tmp_path / "pristine"  # the same-folder resume below changes first_dir: keep a copy
    shutil.copytree(first_dir, pristine)
    new = tmp_path / "new"
    resumed = run(new, cifar_root, "trainer.max_epochs=5", "logger=[csv,wandb]",
                  f"resume={first_dir / 'checkpoints' / 'last.ckpt'}")
    accs = {**val_accuracies(first_dir), **val_accuracies(new)}
    assert sorted(accs) == [0, 1, 2, 3, 4]
    best_epoch = max(accs, key=lambda e: (accs[e], -e))  # ModelCheckpoint keeps the first of equal scores
    assert resumed["best_val_acc_clean"] == pytest.approx(max(accs.values()))
    assert resumed["epochs"] == 5 and resumed["resumed_from"].endswith("last.ckpt")
    best = torch.load(resumed["best_checkpoint"], map_location="cpu", weights_only=True)
    assert best["epoch"] == best_epoch and resumed["best_checkpoint"].startswith(str(new))
    if best_epoch < 4:  # chosen before the resume: the very weights of the first run's best epoch
        assert all(torch.equal(v, weights(first_dir / "checkpoints" / "best.ckpt")[k])
                   for k, v in best["state_dict"].items())
    # The same as resuming into the run's own folder (the first run's folder is left as it was).
    assert all(torch.equal(v, weights(first_dir / "checkpoints" / "best.ckpt")[k])
               for k, v in weights(pristine / "checkpoints" / "best.ckpt").items())
    same = run(first_dir, cifar_root, "trainer.max_epochs=5", "logger=[csv,wandb]", "resume=auto")
    for key in ("best_val_acc_clean", "clean_acc", "worst_case_acc", "epochs"):
        assert same[key] == resumed[key], key
    assert torch.load(same["best_checkpoint"], weights_only=True)["epoch"] == best_epoch
    # One W&B run across the resume: the offline runs of both folders carry the first run's id.
    assert resumed["run_id"] == first["run_id"] == same["run_id"]
    for folder in (first_dir, new):
        assert {p.name.rsplit("-", 1)[1] for p in (folder / "wandb").glob("offline-run-*")} == {first["run_id"]}
    # The sparsity monitor's per-epoch history survives the resume: one entry per epoch, no gaps.
    assert [e["epoch"] for e in resumed["sparsity"]["history"]] == [0, 1, 2, 3, 4]


def test_resume_auto_without_a_checkpoint_starts_afresh(tmp_path, cifar_root):
    results = run(tmp_path, cifar_root, "resume=auto")
    assert results["resumed_from"] is None and results["epochs"] == 1


def test_resume_with_other_training_settings_is_refused(four_epochs, tmp_path, cifar_root):
    first_dir, _ = four_epochs
    last = first_dir / "checkpoints" / "last.ckpt"
    with pytest.raises(ConfigError, match=r"optim\.lr: 0\.001 there, 0\.01 now"):
        run(tmp_path, cifar_root, "optim.lr=0.01", "trainer.max_epochs=5", f"resume={last}")
    assert not (tmp_path / "checkpoints").exists()  # refused before anything was written


def test_resume_from_a_missing_path_names_it(tmp_path, cifar_root):
    with pytest.raises(ConfigError, match="no such checkpoint"):
        run(tmp_path, cifar_root, f"resume={tmp_path / 'nope.ckpt'}")


def test_resume_without_the_best_checkpoint_says_where_it_looked(four_epochs, tmp_path, cifar_root):
    first_dir, _ = four_epochs
    lonely = tmp_path / "copied"
    lonely.mkdir()
    shutil.copy(first_dir / "checkpoints" / "last.ckpt", lonely / "last.ckpt")
    moved = tmp_path / "moved-away"
    shutil.move(first_dir / "checkpoints" / "best.ckpt", moved)
    try:
        with pytest.raises(CheckpointError, match="copy it beside the last.ckpt"):
            run(tmp_path / "new", cifar_root, "trainer.max_epochs=5", f"resume={lonely / 'last.ckpt'}")
        shutil.copy(moved, lonely / "best.ckpt")  # beside last.ckpt is where it is looked for next
        resumed = run(tmp_path / "new2", cifar_root, "trainer.max_epochs=5", f"resume={lonely / 'last.ckpt'}")
        assert resumed["epochs"] == 5
    finally:
        shutil.move(moved, first_dir / "checkpoints" / "best.ckpt")


def test_resume_with_fewer_epochs_than_done_is_refused(four_epochs, tmp_path, cifar_root):
    first_dir, _ = four_epochs
    with pytest.raises(ConfigError, match=r"has [45] epochs done, more than trainer.max_epochs=2"):
        run(tmp_path, cifar_root, "trainer.max_epochs=2", f"resume={first_dir / 'checkpoints' / 'last.ckpt'}")


def test_a_new_folder_resumed_into_can_itself_be_resumed(four_epochs, tmp_path, cifar_root):
    """Resuming a finished run into a new folder (to re-evaluate it) trains no epoch there; the
    folder still gets last.ckpt, so `resume=auto` into it continues the same run."""
    first_dir, first = four_epochs
    last = first_dir / "checkpoints" / "last.ckpt"
    done = torch.load(last, weights_only=True)["loops"]["fit_loop"]["epoch_progress"]["current"]["processed"]
    copy = run(tmp_path, cifar_root, f"trainer.max_epochs={done}", f"resume={last}")
    assert (tmp_path / "checkpoints" / "last.ckpt").is_file() and copy["best_val_acc_clean"] is not None
    again = run(tmp_path, cifar_root, f"trainer.max_epochs={done}", "resume=auto")
    assert again["resumed_from"] == str(tmp_path / "checkpoints" / "last.ckpt")
    assert again["best_val_acc_clean"] == copy["best_val_acc_clean"] and again["clean_acc"] == copy["clean_acc"]


def test_display_and_worker_settings_do_not_block_a_resume():
    from robustgen.training.resume import training_settings

    base = {"seed": 1, "progress_bar": True, "trainer": {"enable_progress_bar": True, "max_epochs": 4},
            "data": {"num_workers": 2, "batch_size": 32}, "optim": {"lr": 0.1}}
    other = {"seed": 1, "progress_bar": False, "trainer": {"enable_progress_bar": False, "max_epochs": 9},
             "data": {"num_workers": 8, "batch_size": 32}, "optim": {"lr": 0.1}}
    assert training_settings(base) == training_settings(other)
    assert training_settings(base) != training_settings({**base, "data": {"num_workers": 2, "batch_size": 64}})
