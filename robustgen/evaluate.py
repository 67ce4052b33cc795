"""Entry point: evaluate a saved checkpoint against an attack set, without retraining.

    python -m robustgen.evaluate checkpoint=PATH eval=paper [eval.n_points=N] [data.root=...]
    python -m robustgen.evaluate checkpoint=PATH eval=paper eval.shard=0/4,1/4,2/4,3/4 -m   (a job per shard)
    python -m robustgen.evaluate merge SHARD_DIR...                                         (robustgen/eval/merge.py)

checkpoint → model (read safely, architecture checked) → test set matching the checkpoint's data
settings → sanity checks → worst case over the set (per-example outcomes saved, resumable) →
results.json with the same fields as a training run's. Returns the worst-case accuracy.
"""
from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path

import lightning as L
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from robustgen.attack.base import check_classes
from robustgen.cli import build, config_choices, hydra_app
from robustgen.cli.components import (arch_settings, build_eval_attacks, build_model, corruption_source, data_info,
                                      eval_settings, run_identity)
from robustgen.cli.study_defaults import describe_architecture
from robustgen.errors import CheckpointError, ConfigError
from robustgen.eval import run_evaluation
from robustgen.eval.worst_case import evaluated_points
from robustgen.eval.merge import main as merge_main
from robustgen.eval.merge import merge_if_complete
from robustgen.record.checkpoint import load_model
from robustgen.record.results import RESULTS_FILE, results_record, write_results
from robustgen.record.summary import print_summary
from robustgen.record.weights import load_weights

log = logging.getLogger("robustgen")


def build_data(cfg: DictConfig, data_info: dict, checkpoint: str):
    """The data module of `cfg.data`, checked against the data the checkpoint was trained on
    (class count, image size, and the normalisation mean, which tells CIFAR-10 from ImageNette).
    The std is not compared: the model normalises inside with the constants it was trained with
    (its checkpoint's), whatever `data.normalization` says now."""
    datamodule = build(cfg.data)
    have = {"num_classes": datamodule.num_classes, "img_size": datamodule.img_size, "mean": list(datamodule.mean)}
    want = {k: data_info[k] for k in have if k in data_info}
    if any(not _same(have[k], v) for k, v in want.items()):
        choice = config_choices(cfg).get("data", type(datamodule).__name__)
        hint = ("data=cifar100" if want.get("num_classes") == 100 else "data=cifar10") if want.get("img_size") == 32 \
            else f"data=imagenette data.img_size={want.get('img_size')}"
        raise CheckpointError(f"{checkpoint} was trained on data with {want}, but data={choice} gives {have}; "
                              f"pass the data it was trained on ({hint})")
    return datamodule


def _same(a, b) -> bool:
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(abs(float(u) - float(v)) < 1e-6 for u, v in zip(a, b))
    return a == b


def training_run_of(checkpoint: Path) -> dict | None:
    """Choices and seed of the training run, if its results.json sits beside checkpoints/."""
    path = checkpoint.resolve().parent.parent / RESULTS_FILE
    try:
        run = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return {"results": str(path), **{k: run.get(k) for k in ("run_name", "choices", "seed", "code_version",
                                                             "regularizer", "architecture")}}


