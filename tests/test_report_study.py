"""The whole report on a synthetic study with known numbers (tests/helpers/report_study.py): every table,
the corruption join, the claims against the paper's signs, the figures, and refused mixtures."""
from __future__ import annotations

import json

import pytest
from PIL import Image

from robustgen.report.__main__ import main
from robustgen.report.claims import claims, verdict
from robustgen.report.corruption_table import corruption_table
from robustgen.report.main_table import main_table
from robustgen.report.paper import beside_paper, hybrids_and_patches, paper_table
from robustgen.report.runs import ReportError, collect
from robustgen.report.stats import wilson_interval
from tests.helpers.report_study import write, write_study

FIGURES = ("robust_generalization.png", "worst_case.png", "design_trends.png", "clean_vs_worst_case.png",
           "sparsity_analysis.png")


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    return write_study(tmp_path_factory.mktemp("study"))


@pytest.fixture(scope="module")
def report_dir(study, tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    assert main([str(study), "--compare", "paper", "--out", str(out)]) == 0
    return out


def test_corruption_table_joins_vanilla_and_reads_the_paper_back(study):
    table = corruption_table(collect([study]).runs).set_index("architecture")
    paper = paper_table("paper_table_cifar10c.csv").set_index("architecture")
    vit = table.loc["vit"]
    assert vit["c_acc"]["mean"] == pytest.approx(paper.loc["ViT", "at_cifar_c_acc"])  # seeds at ∓0.5
    assert vit["c_acc"]["n"] == 2 and vit["vanilla_c_acc"]["n"] == 1
    assert vit["vanilla_c_acc"]["mean"] == pytest.approx(paper.loc["ViT", "vanilla_cifar_c_acc"])
    assert vit["vanilla_c_acc"]["ci"] == pytest.approx(wilson_interval(paper.loc["ViT", "vanilla_cifar_c_acc"], 1000))
    assert "wideresnet" not in table.index  # no CIFAR-10-C row in the paper: no corruption run here
    cells, rankings = beside_paper(table.reset_index(), "corruptions")
    assert cells["c_acc_diff"].abs().max() == pytest.approx(0.0, abs=1e-9)
    assert rankings.set_index("column").loc["c_acc", "spearman"] == pytest.approx(1.0)


def test_corruption_means_over_different_cells_are_refused_naming_the_runs(tmp_path):
    a = write(tmp_path / "a", "vit", {"name": "vit"}, clean=80, c_mean=70)
    b = write(tmp_path / "b", "resnet", {"name": "resnet"}, clean=80, c_mean=70, c_points=500)
    with pytest.raises(ReportError, match="would mix different corruption evaluations") as err:
        corruption_table(collect([tmp_path]).runs)
    assert str(a) in str(err.value) and str(b) in str(err.value)


def test_main_table_holds_the_zoo_and_the_design_sweeps_go_to_their_own_tables(study):
    everything = main_table(collect([study]).runs)
    hybrid = hybrids_and_patches(everything)
    assert hybrid["architecture"].tolist() == ["CoAtNet-CTTT", "CoAtNet-CTTC", "CoAtNet-CTCC", "CoAtNet-CCCC",
                                               "PVTv2 p=4", "PVTv2 p=2", "PVTv2 p=1", "ViT p=8", "ViT p=4", "ViT p=2"]
    labels = set(everything["architecture"])
    assert {"vit arch.patch_size=2", "coatnet arch.stages=CTTT", "vit ℓ1 λ=1e-05", "vit ℓ1 λ=0"} <= labels
    cells, rankings = beside_paper(everything[everything["study_default"]], "main")
    assert len(cells) == 20 and cells["worst_case_diff"].abs().max() == pytest.approx(0.0, abs=1e-9)
    assert rankings.set_index("column").loc["pgd_l2", "kendall"] == pytest.approx(1.0)


def test_claims_on_the_paper_s_own_numbers_agree_with_the_paper(study):
    everything = main_table(collect([study]).runs)
    main = everything[everything["study_default"]]
    found = claims(main, hybrids_and_patches(everything)).set_index(["claim", "measure"])
    family = found.loc["1: Transformers and hybrids − CNNs"]
    paper = paper_table().set_index("architecture")
    cnn = ["DenseNet", "PreActResNet", "ResNet", "ResNeXt", "VGG", "WideResNet"]
    others = [n for n in paper.index if n not in cnn and n not in ("MLP-Mixer", "PoolFormer")]
    expected = paper.loc[others, "pgd_l2"].mean() - paper.loc[cnn, "pgd_l2"].mean()
    assert family.loc["pgd_l2", "ours"] == pytest.approx(expected) == pytest.approx(family.loc["pgd_l2", "paper"])
    assert family.loc["pgd_l2", "ci_low"] < expected < family.loc["pgd_l2", "ci_high"]
    assert (family["verdict"] == "supported").all() and family.loc["pgd_linf", "ours"] < 0
    patch = found.loc[("3: larger patches (ViT p=8 − ViT p=2)", "clean")]
    assert patch["ours"] == pytest.approx(72.39 - 77.37) and patch["verdict"] == "supported"


@pytest.mark.parametrize("ours, ci, paper, says", [
    (3.0, (1.0, 5.0), 2.0, "supported"), (-3.0, (-5.0, -1.0), 2.0, "contradicted"),
    (1.0, (-1.0, 3.0), 2.0, "same sign, interval includes 0"),
    (-1.0, (-3.0, 1.0), 2.0, "opposite sign, interval includes 0"), (1.0, (0.5, 2.0), float("nan"), "not testable"),
    (0.0, (-1.0, 1.0), -2.0, "no difference")])
def test_verdict_reads_the_interval_against_the_paper_s_sign(ours, ci, paper, says):
    assert verdict(ours, ci, paper) == says


def test_the_report_has_every_table_the_claims_and_every_figure(report_dir, study):
    md = (report_dir / "report.md").read_text()
    for section in ("## Main table", "## Hybrids and patch sizes", "## Corruptions", "## Sparsity vs robustness",
                    "## Claims", "## Figures", "Missing: 1 sweep job(s)"):
        assert section in md
    assert str(study / "zoo" / "failed_job") in md
    for name in ("main_table", "hybrids_patches", "corruptions"):
        assert (report_dir / f"{name}.csv").is_file() and "\\toprule" in (report_dir / f"{name}.tex").read_text()
        assert (report_dir / f"{name}_vs_paper.csv").is_file()
    for figure in FIGURES:
        with Image.open(report_dir / figure) as image:
            assert image.width >= 600 and image.height >= 400
            assert len(set(image.convert("L").getdata())) > 20  # drawn, not blank
        assert f"]({figure})" in md


def test_a_run_whose_results_json_is_broken_is_named(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "results.json").write_text("{not json")
    with pytest.raises(ReportError, match="not a readable robustgen results.json"):
        collect([tmp_path])


def test_imagenette_runs_get_the_same_tables_without_a_paper_column(study, tmp_path):
    run = write(tmp_path / "imagenette" / "vit", "vit", {"name": "vit"}, clean=70.0,
                attacks={"pgd_linf": 30.0}, worst=30.0, c_mean=50.0)
    record = json.loads((run / "results.json").read_text())
    record["choices"]["data"] = "imagenette"
    (run / "results.json").write_text(json.dumps(record))
    assert main([str(study), str(tmp_path / "imagenette"), "--compare", "paper", "--out", str(tmp_path / "out")]) == 0
    cifar = (tmp_path / "out" / "cifar10" / "report.md").read_text()
    imagenette = (tmp_path / "out" / "imagenette" / "report.md").read_text()
    assert "### Beside the paper" in cifar and "### Beside the paper" not in imagenette
    assert "The paper has no numbers for imagenette" in imagenette and "| vit |" in imagenette
    assert (tmp_path / "out" / "imagenette" / "corruptions.csv").is_file()
