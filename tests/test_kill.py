"""SIGKILL a real training run at several points, rerun the same command, get the same numbers.

Interrupting is the normal life of a cluster job. Each case runs `python -m robustgen` as a real
process (tiny ViT, CPU, deterministic), kills it (SIGKILL: no handler, no cleanup) mid-epoch, during
validation or during the final evaluation, reruns the same command (`resume=auto` into the same
folder), and compares the final results.json with the one of an uninterrupted run.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# 3 epochs of 4 batches, 2-step PGD-AT, 64 evaluation points in 8 batches of 8.
RUN = ["experiment=smoke", "logger=csv", "progress_bar=false", "arch=vit", "+arch.embed_dim=32", "+arch.depth=1",
       "+arch.num_heads=2", "trainer.max_epochs=3", "data.train_subset=128", "data.val_size=64",
       "data.val_adv_points=32", "data.batch_size=32", "data.eval_batch_size=32", "attack.steps=2",
       "val_attack.steps=2", "callbacks.sparsity.train_points=32", "eval=quick", "eval.n_points=64",
       "eval.batch_size=8", "eval.sanity.n_points=16", "resume=auto"]
# What must not depend on the interruption (times, paths and resume bookkeeping may).
COMPARED = ("clean_acc", "attack_acc", "worst_case_acc", "best_val_acc_clean", "epochs", "metrics", "sparsity",
            "robust_gap", "bound", "n_points")


def command(out: Path, cifar_root: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "robustgen", *RUN, f"data.root={cifar_root}", f"hydra.run.dir={out}", *extra]


def env() -> dict:
    return {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "WANDB_MODE": "disabled"}


def finish(cmd: list[str]) -> dict:
    done = subprocess.run(cmd, cwd=REPO, env=env(), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    out = Path(next(a for a in cmd if a.startswith("hydra.run.dir=")).split("=", 1)[1])
    return json.loads((out / "results.json").read_text())


def same_numbers(a: dict, b: dict) -> None:
    for key in COMPARED:
        assert a.get(key) == b.get(key), key


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, cifar_root):
    out = tmp_path_factory.mktemp("kill") / "uninterrupted"
    return finish(command(out, cifar_root))


# Mid-epoch runs by default (it is the case a preempted job hits most); the other two kill points
# are slow-marked to keep the default run inside its budget (`make test-slow` runs them).
@pytest.mark.parametrize("stage, epoch, batch", [
    ("train", 1, 2),
    pytest.param("val", 2, 1, marks=pytest.mark.slow),
    pytest.param("train", 0, 1, marks=pytest.mark.slow)],
    ids=["mid-epoch", "during-validation", "first-epoch"])
def test_killed_during_training_resumes_to_the_same_numbers(uninterrupted, tmp_path, cifar_root, stage, epoch, batch):
    out, marker = tmp_path / "run", tmp_path / "killed"
    kill = ["+callbacks.kill._target_=tests.helpers.kill_helpers.KillOnce", f"+callbacks.kill.marker={marker}",
            f"+callbacks.kill.stage={stage}", f"+callbacks.kill.epoch={epoch}", f"+callbacks.kill.batch={batch}"]
    cmd = command(out, cifar_root, *kill)
    first = subprocess.run(cmd, cwd=REPO, env=env(), capture_output=True, text=True, timeout=600)
    assert first.returncode == -signal.SIGKILL, first.stderr[-2000:]
    assert marker.is_file() and not (out / "results.json").exists()
    resumed = finish(cmd)  # the same command again
    same_numbers(resumed, uninterrupted)
    assert (resumed["resumed_from"] is not None) == (epoch > 0)  # nothing to resume before the first epoch ends


def test_killed_during_the_final_evaluation_resumes_to_the_same_numbers(uninterrupted, tmp_path, cifar_root):
    out = tmp_path / "run"
    cmd = command(out, cifar_root)
    outcomes = out / "eval_outcomes.json"
    process = subprocess.Popen(cmd, cwd=REPO, env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 600
        while not outcomes.exists() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        process.send_signal(signal.SIGKILL)  # the first evaluation batch has just been saved
        process.wait(timeout=60)
    finally:
        process.kill()
    done = json.loads(outcomes.read_text())["examples"]["id"]
    assert 0 < len(done) < 64, "the kill did not land during the evaluation"
    resumed = finish(cmd)
    same_numbers(resumed, uninterrupted)
    assert resumed["eval"]["resumed_points"] == len(done)


def test_results_record_the_library_versions(uninterrupted):
    import lightning
    import numpy
    import timm
    import torch
    import torchattacks

    libraries = uninterrupted["libraries"]
    for module, name in ((torch, "torch"), (lightning, "lightning"), (timm, "timm"), (numpy, "numpy"),
                         (torchattacks, "torchattacks")):
        assert libraries[name] == module.__version__.split("+")[0] or libraries[name] == module.__version__, name
