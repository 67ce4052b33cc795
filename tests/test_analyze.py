"""`python -m robustgen.analyze sparsity` on synthetic results.json files with known answers."""
from __future__ import annotations

import csv
import json
import subprocess
import sys

import pytest

from robustgen.analyze import analyze_sparsity, find_results, main, rank_correlations
from robustgen.errors import RobustgenError


def fake_result(folder, arch: str, lam: float | None, hoyer: float, gap: float, worst: float,
                complexity: float | None = 100.0, with_sparsity: bool = True) -> None:
    record = {"arch": {"name": arch}, "worst_case_acc": worst,
              "regularizer": {"type": "NoRegularizer"} if lam is None else
              {"type": "L1Penalty", "weight": lam, "scope": "all"}}
    if with_sparsity:
        record["sparsity"] = {"overall": {"near_zero": hoyer / 2, "hoyer": hoyer},
                              **({"attention": {"hoyer": hoyer + 0.1}} if complexity is not None else {})}
        record["bound"] = {"rademacher_norm_mean": complexity, "layer_pair_norm_mean": 50.0 / hoyer}
        record["robust_gap"] = {"final": gap}
    folder.mkdir(parents=True)
    (folder / "results.json").write_text(json.dumps(record))


@pytest.fixture
def sweep(tmp_path):
    """A multirun folder: sparsity rises with λ, the gap falls, the worst case rises, the term falls."""
    root = tmp_path / "multirun" / "2026-01-01" / "12-00-00"
    for i, (lam, hoyer) in enumerate([(0.0, 0.2), (1e-5, 0.3), (1e-4, 0.45), (1e-3, 0.6)]):
        fake_result(root / f"{i}_vit", "vit", lam, hoyer, gap=20 - 10 * hoyer, worst=30 + 10 * hoyer,
                    complexity=1000 * (1 - hoyer))
    fake_result(root / "4_resnet", "resnet", None, 0.25, gap=17.5, worst=32.5, complexity=None)
    (root / "multirun.yaml").write_text("{}")
    return root


def test_results_are_found_recursively(sweep):
    files = find_results([sweep.parent.parent])
    assert len(files) == 5 and all(f.name == "results.json" for f in files)
    assert find_results([sweep, sweep / "0_vit"]) == files  # no duplicates


def test_no_results_is_a_clear_error(tmp_path):
    with pytest.raises(RobustgenError, match="no results.json under"):
        find_results([tmp_path])
    with pytest.raises(RobustgenError, match="does not exist"):
        find_results([tmp_path / "missing"])


def test_rows_and_rank_correlations(sweep, tmp_path):
    out = analyze_sparsity([str(sweep)], out=str(tmp_path / "report"))
    rows = {r["run"]: r for r in out["rows"]}
    assert set(rows) == {"0_vit", "1_vit", "2_vit", "3_vit", "4_resnet"}
    assert rows["2_vit"]["lambda"] == 1e-4 and rows["2_vit"]["hoyer"] == 0.45
    assert rows["4_resnet"]["lambda"] == 0.0 and rows["4_resnet"]["complexity"] is None
    corr = {(c["measure"], c["outcome"]): c for c in out["correlations"]}
    # Over all five runs: Hoyer is perfectly anti-ordered with the gap and ordered with the worst case.
    assert corr[("overall Hoyer", "robust gap (pts)")]["rho"] == pytest.approx(-1.0)
    assert corr[("overall Hoyer", "worst-case acc %")]["rho"] == pytest.approx(1.0)
    # The attention-only measures skip the CNN: four runs.
    thm = corr[("Thm 1 norm term (attn)", "robust gap (pts)")]
    assert thm["n"] == 4 and thm["rho"] == pytest.approx(1.0)
    assert corr[("attention Hoyer", "worst-case acc %")]["n"] == 4


def test_png_and_csv_are_written(sweep, tmp_path):
    out = analyze_sparsity([str(sweep)], out=str(tmp_path / "report"))
    assert out["png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with out["csv"].open() as handle:
        table = list(csv.DictReader(handle))
    assert len(table) == 5 and {"run", "arch", "lambda", "hoyer", "robust_gap", "worst_case"} <= set(table[0])


def test_default_output_is_the_first_path(sweep):
    analyze_sparsity([str(sweep)])
    assert (sweep / "sparsity_analysis.png").is_file()


def test_too_few_or_constant_runs_give_no_correlation(tmp_path):
    fake_result(tmp_path / "a", "vit", 0.0, 0.2, gap=5.0, worst=30.0)
    fake_result(tmp_path / "b", "vit", 1e-4, 0.3, gap=5.0, worst=31.0)
    corr = rank_correlations(analyze_sparsity([str(tmp_path)])["rows"])
    assert all(c["rho"] is None and c["note"] == "fewer than 3 runs" for c in corr)
    fake_result(tmp_path / "c", "vit", 1e-3, 0.4, gap=5.0, worst=32.0)
    corr = {(c["measure"], c["outcome"]): c for c in analyze_sparsity([str(tmp_path)])["correlations"]}
    assert corr[("overall Hoyer", "robust gap (pts)")]["note"] == "constant"
    assert corr[("overall Hoyer", "worst-case acc %")]["rho"] == pytest.approx(1.0)


def test_runs_without_sparsity_are_listed_but_not_correlated(tmp_path):
    fake_result(tmp_path / "old", "resnet", None, 0.0, gap=0.0, worst=40.0, with_sparsity=False)
    for i in range(3):
        fake_result(tmp_path / f"new{i}", "vit", 10.0 ** -i, 0.2 + 0.1 * i, gap=3.0 - i, worst=30.0 + i)
    out = analyze_sparsity([str(tmp_path)])
    assert len(out["rows"]) == 4
    assert all(c["n"] == 3 for c in out["correlations"])


def test_cli(sweep, tmp_path, capsys):
    assert main(["sparsity", str(sweep), "--out", str(tmp_path / "cli")]) == 0
    printed = capsys.readouterr().out
    assert "Spearman" in printed and "0_vit" in printed and "4_resnet" in printed
    assert (tmp_path / "cli" / "sparsity_analysis.png").is_file()
    assert main(["sparsity", str(tmp_path / "cli")]) == 2  # nothing to analyse there
    assert "no results.json under" in capsys.readouterr().err


def test_module_entry_point(sweep, tmp_path):
    done = subprocess.run([sys.executable, "-m", "robustgen.analyze", "sparsity", str(sweep), "--out",
                           str(tmp_path / "m")], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "Sparsity vs robust generalization (5 runs)" in done.stdout
