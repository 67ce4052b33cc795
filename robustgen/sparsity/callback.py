"""Lightning callback: weight sparsity, Theorem 1's norm terms and the robust generalization gap,
measured each epoch and summarised into results.json.

Logged at the end of every `every_n_epochs`-th training epoch (after that epoch's validation):

- ``sparsity/<kind>/<measure>`` for kinds attention/conv/mlp/overall and measures
  near_zero/hoyer/l1/l2 (robustgen.sparsity.measures);
- ``bound/rademacher_norm_mean`` and ``bound/adversarial_norm_mean`` over the attention blocks, for
  architectures that have attention (robustgen.sparsity.bound);
- ``train/acc_adv_fixed``: adversarial accuracy on a fixed, un-augmented subset of `train_points`
  training images, attacked with the module's `val_attack` exactly as `val/acc_adv` is (same
  attack, same per-example random starts keyed by example id), plus ``train/acc_clean_fixed``;
- ``gap/robust`` = train/acc_adv_fixed − val/acc_adv (in points): robust overfitting shows as a
  gap that keeps growing while val/acc_adv stalls or falls.

`results_record(best_model)` (called by robustgen.train after the final evaluation) returns the
sparsity and norm terms of the evaluated (best) checkpoint and the whole per-epoch history.
"""
from __future__ import annotations

import logging

import lightning as L
import torch
from torch import nn
from torch.utils.data import DataLoader

from robustgen.errors import ConfigError
from robustgen.modes import eval_mode
from robustgen.sparsity.bound import block_input_fro, bound_record, theorem1_complexity
from robustgen.sparsity.measures import DEFAULT_THRESHOLD, flatten_measures, sparsity_measures

log = logging.getLogger("robustgen")


