"""What scripts/gpu_check.sh runs works on a machine like the lent GPU machine: torch, lightning,
timm and the carried wheels (hydra-core, omegaconf, torchattacks), but no wandb, submitit, optuna
or Hydra plugins. Those are blocked here (an import of them raises ImportError), and the script's
commands run for real at a tiny size: the training benchmark and a training run through the CLI
with logger=csv. The first GPU call ever lent must not be spent on an ImportError."""
from __future__ import annotations

import subprocess
import sys

ABSENT = ("wandb", "submitit", "optuna", "hydra_plugins")


def run_without_extras(module: str, args: list[str], cwd) -> subprocess.CompletedProcess:
    code = ("import runpy, sys\n"
            f"for name in {ABSENT!r}:\n"
            "    sys.modules[name] = None  # `import name` raises ImportError, as where it is not installed\n"
            f"sys.argv = [{module!r}, *{args!r}]\n"
            f"runpy.run_module({module!r}, run_name='__main__', alter_sys=True)\n")
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=cwd, timeout=300)


def test_training_benchmark_runs_without_the_extras(cifar_root, tmp_path):
    done = run_without_extras("robustgen.bench", ["train", "--device", "cpu", "--data-root", str(cifar_root),
                                                  "--parts", "overhead", "--n-batches", "1", "--warmup", "0",
                                                  "--repeats", "1", "--batch-size", "16", "--steps", "1",
                                                  "--json", str(tmp_path / "bench.json")], tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert (tmp_path / "bench.json").is_file()


def test_a_training_run_works_without_the_extras(cifar_root, tmp_path):
    out = tmp_path / "run"
    done = run_without_extras("robustgen", [
        "experiment=smoke", "arch=vgg11", "arch.width=0.0625", "trainer.max_epochs=1", "data.train_subset=64",
        "data.val_size=16", "data.val_adv_points=8", "eval.n_points=8", "eval.batch_size=8", "eval.sanity.n_points=4",
        "eval.sanity.batch_size=4", "logger=csv", "progress_bar=false", "callbacks.sparsity.train_points=8",
        f"data.root={cifar_root}", f"hydra.run.dir={out}"], tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert (out / "results.json").is_file() and (out / "checkpoints" / "last.ckpt").is_file()
