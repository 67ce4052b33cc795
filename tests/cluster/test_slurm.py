"""Against a real one-node SLURM (tests/cluster/slurm_up.sh; `make test-cluster` starts it): a
2-job sweep through `hydra/launcher=slurm`, a job requeued mid-training (by `scontrol requeue`, and
by the signal SLURM sends before a time limit) that resumes and ends with the numbers of an
uninterrupted job, and a sharded evaluation run as a job array and merged."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.cluster
# CPU jobs on the test node: no GPU, one CPU, 2 GB.
SLURM = ["hydra/launcher=slurm", "hydra.launcher.gpus_per_node=0", "hydra.launcher.cpus_per_task=1",
         "hydra.launcher.mem_gb=2"]
# 4 epochs of 8 batches of a one-block ViT: long enough to requeue mid-training.
RUN = ["experiment=smoke", "logger=csv", "progress_bar=false", "arch=vit", "+arch.embed_dim=32", "+arch.depth=1",
       "+arch.num_heads=2", "trainer.max_epochs=4", "data.train_subset=256", "data.val_size=64",
       "data.val_adv_points=32", "data.batch_size=32", "data.eval_batch_size=32", "attack.steps=2",
       "val_attack.steps=2", "callbacks.sparsity.train_points=32", "eval=quick", "eval.n_points=64",
       "eval.batch_size=16", "eval.sanity.n_points=16"]
COMPARED = ("clean_acc", "attack_acc", "worst_case_acc", "best_val_acc_clean", "epochs", "metrics", "robust_gap")


@pytest.fixture(scope="module", autouse=True)
def slurm_is_up():
    if shutil.which("sinfo") is None or subprocess.run(["sinfo"], capture_output=True).returncode:
        pytest.skip("no SLURM here: run `make test-cluster` (starts one with tests/cluster/slurm_up.sh)")


def env() -> dict:
    return {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "WANDB_MODE": "disabled"}


def multirun(module: str, *args: str, cwd: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", module, "-m", *args], cwd=cwd, env=env(),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def finished(proc: subprocess.Popen, timeout: float = 900) -> str:
    out, _ = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, out[-4000:]
    return out


def slurm_job_ids(sweep: Path) -> list[str]:
    """The SLURM ids of a sweep's jobs, from submitit's folders: <sweep>/.submitit/<array>_<task> for
    the tasks of an array (its <array> folder holds the script), <sweep>/.submitit/<job> for one job."""
    names = [p.name for p in (sweep / ".submitit").iterdir() if p.is_dir() and p.name[0].isdigit()]
    tasks = sorted(n for n in names if "_" in n)
    return tasks or sorted(names)


def test_a_two_job_sweep_runs_as_sbatch_jobs(tmp_path, cifar_root):
    sweep = tmp_path / "sweep"
    out = finished(multirun("robustgen", "seed=1,2", *RUN, "trainer.max_epochs=1", f"data.root={cifar_root}",
                            *SLURM, f"hydra.sweep.dir={sweep}", cwd=tmp_path))
    assert len(slurm_job_ids(sweep)) == 2  # a job array of two tasks
    results = [json.loads(p.read_text()) for p in sorted(sweep.glob("*/results.json"))]
    assert sorted(r["seed"] for r in results) == [1, 2]
    summary = json.loads((sweep / "summary.json").read_text())
    assert len(summary["done"]) == 2 and summary["planned"] == 2 and not summary["failed"] + summary["missing"]
    assert "2/2 jobs done" in out
    text = next((sweep / ".submitit").glob("*/*_submission.sh")).read_text()
    assert "#SBATCH --requeue" in text and "export ROBUSTGEN_RESUME=auto" in text and "--signal=USR2@120" in text


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, cifar_root):
    sweep = tmp_path_factory.mktemp("uninterrupted")
    finished(multirun("robustgen", *RUN, f"data.root={cifar_root}", *SLURM, f"hydra.sweep.dir={sweep}", cwd=sweep))
    return json.loads(next(sweep.glob("*/results.json")).read_text())


@pytest.mark.parametrize("how", ["scontrol requeue", "time-limit signal (USR2)"])
def test_a_requeued_job_resumes_and_ends_with_the_uninterrupted_numbers(how, uninterrupted, tmp_path, cifar_root):
    sweep = tmp_path / "sweep"
    proc = multirun("robustgen", *RUN, f"data.root={cifar_root}", *SLURM, f"hydra.sweep.dir={sweep}", cwd=tmp_path)
    deadline = time.time() + 600
    while not list(sweep.glob("*/checkpoints/last.ckpt")):  # after the first epoch: mid-training
        assert proc.poll() is None and time.time() < deadline, "the job ended before its first checkpoint"
        time.sleep(0.5)
    assert not list(sweep.glob("*/results.json"))
    (job,) = slurm_job_ids(sweep)
    if how == "scontrol requeue":
        subprocess.run(["scontrol", "requeue", job], check=True)
    else:  # what SLURM sends signal_delay_s before the limit: submitit checkpoints and requeues itself
        subprocess.run(["scancel", "--signal=USR2", job], check=True)
    finished(proc)
    (run,) = list(sweep.glob("*/results.json"))
    results = json.loads(run.read_text())
    assert results["resumed_from"] and results["resumed_from"].endswith("last.ckpt")
    for key in COMPARED:
        assert results.get(key) == uninterrupted.get(key), key


def test_a_sharded_evaluation_runs_as_a_job_array_and_merges(uninterrupted, tmp_path, cifar_root):
    ckpt = uninterrupted["best_checkpoint"]
    quick = ["eval=quick", "eval.n_points=64", "eval.batch_size=16", "progress_bar=false", f"data.root={cifar_root}",
             f"checkpoint={ckpt}"]
    sweep = tmp_path / "shards"
    finished(multirun("robustgen.evaluate", *quick, "eval.shard=0/2,1/2", *SLURM, f"hydra.sweep.dir={sweep}",
                      cwd=tmp_path))
    assert len(slurm_job_ids(sweep)) == 2
    merged = json.loads((sweep / "merged" / "results.json").read_text())
    whole = subprocess.run([sys.executable, "-m", "robustgen.evaluate", *quick, f"hydra.run.dir={tmp_path / 'whole'}"],
                           cwd=tmp_path, env=env(), capture_output=True, text=True)
    assert whole.returncode == 0, whole.stderr[-3000:]
    single = json.loads((tmp_path / "whole" / "results.json").read_text())
    for key in ("n_points", "clean_acc", "attack_acc", "worst_case_acc"):
        assert merged[key] == single[key], key
    a = json.loads((sweep / "merged" / "eval_outcomes.json").read_text())["examples"]
    b = json.loads((tmp_path / "whole" / "eval_outcomes.json").read_text())["examples"]
    assert a == b


def test_an_unknown_partition_is_one_line_naming_the_setting(tmp_path, cifar_root):
    done = subprocess.run([sys.executable, "-m", "robustgen", "-m", *RUN, f"data.root={cifar_root}", *SLURM,
                           "hydra.launcher.partition=nosuch", f"hydra.sweep.dir={tmp_path / 'sweep'}"],
                          cwd=tmp_path, env=env(), capture_output=True, text=True, timeout=300)
    ours = [line for line in done.stderr.splitlines() if line.startswith("robustgen: error:")]
    assert done.returncode == 2 and len(ours) == 1 and "Traceback" not in done.stderr
    assert "invalid partition" in ours[0] and "hydra.launcher.partition" in ours[0]
