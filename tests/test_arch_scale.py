"""Architecture scales (robustgen/arch/scale.py, conf/arch/scale/): the smoke study's narrower
networks are built, saved, reloaded, recorded and reported as what they are."""
from __future__ import annotations

import json

import pytest
import torch
from omegaconf import OmegaConf

from robustgen.arch import build_arch, count_parameters, create_arch
from robustgen.arch.scale import scaled
from robustgen.cli.study_defaults import describe_architecture
from robustgen.errors import ConfigError
from robustgen.record.checkpoint import load_model
from robustgen.report.__main__ import main as report_main
from tests.helpers.hydra_helpers import compose_config
from tests.helpers.report_study import write

SMOKE = {"name": "smoke", "vgg": {"width": 0.25}, "vit": {"embed_dim": 128, "depth": 4, "num_heads": 4}}
# the study's parameter counts (PROTOCOL.md), which arch/scale=full must keep
STUDY_PARAMS = {"vgg": 14_728_266, "vit": 9_786_378, "coatnet": 16_997_816}
NORM = {"mean": (0.5, 0.5, 0.5), "std": (0.25, 0.25, 0.25)}


def arch_node(overrides: list[str]) -> dict:
    return OmegaConf.to_container(compose_config(overrides).arch, resolve=True)


def test_a_scale_replaces_the_architectures_settings_and_says_which():
    arch, scale = scaled({"name": "vgg", "depth": 16, "width": 1.0, "scale": SMOKE})
    assert arch == {"name": "vgg", "depth": 16, "width": 0.25}
    assert scale == {"name": "smoke", "settings": {"width": 0.25}}
    assert scaled({"name": "vgg", "width": 1.0, "scale": {"name": "full"}}) == ({"name": "vgg", "width": 1.0}, None)
    assert scaled({"name": "vgg", "width": 1.0}) == ({"name": "vgg", "width": 1.0}, None)


def test_an_architecture_the_scale_does_not_size_is_refused_naming_the_fix():
    with pytest.raises(ConfigError, match=r"^arch/scale=smoke sizes vgg, vit, not arch=resnet: add its settings to "
                                          r"conf/arch/scale/smoke.yaml, or leave the scale out .*arch/scale=full\)$"):
        scaled({"name": "resnet", "scale": SMOKE})
    with pytest.raises(ConfigError, match="sizes the zoo's architectures only, not arch.source=timm models"):
        scaled({"name": "vit", "source": "timm", "model_name": "resnet18", "scale": SMOKE})


def test_the_scale_is_keyed_on_the_arch_option_and_a_users_own_value_is_kept_or_refused():
    """arch=vgg11 is built by vgg, but the smoke's vgg settings are VGG-16's; a value the user gave
    that the scale would replace is refused, one equal to the scale's is fine."""
    from robustgen.cli.study_defaults import check_scale_overrides

    with pytest.raises(ConfigError, match="sizes coatnet, vgg, vit, not arch=vgg11"):
        check_scale_overrides("vgg11", arch_node(["arch=vgg11", "+arch/scale=smoke"]))
    with pytest.raises(ConfigError, match="arch.width=0.5 would be replaced by arch/scale=smoke's width=0.25"):
        check_scale_overrides("vgg", arch_node(["arch=vgg", "arch.width=0.5", "+arch/scale=smoke"]))
    check_scale_overrides("vgg", arch_node(["arch=vgg", "arch.width=0.25", "+arch/scale=smoke"]))
    check_scale_overrides("vgg", arch_node(["arch=vgg", "+arch/scale=smoke"]))  # vgg.yaml's own width=1.0: replaced


def test_resuming_is_keyed_on_this_architectures_scale_only():
    from robustgen.training.resume import training_settings

    def settings(arch: dict) -> dict:
        return {k: v for k, v in training_settings({"arch": arch}).items()}

    vit = {"name": "vit", "patch_size": 4, "scale": SMOKE}
    other = {**vit, "scale": {**SMOKE, "vgg": {"width": 0.5}}}          # another architecture's size changed
    mine = {**vit, "scale": {**SMOKE, "vit": {**SMOKE["vit"], "depth": 2}}}  # this one's changed
    assert settings(vit) == settings(other)
    assert settings(vit) != settings(mine) and settings(mine)["arch.scale.vit.depth"] == 2
    assert settings(vit)["arch.scale.name"] == "smoke"


