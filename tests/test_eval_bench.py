"""The evaluation benchmark's plumbing on a small budget: it runs both schedules on the same points
and reports the same worst case for both (its numbers are ratios, never asserted as times)."""
from __future__ import annotations

import pytest

from robustgen.bench.__main__ import main as bench_main
from robustgen.bench.eval_bench import load_attack_set, run_eval_bench
from robustgen.errors import ConfigError


def test_bench_compares_schedules_on_the_same_points(robust_cnn, cifar_root, one_thread):
    lines: list[str] = []
    numbers = run_eval_bench(model=robust_cnn, n_points=96, eval_set="quick", data_root=str(cifar_root),
                             pgd_points=16, pgd_steps=2, repeats=1, log=lines.append)
    cascade, every = numbers["cascade"], numbers["every_attack"]
    assert numbers["identical_worst_case"] and numbers["points_with_different_first_break"] == []
    assert cascade["worst_case_acc"] == every["worst_case_acc"] <= min(numbers["attack_acc"].values())
    assert all(cascade["attacked_points"][k] <= every["attacked_points"][k] for k in every["attacked_points"])
    assert cascade["attacked_points"]["pgd_l1"] < every["attacked_points"]["pgd_l1"]
    assert numbers["speedup"] > 0 and numbers["pgd"]["ratio"] > 0
    assert set(numbers["pgd"]["per_step_s"]) == {"robustgen", "torchattacks"}
    assert any("cascade speed-up" in line for line in lines)


def test_unknown_attack_set_is_refused_with_the_options():
    with pytest.raises(ConfigError, match="no attack set 'papr'; options: .*paper"):
        load_attack_set("papr")
    attacks, batch_size = load_attack_set("paper")
    assert list(attacks) == ["pgd_linf", "pgd_l2", "pgd_l1", "aa_linf"] and batch_size > 0


def test_cli_reports_user_errors_with_exit_code_2(capsys):
    assert bench_main(["eval", "--eval-set", "papr"]) == 2
    assert "robustgen: error: no attack set" in capsys.readouterr().err
