"""PGD-AT, TRADES, MART and fast AT, each as its paper and reference code define it.

The outer losses are written here because no maintained library ships them as functions over
logits (torchattacks has TRADES' inner attack, TPGD, but binds the model at construction and seeds
the global generator; our PGD loop gives the same steps with per-call fresh starts).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from robustgen.attack.base import Attack
from robustgen.attack.pgd import PGD
from robustgen.attack.random_start import ExampleRNG
from robustgen.errors import ConfigError
from robustgen.method.base import MethodLoss, TrainingMethod


class NoiseStartPGD(PGD):
    """ℓ∞ PGD from x + `start_std`·N(0, 1) (TRADES' and MART's reference code: 0.001), ascending the
    cross-entropy (`loss="ce"`, MART) or TRADES' KL(p(x) ‖ p(x')) summed over the batch (`loss="kl"`,
    the KL divergence of the adversarial output from the clean one, as nn.KLDivLoss computes it in
    yaodongyu/TRADES). Same projection as :class:`PGD` (ε-ball, then [0, 1])."""

    def __init__(self, eps: float = 8 / 255, steps: int = 10, step_size: float = 0.007, start_std: float = 0.001,
                 loss: str = "kl", **kwargs):
        super().__init__(norm="linf", eps=eps, steps=steps, step_size=step_size, random_start="ball", **kwargs)
        if loss not in ("ce", "kl"):
            raise ConfigError(f"NoiseStartPGD: loss must be 'ce' or 'kl', got {loss!r}")
        if not start_std >= 0:
            raise ConfigError(f"NoiseStartPGD: start_std must be ≥ 0, got {start_std}")
        self.start_std, self.objective = float(start_std), loss

    def initial_delta(self, x: Tensor, rng: ExampleRNG) -> Tensor:
        return self.start_std * rng.normal(x)

    def loss_target(self, model: nn.Module, x: Tensor, y: Tensor) -> Tensor:
        if self.objective == "ce":
            return y
        with torch.no_grad():
            return F.softmax(model(x), dim=1)

    def loss(self, logits: Tensor, target: Tensor) -> Tensor:
        if self.objective == "ce":
            return F.cross_entropy(logits, target, reduction="sum")
        return F.kl_div(F.log_softmax(logits, dim=1), target, reduction="sum")

    def describe(self) -> dict:
        return {**super().describe(), "random_start": f"normal(std={self.start_std:g})", "loss": self.objective}


class PGDAT(TrainingMethod):
    """PGD adversarial training (Madry et al., 2018): minimise CE(f(x_adv), y), x_adv from the
    `attack` config group (the study's: PGD-ℓ∞ 8/255, 15 steps of 0.8/255); `attack=none` gives
    vanilla training."""

    name = "pgd_at"

    def __call__(self, model: nn.Module, x: Tensor, y: Tensor) -> MethodLoss:
        logits = model(self.attack(model, x, y))
        loss = F.cross_entropy(logits, y)
        return MethodLoss(loss, logits, {"loss_adv": loss})


class TRADES(TrainingMethod):
    """TRADES (Zhang et al., 2019; yaodongyu/TRADES): minimise
    CE(f(x), y) + β · (1/N) Σ KL(p(x) ‖ p(x')), with x' maximising that KL by ℓ∞ PGD from a
    0.001·N(0, 1) start (10 steps of 0.007 in the paper's CIFAR-10 setting), β = 6 (the paper's
    CIFAR-10 choice, 1/λ). The budget ε is the `attack` group's. Both outputs carry gradients, as in
    the reference code. β = 0 is clean training.
    """

    name = "trades"

    def __init__(self, attack: Attack, beta: float = 6.0, steps: int = 10, step_size: float = 0.007,
                 start_std: float = 0.001):
        self.require_linf(self.name, attack)
        if not beta >= 0:
            raise ConfigError(f"method.beta must be ≥ 0, got {beta}")
        super().__init__(NoiseStartPGD(eps=attack.eps, steps=steps, step_size=step_size, start_std=start_std,
                                       loss="kl", seed=attack.seed))
        self.beta = float(beta)

    def __call__(self, model: nn.Module, x: Tensor, y: Tensor) -> MethodLoss:
        x_adv = self.attack(model, x, y) if self.beta > 0 else x
        logits = model(x)
        logits_adv = model(x_adv) if self.beta > 0 else logits
        natural = F.cross_entropy(logits, y)
        robust = F.kl_div(F.log_softmax(logits_adv, dim=1), F.softmax(logits, dim=1), reduction="sum") / len(y)
        return MethodLoss(natural + self.beta * robust, logits_adv, {"loss_natural": natural, "loss_kl": robust})

    def describe(self) -> dict:
        return {"name": self.name, "beta": self.beta}


class MART(TrainingMethod):
    """MART (Wang et al., ICLR 2020; YisenWang/MART): minimise
    BCE(f(x'), y) + λ · (1/N) Σ KL(p(x) ‖ p(x')) · (1 − p_y(x)), where the boosted cross-entropy
    BCE = CE(f(x'), y) − log(1 − max_{k≠y} p_k(x')) and x' is ℓ∞ PGD on the CE from a
    0.001·N(0, 1) start (10 steps of 0.007). λ = 5, the setting for ResNet-18 on CIFAR-10; the
    reference code's WideResNet script uses 6 (`method.lam=6` reproduces it). The constants 1.0001, 1e-12 and
    1.0000001 that keep the logarithms finite are the reference code's.
    """

    name = "mart"

    def __init__(self, attack: Attack, lam: float = 5.0, steps: int = 10, step_size: float = 0.007,
                 start_std: float = 0.001):
        self.require_linf(self.name, attack)
        if not lam >= 0:
            raise ConfigError(f"method.lam must be ≥ 0, got {lam}")
        super().__init__(NoiseStartPGD(eps=attack.eps, steps=steps, step_size=step_size, start_std=start_std,
                                       loss="ce", seed=attack.seed))
        self.lam = float(lam)

    def __call__(self, model: nn.Module, x: Tensor, y: Tensor) -> MethodLoss:
        x_adv = self.attack(model, x, y)
        logits, logits_adv = model(x), model(x_adv)
        probs_adv = F.softmax(logits_adv, dim=1)
        top2 = torch.argsort(probs_adv, dim=1)[:, -2:]
        wrong = torch.where(top2[:, -1] == y, top2[:, -2], top2[:, -1])  # the most likely wrong class
        boosted = F.cross_entropy(logits_adv, y) + F.nll_loss(torch.log(1.0001 - probs_adv + 1e-12), wrong)
        probs = F.softmax(logits, dim=1)
        p_true = probs.gather(1, y.unsqueeze(1)).squeeze(1)
        kl = F.kl_div(torch.log(probs_adv + 1e-12), probs, reduction="none").sum(1)
        robust = (kl * (1.0000001 - p_true)).sum() / len(y)
        return MethodLoss(boosted + self.lam * robust, logits_adv, {"loss_boosted_ce": boosted, "loss_kl": robust})

    def describe(self) -> dict:
        return {"name": self.name, "lam": self.lam}


class FastAT(TrainingMethod):
    """Fast adversarial training (Wong, Rice & Kolter, ICLR 2020; locuslab/fast_adversarial):
    FGSM from a start uniform in the ℓ∞ ball, step `step_factor`·ε (1.25·ε), projected back onto
    the ball and [0, 1], then CE on the result — PGD with one step. It needs a cyclic learning
    rate (conf/method/fast_at.yaml selects optim=adamw_cyclic) and early stopping against
    catastrophic overfitting, which :class:`CatastrophicOverfittingMonitor` detects.

    From the `attack` group it takes ε, the seed and the random start (`attack.random_start=none`
    gives plain FGSM training, the variant without Wong et al.'s fix); its steps and step size are
    FGSM's own (1 and `step_factor`·ε), whatever `attack.steps` says.
    """

    name = "fast_at"

    def __init__(self, attack: Attack, step_factor: float = 1.25):
        self.require_linf(self.name, attack)
        if not step_factor > 0:
            raise ConfigError(f"method.step_factor must be > 0, got {step_factor}")
        super().__init__(PGD(norm="linf", eps=attack.eps, steps=1, step_size=step_factor * attack.eps,
                             random_start=getattr(attack, "random_start", "ball"), seed=attack.seed))
        self.step_factor = float(step_factor)

    def __call__(self, model: nn.Module, x: Tensor, y: Tensor) -> MethodLoss:
        logits = model(self.attack(model, x, y))
        loss = F.cross_entropy(logits, y)
        return MethodLoss(loss, logits, {"loss_adv": loss})

    def describe(self) -> dict:
        return {"name": self.name, "step_factor": self.step_factor}
