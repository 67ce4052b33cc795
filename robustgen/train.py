"""Entry point: data → model → Lightning module → loggers → trainer → fit → evaluate the best
checkpoint → results.json. Returns the worst-case accuracy so sweepers can optimise it.

Only this file (and the other entry points) know about Hydra; everything it calls takes plain
arguments. Everything that can be checked is checked before the data is touched or a step is
taken: unknown options, impossible architectures, attack budgets out of range.
"""
from __future__ import annotations

import logging
import sys
import time
import warnings
from pathlib import Path

import lightning as L
import torch
from hydra.core.hydra_config import HydraConfig
from lightning.pytorch.callbacks import LearningRateMonitor, ModelCheckpoint, RichProgressBar
from omegaconf import DictConfig, OmegaConf

import robustgen  # noqa: F401  (registers the config resolvers)
from robustgen.arch import count_parameters, create_arch
from robustgen.checkpoint import load_model
from robustgen.cli import build, build_named, config_choices, construct, hydra_app, plain_config
from robustgen.dashboard import publish
from robustgen.errors import ConfigError
from robustgen.eval import EvalSettings, run_evaluation
from robustgen.module import AdversarialClassifier
from robustgen.optim import OptimConfig
from robustgen.results import write_results
from robustgen.resume import (AtomicCheckpointIO, BatchSeed, RunCheckpoint, check_resumable, resolve_resume,
                              training_settings)
from robustgen.zoo import count_macs

log = logging.getLogger("robustgen")
# Lightning hints at `srun` whenever the binary exists, even for a run outside any SLURM job (a login
# node, the test cluster's host); under the slurm launcher submitit starts jobs through srun itself.
warnings.filterwarnings("ignore", message="The `srun` command is available on your system but is not used")


def build_eval_attacks(cfg: DictConfig) -> dict:
    """The final evaluation's attack set, name → attack (empty for corruptions only)."""
    return build_named(cfg.eval.attacks)


def build_attacks(cfg: DictConfig) -> tuple:
    return build(cfg.attack), build(cfg.val_attack), build_eval_attacks(cfg)


def corruption_source(settings: EvalSettings, datamodule):
    """The data module's corrupted test sets when the evaluation asks for them (files checked now)."""
    if not settings.corrupted.enabled:
        return None
    return datamodule.corruption_source(settings.corrupted)


def build_model(cfg: DictConfig, datamodule) -> torch.nn.Module:
    arch = OmegaConf.to_container(cfg.arch, resolve=True)
    name = arch.pop("name")
    return create_arch(name, num_classes=datamodule.num_classes, img_size=datamodule.img_size,
                       mean=datamodule.mean, std=datamodule.std, **arch)


def build_loggers(cfg: DictConfig) -> list:
    wandb = sys.modules.get("wandb")
    if wandb is not None and wandb.run is not None:  # left open by an earlier job of this process that crashed
        wandb.finish(exit_code=1)
    return [build(spec) for spec in (cfg.get("logger") or {}).values() if spec is not None]


def build_callbacks(cfg: DictConfig, output_dir: Path, with_loggers: bool,
                    resume: Path | None) -> tuple[list, ModelCheckpoint]:
    folder = output_dir / "checkpoints"
    best = RunCheckpoint(dirpath=folder, filename="best", monitor=cfg.checkpoint.monitor, mode=cfg.checkpoint.mode,
                         save_top_k=1, auto_insert_metric_name=False, resumed_from=resume)
    # last.ckpt every epoch from a monitor-less checkpoint of its own: Lightning ≥ 2.6's save_last
    # writes it only in epochs where the best checkpoint changed, which would leave resuming stale.
    last = RunCheckpoint(dirpath=folder, filename="last", monitor=None, save_top_k=1, enable_version_counter=False,
                         resumed_from=resume)
    callbacks = [best, last, BatchSeed(cfg.seed)]
    callbacks += [LearningRateMonitor(logging_interval="epoch")] if with_loggers else []
    callbacks += [build(spec) for spec in (cfg.get("callbacks") or {}).values() if spec is not None]
    if cfg.progress_bar:
        callbacks.append(RichProgressBar())
    return callbacks, best


