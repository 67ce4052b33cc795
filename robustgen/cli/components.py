"""The objects of one run, built from its config: what `python -m robustgen` and
`python -m robustgen.evaluate` share (model, attacks, evaluation settings, loggers, callbacks, the
run's identity and the architecture section of its record)."""
from __future__ import annotations

import logging
import secrets
import string
import sys
from pathlib import Path

import torch
from hydra.core.hydra_config import HydraConfig
from lightning.pytorch.callbacks import LearningRateMonitor, ModelCheckpoint, RichProgressBar
from omegaconf import DictConfig, OmegaConf

from robustgen.arch import build_arch, check_classifier
from robustgen.arch.external import is_external
from robustgen.arch.registry import FAMILIES
from robustgen.arch.scale import FULL
from robustgen.cli.app import config_choices
from robustgen.cli.build import build, build_named
from robustgen.cli.study_defaults import check_scale_overrides, describe_architecture
from robustgen.errors import ConfigError
from robustgen.eval import EvalSettings
from robustgen.training.guard import NonFiniteGuard
from robustgen.training.resume import BatchSeed, RunCheckpoint

log = logging.getLogger("robustgen")


def run_identity(cfg: DictConfig, default_name: str) -> dict:
    """run_name (`default_name` unless the user gave one), config choices, seed and the command
    line's overrides: the first fields of results.json."""
    if cfg.run_name is None:
        cfg.run_name = default_name
    return {"run_name": cfg.run_name, "choices": config_choices(cfg), "seed": cfg.seed,
            "overrides": list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []}


def training_run_name(cfg: DictConfig) -> str:
    """<arch>-<attack>-s<seed>, or <arch>-<method>-s<seed> for a method other than PGD-AT; a run at a
    reduced scale says so (vit-smoke-pgd_linf-s34257), so that it is not taken for the full-size run."""
    choices = config_choices(cfg)
    how = choices.get("attack", "attack")
    if choices.get("method", "pgd_at") != "pgd_at":  # e.g. vit-trades-s34257
        how = choices["method"]
    scale = (cfg.arch.get("scale") or {}).get("name", FULL)
    return "-".join([cfg.arch.name, *([scale] if scale != FULL else []), how, f"s{cfg.seed}"])


def new_run_id() -> str:
    """A W&B-style run id (8 lowercase letters and digits); a resumed run keeps its checkpoint's."""
    return "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(8))


def eval_settings(cfg: DictConfig) -> EvalSettings:
    return EvalSettings.from_dict(OmegaConf.to_container(cfg.eval, resolve=True), name=config_choices(cfg).get("eval"))


def build_eval_attacks(cfg: DictConfig) -> dict:
    """The final evaluation's attack set, name → attack (empty for corruptions only)."""
    return build_named(cfg.eval.attacks)


def corruption_source(settings: EvalSettings, datamodule):
    """The data module's corrupted test sets when the evaluation asks for them (files checked now)."""
    if not settings.corrupted.enabled:
        return None
    return datamodule.corruption_source(settings.corrupted)


def arch_settings(cfg: DictConfig) -> dict:
    return OmegaConf.to_container(cfg.arch, resolve=True)


def build_model(cfg: DictConfig, datamodule) -> torch.nn.Module:
    """The run's model at the data's class count and image size, checked once on two blank images
    for the contract every attack and the evaluation rely on (one logits tensor per image, one logit
    per class)."""
    arch = arch_settings(cfg)
    where = f"arch={config_choices(cfg).get('arch', arch['name'])}" + (f" ({arch['name']})" if is_external(arch) else "")
    check_family(arch, where)
    check_scale_overrides(config_choices(cfg).get("arch", arch["name"]), arch)
    model = build_arch(arch, num_classes=datamodule.num_classes, img_size=datamodule.img_size,
                       mean=datamodule.mean, std=datamodule.std)
    blank = torch.zeros(2, 3, datamodule.img_size, datamodule.img_size)
    try:
        check_classifier(model, blank, where, finite=False, classes=datamodule.num_classes)
    except ConfigError:
        raise
    except (RuntimeError, ValueError, AssertionError) as err:  # shapes that do not work at this size
        raise ConfigError(f"{where} cannot run on {datamodule.img_size} px images: "
                          f"{type(err).__name__}: {str(err).splitlines()[0][:300]}") from None
    return model


def check_family(arch: dict, where: str) -> None:
    """An architecture from outside the study names its family, one of FAMILIES (without one, the
    report's family claims leave the run out: a warning, not an error)."""
    family = arch.get("family")
    if is_external(arch) and family is None:
        log.warning("%s has no arch.family (%s): the report's family claims will leave this run out", where,
                    ", ".join(FAMILIES))
    elif is_external(arch) and family not in FAMILIES:
        raise ConfigError(f"arch.family={family!r}; choose one of {', '.join(FAMILIES)} (or leave it out)")


def data_info(datamodule) -> dict:
    """What a checkpoint keeps of the data to rebuild and evaluate its model."""
    return {"num_classes": datamodule.num_classes, "img_size": datamodule.img_size,
            "mean": list(datamodule.mean), "std": list(datamodule.std)}


def build_loggers(cfg: DictConfig) -> list:
    wandb = sys.modules.get("wandb")
    if wandb is not None and wandb.run is not None:  # left open by an earlier job of this process that crashed
        wandb.finish(exit_code=1)
    return [build(spec) for spec in (cfg.get("logger") or {}).values() if spec is not None]


def build_callbacks(cfg: DictConfig, output_dir: Path, with_loggers: bool,
                    resume: Path | None) -> tuple[list, ModelCheckpoint]:
    """The training callbacks, and the checkpoint that selects the best epoch among them."""
    folder = output_dir / "checkpoints"
    best = RunCheckpoint(dirpath=folder, filename="best", monitor=cfg.checkpoint.monitor, mode=cfg.checkpoint.mode,
                         save_top_k=1, auto_insert_metric_name=False, resumed_from=resume)
    # last.ckpt every epoch from a monitor-less checkpoint of its own: Lightning ≥ 2.6's save_last
    # writes it only in epochs where the best checkpoint changed, which would leave resuming stale.
    last = RunCheckpoint(dirpath=folder, filename="last", monitor=None, save_top_k=1, enable_version_counter=False,
                         resumed_from=resume)
    callbacks = [best, last, BatchSeed(cfg.seed), NonFiniteGuard()]
    callbacks += [LearningRateMonitor(logging_interval="epoch")] if with_loggers else []
    callbacks += [build(spec) for spec in (cfg.get("callbacks") or {}).values() if spec is not None]
    if cfg.progress_bar:
        callbacks.append(RichProgressBar())
    return callbacks, best