def evaluate(cfg: DictConfig) -> float:
    start = time.perf_counter()
    if bool(cfg.checkpoint) == bool(cfg.get("weights")):
        raise ConfigError("give checkpoint=PATH (a robustgen .ckpt, e.g. outputs/<date>/<time>/checkpoints/best.ckpt) "
                          "or weights=PATH arch=... (a state dict trained elsewhere), one of the two")
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    settings, attacks = eval_settings(cfg), build_eval_attacks(cfg)  # bad settings fail before the file is read

    model, hparams, datamodule, source = model_to_evaluate(cfg)
    arch = dict(hparams.get("arch") or {})
    check_classes(attacks, datamodule.num_classes)  # e.g. AutoAttack's apgd-t on fewer than 4 classes
    device = torch.device("cuda" if cfg.device == "auto" and torch.cuda.is_available() else
                          "cpu" if cfg.device == "auto" else cfg.device)
    model.to(device).eval()
    datamodule.prepare_data()  # missing data stops here, with advice
    corruptions = corruption_source(settings, datamodule)  # and missing CIFAR-10-C files
    evaluated_points(settings.n_points, datamodule.test_dataset())  # and more test points than there are
    identity = run_identity(cfg, f"{arch.get('name', 'model')}-eval-{settings.name or 'custom'}")

    output_dir = Path(cfg.paths.output_dir)
    result = run_evaluation(model, datamodule.test_dataset(), attacks, settings, output_dir=output_dir,
                            progress=cfg.progress_bar, num_workers=datamodule.num_workers, corruptions=corruptions)
    training_run = training_run_of(Path(cfg.checkpoint)) if cfg.checkpoint else None
    fields = {**source, "arch": arch, "data": hparams.get("data"), "train_attack": hparams.get("train_attack"),
              "training_run": training_run}
    record = results_record(identity=identity, architecture=checkpoint_architecture(training_run, hparams),
                            model=model, evaluation=result,
                            time_s={"eval": result.report.seconds, "total": time.perf_counter() - start}, **fields)
    path = write_results(output_dir, record)
    print_summary(record, path)
    if settings.shard and HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN:
        merged = merge_if_complete(HydraConfig.get().sweep.dir, output_dir)  # the last shard merges
        if merged:
            print(f"all {settings.shard[1]} shards done: merged into {merged}")
    return result.report.worst_case_acc


def model_to_evaluate(cfg: DictConfig) -> tuple[torch.nn.Module, dict, object, dict]:
    """(model, its hyper-parameters, the data module, where its weights came from): a robustgen
    checkpoint (checkpoint=), or a state dict trained elsewhere loaded into `arch` (weights=)."""
    if cfg.checkpoint:
        model, hparams = load_model(cfg.checkpoint, expected_arch=cfg.arch.name if cfg.get("arch") else None)
        datamodule = build_data(cfg, dict(hparams.get("data") or {}), cfg.checkpoint)
        return model, hparams, datamodule, {"checkpoint": str(Path(cfg.checkpoint).resolve())}
    if not cfg.get("arch"):
        raise ConfigError(f"weights={cfg.weights} needs arch=... : the architecture the weights are for (a zoo name, "
                          f"arch=timm arch.model_name=..., or arch=custom arch.factory=...)")
    datamodule = build(cfg.data)
    model = build_model(cfg, datamodule)
    source = load_weights(model, cfg.weights)
    hparams = {"arch": arch_settings(cfg), "data": data_info(datamodule), "choices": config_choices(cfg)}
    return model, hparams, datamodule, source


def checkpoint_architecture(training_run: dict | None, hparams: dict) -> dict:
    """The evaluated model's `architecture` section: its training run's, where that run's
    results.json sits beside the checkpoint, else described from the checkpoint's own settings."""
    if training_run and training_run.get("architecture"):
        return training_run["architecture"]
    arch = dict(hparams.get("arch") or {})
    choices = (training_run or {}).get("choices") or hparams.get("choices") or {"arch": arch.get("name")}
    return describe_architecture({"choices": choices, "arch": arch, "method": hparams.get("method"),
                                  "regularizer": (training_run or {}).get("regularizer")})


def _interrupted(cfg: DictConfig) -> str:
    out = cfg.paths.output_dir
    return (f"Finished batches are saved in {out}/eval_outcomes.json; rerun the same command with "
            f"hydra.run.dir={out} to resume.")


main = hydra_app("evaluate", interrupted=_interrupted)(evaluate)


if __name__ == "__main__":
    if sys.argv[1:2] == ["merge"]:
        sys.exit(merge_main(sys.argv[2:]))
    main()
