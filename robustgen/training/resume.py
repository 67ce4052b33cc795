"""Resuming a training run: from the same folder, a new folder, or a requeued cluster job.

An interrupted run must end with the numbers an uninterrupted one would have given. That needs
four things, each kept here:

* which checkpoint to continue from (`resume=PATH`, or `resume=auto`: the run folder's own
  `checkpoints/last.ckpt` when there is one — what a preempted or requeued job needs), read
  safely and checked against the current settings, so a run never continues with other ones;
* the checkpoint selection state (best score and best file), also when the new run writes to
  another folder: Lightning keeps it only when the folder is unchanged (:class:`RunCheckpoint`);
* randomness that does not depend on the process's history: shuffling and augmentation are drawn
  from (seed, epoch, example) by the data module, every training step reseeds from (seed, epoch,
  batch) (:class:`BatchSeed`), so the epochs after a resume draw what they would have drawn;
* checkpoint files written atomically (:class:`AtomicCheckpointIO`), so a kill while saving
  leaves the previous complete `last.ckpt`, never half of one.

The rest of the state travels in the checkpoint through Lightning: weights, optimiser and
learning-rate schedule, the loop counters, and every callback's ``state_dict`` (the sparsity
monitor's history, early stopping's counters). The W&B run id is kept in the hyper-parameters
(`run_id`), so a resumed run logs into the same W&B run.
"""
from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO
from lightning.pytorch.callbacks import Callback, ModelCheckpoint

from robustgen.data.datasets import mixed_seed
from robustgen.errors import CheckpointError, ConfigError
from robustgen.record.checkpoint import read_checkpoint
from robustgen.files import atomic_write
from robustgen.training.guard import check_finite_weights

log = logging.getLogger("robustgen")

LAST = "last.ckpt"
# Config keys that do not change what training computes: where things are written and shown,
# the final evaluation (its own state is keyed separately, see eval/outcomes.py), the data loader
# workers (augmentation is seeded per example, not per worker), trainer.max_epochs, which a
# resumed run may raise to train longer, and compile / channels_last, which pick kernels, not math.
NOT_TRAINING_SETTINGS = ("paths", "logger", "progress_bar", "resume", "run_name", "run_id", "group", "tags", "eval",
                         "trainer.max_epochs", "trainer.enable_progress_bar", "data.root", "data.download",
                         "data.num_workers", "compile", "channels_last")


def resolve_resume(resume: str | None, output_dir: Path) -> Path | None:
    """The checkpoint to continue from: None (start afresh), `auto` (this run folder's
    checkpoints/last.ckpt if it exists, else start afresh) or a path, which must exist."""
    if resume in (None, "", "null", "none"):
        return None
    if resume == "auto":
        last = output_dir / "checkpoints" / LAST
        if not last.is_file():
            log.info("resume=auto: no %s yet, starting afresh", last)
            return None
        return last
    path = Path(resume).expanduser()
    if path.is_dir():
        path = path / "checkpoints" / LAST if (path / "checkpoints" / LAST).is_file() else path / LAST
    if not path.is_file():
        raise ConfigError(f"resume={resume}: no such checkpoint; pass a run's checkpoints/last.ckpt, "
                          f"or resume=auto to continue the run in hydra.run.dir when it has one")
    return path


def flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    """A plain config as {"attack.eps": 0.031, "optim.betas.0": 0.9, ...}, leaves only."""
    if isinstance(tree, (dict, list)):
        items = tree.items() if isinstance(tree, dict) else enumerate(tree)
        out: dict[str, Any] = {}
        for key, value in items:
            out.update(flatten(value, f"{prefix}{key}."))
        return out
    return {prefix[:-1]: tree}


def training_settings(config: dict, output_dir: str | Path | None = None) -> dict[str, Any]:
    """The resolved config's keys that decide what training computes, flattened ("attack.eps").
    Values that contain the run folder (trainer.default_root_dir, ...) say `<output_dir>` instead,
    so a run resumed into another folder compares equal."""
    flat = flatten(config)
    arch = (config.get("arch") or {}).get("name")
    out = {k: v for k, v in sorted(flat.items())
           if not any(k == skip or k.startswith(skip + ".") for skip in NOT_TRAINING_SETTINGS)
           and not _other_archs_scale(k, arch)}
    if output_dir is not None:
        out = {k: v.replace(str(output_dir), "<output_dir>") if isinstance(v, str) else v for k, v in out.items()}
    return out


def _other_archs_scale(key: str, arch: str | None) -> bool:
    """A scale's settings for another architecture (arch.scale.coatnet.* in a ViT run): they do not
    change what this run trains (robustgen/arch/scale.py)."""
    parts = key.split(".")
    return len(parts) > 3 and parts[:2] == ["arch", "scale"] and parts[2] != arch


# Settings added after runs were saved, with the value that does what those runs did: a checkpoint
# without the key was trained with that value (robustgen < 0.3 normalised CIFAR-10 with the
# training set's true std).
ADDED_SETTINGS = {"data.normalization": "dataset_stats"}