@pytest.mark.parametrize("choice", sorted(STUDY_PARAMS))
def test_the_smoke_scale_builds_a_narrower_network_of_the_same_kind(choice):
    arch = arch_node(["experiment=paper_smoke", f"arch={choice}"])
    settings = arch["scale"][choice]
    model = build_arch(arch, num_classes=10, img_size=32, **NORM)
    own = {k: v for k, v in arch.items() if k not in ("name", "scale")}
    direct = create_arch(choice, num_classes=10, img_size=32, **NORM, **{**own, **settings})
    assert [(k, v.shape) for k, v in model.state_dict().items()] == \
        [(k, v.shape) for k, v in direct.state_dict().items()]
    assert count_parameters(model) < STUDY_PARAMS[choice] / 5
    assert type(model.net) is type(direct.net)
    full = arch_node(["experiment=paper_smoke", f"arch={choice}", "arch/scale=full"])
    assert "vgg" not in full.get("scale", {})
    assert count_parameters(build_arch(full, num_classes=10, img_size=32, **NORM)) == STUDY_PARAMS[choice]


@pytest.mark.parametrize("overrides, row, differs", [
    (["arch=vit"], "ViT", {}),
    (["arch=vgg"], "VGG", {}),
    (["arch=vit", "arch.patch_size=8"], None, {"patch_size": 8}),
    (["arch=coatnet", "arch.stages=CTTT"], None, {"stages": "CTTT"}),
])
def test_a_smoke_run_stands_for_its_study_row_and_records_its_scale(overrides, row, differs):
    cfg = compose_config(["experiment=paper_smoke", *overrides])
    section = describe_architecture({"choices": {"arch": overrides[0].split("=")[1]},
                                     "arch": OmegaConf.to_container(cfg.arch, resolve=True),
                                     "method": {"name": "pgd_at"}})
    assert cfg.method._target_.endswith("PGDAT")  # the study's method (one PGD step), so the row is the study's
    assert section["paper_row"] == row and section["differs_from_study"] == differs
    assert section["scale"]["name"] == "smoke" and section["scale"]["settings"]
    assert describe_architecture({"choices": {"arch": "vit"}, "arch": arch_node(["arch=vit"]),
                                  "method": {"name": "pgd_at"}})["scale"] is None


def test_a_smoke_scale_checkpoint_loads_as_the_narrow_network(tmp_path):
    arch = arch_node(["experiment=paper_smoke", "arch=vit"])
    model = build_arch(arch, num_classes=10, img_size=32, **NORM)
    torch.save({"state_dict": {f"model.{k}": v for k, v in model.state_dict().items()},
                "hyper_parameters": {"arch": arch, "data": {"num_classes": 10, "img_size": 32, **NORM}}},
               tmp_path / "best.ckpt")
    loaded, _ = load_model(tmp_path / "best.ckpt", expected_arch="vit")
    x = torch.rand(3, 3, 32, 32)
    assert torch.equal(loaded.eval()(x), model.eval()(x))


def test_the_report_labels_smoke_scale_rows_and_says_what_they_are(tmp_path, capsys):
    for choice, clean in (("vit", 30.0), ("vgg", 25.0)):
        write(tmp_path / "runs" / choice, choice, arch_node(["experiment=paper_smoke", f"arch={choice}"]),
              clean=clean, attacks={"pgd_linf": 20.0}, worst=20.0, n=200)
    assert report_main([str(tmp_path / "runs"), "--compare", "paper", "--out", str(tmp_path / "report")]) == 0
    text = (tmp_path / "report" / "report.md").read_text()
    assert ("Runs at smoke scale (arch/scale=smoke) are narrower networks than the study's, shown in the rows of "
            "the architectures they stand for: vgg width=0.25; vit depth=4 embed_dim=128 num_heads=4.") in text
    import pandas as pd

    cells = pd.read_csv(tmp_path / "report" / "main_table_vs_paper.csv").set_index("paper_name")
    assert cells.loc["ViT", "architecture"] == "vit (smoke scale)"
    assert cells.loc["ViT", "clean"] == pytest.approx(30.0) and cells.loc["VGG", "clean"] == pytest.approx(25.0)
    assert "note: Runs at smoke scale" in capsys.readouterr().out
    assert json.loads((tmp_path / "runs" / "vit" / "results.json").read_text())["architecture"]["scale"]


