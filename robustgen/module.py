"""The Lightning module: adversarial training and validation of one classifier.

Per batch of training: craft adversarial examples with the training attack (in eval mode, so
BatchNorm statistics come from the images the model learns on, not from the attack's probes),
then minimise the cross-entropy on the adversarial examples only, plus the regularizer.
Validation: clean accuracy on the validation set and PGD accuracy on a fixed subset of it.
"""
from __future__ import annotations

import lightning as L
import torch.nn.functional as F
from torch import Tensor, nn

from robustgen.attack.base import Attack
from robustgen.optim import OptimConfig, build_optimizer
from robustgen.regularizer.base import NoRegularizer, Regularizer

CLEAN_LOADER, ADV_LOADER = 0, 1  # validation loaders of the data modules


class AdversarialClassifier(L.LightningModule):
    """Args:
        model: takes images in [0, 1], returns logits.
        train_attack / val_attack: `attack(model, x, y) -> x_adv`.
        optim: AdamW + warm-up/cosine settings.
        arch: the arch config (name + knobs) as a plain dict: saved in checkpoints with
            the data's class count, size and normalisation so the model can be rebuilt from them.
        run: what resuming needs, saved with them: `settings` (the training settings a resumed run
            must share, see resume.py) and `run_id` (the W&B run a resumed run continues).
    """

    def __init__(self, model: nn.Module, train_attack: Attack, val_attack: Attack, optim: OptimConfig,
                 regularizer: Regularizer | None = None, arch: dict | None = None, data_info: dict | None = None,
                 run: dict | None = None):
        super().__init__()
        self.model = model
        self.train_attack, self.val_attack = train_attack, val_attack
        self.regularizer = regularizer or NoRegularizer()
        self.optim_cfg = optim
        self.save_hyperparameters({"arch": dict(arch or {}), "data": dict(data_info or {}),
                                   "train_attack": train_attack.describe(), "val_attack": val_attack.describe(),
                                   **dict(run or {})})

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)

    def training_step(self, batch, batch_idx: int) -> Tensor:
        x, y, _ = batch
        # Fresh random starts each epoch: no example ids during training.
        x_adv = self.train_attack(self.model, x, y)
        logits = self.model(x_adv)
        loss_adv = F.cross_entropy(logits, y)
        loss = loss_adv
        self.log("train/loss_adv", loss_adv, on_step=False, on_epoch=True, prog_bar=True, batch_size=len(y))
        self.log("train/acc_adv", (logits.argmax(1) == y).float().mean() * 100, on_step=False, on_epoch=True,
                 prog_bar=True, batch_size=len(y))
        if self.regularizer.active:
            penalty = self.regularizer(self.model)
            loss = loss + penalty
            self.log("train/loss_reg", penalty, on_step=False, on_epoch=True, batch_size=len(y))
        return loss

    def validation_step(self, batch, batch_idx: int, dataloader_idx: int = 0) -> None:
        x, y, ids = batch
        if dataloader_idx == ADV_LOADER:
            x = self.val_attack(self.model, x, y, example_ids=ids)
        acc = (self.model(x).argmax(1) == y).float().mean() * 100
        key = "val/acc_adv" if dataloader_idx == ADV_LOADER else "val/acc_clean"
        self.log(key, acc, on_epoch=True, prog_bar=True, batch_size=len(y), add_dataloader_idx=False)

    def configure_optimizers(self):
        total = int(self.trainer.estimated_stepping_batches)
        per_epoch = max(total // max(self.trainer.max_epochs or 1, 1), 1)
        optimizer, schedule = build_optimizer(self.model.parameters(), self.optim_cfg, total, per_epoch)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}
