"""The sweep summary (robustgen/record/sweep_summary.py, python -m robustgen.sweep): jobs done, failed and missing, with their folders."""
from __future__ import annotations

import json

from robustgen.cli.sweep_callback import planned_jobs
from robustgen.record.sweep_summary import record_failure, summarize
from robustgen.sweep import main
from tests.helpers.hydra_helpers import compose_config


def test_summary_sorts_jobs_into_done_failed_and_missing(tmp_path, capsys):
    for name in ("0_vit", "1_vit", "2_vit", "10_vit"):
        (tmp_path / name / ".hydra").mkdir(parents=True)
    (tmp_path / "0_vit" / "results.json").write_text("{}")
    (tmp_path / "10_vit" / "results.json").write_text("{}")
    record_failure(tmp_path / "1_vit", "attack: PGD: eps must be ≥ 0")
    summary = summarize(tmp_path, planned=12)
    assert [e["job"] for e in summary["done"]] == ["0_vit", "10_vit"]  # numeric order, not text order
    assert summary["failed"] == [{"job": "1_vit", "path": str(tmp_path / "1_vit"),
                                  "error": "attack: PGD: eps must be ≥ 0"}]
    missing = {e["job"]: e for e in summary["missing"]}
    assert missing["2_vit"]["path"] == str(tmp_path / "2_vit") and missing["3"]["why"] == "never started"
    assert len(summary["missing"]) == 1 + 8  # 2_vit, and jobs 3..9 and 11 never started
    md = (tmp_path / "summary.md").read_text()
    assert "2 of 12 jobs done, 1 failed, 9 missing" in md and "eps must be ≥ 0" in md
    assert json.loads((tmp_path / "summary.json").read_text()) == summary
    assert main([str(tmp_path)]) == 1 and "Failed (rerun these)" in capsys.readouterr().out


def test_planned_jobs_multiplies_the_swept_values_and_the_sweeper_params(tmp_path):
    assert planned_jobs(compose_config(["+sweep=patch_size", "arch=vit"], tmp_path)) == 3
    assert planned_jobs(compose_config(["+sweep=coatnet_stages", "arch=coatnet"], tmp_path)) == 4
    assert planned_jobs(compose_config(["seed=1"], tmp_path)) == 1
