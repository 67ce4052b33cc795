"""Catastrophic overfitting: single-step adversarial training (fast AT) can suddenly lose all
robustness to multi-step attacks within an epoch while its accuracy against FGSM rises — the
model learns to mask the one gradient step it is trained against (Wong et al., 2020, §5;
Andriushchenko & Flammarion, 2020). The symptom is read off validation: PGD accuracy collapses
while FGSM accuracy goes up.
"""
from __future__ import annotations

import logging

import lightning as L

log = logging.getLogger("robustgen")


def catastrophic_overfitting(pgd: list[float], fgsm: list[float], collapse: float = 0.5,
                             min_best: float = 5.0) -> list[bool]:
    """Per epoch, whether it shows catastrophic overfitting.

    Args:
        pgd, fgsm: validation accuracies (%) per epoch so far, against PGD and against FGSM.
        collapse: an epoch is flagged when its PGD accuracy is below `collapse` × the best PGD
            accuracy of the epochs before it, while its FGSM accuracy is above the FGSM accuracy
            of that best epoch (single-step robustness rising as multi-step robustness falls).
        min_best: below this best PGD accuracy (%) nothing is flagged: there is no robustness to lose.
    """
    if len(pgd) != len(fgsm):
        raise ValueError(f"{len(pgd)} PGD accuracies but {len(fgsm)} FGSM accuracies")
    flags, best = [], None
    for epoch, (p, f) in enumerate(zip(pgd, fgsm)):
        flags.append(best is not None and pgd[best] >= min_best and p < collapse * pgd[best] and f > fgsm[best])
        if best is None or p > pgd[best]:
            best = epoch
    return flags


class CatastrophicOverfittingMonitor(L.Callback):
    """Logs `val/catastrophic_overfitting` (1 in an epoch that shows it, else 0) from `val/acc_adv`
    (the validation PGD) and `val/acc_fgsm`, warns the first time, and records the epochs in
    results.json (`catastrophic_overfitting`). See :func:`catastrophic_overfitting`."""

    def __init__(self, collapse: float = 0.5, min_best: float = 5.0):
        self.collapse, self.min_best = float(collapse), float(min_best)
        self.pgd: list[float] = []
        self.fgsm: list[float] = []
        self.epochs: list[int] = []

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        metrics = trainer.callback_metrics
        if trainer.sanity_checking or "val/acc_adv" not in metrics or "val/acc_fgsm" not in metrics:
            return
        self.pgd.append(float(metrics["val/acc_adv"]))
        self.fgsm.append(float(metrics["val/acc_fgsm"]))
        flagged = catastrophic_overfitting(self.pgd, self.fgsm, self.collapse, self.min_best)[-1]
        pl_module.log("val/catastrophic_overfitting", float(flagged), on_epoch=True)
        if flagged:
            if not self.epochs:
                log.warning("catastrophic overfitting in epoch %d: validation PGD accuracy %.1f%% (best %.1f%%) "
                            "while FGSM accuracy rose to %.1f%%; keep the checkpoint from before it (the default "
                            "selection by clean accuracy may not)", trainer.current_epoch, self.pgd[-1],
                            max(self.pgd[:-1]), self.fgsm[-1])
            self.epochs.append(trainer.current_epoch)

    def state_dict(self) -> dict:
        return {"pgd": self.pgd, "fgsm": self.fgsm, "epochs": self.epochs}

    def load_state_dict(self, state: dict) -> None:
        self.pgd, self.fgsm, self.epochs = list(state["pgd"]), list(state["fgsm"]), list(state["epochs"])

    def results_record(self, best_model) -> dict:
        return {"catastrophic_overfitting": {"epochs": self.epochs, "val_acc_pgd": self.pgd,
                                             "val_acc_fgsm": self.fgsm}}
