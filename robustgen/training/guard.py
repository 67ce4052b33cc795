"""Stop training at the first non-finite loss, gradient or weight, before it reaches a checkpoint.

A diverged run (a learning rate far too large, fp16 overflow) otherwise trains on: every later
step is NaN, the checkpoints fill with NaN weights, and the final evaluation reports chance-level
numbers (NaN logits argmax to class 0) or crashes far from the cause. Lightning has no per-step
check of its own that fits — ``detect_anomaly`` slows every step and still lets the run go on,
``EarlyStopping(check_finite=True)`` looks at a monitored metric once per epoch — so this is a
Lightning callback that checks in the hooks Lightning provides:

* ``on_before_optimizer_step``: the gradients, after backward and before the step, so the weights
  stay those of the last finite step (under DDP the gradients are already all-reduced: every rank
  sees the same and stops together). Skipped under fp16 mixed precision, whose gradient scaler
  expects and skips steps with inf gradients.
* ``on_train_batch_end``: the loss and the weights, BatchNorm statistics included (the ranks agree on
  the verdict first).

Either raises :class:`~robustgen.errors.TrainingDiverged` naming the epoch, the batch and what to
try; :class:`RunCheckpoint` (resume.py) refuses to write non-finite weights as well.
"""
from __future__ import annotations

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback
from torch import Tensor, nn

from robustgen.arch.contract import non_finite
from robustgen.errors import TrainingDiverged


def check_finite_weights(model: nn.Module, where: str) -> None:
    """Raise TrainingDiverged if any parameter or buffer of `model` is NaN or infinite."""
    bad = non_finite(list(model.parameters()) + list(model.buffers()))
    if bad:
        raise TrainingDiverged(f"{where}: {bad} weight(s) of the model (parameters or BatchNorm statistics) are NaN "
                               f"or infinite: training diverged")


class NonFiniteGuard(Callback):
    """Raises TrainingDiverged at the first non-finite loss, gradient or weight (see the module)."""

    def __init__(self):
        self.lr: float | None = None  # the step's learning rate, read before the schedule moves on

    def on_before_optimizer_step(self, trainer: L.Trainer, pl_module: L.LightningModule, optimizer) -> None:
        self.lr = optimizer.param_groups[0]["lr"]
        if str(trainer.precision).startswith("16"):
            return
        bad = non_finite(p.grad for group in optimizer.param_groups for p in group["params"])
        if bad:
            raise self._diverged(trainer, f"{bad} gradient entries are NaN or infinite"
                                 f"{self._loss_note(pl_module)}; the step was not taken")

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs, batch,
                           batch_idx: int) -> None:
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        what = None
        if isinstance(loss, Tensor) and not torch.isfinite(loss.detach()).all():
            what = f"the training loss is {loss.detach().float().item():g}"
        else:
            bad = non_finite(list(pl_module.parameters()) + list(pl_module.buffers()))
            what = f"{bad} weight(s) (parameters or BatchNorm statistics) are NaN or infinite after the step" \
                if bad else None
        if trainer.strategy.reduce_boolean_decision(what is not None, all=False):  # every rank stops
            raise self._diverged(trainer, what or "another rank's loss or weights are not finite")

    @staticmethod
    def _loss_note(pl_module: L.LightningModule) -> str:
        loss = getattr(pl_module, "last_train_loss", None)
        return f" (the training loss was {loss.float().item():g})" if isinstance(loss, Tensor) else ""

    def _diverged(self, trainer: L.Trainer, what: str) -> TrainingDiverged:
        lr = f"; this step's learning rate was {self.lr:g}" if self.lr is not None else ""
        folder = getattr(trainer.checkpoint_callback, "dirpath", None)
        kept = f"{folder}/last.ckpt" if folder and trainer.current_epoch else "no finished epoch yet"
        return TrainingDiverged(
            f"training diverged at epoch {trainer.current_epoch}, batch {trainer.fit_loop.batch_idx}: {what}; "
            f"the checkpoints keep the last finished epoch's finite weights ({kept}). Try a smaller learning "
            f"rate (optim.lr{lr})" + ("" if str(trainer.precision) == "32-true" else
                                      f" or full precision (trainer.precision=32-true; this run: {trainer.precision})"))
