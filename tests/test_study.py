"""`make paper` / `make paper-smoke` (robustgen/study.py): every stage composes to a valid config,
finished stages are skipped only for the same command, and bad input ends in one line."""
from __future__ import annotations

import json
import re
import subprocess

import pytest

from robustgen.cli import build
from robustgen.study import STAGE_FILE, Stage, main, run_stage, stages
from tests.helpers.hydra_helpers import compose_config


def first_job(overrides: list[str]) -> list[str]:
    """The first job of a stage's multirun: every comma list reduced to its first value."""
    return [o if "[" in o or "${" in o else re.sub(r"=([^,]+),.*$", r"=\1", o) for o in overrides]


@pytest.mark.parametrize("smoke", [True, False], ids=["smoke", "paper"])
def test_every_stage_composes_and_the_smoke_cuts_only_what_it_says(smoke, tmp_path):
    names = [s.name for s in stages(smoke)]
    assert {"zoo", "zoo_vanilla", "hybrids", "patches_vit", "l1"} <= set(names)
    for stage in stages(smoke):
        overrides = first_job(stage.overrides) + (["experiment=paper_smoke"] if smoke else [])
        cfg = compose_config(overrides, tmp_path)
        if "eval=paper" in stage.overrides:
            aa = build(cfg.eval.attacks.aa_linf).describe()
            assert list(aa["components"]) == (["apgd-ce"] if smoke else ["apgd-ce", "apgd-t", "fab-t", "square"])
            assert cfg.eval.attacks.pgd_l1.eps == 40.0  # budgets stay the study's in the smoke too
        if stage.name == "zoo":
            assert cfg.eval.corrupted.enabled
    if not smoke:
        assert "patches_pvtv2" in names and "hybrids_vanilla" in names


def test_a_stage_finished_with_the_same_command_is_skipped_and_a_changed_one_reruns(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(subprocess, "call", lambda command: calls.append(command) or 0)
    stage = Stage("hybrids", ["arch=coatnet", "arch.stages=CTTT"])
    job = tmp_path / "hybrids" / "0_arch.stages=CTTT"
    (job / ".hydra").mkdir(parents=True)
    (job / "results.json").write_text("{}")
    assert run_stage(stage, tmp_path, ["seed=1"]) and len(calls) == 1  # no stage.json yet: it runs
    assert json.loads((tmp_path / "hybrids" / STAGE_FILE).read_text())["finished"]
    assert run_stage(stage, tmp_path, ["seed=1"]) and len(calls) == 1  # same command, all done: skipped
    assert run_stage(stage, tmp_path, ["seed=2"]) and len(calls) == 2  # another seed: runs again
    (job / "results.json").unlink()
    assert not run_stage(stage, tmp_path, ["seed=2"]) and len(calls) == 3  # a job without results: incomplete


@pytest.mark.parametrize("args, says", [
    (["--data-root", "{tmp}"], "no CIFAR-10 in"),
    (["--smoke", "--only", "zoo,nosuch"], "unknown stage"),
])
def test_bad_input_is_one_line_before_any_job(args, says, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(subprocess, "call", lambda command: pytest.fail(f"ran {command}"))
    with pytest.raises(SystemExit) as stopped:
        main([a.replace("{tmp}", str(tmp_path)) for a in args] + ["--out", str(tmp_path / "study")])
    err = capsys.readouterr().err
    assert stopped.value.code == 2 and says in err and len(err.strip().splitlines()) == 1


REPORT_FILES = ["report.md", "main_table.csv", "main_table_vs_paper.csv", "hybrids_patches.csv", "corruptions.csv",
                "sparsity_analysis.csv", "claims.csv", "worst_case.png", "design_trends.png",
                "robust_generalization.png", "clean_vs_worst_case.png"]


def check_smoke_study(out) -> list[dict]:
    """The smoke study in `out` finished every job, each run's clean accuracy and (adversarially
    trained) PGD-ℓ∞ accuracy have 95% Wilson intervals above chance (10%), every run recorded the
    smoke scale, and the report has every table and figure. Returns the runs' results."""
    from robustgen.report.stats import wilson_interval

    files = sorted(out.glob("*/*/results.json"))
    runs = [json.loads(f.read_text()) for f in files]
    assert len(runs) == 10, files  # zoo 3, vanilla 3, CTTT + CCCC, ViT p=8, ℓ1
    for f, run in zip(files, runs):
        n = run["n_points"]
        assert n == 500 and run["architecture"]["scale"]["name"] == "smoke", f
        assert wilson_interval(run["clean_acc"], n)[0] > 10, (f, run["clean_acc"])
        if run["choices"]["attack"] != "none":
            assert wilson_interval(run["attack_acc"]["pgd_linf"], n)[0] > 10, (f, run["attack_acc"])
    missing = [name for name in REPORT_FILES if not (out / "report" / name).is_file()]
    assert not missing
    return runs


@pytest.mark.slow  # the smoke study itself: ~12 minutes on 2 cores
def test_the_smoke_study_ends_above_chance_with_every_table_and_figure(tmp_path, cifar_root):
    assert main(["--smoke", "--out", str(tmp_path / "study"), "--data-root", str(cifar_root)]) == 0
    check_smoke_study(tmp_path / "study")
