"""A run folder written by robustgen 0.2.0 — the code of commit 52298ec, before the house-plan
restructuring — for testing that today's code still reports, evaluates and resumes result files
it did not write. The old code is taken from this clone's git history (`git archive`) and run in
this environment, so the folder (results.json, eval_outcomes.json, best/last.ckpt) is truly the
old code's, and no checkpoint needs to be kept in the repository. About 10 s on one core."""
from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from tests.helpers.shared_files import shared_path

REPO = Path(__file__).resolve().parents[2]
LEGACY_COMMIT = "52298ecdf28c452d716190aa66eab06f9c04e617"  # robustgen 0.2.0
# The run: 1 epoch of the smoke experiment on a VGG-11 at 1/16 width, 20 evaluation points
OVERRIDES = ["experiment=smoke", "arch=vgg11", "arch.width=0.0625", "trainer.max_epochs=1", "data.train_subset=128",
             "data.val_size=32", "data.val_adv_points=16", "eval.n_points=20", "eval.batch_size=20",
             "eval.sanity.n_points=8", "eval.sanity.batch_size=8", "logger=csv", "progress_bar=false",
             "callbacks.sparsity.train_points=16"]
_CACHE: dict[str, Path] = {}


def legacy_run(cifar_root: Path, scratch: Path) -> Path:
    """The old code's run folder for this test session (made on first use; shared by the
    pytest-xdist workers). `scratch`: a session folder to make it in outside xdist."""
    if "run" not in _CACHE:
        with shared_path("legacy_run_v020") as shared:
            folder = shared or scratch / "legacy_run_v020"
            if not (folder / "results.json").is_file():
                write_legacy_run(folder, cifar_root)
        _CACHE["run"] = folder
    return _CACHE["run"]


def write_legacy_run(folder: Path, cifar_root: Path) -> None:
    """Run robustgen 0.2.0 (its robustgen/ and conf/ from git) with OVERRIDES into `folder`."""
    code = folder.parent / f"{folder.name}_code"
    archive = subprocess.run(["git", "-C", str(REPO), "archive", LEGACY_COMMIT, "robustgen", "conf"],
                             capture_output=True)
    if archive.returncode:
        pytest.fail(f"cannot read robustgen 0.2.0 (commit {LEGACY_COMMIT[:7]}) from this clone's git history "
                    f"({archive.stderr.decode().strip()[:200]}): the legacy-run tests run that code; use a clone "
                    "with the full history (git fetch --unshallow)")
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(code, filter="data")
    env = {**os.environ, "PYTHONPATH": str(code), "OMP_NUM_THREADS": "1"}  # the old package, not today's
    env.pop("ROBUSTGEN_RESUME", None)
    done = subprocess.run([sys.executable, "-m", "robustgen", *OVERRIDES, f"data.root={cifar_root}",
                           f"hydra.run.dir={folder}"], cwd=code, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert (folder / "checkpoints" / "last.ckpt").is_file() and (folder / "eval_outcomes.json").is_file()
    # written by the old code, not today's (which records the architecture section in every run)
    assert "architecture" not in json.loads((folder / "results.json").read_text())
