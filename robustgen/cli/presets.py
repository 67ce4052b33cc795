"""conf/'s attack sets and settings as objects, for tools that are not Hydra apps (the benchmarks):
read from the YAML files the way a run composes them."""
from __future__ import annotations

from pathlib import Path

from hydra.utils import instantiate
from omegaconf import OmegaConf

from robustgen import CONFIG_DIR
from robustgen.cli.build import build, build_named
from robustgen.errors import ConfigError
from robustgen.eval import EvalSettings

CONF = Path(CONFIG_DIR)


def load_attack_set(name: str) -> tuple[dict, int]:
    cfg = _eval_config(name)
    return {k: instantiate(spec) for k, spec in cfg.attacks.items()}, int(cfg.batch_size)


def _eval_config(name: str):
    path = CONF / "eval" / f"{name}.yaml"
    if not path.is_file():
        options = sorted(p.stem for p in (CONF / "eval").glob("*.yaml"))
        raise ConfigError(f"no attack set {name!r}; options: {', '.join(options)}")
    return OmegaConf.load(path)  # `${div:8,255}` resolves: robustgen.cli registered it


def eval_settings(name: str, n_points: int, sanity: bool) -> EvalSettings:
    """The set's evaluation settings as Hydra composes them (its sanity settings over
    conf/eval/sanity/default.yaml), on `n_points` points, with or without the sanity checks."""
    cfg = _eval_config(name)
    checks = OmegaConf.merge(OmegaConf.load(CONF / "eval" / "sanity" / "default.yaml"), cfg.get("sanity") or {})
    values = {"n_points": n_points, "batch_size": int(cfg.batch_size), "per_attack": bool(cfg.get("per_attack", True)),
              "sanity": {**OmegaConf.to_container(checks), "enabled": sanity}}
    return EvalSettings.from_dict(values, name=name)


def validation_attacks() -> tuple:
    """(val_attack, {name: attack}) of conf/train.yaml: the study's per-epoch validation attacks."""
    train_cfg = OmegaConf.load(CONF / "train.yaml")
    return build(train_cfg.val_attack), build_named(train_cfg.val_eval.attacks)
