"""Entry point: data → model → Lightning module → loggers → trainer → fit → evaluate the best
checkpoint → results.json. Returns the worst-case accuracy so sweepers can optimise it.

Everything that can be checked is checked before the data is touched or a step is taken: unknown
options, impossible architectures, attack budgets out of range, a checkpoint that cannot be resumed.
The objects come from robustgen/cli/components.py; this file only says in which order they meet.
"""
from __future__ import annotations

import logging
import time
import warnings
from pathlib import Path

import lightning as L
from omegaconf import DictConfig

from robustgen.arch.measure import count_macs
from robustgen.attack.base import check_classes
from robustgen.cli import build, build_named, construct, hydra_app, plain_config
from robustgen.cli.components import (arch_settings, build_callbacks, build_eval_attacks, build_loggers, build_model,
                                      corruption_source, data_info, eval_settings, new_run_id, run_identity,
                                      training_run_name)
from robustgen.cli.study_defaults import describe_architecture
from robustgen.errors import ConfigError
from robustgen.eval import run_evaluation
from robustgen.eval.worst_case import evaluated_points
from robustgen.record.checkpoint import load_model
from robustgen.record.dashboard import finish_wandb, publish
from robustgen.record.results import results_record, write_results
from robustgen.record.summary import print_summary
from robustgen.training.module import AdversarialClassifier
from robustgen.training.optim import OptimConfig
from robustgen.training.resume import AtomicCheckpointIO, check_resumable, resolve_resume, training_settings

log = logging.getLogger("robustgen")
# Lightning hints at `srun` whenever the binary exists, even for a run outside any SLURM job (a login
# node, the test cluster's host); under the slurm launcher submitit starts jobs through srun itself.
warnings.filterwarnings("ignore", message="The `srun` command is available on your system but is not used")


def train(cfg: DictConfig) -> float:
    start = time.perf_counter()
    output_dir = Path(cfg.paths.output_dir)
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    identity = run_identity(cfg, training_run_name(cfg))

    # Cheap checks and construction first: bad settings fail before data or training.
    settings_key = training_settings(plain_config(cfg), output_dir)
    resume = resume_point(cfg, output_dir, settings_key)
    datamodule = build(cfg.data)
    settings, eval_attacks = eval_settings(cfg), build_eval_attacks(cfg)
    check_classes(eval_attacks, datamodule.num_classes)  # e.g. AutoAttack's apgd-t on fewer than 4 classes
    module = build_module(cfg, datamodule, settings_key)
    datamodule.prepare_data()  # missing data stops here, with advice
    datamodule.setup("fit")  # and malformed data files here, before a trainer or logger exists
    corruptions = corruption_source(settings, datamodule)  # and missing CIFAR-10-C files
    evaluated_points(settings.n_points, datamodule.test_dataset())  # and more test points than there are

    loggers = build_loggers(cfg)
    callbacks, checkpoint = build_callbacks(cfg, output_dir, with_loggers=bool(loggers), resume=resume)
    trainer: L.Trainer = build(cfg.trainer, logger=loggers or False, callbacks=callbacks,
                               plugins=[AtomicCheckpointIO()])
    for lg in loggers:  # the group choices as keys of their own (choice.arch, ...): W&B groups by them
        lg.log_hyperparams({**plain_config(cfg), "choice": identity["choices"]})
    # weights_only: the file was already read safely above; Lightning reads it the same way.
    trainer.fit(module, datamodule=datamodule, ckpt_path=resume, weights_only=True)
    train_seconds = time.perf_counter() - start
    best = best_checkpoint(trainer, checkpoint, output_dir)
    if best is None:  # DDP (trainer=ddp): the final evaluation and results.json are rank 0's
        return float("nan")

    best_model, _ = load_model(best, expected_arch=cfg.arch.name)
    best_model.to(module.device).eval()
    evaluation = run_evaluation(best_model, datamodule.test_dataset(), eval_attacks, settings,
                                output_dir=output_dir, progress=cfg.progress_bar, corruptions=corruptions)
    for lg in loggers:
        lg.log_metrics(evaluation.metrics(), step=trainer.global_step)
    record = training_record(cfg, identity, module, trainer, checkpoint, best, best_model, datamodule, evaluation,
                             resume, {"train": train_seconds, "eval": evaluation.report.seconds,
                                      "total": time.perf_counter() - start})
    for callback in callbacks:  # callbacks that measured something during training add it here
        if hasattr(callback, "results_record"):
            record.update(callback.results_record(best_model))
    publish(loggers, record, output_dir)  # W&B: summary, results table, figure
    for lg in loggers:
        lg.finalize("success")
    finish_wandb(loggers)
    print_summary(record, write_results(output_dir, record))
    return evaluation.report.worst_case_acc


