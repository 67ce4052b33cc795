"""A run folder written by robustgen 0.2.0 before the house-plan restructuring (made by that code,
taken from git: tests/helpers/legacy_run.py; results.json, checkpoints, eval_outcomes.json) is still reported,
evaluated and resumed; and the report gives the same tables after a change of conf/arch defaults
for runs that recorded their architecture section, while only the old file follows today's conf/."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hydra.core.global_hydra import GlobalHydra

import robustgen.cli.study_defaults as study_defaults
from robustgen import CONFIG_DIR
from robustgen.report.__main__ import main as report_main
from tests.helpers.legacy_run import OVERRIDES
from tests.helpers.legacy_run import legacy_run as old_codes_run


@pytest.fixture(scope="module")
def old_run(cifar_root, tmp_path_factory) -> Path:
    """The run folder robustgen 0.2.0 wrote (never changed by the tests)."""
    return old_codes_run(cifar_root, tmp_path_factory.mktemp("legacy"))


@pytest.fixture
def legacy_run(old_run, tmp_path) -> Path:
    """A copy of it for one test to read and write."""
    run = tmp_path / "legacy"
    shutil.copytree(old_run, run)
    return run


def run_cli(module: str, args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True, cwd=cwd, timeout=300)


def test_an_old_run_is_reported_with_one_warning_naming_it(legacy_run, tmp_path, capsys):
    assert report_main([str(legacy_run), "--out", str(tmp_path / "report")]) == 0
    err = capsys.readouterr().err
    assert "warning: 1 results.json written before robustgen 0.3" in err and str(legacy_run / "results.json") in err
    row = (tmp_path / "report" / "main_table.csv").read_text().splitlines()[1].split(",")
    assert row[:2] == ["vgg11 arch.width=0.0625", "cnn"]  # label and family derived from the old file


def test_an_old_checkpoint_is_evaluated_to_the_same_outcomes(old_run, legacy_run, tmp_path, cifar_root):
    """Same weights, same attacks, same points: every point is broken by the same attack (or
    misclassified clean, or robust) as in the evaluation robustgen 0.2.0 wrote."""
    evaluation = [o for o in OVERRIDES if o.startswith("eval.")]
    done = run_cli("robustgen.evaluate", [f"checkpoint={legacy_run}/checkpoints/best.ckpt", "eval=quick",
                                          *evaluation, "progress_bar=false", f"data.root={cifar_root}",
                                          f"hydra.run.dir={tmp_path / 'eval'}"], tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    old = json.loads((old_run / "eval_outcomes.json").read_text())["examples"]
    new = json.loads((tmp_path / "eval" / "eval_outcomes.json").read_text())["examples"]
    assert new["id"] == old["id"] and new["broken_by"] == old["broken_by"]
    record = json.loads((tmp_path / "eval" / "results.json").read_text())
    legacy = json.loads((old_run / "results.json").read_text())
    assert record["clean_acc"] == legacy["clean_acc"] and record["worst_case_acc"] == legacy["worst_case_acc"]
    assert record["architecture"]["family"] == "cnn" and record["architecture"]["study_configuration"] is False


def test_an_old_checkpoint_is_resumed_for_one_more_epoch(legacy_run, tmp_path, cifar_root):
    overrides = [o for o in OVERRIDES if not o.startswith("trainer.max_epochs")]
    # robustgen 0.2 normalised CIFAR-10 with the data set's own std: the run continues with it
    done = run_cli("robustgen", [*overrides, "data.normalization=dataset_stats", "trainer.max_epochs=2", f"resume={legacy_run}/checkpoints/last.ckpt",
                                 f"data.root={cifar_root}", f"hydra.run.dir={tmp_path / 'resumed'}"], tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    record = json.loads((tmp_path / "resumed" / "results.json").read_text())
    assert record["epochs"] == 2 and record["resumed_from"].endswith("last.ckpt")
    # with today's default (the study's std) it is another training, and refused as one
    refused = run_cli("robustgen", [*overrides, "trainer.max_epochs=2", f"resume={legacy_run}/checkpoints/last.ckpt",
                                    f"data.root={cifar_root}", f"hydra.run.dir={tmp_path / 'refused'}"], tmp_path)
    assert refused.returncode == 2 and "data.normalization: 'dataset_stats' there, 'study' now" in refused.stderr


def test_tables_do_not_move_when_the_arch_defaults_change(legacy_run, tmp_path, monkeypatch, capsys):
    """conf/arch/vgg11.yaml's width changed to the run's 0.0625: a run that recorded its architecture
    section stays where it was; the old file, derived from today's conf/, becomes the study's row."""
    recorded = tmp_path / "recorded"
    shutil.copytree(legacy_run, recorded)
    record = json.loads((recorded / "results.json").read_text())
    record["architecture"] = study_defaults.describe_architecture(record)  # as a run records it today
    (recorded / "results.json").write_text(json.dumps(record))

    def table(run: Path, name: str) -> str:
        assert report_main([str(run), "--out", str(tmp_path / name)]) == 0
        return (tmp_path / name / "main_table.csv").read_text()

    before_recorded, before_legacy = table(recorded, "r1"), table(legacy_run, "l1")
    conf = tmp_path / "conf"
    shutil.copytree(CONFIG_DIR, conf)
    (conf / "arch" / "vgg11.yaml").write_text((conf / "arch" / "vgg11.yaml").read_text() + "width: 0.0625\n")
    monkeypatch.setattr(study_defaults, "CONFIG_DIR", str(conf))
    GlobalHydra.instance().clear()  # compose from this conf/, not a search path an earlier test left
    study_defaults.default_arch.cache_clear()
    try:
        assert table(recorded, "r2") == before_recorded
        after_legacy = table(legacy_run, "l2")
    finally:
        study_defaults.default_arch.cache_clear()
    assert after_legacy != before_legacy and after_legacy.splitlines()[1].startswith("vgg11,cnn")
    capsys.readouterr()
