"""What a training method is: a module that turns a batch into the loss to minimise."""
from __future__ import annotations

from dataclasses import dataclass, field

from torch import Tensor, nn

from robustgen.attack.base import Attack, NoAttack
from robustgen.errors import ConfigError


@dataclass
class MethodLoss:
    """loss: scalar to minimise. logits_adv: (N, classes), the model's output on the examples the
    method attacked (the clean ones for vanilla training), for train/acc_adv. terms: the loss's
    parts by name (logged as train/<name>)."""

    loss: Tensor
    logits_adv: Tensor
    terms: dict[str, Tensor] = field(default_factory=dict)


class TrainingMethod:
    """A training method. `attack` crafts the training examples (its settings go into results.json
    as `train_attack`); :meth:`__call__` returns the loss of one batch, with the model in the mode
    the trainer set (train): the attack sets its own modes (eval by default, see Attack)."""

    name = "method"

    def __init__(self, attack: Attack):
        self.attack = attack

    def __call__(self, model: nn.Module, x: Tensor, y: Tensor) -> MethodLoss:
        raise NotImplementedError

    def describe(self) -> dict:
        return {"name": self.name}

    @staticmethod
    def require_linf(name: str, attack: Attack) -> None:
        """TRADES, MART and fast AT are defined (and tuned) for ℓ∞ budgets."""
        if isinstance(attack, NoAttack) or getattr(attack, "norm", None) != "linf":
            raise ConfigError(f"method={name} is defined for an ℓ∞ budget: use attack=pgd_linf (its ε is the "
                              f"method's), got a {getattr(attack, 'norm', 'none')} attack; vanilla training is "
                              f"attack=none with method=pgd_at")