class SparsityMonitor(L.Callback):
    """Args:
        train_points: size of the fixed training subset attacked each epoch (0: no robust gap).
        every_n_epochs: measure every n-th epoch (and always after the last one).
        threshold: τ of the near-zero fraction, relative to each tensor's largest |w|.
        margin: γ of Theorem 1. The slides leave it free, so the full complexity term (which also
            needs ‖X‖_F, measured on the fixed training subset) is only computed when it is given.
    """

    def __init__(self, train_points: int = 512, every_n_epochs: int = 1, threshold: float = DEFAULT_THRESHOLD,
                 margin: float | None = None):
        if train_points < 0:
            raise ConfigError(f"callbacks.sparsity.train_points must be ≥ 0, got {train_points}")
        if every_n_epochs < 1:
            raise ConfigError(f"callbacks.sparsity.every_n_epochs must be ≥ 1, got {every_n_epochs}")
        if not 0 <= threshold < 1:
            raise ConfigError(f"callbacks.sparsity.threshold must be in [0, 1) (relative to max|w|), got {threshold}")
        if margin is not None and not margin > 0:
            raise ConfigError(f"callbacks.sparsity.margin (γ) must be > 0, got {margin}")
        self.train_points, self.every_n_epochs = train_points, every_n_epochs
        self.threshold, self.margin = threshold, margin
        self.history: list[dict] = []
        self._train_subset = None
        self._train_size: int | None = None
        self._eps: float | None = None

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        # Here rather than at the first epoch's end: a run resumed after its last epoch (killed
        # during the final evaluation) trains no epoch but still reports the subset and ε.
        self._eps = getattr(pl_module.val_attack, "eps", None)
        self._fixed_train_loader(trainer)

    # --- per epoch -------------------------------------------------------------------------------
    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        epoch = trainer.current_epoch
        last = trainer.max_epochs is not None and epoch + 1 >= trainer.max_epochs
        if (epoch + 1) % self.every_n_epochs and not last:
            return
        model = pl_module.model
        entry: dict = {"epoch": epoch, "step": trainer.global_step}
        metrics = flatten_measures(sparsity_measures(model, self.threshold))
        bound = bound_record(model, with_layers=False)  # layers only once, at the end (SVDs of every conv)
        for key in ("rademacher_norm_mean", "adversarial_norm_mean"):
            if bound[key] is not None:
                metrics[f"bound/{key}"] = bound[key]
        gap = self._robust_gap(trainer, pl_module)
        for key, value in {**metrics, **gap}.items():
            if key not in ("val/acc_adv_at_gap", "val/acc_worst_at_gap"):  # the module logs them
                pl_module.log(key, value, on_step=False, on_epoch=True, sync_dist=True)
        entry.update(metrics, **gap)
        self.history.append(entry)

    def _fixed_train_loader(self, trainer: L.Trainer) -> DataLoader | None:
        if self.train_points == 0:
            return None
        if self._train_subset is None:
            datamodule = trainer.datamodule
            if datamodule is None or not hasattr(datamodule, "train_eval_dataset"):
                log.warning("SparsityMonitor: the data module has no train_eval_dataset(n); no robust gap")
                self.train_points = 0
                return None
            self._train_subset = datamodule.train_eval_dataset(self.train_points)
            self._train_size = len(datamodule.train_dataloader().dataset)
        batch_size = getattr(trainer.datamodule, "eval_batch_size", 256)
        return DataLoader(self._train_subset, batch_size=batch_size, shuffle=False)

    def _robust_gap(self, trainer: L.Trainer, pl_module: L.LightningModule) -> dict[str, float]:
        loader = self._fixed_train_loader(trainer)
        if loader is None:
            return {}
        model, attack = pl_module.model, pl_module.val_attack
        # The worst case over the validation attacks too (val/acc_worst's set), on the training subset.
        others = [a for a in getattr(pl_module, "val_attacks", {}).values() if a is not attack]
        self._eps = getattr(attack, "eps", None)
        correct_clean = correct_adv = correct_worst = total = 0
        with eval_mode(model):
            for x, y, ids in loader:
                x, y, ids = x.to(pl_module.device), y.to(pl_module.device), ids.to(pl_module.device)
                x_adv = attack(model, x, y, example_ids=ids)
                with torch.no_grad():
                    clean = model(x).argmax(1) == y
                    held = model(x_adv).argmax(1) == y
                correct_clean += int(clean.sum())
                correct_adv += int(held.sum())
                held &= clean
                for other in others:  # a cascade: each only where the point still stands
                    if held.any():
                        adv = other(model, x[held], y[held], example_ids=ids[held])
                        with torch.no_grad():
                            held[held.clone()] = model(adv).argmax(1) == y[held]
                correct_worst += int(held.sum())
                total += len(y)
        out = {"train/acc_clean_fixed": 100 * correct_clean / total, "train/acc_adv_fixed": 100 * correct_adv / total,
               "train/acc_worst_fixed": 100 * correct_worst / total}
        val_adv = trainer.callback_metrics.get("val/acc_adv")
        if val_adv is not None:  # None when validation did not run this epoch
            out["val/acc_adv_at_gap"] = float(val_adv)
            out["gap/robust"] = out["train/acc_adv_fixed"] - float(val_adv)
        val_worst = trainer.callback_metrics.get("val/acc_worst")
        if val_worst is not None:
            out["val/acc_worst_at_gap"] = float(val_worst)
            out["gap/robust_worst"] = out["train/acc_worst_fixed"] - float(val_worst)
        return out

    # --- results.json ----------------------------------------------------------------------------
    def results_record(self, best_model: nn.Module) -> dict:
        bound = bound_record(best_model)
        if self.margin is not None:
            self._add_complexity(best_model, bound)
        gaps = [e for e in self.history if "gap/robust" in e]
        robust_gap = {
            "train_points": len(self._train_subset) if self._train_subset is not None else 0,
            "attack": "val_attack (the same as val/acc_adv)",
            "worst_case_attacks": "val_attack and val_eval's attacks (the same as val/acc_worst)",
            "history": [{k: e.get(k) for k in ("epoch", "train/acc_clean_fixed", "train/acc_adv_fixed",
                                              "val/acc_adv_at_gap", "gap/robust", "train/acc_worst_fixed",
                                              "val/acc_worst_at_gap", "gap/robust_worst")} for e in gaps],
            "final": gaps[-1]["gap/robust"] if gaps else None,
            "max": max((e["gap/robust"] for e in gaps), default=None),
            "final_worst": gaps[-1].get("gap/robust_worst") if gaps else None,
        }
        sparsity = {"threshold": self.threshold, "measured_on": "best checkpoint",
                    **sparsity_measures(best_model, self.threshold),
                    "history": [{k: v for k, v in e.items() if k.startswith(("sparsity/", "bound/", "epoch"))}
                                for e in self.history]}
        return {"sparsity": sparsity, "bound": bound, "robust_gap": robust_gap}

    def _add_complexity(self, model: nn.Module, bound: dict) -> None:
        """Theorem 1's complexity term per block, with n = training-set size and ‖X‖_F of each block's
        input over the training set estimated from the fixed subset (scaled by √(n / subset size))."""
        if self._train_subset is None or self._eps is None:
            log.warning("SparsityMonitor: no training subset measured; complexity term left out")
            return
        units = [b["unit"] for b in bound["blocks"] if "rademacher_norm" in b]
        device = next(model.parameters()).device
        batches = (x.to(device) for x, _, _ in DataLoader(self._train_subset, batch_size=256))
        with eval_mode(model):
            fro = block_input_fro(model, units, batches)
        n, scale = self._train_size, (self._train_size / len(self._train_subset)) ** 0.5
        for block in bound["blocks"]:
            if block["unit"] in fro:
                block["x_fro"] = fro[block["unit"]] * scale
                block["complexity"] = theorem1_complexity(block["s1"], block["s2"], block["b1"], block["b2"], n=n,
                                                          margin=self.margin, eps=self._eps, x_fro=block["x_fro"],
                                                          d_max=block["d_max"])
        values = [b["complexity"] for b in bound["blocks"] if "complexity" in b]
        bound.update(margin=self.margin, eps=self._eps, n=n,
                     complexity_mean=sum(values) / len(values) if values else None)

    # --- resuming keeps the history ------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {"history": self.history}

    def load_state_dict(self, state_dict: dict) -> None:
        self.history = list(state_dict.get("history", []))