def train(cfg: DictConfig) -> float:
    start = time.perf_counter()
    output_dir = Path(cfg.paths.output_dir)
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    choices = config_choices(cfg)
    if cfg.run_name is None:
        how = choices.get("attack", "attack")
        if choices.get("method", "pgd_at") != "pgd_at":  # e.g. vit-trades-s34257
            how = choices["method"]
        cfg.run_name = f"{cfg.arch.name}-{how}-s{cfg.seed}"

    # Cheap checks and construction first: bad settings fail before data or training.
    settings_key = training_settings(plain_config(cfg), output_dir)
    max_epochs = cfg.trainer.get("max_epochs")
    if max_epochs is not None and (not isinstance(max_epochs, int) or max_epochs == 0 or max_epochs < -1):
        raise ConfigError(f"trainer.max_epochs must be an integer ≥ 1 (or -1: no limit), got {max_epochs!r}")
    resume = resolve_resume(cfg.resume, output_dir)
    if resume is not None:  # other settings, fewer epochs than done, or an unsafe file: refused now
        saved = check_resumable(resume, settings_key, max_epochs)
        cfg.run_id = saved.get("run_id") or cfg.run_id
        log.info("resuming from %s", resume)
    if cfg.run_id is None:
        cfg.run_id = new_run_id()
    datamodule = build(cfg.data)
    settings = EvalSettings.from_dict(OmegaConf.to_container(cfg.eval, resolve=True), name=choices.get("eval"))
    train_attack, val_attack, eval_attacks = build_attacks(cfg)
    method = build(cfg.method, attack=train_attack)
    val_eval = cfg.get("val_eval") or {}
    val_attacks = build_named(val_eval.get("attacks"))
    optim = construct(OptimConfig, "optim", OmegaConf.to_container(cfg.optim, resolve=True))
    model = build_model(cfg, datamodule)
    regularizer = build(cfg.regularizer)
    regularizer(model)  # a scope with no weights in this architecture fails now, not after data loading
    data_info = {"num_classes": datamodule.num_classes, "img_size": datamodule.img_size,
                 "mean": list(datamodule.mean), "std": list(datamodule.std)}
    module = AdversarialClassifier(model, train_attack, val_attack, optim, regularizer,
                                   arch=OmegaConf.to_container(cfg.arch, resolve=True), data_info=data_info,
                                   run={"settings": settings_key, "run_id": cfg.run_id}, method=method,
                                   compile_model=bool(cfg.get("compile", False)),
                                   channels_last=bool(cfg.get("channels_last", False)),
                                   val_attacks=val_attacks, val_per_attack=bool(val_eval.get("per_attack", True)))
    datamodule.prepare_data()  # missing data stops here, with advice
    datamodule.setup("fit")  # and malformed data files here, before a trainer or logger exists
    corruptions = corruption_source(settings, datamodule)  # and missing CIFAR-10-C files

    loggers = build_loggers(cfg)
    callbacks, checkpoint = build_callbacks(cfg, output_dir, with_loggers=bool(loggers), resume=resume)
    trainer: L.Trainer = build(cfg.trainer, logger=loggers or False, callbacks=callbacks,
                               plugins=[AtomicCheckpointIO()])
    for lg in loggers:  # the group choices as keys of their own (choice.arch, ...): W&B groups by them
        lg.log_hyperparams({**plain_config(cfg), "choice": choices})
    # weights_only: the file was already read safely above; Lightning reads it the same way.
    trainer.fit(module, datamodule=datamodule, ckpt_path=resume, weights_only=True)
    train_seconds = time.perf_counter() - start
    if trainer.world_size > 1:  # DDP (trainer=ddp): the final evaluation and results.json are rank 0's
        best_path = trainer.strategy.broadcast(checkpoint.best_model_path)
        trainer.strategy.barrier()
        if trainer.global_rank != 0:
            return float("nan")
        checkpoint.best_model_path = best_path

    best = checkpoint.best_model_path or str(output_dir / "checkpoints" / "last.ckpt")
    best_model, _ = load_model(best, expected_arch=cfg.arch.name)
    best_model.to(module.device).eval()
    evaluation = run_evaluation(best_model, datamodule.test_dataset(), eval_attacks, settings,
                                output_dir=output_dir, progress=cfg.progress_bar, corruptions=corruptions)
    report = evaluation.report
    metrics = evaluation.metrics()
    for lg in loggers:
        lg.log_metrics(metrics, step=trainer.global_step)

    record = {
        "run_name": cfg.run_name, "run_id": cfg.run_id, "group": cfg.group, "choices": choices, "seed": cfg.seed,
        "resumed_from": str(resume) if resume else None,
        "overrides": list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else [],
        "arch": OmegaConf.to_container(cfg.arch, resolve=True), "params": count_parameters(model),
        "macs": count_macs(best_model, img_size=datamodule.img_size),
        "chance_acc": 100.0 / datamodule.num_classes,
        "method": method.describe(), "train_attack": method.attack.describe(),
        "eval_attacks": {k: a.describe() for k, a in eval_attacks.items()},
        "regularizer": regularizer.describe(), "epochs": trainer.current_epoch,
        "world_size": trainer.world_size,
        "best_checkpoint": str(best), "checkpoint_monitor": cfg.checkpoint.monitor,
        "best_val_score": _float(checkpoint.best_model_score),
        "best_val_acc_clean": (_float(checkpoint.best_model_score) if cfg.checkpoint.monitor == "val/acc_clean"
                               else None),
        **evaluation.record(),
        "time_s": {"train": train_seconds, "eval": report.seconds, "total": time.perf_counter() - start},
    }
    for callback in callbacks:  # callbacks that measured something during training add it here
        if hasattr(callback, "results_record"):
            record.update(callback.results_record(best_model))
    publish(loggers, record, output_dir)  # W&B: summary, results table, figure
    for lg in loggers:
        lg.finalize("success")
    finish_wandb(loggers)
    path = write_results(output_dir, record)
    print_summary(record, path)
    return report.worst_case_acc


