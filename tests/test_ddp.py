"""`trainer=ddp` with 2 CPU processes (gloo), as a user runs it: the ranks together train the model
one process trains at the same global batch, and rank 0 alone evaluates and writes results.json."""
from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# No dropout: the one source of randomness not keyed by (seed, epoch, example), see the test's doc.
RUN = ["experiment=smoke", "logger=csv", "progress_bar=false", "arch=vit", "+arch.embed_dim=32", "+arch.depth=1",
       "+arch.num_heads=2", "+arch.drop_rate=0.0", "trainer.max_epochs=2", "data.train_subset=128",
       "data.val_size=63", "data.val_adv_points=31", "data.eval_batch_size=32", "attack.steps=2", "val_attack.steps=2",
       "callbacks.sparsity.train_points=32", "eval=quick", "eval.n_points=64", "eval.batch_size=32",
       "eval.sanity.enabled=false"]
# All-reduce sums gradients in another order than one process does: the weights agree to float
# rounding, losses to 1e-4 (relative), and an accuracy may differ by one example of the set it is
# measured on (an adversarial example whose argmax flips): 128 training (32 for the sparsity
# callback's fixed training subset), 63 validation, 31 attacked validation and 64 test points. The validation sizes do not divide by the 2 ranks: each image is
# still validated once (checked exactly against the same weights below).
LOSS_TOLERANCE = 1e-4
ONE_OF = {"train/acc_adv_fixed": 32, "train/": 128, "val/acc_clean": 63, "val/": 31, "final": 64}


def one_example(metric: str) -> float:
    return 100 / next(n for prefix, n in ONE_OF.items() if metric.startswith(prefix)) + 1e-9


def run(out: Path, cifar_root: Path, *extra: str) -> dict:
    done = subprocess.run([sys.executable, "-m", "robustgen", *RUN, f"data.root={cifar_root}", f"hydra.run.dir={out}",
                           *extra], cwd=out.parent, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "WANDB_MODE": "disabled"})
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads((out / "results.json").read_text())


def epoch_metrics(out: Path) -> dict[tuple[str, str], float]:
    rows = list(csv.DictReader(next(out.rglob("metrics.csv")).open()))
    return {(r["epoch"], k): float(v) for r in rows for k, v in r.items() if v and k.startswith(("train/", "val/"))}


def validation_accuracy(out: Path, cifar_root: Path) -> float:
    """Clean accuracy in % of the run's last.ckpt on its validation images, in one process."""
    import torch

    from robustgen.cli import build
    from robustgen.record.checkpoint import load_model
    from tests.helpers.hydra_helpers import compose_config

    datamodule = build(compose_config([*RUN, f"data.root={cifar_root}"], out).data)
    datamodule.setup("fit")
    model, _ = load_model(out / "checkpoints" / "last.ckpt")
    correct = total = 0
    with torch.no_grad():
        for x, y, _ in datamodule.val_dataloader()[0]:
            correct += int((model.eval()(x).argmax(1) == y).sum())
            total += len(y)
    assert total == 63
    return 100 * correct / total


def test_two_ranks_train_what_one_process_trains_at_the_same_global_batch(tmp_path, cifar_root):
    one = run(tmp_path / "one", cifar_root, "trainer=cpu", "data.batch_size=64")
    two = run(tmp_path / "two", cifar_root, "trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2",
              "data.batch_size=32")
    assert (one["world_size"], two["world_size"]) == (1, 2)
    assert two["n_points"] == one["n_points"] == 64
    assert two["clean_acc"] == pytest.approx(one["clean_acc"], abs=one_example("final"))
    assert two["worst_case_acc"] == pytest.approx(one["worst_case_acc"], abs=one_example("final"))
    for name, acc in one["attack_acc"].items():
        assert two["attack_acc"][name] == pytest.approx(acc, abs=one_example("final")), name
    a, b = epoch_metrics(tmp_path / "one"), epoch_metrics(tmp_path / "two")
    assert a.keys() == b.keys() and any(k[1] == "train/loss_adv" for k in a)
    for key, value in a.items():
        if "loss" in key[1]:
            assert b[key] == pytest.approx(value, rel=LOSS_TOLERANCE), key
        else:  # accuracies over the same images: validation slices are averaged over the ranks
            assert b[key] == pytest.approx(value, abs=one_example(key[1])), key
    # no slack against the same weights: the logged validation accuracy is the last.ckpt model's on
    # the 63 validation images, each counted once; the worst case is a count of the 31 attacked ones
    assert b[("1", "val/acc_clean")] == pytest.approx(validation_accuracy(tmp_path / "two", cifar_root), abs=1e-3)
    assert b[("1", "val/acc_worst")] * 31 / 100 == pytest.approx(round(b[("1", "val/acc_worst")] * 31 / 100), abs=1e-3)
    # rank 0 alone evaluated: one outcomes file with each test point once; rank 1 logged beside it
    ids = json.loads((tmp_path / "two" / "eval_outcomes.json").read_text())["examples"]["id"]
    assert ids == list(range(64))
    assert (tmp_path / "two" / "train_ddp_process_1.log").is_file()


@pytest.mark.parametrize("n, world, batch", [(128, 2, 32), (10, 3, 2), (7, 2, 3)])
def test_rank_shares_are_equal_disjoint_and_rebuild_the_one_process_batches(n, world, batch):
    from robustgen.data.datasets import EpochShuffle

    one = EpochShuffle(n, seed=5)
    ranks = [EpochShuffle(n, seed=5, rank=r, world=world) for r in range(world)]
    for sampler in (one, *ranks):
        sampler.set_epoch(3)
    order, shares = list(one), [list(r) for r in ranks]
    assert {len(s) for s in shares} == {n // world}  # equal: no rank waits for a batch another never takes
    assert sorted(sum(shares, [])) == sorted(order[:n // world * world])
    for k in range(-(-(n // world) // batch)):  # batch k of every rank = batch k of one process at world × batch
        together = sum((s[k * batch:(k + 1) * batch] for s in shares), [])
        assert sorted(together) == sorted(order[k * batch * world:(k + 1) * batch * world][:len(together)])
