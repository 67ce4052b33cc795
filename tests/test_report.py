"""The report from synthetic results.json files with known numbers: exact cells, the vanilla join,
seed groups, refused mixtures, missing jobs, the paper comparison and the statistics."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from robustgen.cli.study_defaults import describe_architecture
from robustgen.report.__main__ import main
from robustgen.report.compare import compare_runs
from robustgen.report.main_table import main_table
from robustgen.report.paper import beside_paper, paper_table
from robustgen.report.runs import ReportError, collect
from robustgen.report.stats import group_difference, mcnemar_exact, seeds_points_interval, wilson_interval

PGD_L1 = {"type": "PGD", "norm": "l1", "eps": 40.0, "steps": 20, "step_size": 3.0, "random_start": "ball",
          "l1_variant": "study"}


def write_run(folder: Path, arch: str, *, seed: int = 1, vanilla: bool = False, clean: float = 80.0,
              attacks: dict | None = None, worst: float | None = 30.0, n: int = 1000, params: int = 9_000_000,
              l1: dict | None = None, overrides: list | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / ".hydra").mkdir(exist_ok=True)
    attacks = {} if vanilla else (attacks or {"pgd_linf": 45.0, "pgd_l2": 30.0, "pgd_l1": 40.0})
    settings = {name: ({"type": "PGD", "norm": name.split("_")[1]} if name != "pgd_l1" else (l1 or PGD_L1))
                for name in attacks}
    record = {"choices": {"arch": arch, "data": "cifar10", "attack": "none" if vanilla else "pgd_linf"},
              "overrides": overrides or [], "arch": {"name": arch}, "seed": seed, "params": params,
              "method": {"name": "pgd_at"}, "n_points": n, "clean_acc": clean, "attack_acc": attacks,
              "worst_case_acc": None if vanilla else worst, "eval_attacks": settings}
    record["architecture"] = describe_architecture(record)  # as a run records it (robustgen/record/architecture.py)
    (folder / "results.json").write_text(json.dumps(record))
    return folder


def test_main_table_groups_seeds_and_joins_vanilla(tmp_path):
    write_run(tmp_path / "vit_s1", "vit", seed=1, clean=78.0, attacks={"pgd_linf": 46.0, "pgd_l2": 31.0}, worst=29.0)
    write_run(tmp_path / "vit_s2", "vit", seed=2, clean=80.0, attacks={"pgd_linf": 44.0, "pgd_l2": 33.0}, worst=31.0)
    write_run(tmp_path / "vit_vanilla", "vit", vanilla=True, clean=86.7)
    write_run(tmp_path / "resnet", "resnet", clean=82.0, attacks={"pgd_linf": 50.0}, worst=45.0, n=500)
    table = main_table(collect([tmp_path]).runs).set_index("architecture")
    vit, resnet = table.loc["vit"], table.loc["resnet"]
    clean = vit["clean"]
    assert (clean["mean"], clean["n"], clean["acc"]) == (79.0, 2, [78.0, 80.0])
    assert clean["std"] == pytest.approx(np.std([78, 80], ddof=1))
    assert clean["ci"][0] < 78.0 and clean["ci"][1] > 80.0  # seeds 2 points apart, each ±2.5 over 1000 points
    assert vit["pgd_l2"]["mean"] == 32.0 and vit["worst_case"]["mean"] == 30.0 and vit["runs"] == 2
    assert vit["seeds"] == [1, 2] and vit["aa_linf"] is None
    assert vit["vanilla_acc"]["mean"] == 86.7
    assert resnet["vanilla_acc"] is None and resnet["pgd_linf"]["n"] == 1
    assert resnet["pgd_linf"]["ci"] == pytest.approx(wilson_interval(50.0, 500))


def test_a_column_mixing_attack_settings_is_refused_naming_the_runs(tmp_path):
    write_run(tmp_path / "a", "vit")
    write_run(tmp_path / "b", "resnet", l1={**PGD_L1, "l1_variant": "strong"})
    with pytest.raises(ReportError, match="column pgd_l1 would mix different attack settings") as err:
        main_table(collect([tmp_path]).runs)
    assert str(tmp_path / "a") in str(err.value) and str(tmp_path / "b") in str(err.value)


def test_sweep_jobs_without_results_are_listed_as_missing(tmp_path, capsys):
    sweep = tmp_path / "multirun" / "2026-12-01" / "10-00-00"
    write_run(sweep / "0_arch=vit", "vit")
    failed = sweep / "1_arch=resnet"
    (failed / ".hydra").mkdir(parents=True)
    found = collect([str(tmp_path / "multirun" / "*" / "*")])
    assert [r.arch for r in found.runs] == ["vit"] and found.missing == [failed]
    assert main([str(sweep), "--out", str(tmp_path / "report")]) == 0
    report = (tmp_path / "report" / "report.md").read_text()
    assert "Missing: 1 sweep job(s) without results.json" in report and str(failed) in report
    assert (tmp_path / "report" / "main_table.csv").is_file()
    assert "\\toprule" in (tmp_path / "report" / "main_table.tex").read_text()


def test_a_failed_sweep_job_is_reported_with_the_error_it_recorded(tmp_path, capsys):
    from robustgen.record.sweep_summary import record_failure

    sweep = tmp_path / "sweep"
    write_run(sweep / "0_arch=vit", "vit")
    for job in ("1_attack.eps=-1", "2_arch=resnet"):
        (sweep / job / ".hydra").mkdir(parents=True)
    record_failure(sweep / "1_attack.eps=-1", "attack.eps must be ≥ 0, got -1")
    assert main([str(sweep), "--out", str(tmp_path / "report")]) == 0
    report = (tmp_path / "report" / "report.md").read_text()
    assert f"**Failed: 1 sweep job(s)**" in report
    assert f"- {sweep / '1_attack.eps=-1'}: attack.eps must be ≥ 0, got -1" in report
    assert "**Missing: 1 sweep job(s) without results.json**" in report and f"- {sweep / '2_arch=resnet'}" in report
    out = capsys.readouterr().out
    assert "failed: 1 job(s)" in out and "missing: 1 job(s)" in out


def test_paper_comparison_differences_and_rank_agreement(tmp_path):
    paper = paper_table().set_index("architecture")
    rows = {"vit": "ViT", "pvtv2": "PVTv2", "resnet": "ResNet", "vgg": "VGG"}
    for arch, name in rows.items():  # ours = paper + 1 point in PGD-ℓ∞; reversed order in PGD-ℓ2
        write_run(tmp_path / arch, arch, clean=paper.loc[name, "at_clean_acc"],
                  attacks={"pgd_linf": paper.loc[name, "pgd_linf"] + 1.0, "pgd_l2": 100 - paper.loc[name, "pgd_l2"]},
                  worst=paper.loc[name, "worst_case"])
    cells, rankings = beside_paper(main_table(collect([tmp_path]).runs))
    assert cells["pgd_linf_diff"].tolist() == pytest.approx([1.0] * 4)
    assert cells["clean_diff"].tolist() == pytest.approx([0.0] * 4)
    by_column = rankings.set_index("column")
    assert by_column.loc["pgd_linf", "spearman"] == pytest.approx(1.0)
    assert by_column.loc["pgd_linf", "kendall"] == pytest.approx(1.0)
    assert by_column.loc["pgd_l2", "spearman"] == pytest.approx(-1.0)
    ours = [100 - paper.loc[rows[a], "pgd_l2"] for a in sorted(rows)]
    theirs = [paper.loc[rows[a], "pgd_l2"] for a in sorted(rows)]
    assert by_column.loc["pgd_l2", "kendall_p"] == pytest.approx(stats.kendalltau(ours, theirs).pvalue)
    assert by_column.loc["pgd_l2", "n"] == 4 and np.isnan(by_column.loc["aa_linf", "spearman"])


def test_wilson_interval_covers_a_known_binomial_95_percent_of_the_time():
    rng = np.random.default_rng(0)
    p, n = 0.3, 200
    draws = rng.binomial(n, p, size=4000)
    covered = [low <= 100 * p <= high for low, high in (wilson_interval(100 * k / n, n) for k in draws)]
    assert 0.93 <= np.mean(covered) <= 0.97


def write_outcomes(folder: Path, broken_by: list, data: str = "cifar10-test") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "eval_outcomes.json").write_text(json.dumps({
        "format": "robustgen.eval_outcomes/1", "about": {"data_content": data},
        "examples": {"id": list(range(len(broken_by))), "broken_by": broken_by,
                     "robust/pgd_linf": [None if b == "clean" else b is None for b in broken_by]}}))
    return folder


def test_mcnemar_matches_a_hand_count_and_the_exact_binomial_test(tmp_path):
    # 20 points: both right 5, only A 9, only B 2, both wrong 4
    a = [None] * 5 + [None] * 9 + ["pgd_linf"] * 2 + ["pgd_l2"] * 4
    b = [None] * 5 + ["pgd_l1"] * 9 + [None] * 2 + ["clean"] * 4
    test, n = compare_runs(write_outcomes(tmp_path / "a", a), write_outcomes(tmp_path / "b", b))
    assert n == 20 and (test.both_correct, test.only_a, test.only_b, test.both_wrong) == (5, 9, 2, 4)
    assert test.p_value == pytest.approx(stats.binomtest(2, 11, 0.5).pvalue)
    assert mcnemar_exact(np.array([True, False]), np.array([True, False])).p_value == pytest.approx(1.0)
    with pytest.raises(ReportError, match="different test data"):
        compare_runs(tmp_path / "a", write_outcomes(tmp_path / "c", a, data="other"))
    assert main(["compare", str(tmp_path / "a"), str(tmp_path / "b"), "--measure", "bogus"]) == 2


def test_sparsity_analysis_is_reachable_through_the_report(tmp_path, capsys):
    """`python -m robustgen.report sparsity` is the old `python -m robustgen.analyze sparsity`."""
    assert main(["sparsity", str(tmp_path / "absent")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_hybrid_and_patch_rows_are_named_and_compared_as_the_paper_names_them(tmp_path):
    from robustgen.report.paper import hybrid_patch_paper, hybrids_and_patches

    paper = hybrid_patch_paper().set_index("architecture")
    for stages in ("CCCC", "CTTT"):  # written out of the paper's order
        run = write_run(tmp_path / stages, "coatnet", clean=paper.loc[f"CoAtNet-{stages}", "at_clean_acc"] + 0.5)
        record = json.loads((run / "results.json").read_text())
        record["arch"] = {"name": "coatnet", "stages": stages}
        record["architecture"] = describe_architecture(record)
        (run / "results.json").write_text(json.dumps(record))
    run = write_run(tmp_path / "vit2", "vit", clean=paper.loc["ViT p=2", "at_clean_acc"])
    record = json.loads((run / "results.json").read_text())
    record["arch"] = {"name": "vit", "patch_size": 2}
    record["architecture"] = describe_architecture(record)
    (run / "results.json").write_text(json.dumps(record))
    write_run(tmp_path / "resnet", "resnet")  # not a hybrid or patch row
    table = hybrids_and_patches(main_table(collect([tmp_path]).runs))
    assert table["architecture"].tolist() == ["CoAtNet-CTTT", "CoAtNet-CCCC", "ViT p=2"]  # the paper's order
    cells, _ = beside_paper(table, "hybrids")
    assert cells["clean_diff"].tolist() == pytest.approx([0.5, 0.5, 0.0])
    assert main([str(tmp_path), "--compare", "paper", "--out", str(tmp_path / "report")]) == 0
    assert "## Hybrids and patch sizes" in (tmp_path / "report" / "report.md").read_text()


def test_runs_that_differ_in_more_than_the_seed_get_rows_of_their_own(tmp_path):
    for name, epochs, seed in (("e10_s1", 10, 1), ("e10_s2", 10, 2), ("e20_s1", 20, 1)):
        run = write_run(tmp_path / name, "vit", seed=seed)
        record = json.loads((run / "results.json").read_text())
        record["epochs"] = epochs
        (run / "results.json").write_text(json.dumps(record))
    table = main_table(collect([tmp_path]).runs).set_index("architecture")
    assert table["runs"].to_dict() == {"vit epochs=10": 2, "vit epochs=20": 1}


def test_seed_group_interval_is_the_pooled_binomial_when_seeds_agree_and_wider_when_they_do_not():
    low, high = seeds_points_interval([60.0, 60.0, 60.0], [1000] * 3)
    w_low, w_high = wilson_interval(60.0, 3000)  # equal seeds: only the 3 × 1000 points vary
    assert (high - low) == pytest.approx(w_high - w_low, rel=0.1) and low < 60 < high
    d_low, d_high = seeds_points_interval([56.0, 60.0, 64.0], [1000] * 3)
    assert d_high - d_low > 2 * (high - low)


def test_group_difference_recovers_a_known_difference_with_an_interval_around_it():
    a = [([40.0], [10000]), ([42.0], [10000]), ([44.0], [10000])]
    b = [([30.0], [10000]), ([32.0], [10000])]
    result = group_difference(a, b)
    assert result.difference == pytest.approx(42.0 - 31.0) and (result.n_a, result.n_b) == (3, 2)
    assert 8.0 < result.ci[0] < 11.0 < result.ci[1] < 14.0
    assert group_difference(b, a).difference == pytest.approx(-11.0)


def test_spearman_p_is_exact_for_few_architectures():
    from robustgen.report.stats import rank_agreement

    perfect = rank_agreement([10.0, 20.0, 30.0], [1.0, 2.0, 3.0])
    assert perfect.spearman == pytest.approx(1.0) and perfect.spearman_p == pytest.approx(2 / 6)  # 2 of 3! pairings
    many = rank_agreement(list(range(12)), list(range(12)))
    assert many.spearman_p == pytest.approx(stats.spearmanr(range(12), range(12)).pvalue)  # SciPy's beyond n = 7


def test_runs_without_a_family_are_drawn_grey_not_refused(tmp_path):
    """A timm/custom run without arch.family sits beside runs with one: the report is written, the
    run drawn as "other" (pandas holds the missing family as NaN)."""
    write_run(tmp_path / "vit", "vit")
    run = write_run(tmp_path / "mine", "resnet")
    record = json.loads((run / "results.json").read_text())
    record["architecture"].update(family=None, name="Mine", code={"source": "custom"})
    (run / "results.json").write_text(json.dumps(record))
    assert main([str(tmp_path), "--out", str(tmp_path / "report")]) == 0
    assert (tmp_path / "report" / "worst_case.png").is_file()


def test_only_the_studys_own_architectures_get_a_paper_row():
    """arch=vgg11 (and the quickstart's vgg11_half) are built by the zoo's vgg but are not the paper's
    VGG (VGG-16): no paper row, while arch=vgg at its defaults is the paper's VGG."""
    def section(choice):
        from tests.helpers.hydra_helpers import compose_config

        arch = dict(compose_config([f"arch={choice}"]).arch)
        return describe_architecture({"choices": {"arch": choice}, "arch": arch, "method": {"name": "pgd_at"}})

    assert section("vgg")["paper_row"] == "VGG" and section("vgg")["family"] == "cnn"
    for choice in ("vgg11", "vgg11_half"):
        assert section(choice)["paper_row"] is None and section(choice)["family"] == "cnn"