def finish_wandb(loggers: list) -> None:
    """End the W&B run. Lightning's finalize leaves it open, and a later run in the same process
    (the jobs of a multirun, tests) would otherwise log into it instead of its own run."""
    from lightning.pytorch.loggers import WandbLogger

    for lg in loggers:
        if isinstance(lg, WandbLogger) and lg._experiment is not None:
            lg.experiment.finish()


def new_run_id() -> str:
    """A W&B-style run id (8 lowercase letters and digits); a resumed run keeps its checkpoint's."""
    import secrets
    import string

    return "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(8))


def _float(x) -> float | None:
    return None if x is None else float(x)


def print_summary(record: dict, path: Path) -> None:
    """The results table, readable at any terminal width: the metric names fold, the numbers never
    wrap, and the results path goes on its own line unwrapped (a wrapped caption used to break it
    mid-word, so it could not be copied)."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{record['run_name']}: {record['n_points']} test points")
    table.add_column("metric", overflow="fold")
    table.add_column("accuracy %", justify="right", no_wrap=True)
    table.add_row("clean", f"{record['clean_acc']:.2f}")
    for name, acc in record["attack_acc"].items():
        table.add_row(name, f"{acc:.2f}")
    table.add_row("worst case", f"{record['worst_case_acc']:.2f}", style="bold")
    if record.get("chance_acc") is not None:  # what guessing scores: the numbers above mean nothing near it
        table.add_row("chance level", f"{record['chance_acc']:.2f}", style="dim")
    corruptions = record.get("corruptions")
    if corruptions:
        for name, acc in corruptions["acc_by_corruption"].items():
            table.add_row(f"  {name} (mean of severities)", f"{acc:.2f}")
        table.add_row(f"corruptions: mean of {corruptions['cells']} cells", f"{corruptions['mean_acc']:.2f}",
                      style="bold")
        if "mean_worst_case" in corruptions:
            table.add_row("corruptions + attacks: worst case", f"{corruptions['mean_worst_case']:.2f}", style="bold")
    table.add_row("time (s)", f"{record['time_s']['total']:.0f}")
    console = Console()
    console.print(table)
    console.print(f"results: {path}", soft_wrap=True, highlight=False, markup=False)


def _interrupted(cfg: DictConfig) -> str:
    out = cfg.paths.output_dir
    return (f"Checkpoints of finished epochs are in {out}/checkpoints; rerun the same command with "
            f"hydra.run.dir={out} resume=auto to continue.")


main = hydra_app("train", interrupted=_interrupted)(train)
