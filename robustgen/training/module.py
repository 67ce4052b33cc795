"""The Lightning module: adversarial training and validation of one classifier.

Per batch of training: the training method (robustgen/method/; PGD-AT by default) crafts its
examples with its attack (in eval mode, so BatchNorm statistics come from the images the model
learns on, not from the attack's probes) and gives the loss, plus the regularizer.
Validation: clean accuracy on the validation set; on a fixed subset of it, the worst case over a
cheap attack set (`val_attack`, PGD-ℓ∞, plus `val_eval`'s attacks: by default PGD-ℓ2 and PGD-ℓ1
at the `eval=paper` budgets) and each attack's accuracy, and FGSM accuracy (for the
catastrophic-overfitting monitor).
"""
from __future__ import annotations

import lightning as L
import torch
from torch import Tensor, nn
from torchmetrics import MeanMetric

from robustgen.attack.base import Attack
from robustgen.attack.pgd import PGD
from robustgen.method import PGDAT, TrainingMethod
from robustgen.training.optim import OptimConfig, build_optimizer
from robustgen.regularizer.base import NoRegularizer, Regularizer

CLEAN_LOADER, ADV_LOADER = 0, 1  # validation loaders of the data modules


class AdversarialClassifier(L.LightningModule):
    """Args:
        model: takes images in [0, 1], returns logits.
        train_attack / val_attack: `attack(model, x, y) -> x_adv`; the training attack is used by
            the default method, PGD-AT (ignored when `method` is given: it has its own).
        optim: AdamW + warm-up/cosine settings.
        arch: the arch config (name + knobs) as a plain dict: saved in checkpoints with
            the data's class count, size and normalisation so the model can be rebuilt from them.
        run: what resuming needs, saved with them: `settings` (the training settings a resumed run
            must share, see resume.py) and `run_id` (the W&B run a resumed run continues).
        method: the training method (PGD-AT with `train_attack` when None).
        val_attacks: name → attack, run with `val_attack` on the attacked validation subset every
            epoch: `val/acc/<name>` each, and `val/acc_worst` (a point counts if it survives every
            one). `val_per_attack=False` runs them as a cascade (each only on the points the ones
            before left): cheaper, and then only `val/acc_worst` and the first attack's accuracy
            are exact, so only those are logged.
        compile_model: run the model through `torch.compile` — compiled once, used by the attacks
            and the training and validation steps alike (checkpoints keep the plain model's keys).
        channels_last: keep weights and images in channels-last memory format (faster convolutions
            on GPUs with tensor cores).
    """

    def __init__(self, model: nn.Module, train_attack: Attack, val_attack: Attack, optim: OptimConfig,
                 regularizer: Regularizer | None = None, arch: dict | None = None, data_info: dict | None = None,
                 run: dict | None = None, method: TrainingMethod | None = None, compile_model: bool = False,
                 channels_last: bool = False, val_attacks: dict[str, Attack] | None = None,
                 val_per_attack: bool = True):
        super().__init__()
        self.model = model
        self.memory_format = torch.channels_last if channels_last else None
        if channels_last:
            self.model.to(memory_format=torch.channels_last)
        # In a list, so that the compiled wrapper is not registered as a second copy of the model.
        self._compiled = [torch.compile(model)] if compile_model else []
        self.method = method or PGDAT(train_attack)
        self.train_attack, self.val_attack = self.method.attack, val_attack
        self.val_attack_name = f"pgd_{val_attack.norm}" if isinstance(val_attack, PGD) else "val_attack"
        self.val_attacks = {self.val_attack_name: val_attack, **dict(val_attacks or {})}
        self.val_per_attack = val_per_attack
        # FGSM at the validation attack's budget: one step of ε from the clean image.
        self.val_fgsm = PGD(norm=getattr(val_attack, "norm", "linf"), eps=val_attack.eps, steps=1,
                            step_size=val_attack.eps, random_start=False) if val_attack.eps > 0 else None
        self.regularizer = regularizer or NoRegularizer()
        self.val_accuracy = nn.ModuleDict()  # metric name → MeanMetric (_log_accuracy); states not saved
        self.optim_cfg = optim
        self.save_hyperparameters({"arch": dict(arch or {}), "data": dict(data_info or {}),
                                   "train_attack": self.train_attack.describe(), "val_attack": val_attack.describe(),
                                   "val_attacks": {k: a.describe() for k, a in self.val_attacks.items()},
                                   "method": self.method.describe(), **dict(run or {})})

    @property
    def net(self) -> nn.Module:
        """The model as the steps run it: compiled when asked, else the model itself."""
        return self._compiled[0] if self._compiled else self.model

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)

    def layout(self, x: Tensor) -> Tensor:
        """Images in the module's memory format (channels-last when asked)."""
        return x if self.memory_format is None else x.contiguous(memory_format=self.memory_format)

    def training_step(self, batch, batch_idx: int) -> Tensor:
        x, y, _ = batch
        # Fresh random starts each epoch: no example ids during training.
        out = self.method(self.net, self.layout(x), y)
        loss = out.loss
        for name, term in out.terms.items():
            self.log(f"train/{name}", term, on_step=False, on_epoch=True, sync_dist=True, prog_bar=name == "loss_adv",
                     batch_size=len(y))
        self.log("train/acc_adv", (out.logits_adv.argmax(1) == y).float().mean() * 100, on_step=False,
                 on_epoch=True, sync_dist=True, prog_bar=True, batch_size=len(y))
        if self.regularizer.active:
            penalty = self.regularizer(self.model)
            loss = loss + penalty
            self.log("train/loss_reg", penalty, on_step=False, on_epoch=True, sync_dist=True, batch_size=len(y))
        self.last_train_loss = loss.detach()  # named by the non-finite guard (guard.py) if the gradients are not
        return loss

    def validation_step(self, batch, batch_idx: int, dataloader_idx: int = 0) -> None:
        x, y, ids = batch
        x, net = self.layout(x), self.net
        if dataloader_idx == ADV_LOADER and self.val_fgsm is not None:
            self._log_accuracy("val/acc_fgsm", correct(net, self.val_fgsm(net, x, y), y))
        if dataloader_idx == ADV_LOADER:
            self._worst_case_step(net, x, y, ids)
            return
        self._log_accuracy("val/acc_clean", correct(net, x, y), prog_bar=True)

    def _log_accuracy(self, name: str, hits: Tensor, prog_bar: bool = False) -> None:
        """Log `name` as the % of images of the epoch's validation that `hits` marks correct. A
        torchmetrics MeanMetric per name keeps the sum of hits and the count of images, summed over
        DDP ranks at the epoch's end: each image counts once, whatever the ranks' shares (Lightning's
        own `sync_dist` mean weights the ranks by an integer-averaged batch size: 9 of 63 correct
        images came out as 9/62)."""
        if name not in self.val_accuracy:
            self.val_accuracy[name] = MeanMetric().to(self.device)
        metric = self.val_accuracy[name]
        metric.update(hits.float() * 100)
        self.log(name, metric, on_epoch=True, prog_bar=prog_bar, batch_size=len(hits), add_dataloader_idx=False,
                 metric_attribute=f"val_accuracy.{name}")

    def _worst_case_step(self, net: nn.Module, x: Tensor, y: Tensor, ids: Tensor) -> None:
        """Every validation attack on the batch; logs each accuracy, val/acc_adv (`val_attack`'s,
        the study's per-epoch number) and val/acc_worst."""
        held = correct(net, x, y)
        for k, (name, attack) in enumerate(self.val_attacks.items()):
            among = torch.ones_like(held) if self.val_per_attack or k == 0 else held
            survived = torch.zeros_like(held)
            if among.any():
                survived[among] = correct(net, attack(net, x[among], y[among], example_ids=ids[among]), y[among])
            if self.val_per_attack or k == 0:
                self._log_accuracy(f"val/acc/{name}", survived)
            if name == self.val_attack_name:
                self._log_accuracy("val/acc_adv", survived, prog_bar=True)
            held &= survived
        self._log_accuracy("val/acc_worst", held, prog_bar=True)

    def configure_optimizers(self):
        total = int(self.trainer.estimated_stepping_batches)
        per_epoch = max(total // max(self.trainer.max_epochs or 1, 1), 1)
        optimizer, schedule = build_optimizer(self.model.parameters(), self.optim_cfg, total, per_epoch)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}


def correct(net: nn.Module, x: Tensor, y: Tensor) -> Tensor:
    """(N,) bool: classified correctly."""
    with torch.no_grad():
        return net(x).argmax(1) == y