def resume_point(cfg: DictConfig, output_dir: Path, settings_key: dict) -> Path | None:
    """The checkpoint to continue from (None: a new run), refused now if it was trained with other
    settings, has more epochs done than asked, or is unsafe; sets the run's W&B id."""
    max_epochs = cfg.trainer.get("max_epochs")
    if max_epochs is not None and (not isinstance(max_epochs, int) or max_epochs == 0 or max_epochs < -1):
        raise ConfigError(f"trainer.max_epochs must be an integer ≥ 1 (or -1: no limit), got {max_epochs!r}")
    resume = resolve_resume(cfg.resume, output_dir)
    if resume is not None:
        saved = check_resumable(resume, settings_key, max_epochs)
        cfg.run_id = saved.get("run_id") or cfg.run_id
        log.info("resuming from %s", resume)
    if cfg.run_id is None:
        cfg.run_id = new_run_id()
    return resume


def build_module(cfg: DictConfig, datamodule, settings_key: dict) -> AdversarialClassifier:
    """Model, attacks, method, optimiser and regularizer, joined in the Lightning module."""
    train_attack, val_attack = build(cfg.attack), build(cfg.val_attack)
    method = build(cfg.method, attack=train_attack)
    val_eval = cfg.get("val_eval") or {}
    optim = construct(OptimConfig, "optim", plain_config(cfg)["optim"])
    model = build_model(cfg, datamodule)
    regularizer = build(cfg.regularizer)
    regularizer(model)  # a scope with no weights in this architecture fails now, not after data loading
    return AdversarialClassifier(model, train_attack, val_attack, optim, regularizer, arch=arch_settings(cfg),
                                 data_info=data_info(datamodule),
                                 run={"settings": settings_key, "run_id": cfg.run_id}, method=method,
                                 compile_model=bool(cfg.get("compile", False)),
                                 channels_last=bool(cfg.get("channels_last", False)),
                                 val_attacks=build_named(val_eval.get("attacks")),
                                 val_per_attack=bool(val_eval.get("per_attack", True)))


def best_checkpoint(trainer: L.Trainer, checkpoint, output_dir: Path) -> str | None:
    """The checkpoint the final evaluation reads (the best epoch's, else last.ckpt); None on the
    ranks other than 0 of a DDP run, which evaluate nothing."""
    if trainer.world_size > 1:
        best_path = trainer.strategy.broadcast(checkpoint.best_model_path)
        trainer.strategy.barrier()
        if trainer.global_rank != 0:
            return None
        checkpoint.best_model_path = best_path
    return checkpoint.best_model_path or str(output_dir / "checkpoints" / "last.ckpt")


def training_record(cfg: DictConfig, identity: dict, module: AdversarialClassifier, trainer: L.Trainer, checkpoint,
                    best: str, best_model, datamodule, evaluation, resume: Path | None, time_s: dict) -> dict:
    """results.json of a training run: the shared record plus what only training has."""
    method, regularizer = module.method, module.regularizer
    fields = {"run_id": cfg.run_id, "group": cfg.group, "resumed_from": str(resume) if resume else None,
              "arch": arch_settings(cfg), "data": data_info(datamodule),
              "macs": count_macs(best_model, img_size=datamodule.img_size),
              "chance_acc": 100.0 / datamodule.num_classes, "method": method.describe(),
              "train_attack": method.attack.describe(), "regularizer": regularizer.describe(),
              "epochs": trainer.current_epoch, "world_size": trainer.world_size, "best_checkpoint": str(best),
              "checkpoint_monitor": cfg.checkpoint.monitor, "best_val_score": _float(checkpoint.best_model_score),
              "best_val_acc_clean": (_float(checkpoint.best_model_score)
                                     if cfg.checkpoint.monitor == "val/acc_clean" else None)}
    architecture = describe_architecture({**identity, **fields})
    return results_record(identity=identity, architecture=architecture, model=best_model, evaluation=evaluation,
                          time_s=time_s, **fields)


def _float(x) -> float | None:
    return None if x is None else float(x)


def _interrupted(cfg: DictConfig) -> str:
    out = cfg.paths.output_dir
    return (f"Checkpoints of finished epochs are in {out}/checkpoints; rerun the same command with "
            f"hydra.run.dir={out} resume=auto to continue.")


main = hydra_app("train", interrupted=_interrupted)(train)