def test_two_sizes_at_one_scale_name_are_two_rows(tmp_path):
    for depth, clean in ((4, 30.0), (2, 20.0)):
        arch = arch_node(["experiment=paper_smoke", "arch=vit", f"arch.scale.vit.depth={depth}"])
        write(tmp_path / "runs" / f"vit_d{depth}", "vit", arch, clean=clean, attacks={"pgd_linf": 15.0}, worst=15.0,
              n=200)
    assert report_main([str(tmp_path / "runs"), "--out", str(tmp_path / "report")]) == 0
    import pandas as pd

    table = pd.read_csv(tmp_path / "report" / "main_table.csv").set_index("architecture")
    assert table.loc["vit (smoke scale) scale.depth=4", "clean"] == pytest.approx(30.0)
    assert table.loc["vit (smoke scale) scale.depth=2", "clean"] == pytest.approx(20.0)
    assert "vit depth=2 embed_dim=128 num_heads=4 / depth=4 embed_dim=128 num_heads=4" in \
        (tmp_path / "report" / "report.md").read_text()


def test_a_layout_at_two_sizes_is_two_rows_matched_to_one_paper_row(tmp_path):
    """The hybrid/patch table names rows "ViT p=8 (smoke scale)" beside "ViT p=8"; claims, figures and
    the paper comparison match both on the paper's row (this used to crash on the parsed name)."""
    from robustgen.report.paper import hybrid_patch_paper

    paper = hybrid_patch_paper().set_index("architecture")
    for size, offset in ((8, 0.0), (4, 0.0)):
        row = paper.loc[f"ViT p={size}"]
        for scale, minus in (([], 0.0), (["experiment=paper_smoke"], 20.0)):
            arch = arch_node([*scale, "arch=vit", f"arch.patch_size={size}"])
            write(tmp_path / "runs" / f"vit{size}_{bool(scale)}", "vit", arch, clean=row["at_clean_acc"] - minus,
                  attacks={"pgd_linf": row["pgd_linf"] - minus}, worst=row["worst_case"] - minus, n=500)
    assert report_main([str(tmp_path / "runs"), "--compare", "paper", "--out", str(tmp_path / "report")]) == 0
    import pandas as pd

    cells = pd.read_csv(tmp_path / "report" / "hybrids_patches_vs_paper.csv").set_index("architecture")
    assert cells.loc["ViT p=8 (smoke scale)", "paper_name"] == "ViT p=8"
    assert cells.loc["ViT p=8 (smoke scale)", "clean_diff"] == pytest.approx(-20.0)
    assert cells.loc["ViT p=8", "clean_diff"] == pytest.approx(0.0)
    claims = pd.read_csv(tmp_path / "report" / "claims.csv")
    patches = claims[claims["claim"] == "3: larger patches (ViT p=8 − ViT p=4)"].set_index("measure")
    assert patches.loc["clean", "architectures"] == "ViT p=8, ViT p=8 (smoke scale) − ViT p=4, ViT p=4 (smoke scale)"
    # both sizes are 20 points apart in each group, so the pooled difference is the paper's
    expected = paper.loc["ViT p=8", "at_clean_acc"] - paper.loc["ViT p=4", "at_clean_acc"]
    assert patches.loc["clean", "ours"] == pytest.approx(expected, abs=1e-6)
    assert (tmp_path / "report" / "design_trends.png").stat().st_size > 10_000
    assert "Runs of vit at the study's size are here too" in (tmp_path / "report" / "report.md").read_text()


def test_a_scaled_run_is_named_apart_from_the_full_size_run(tmp_path):
    from robustgen.cli.components import training_run_name

    assert training_run_name(compose_config(["experiment=paper_smoke", "arch=vit"], tmp_path)) == \
        "vit-smoke-pgd_linf-s34257"
    assert training_run_name(compose_config(["arch=vit"], tmp_path)) == "vit-pgd_linf-s34257"
