"""Every option of every config group composes and instantiates; bad options fail clearly."""
from __future__ import annotations

from pathlib import Path

import pytest
from hydra.errors import ConfigCompositionException
from hydra.utils import instantiate
from omegaconf import OmegaConf

from robustgen.attack.base import Attack
from robustgen.cli import CONFIG_DIR
from robustgen.corrupt import CORRUPTIONS
from robustgen.eval import EvalSettings
from robustgen.cli import build
from robustgen.cli.components import build_eval_attacks
from tests.helpers.hydra_helpers import compose_config

GROUPS = ["arch", "data", "attack", "method", "eval", "regularizer", "optim", "trainer", "logger", "experiment", "sweep",
          "paths"]


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (Path(CONFIG_DIR) / group).glob("*.yaml"))


def test_every_group_has_options():
    for group in GROUPS + ["hydra"]:
        assert options(group), f"conf/{group}/ is empty"


# Options that name what they build: given the smallest value (tests/test_your_arch.py runs them).
REQUIRED = {("arch", "timm"): ["arch.model_name=test_resnet"],
            ("arch", "custom"): ["arch.factory=tests/helpers/custom_nets.py:build"]}


@pytest.mark.parametrize("group,option", [(g, o) for g in GROUPS for o in options(g)])
def test_every_option_composes_and_resolves(group, option, tmp_path):
    prefix = "+" if group == "sweep" else ""
    cfg = compose_config([f"{prefix}{group}={option}", *REQUIRED.get((group, option), [])], output_dir=tmp_path)
    # Every interpolation of the job's config resolves (the hydra node needs a launched job).
    container = {k: OmegaConf.to_container(v, resolve=True) if OmegaConf.is_config(v) else v
                 for k, v in cfg.items() if k != "hydra"}
    assert container["arch"]["name"]
    if group == "arch":
        assert (cfg.arch.name == option or option in cfg.arch.name or option.startswith(cfg.arch.name)  # vgg11
                or cfg.arch.get("source") == option)  # timm, custom: named by the model
    train_attack, val_attack, eval_attacks = build(cfg.attack), build(cfg.val_attack), build_eval_attacks(cfg)
    assert isinstance(train_attack, Attack) and isinstance(val_attack, Attack)
    assert all(isinstance(a, Attack) for a in eval_attacks.values())
    settings = EvalSettings.from_dict(container["eval"])  # every eval set has attacks, corruptions or both
    assert eval_attacks or settings.corrupted.enabled
    if (group, option) == ("eval", "corruptions"):
        assert settings.corrupted.names == list(CORRUPTIONS) and settings.corrupted.severities == [1, 2, 3, 4, 5]


def test_corruptions_add_to_any_attack_set(tmp_path):
    cfg = compose_config(["eval=paper", "eval/corrupted=all", "eval.corrupted.names=[fog]"], output_dir=tmp_path)
    settings = EvalSettings.from_dict(OmegaConf.to_container(cfg.eval, resolve=True))
    assert settings.corrupted.enabled and settings.corrupted.names == ["fog"] and len(cfg.eval.attacks) == 4


def test_study_recipe_is_the_default(tmp_path):
    cfg = compose_config([], output_dir=tmp_path)
    assert cfg.arch.name == "resnet" and cfg.trainer.max_epochs == 100 and cfg.data.batch_size == 128
    assert cfg.optim.lr == pytest.approx(1e-4) and cfg.optim.weight_decay == pytest.approx(0.01)
    assert cfg.optim.warmup_epochs == 8 and cfg.optim.min_lr == pytest.approx(5e-6)
    attack = instantiate(cfg.attack)
    assert (attack.norm, attack.steps, attack.random_start) == ("linf", 15, "ball")
    assert attack.eps == pytest.approx(8 / 255) and attack.step_size == pytest.approx(0.8 / 255)
    assert cfg.data.autoaugment and cfg.data.crop_padding == 4 and cfg.data.flip
    assert cfg.seed == 34257


def test_unknown_option_lists_valid_ones(tmp_path):
    with pytest.raises(ConfigCompositionException) as err:
        compose_config(["arch=resnot"], output_dir=tmp_path)
    assert "resnet" in str(err.value) and "vit" in str(err.value)


def sweep_values(overrides: list[str], key: str) -> list[str]:
    """The values Hydra's basic sweeper launches for `key` (parsed exactly as the sweeper parses them)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    cfg = compose_config(overrides)
    parsed = OverridesParser.create().parse_overrides([f"{key}={cfg.hydra.sweeper.params[key]}"])[0]
    return [str(v) for v in parsed.sweep_string_iterator()]


def test_zoo_sweep_covers_every_row_of_the_paper_table():
    import csv

    rows = list(csv.DictReader(open(Path(CONFIG_DIR).parents[1] / "shared/reference/paper_table_cifar10.csv")))
    from robustgen.arch import ARCHS

    swept = sweep_values(["+sweep=zoo"], "arch")
    assert sorted(ARCHS[a].paper_name for a in swept) == sorted(r["architecture"] for r in rows)


@pytest.mark.parametrize("arch,sizes", [("vit", ["8", "4", "2"]), ("pvtv2", ["4", "2", "1"])])
def test_patch_size_sweep_uses_the_study_sizes(arch, sizes):
    assert sweep_values([f"arch={arch}", "+sweep=patch_size"], "arch.patch_size") == sizes


def test_patch_size_sweep_names_the_archs_that_have_one():
    with pytest.raises(Exception, match="arch=resnet has no patch-size sweep.*pvtv2, vit"):
        sweep_values(["arch=resnet", "+sweep=patch_size"], "arch.patch_size")


def test_coatnet_stage_sweep_runs_the_papers_hybrid_rows_in_order():
    from robustgen.report.paper import paper_table

    hybrids = paper_table("paper_table_hybrids_patch.csv").query("experiment == 'hybrid'")
    layouts = [name.split("-")[1] for name in hybrids["architecture"]]
    assert sweep_values(["arch=coatnet", "+sweep=coatnet_stages"], "arch.stages") == layouts == [
        "CTTT", "CTTC", "CTCC", "CCCC"]