def check_resumable(path: Path, settings: dict[str, Any], max_epochs: int | None = None) -> dict:
    """Read `path` safely (weights_only) and return its hyper-parameters; refuse a checkpoint
    that was trained with other settings than `settings`, naming the keys that differ."""
    checkpoint = read_checkpoint(path)
    hparams = checkpoint.get("hyper_parameters") or {}
    saved = hparams.get("settings")
    if saved is not None:
        saved = {**{k: v for k, v in ADDED_SETTINGS.items() if k in settings}, **saved}
    if "state_dict" not in checkpoint or "loops" not in checkpoint or saved is None:
        raise CheckpointError(f"resume={path}: not a robustgen training checkpoint with resume settings (a model-only "
                              f"file, another program's, or one from robustgen < 0.2); start a new run with "
                              f"resume=null, or evaluate it with python -m robustgen.evaluate checkpoint={path}")
    differ = sorted(k for k in set(saved) | set(settings) if saved.get(k, "<unset>") != settings.get(k, "<unset>"))
    if differ:
        shown = "; ".join(f"{k}: {saved.get(k, '<unset>')!r} there, {settings.get(k, '<unset>')!r} now"
                          for k in differ[:6])
        more = f" (and {len(differ) - 6} more)" if len(differ) > 6 else ""
        raise ConfigError(f"resume={path} was trained with other settings ({shown}{more}); rerun with the "
                          f"original settings to continue it, or start a new run in a new folder with resume=null")
    progress = checkpoint["loops"].get("fit_loop", {}).get("epoch_progress", {}).get("current", {})
    done = int(progress.get("processed", checkpoint.get("epoch", 0)))  # epochs trained (validation may be pending)
    if max_epochs is not None and max_epochs >= 0 and done > max_epochs:
        raise ConfigError(f"resume={path} has {done} epochs done, more than trainer.max_epochs={max_epochs}; "
                          f"pass trainer.max_epochs ≥ {done} (the same to only evaluate it, more to train longer)")
    return hparams


class RunCheckpoint(ModelCheckpoint):
    """ModelCheckpoint that keeps the selection state when a run resumes into another folder.

    Lightning restores the best score and best file only when the checkpoint folder is unchanged;
    resuming `last.ckpt` into a new output folder would otherwise forget the best epoch and select
    among the new epochs only. Here the best file is copied into the new folder (the old run's
    folder is left untouched) and every recorded path is mapped to it.
    """

    def __init__(self, *args, resumed_from: Path | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.resumed_from = resumed_from

    def _save_checkpoint(self, trainer: L.Trainer, filepath: str) -> None:
        # Non-finite weights never become best.ckpt or last.ckpt: a resumed run goes on from finite ones.
        check_finite_weights(trainer.lightning_module, f"not writing {filepath}")
        super()._save_checkpoint(trainer, filepath)

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        old_dir = state_dict.get("dirpath")
        if old_dir and self.dirpath and os.path.realpath(old_dir) != os.path.realpath(self.dirpath):
            state_dict = self._adopt(dict(state_dict), Path(old_dir))
        super().load_state_dict(state_dict)

    def _adopt(self, state: dict[str, Any], old_dir: Path) -> dict[str, Any]:
        new_dir = Path(self.dirpath)
        new_dir.mkdir(parents=True, exist_ok=True)
        recorded = {state.get("best_model_path"), state.get("kth_best_model_path"), *state.get("best_k_models", {})}
        moved: dict[str, str] = {}
        for old in sorted(p for p in recorded if p):
            target = new_dir / Path(old).name
            # last.ckpt is the file resumed from: copied too, so the new folder can be resumed
            # (resume=auto) even before it trains an epoch of its own.
            source = self.resumed_from if Path(old).name == LAST and self.resumed_from else self._find(Path(old), old_dir)
            if source.resolve() != target.resolve():
                shutil.copy2(source, target)
            moved[old] = str(target)
        state["best_model_path"] = moved.get(state.get("best_model_path"), state.get("best_model_path", ""))
        state["kth_best_model_path"] = moved.get(state.get("kth_best_model_path"), state.get("kth_best_model_path"))
        state["best_k_models"] = {moved.get(k, k): v for k, v in state.get("best_k_models", {}).items()}
        state["last_model_path"] = str(new_dir / LAST) if state.get("last_model_path") else ""
        state["dirpath"] = self.dirpath
        if self.monitor is not None:
            log.info("resumed into %s: best checkpoint so far (%s = %s) copied from %s", new_dir, self.monitor,
                     _as_float(state.get("best_model_score")), old_dir)
        return state

    def _find(self, recorded: Path, old_dir: Path) -> Path:
        """The best file where the old run wrote it, else beside the checkpoint resumed from
        (runs copied from a cluster keep their checkpoints/ folder, not their absolute paths)."""
        candidates = [recorded]
        if self.resumed_from is not None:
            candidates.append(self.resumed_from.parent / recorded.name)
        for candidate in candidates:
            if candidate.is_file():
                return candidate
        raise CheckpointError(f"cannot resume the checkpoint selection: the best checkpoint so far, {recorded.name} "
                              f"(recorded in {old_dir}), is in none of {', '.join(map(str, candidates))}; "
                              f"copy it beside the last.ckpt you resume from")


def _as_float(value) -> float | None:
    return None if value is None else float(value)


class BatchSeed(Callback):
    """Reseed torch, NumPy and `random` from (seed, epoch, batch) before every training step, so
    that the training attack's random starts and dropout do not depend on what the process did
    before: a resumed run draws exactly what the uninterrupted one drew. (Shuffling and
    augmentation are seeded by the data module itself, see robustgen/data/datasets.py.)"""

    def __init__(self, seed: int):
        self.seed = int(seed)

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch, batch_idx: int) -> None:
        L.seed_everything(mixed_seed(self.seed, trainer.current_epoch, batch_idx) % (2**32 - 1), verbose=False)


class AtomicCheckpointIO(TorchCheckpointIO):
    """Write each checkpoint atomically (robustgen/files.py): a kill while saving leaves the
    previous complete file (Lightning writes the target file directly)."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path, storage_options: Any | None = None) -> None:
        atomic_write(path, lambda f: torch.save(checkpoint, f))
