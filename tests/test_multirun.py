"""`python -m robustgen -m ...` as a user runs it: a real Hydra multirun in a subprocess."""
from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.hydra_helpers import TINY

REPO = Path(__file__).resolve().parents[1]


def run_cli(*args: str, cwd: Path, threads: int = 2) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": str(threads)}
    return subprocess.run([sys.executable, "-m", "robustgen", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=600)


def test_patch_size_sweep_runs_one_job_per_study_patch_size(tmp_path, cifar_root):
    sweep_dir = tmp_path / "sweep"
    proc = run_cli("-m", "+sweep=patch_size", *TINY, f"data.root={cifar_root}", f"hydra.sweep.dir={sweep_dir}",
                   cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = [json.loads(p.read_text()) for p in sorted(sweep_dir.glob("*/results.json"))]
    assert sorted(r["arch"]["patch_size"] for r in results) == [2, 4, 8]
    assert len({r["best_checkpoint"] for r in results}) == 3  # no job overwrote another's folder
    summary = json.loads((sweep_dir / "summary.json").read_text())  # written when the multirun ended
    assert summary["planned"] == 3 and len(summary["done"]) == 3 and not summary["failed"] + summary["missing"]
    # the report over this real sweep, with one job's results lost: it is listed as missing
    from robustgen.report.__main__ import main as report

    lost = sorted(sweep_dir.glob("*/results.json"))[0]
    lost.unlink()
    assert report([str(sweep_dir), "--compare", "paper", "--out", str(tmp_path / "report")]) == 0
    md = (tmp_path / "report" / "report.md").read_text()
    assert "Missing: 1 sweep job(s)" in md and str(lost.parent) in md
    rows = {r["architecture"]: r for r in csv.DictReader((tmp_path / "report" / "hybrids_patches.csv").open())}
    for record in results[1:]:  # results[0] is the lost job's (both sorted by folder)
        row = rows[f"ViT p={record['arch']['patch_size']}"]
        assert float(row["worst_case"]) == pytest.approx(record["worst_case_acc"])
        assert float(row["clean"]) == pytest.approx(record["clean_acc"])


@pytest.mark.slow  # 21 s: two sweeps at once on 2 cores
def test_two_sweeps_started_together_never_collide(tmp_path, cifar_root):
    procs = [subprocess.Popen([sys.executable, "-m", "robustgen", "-m", *TINY, f"data.root={cifar_root}",
                               "seed=1,2"], cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(REPO),
                                                               "OMP_NUM_THREADS": "1"},
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    for p in procs:
        assert p.wait(timeout=600) == 0, p.stderr.read()[-3000:]
    assert len(list((tmp_path / "multirun").glob("*/*/*/results.json"))) == 4


def test_user_error_prints_a_message_not_a_traceback(tmp_path, cifar_root):
    proc = run_cli(*TINY, f"data.root={cifar_root}", "attack.eps=-1", cwd=tmp_path)
    assert proc.returncode == 2
    assert "robustgen: error: attack: PGD: eps must be ≥ 0" in proc.stderr and "Traceback" not in proc.stderr


def test_a_refused_job_is_recorded_and_the_sweep_goes_on(tmp_path, cifar_root):
    """Job 0 is refused (a user error), job 1 is valid: job 1 still runs, job 0's error is in its
    job_status.json and in summary.md, and the sweep ends with exit status 1 and the summary."""
    sweep_dir = tmp_path / "sweep"
    proc = run_cli("-m", *TINY, "attack.eps=-1,${div:8,255}", f"data.root={cifar_root}",
                   f"hydra.sweep.dir={sweep_dir}", cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    assert "robustgen: error: job 0 (" in proc.stderr and "eps must be ≥ 0" in proc.stderr
    assert "1/2 jobs done, 1 failed, 0 missing" in proc.stderr
    summary = json.loads((sweep_dir / "summary.json").read_text())
    assert [e["job"] for e in summary["done"]] == ["1_vit"] and [e["job"] for e in summary["failed"]] == ["0_vit"]
    assert "eps must be ≥ 0" in summary["failed"][0]["error"]
    assert "eps must be ≥ 0" in json.loads((sweep_dir / "0_vit" / "job_status.json").read_text())["error"]
    assert "eps must be ≥ 0" in (sweep_dir / "summary.md").read_text()


def test_the_submitit_local_launcher_runs_a_two_job_sweep(tmp_path, cifar_root):
    """hydra/launcher=local: the SLURM launcher's code path (pickled jobs, submitit folders) on this
    machine; the valid job writes its results.json, the refused one its error, and the sweep its
    summary and exit status 1."""
    sweep_dir = tmp_path / "sweep"
    proc = run_cli("-m", "attack.eps=${div:8,255},-1", *TINY, f"data.root={cifar_root}", "hydra/launcher=local",
                   f"hydra.sweep.dir={sweep_dir}", cwd=tmp_path, threads=1)  # the two jobs run at once
    assert proc.returncode == 1, proc.stderr[-3000:]
    results = [json.loads(p.read_text()) for p in sorted(sweep_dir.glob("*/results.json"))]
    assert [r["train_attack"]["eps"] for r in results] == [pytest.approx(8 / 255)]
    assert len([p for p in (sweep_dir / ".submitit").iterdir() if p.is_dir()]) >= 2  # submitit's job folders
    summary = json.loads((sweep_dir / "summary.json").read_text())
    assert summary["planned"] == 2 and len(summary["done"]) == 1 and len(summary["failed"]) == 1
    assert "eps must be ≥ 0" in summary["failed"][0]["error"]
