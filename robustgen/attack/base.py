"""The one interface every attack has: ``attack(model, x, y) -> x_adv``.

Images are in [0, 1] (models normalise inside), so ε is in pixel units. An attack

* never mutates `x` or `y`, and returns a tensor the caller owns;
* saves every submodule's train/eval flag and restores each afterwards (robustgen/modes.py), so
  a BatchNorm the caller froze stays frozen; attacks run the model in eval mode by default so that
  BatchNorm statistics and dropout do not change under attack, and ``eval_mode=False`` attacks the
  model in the modes the caller set, module by module;
* computes in float32 whatever the dtype of the images or the model, and returns `x`'s dtype,
  rounded toward `x` so the ε-ball and the [0, 1] box still hold (precision.py);
* enables gradients even inside ``torch.no_grad`` or ``torch.inference_mode`` (Lightning's
  validation and test loops use the latter), because every white-box attack needs input gradients;
* never touches parameter gradients: it asks autograd for the input gradient only.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from robustgen.attack.precision import Float32Model, round_toward, work_dtype
from robustgen.errors import ConfigError
from robustgen.modes import eval_mode, preserved_modes


class Attack:
    """Base class. Subclasses implement :meth:`perturb` and set `norm` ("linf", "l2", "l1")."""

    norm: str = "none"

    def __init__(self, eps: float, *, eval_mode: bool = True, seed: int = 0):
        if not eps >= 0:
            raise ConfigError(f"{type(self).__name__}: eps must be ≥ 0, got {eps}")
        self.eps = float(eps)
        self.eval_mode = eval_mode
        self.seed = seed

    def __call__(self, model: nn.Module, x: Tensor, y: Tensor, *, example_ids: Tensor | None = None) -> Tensor:
        """Return adversarial versions of `x`. `example_ids` (one integer per row, e.g. the index in
        the data set) make random starts depend on the example, not on the batch it is in; without
        them starts come from torch's global generator (fresh each call, as training wants)."""
        modes = eval_mode(model) if self.eval_mode else preserved_modes(model)  # per submodule
        with modes, torch.inference_mode(False), torch.enable_grad():
            # Inference tensors cannot enter autograd: copy into ordinary tensors first.
            x_work = x.detach().to(work_dtype(x), copy=True)
            y = y.detach().clone()
            ids = example_ids.detach().clone() if example_ids is not None else None
            # The adapter is applied here, once: AutoAttack hands it on to its components.
            x_adv = self.perturb(Float32Model.wrap(model), x_work, y, ids).detach()
            return round_toward(x_adv, x_work, x.dtype)

    def perturb(self, model: nn.Module, x: Tensor, y: Tensor, example_ids: Tensor | None) -> Tensor:
        raise NotImplementedError

    def describe(self) -> dict:
        """Settings written into results.json, so a result says exactly which attack produced it."""
        return {"type": type(self).__name__, "norm": self.norm, "eps": self.eps}

    def min_classes(self) -> tuple[int, str]:
        """(the fewest classes this attack can run on, why): 2 unless its loss needs more."""
        return 2, "it needs a wrong class to push toward"


def check_classes(attacks: dict[str, Attack], n_classes: int, where: str = "eval.attacks") -> None:
    """Refuse, in one line and before any work, an attack set with an attack that cannot run on a
    classifier of `n_classes` classes (the targeted DLR loss compares the four largest logits:
    APGD-T and AutoAttack's apgd-t need 4 classes), naming it and the way out."""
    for name, attack in attacks.items():
        need, why = attack.min_classes()
        if n_classes < need:
            runnable = getattr(attack, "runnable_components", lambda n: [])(n_classes)
            fix = (f"run it as version=custom with components=[{','.join(runnable)}]" if runnable else
                   f"leave it out ({where}.{name}=null)")
            raise ConfigError(f"{where}.{name}: {type(attack).__name__} needs at least {need} classes ({why}), and "
                              f"this model has {n_classes}; {fix}")


class NoAttack(Attack):
    """Identity 'attack': vanilla (clean) training with `attack=none`.

    Budget settings (steps, step_size, ...) are accepted and ignored, so that an experiment that
    shortens the training attack (e.g. `experiment=quickstart`) also works with `attack=none`.
    """

    def __init__(self, **ignored_budget) -> None:
        super().__init__(eps=0.0)

    def __call__(self, model: nn.Module, x: Tensor, y: Tensor, *, example_ids: Tensor | None = None) -> Tensor:
        return x.detach().clone()
