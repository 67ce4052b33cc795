"""torchattacks' AutoAttack components behind our interface: APGD, APGD-T, FAB-T, Square.

torchattacks binds the model at construction, so each call builds a fresh torchattacks object for
the model it is given. What the wrapper takes care of, having read torchattacks 3.5:

* mode: torchattacks switches the whole model to eval (or train) itself around each call, and
  back with ``model.train()``, which resets every submodule. We switch that off on each object we
  build (:func:`_keep_modes`): :meth:`Attack.__call__` alone sets modes, per submodule, so with
  ``eval_mode=False`` the model runs exactly in the modes the caller set. (The model it gets is
  also the mode-less float32 adapter of precision.py, whose ``train()`` does nothing.)
* dtype: it mixes float32 tensors with the model's logits, so a bf16 model would fail; it gets
  float32 images and the float32 adapter of the model from :meth:`Attack.__call__`.
* device: it reads the device from the model's parameters; our inputs already live there.
* input range: it assumes [0, 1] images and normalises only models of its own `RobModel` class;
  ours normalise inside (`Normalized`), so no normalisation is set.
* randomness: every component calls ``torch.manual_seed(seed)`` on the global generator; we run
  it inside ``torch.random.fork_rng`` so the caller's random stream is left as it was. Its random
  starts are drawn per batch, not per example: a result is reproducible for the same batch, but
  unlike our own attacks may move slightly with batch composition.
* parameter gradients: FAB calls ``backward()``; each parameter's ``.grad`` is put back as it
  was, so an attack never changes what an optimiser would see.
* ℓ1: torchattacks' APGD, APGD-T, FAB and Square have no ℓ1 version, so APGD and APGD-T with
  ``norm="l1"`` run the hand-written ℓ1 APGD in apgd_l1.py instead.

Defaults follow the reference AutoAttack (fra31/auto-attack, "standard" version): 100 iterations,
one restart, 9 target classes, Square with 5,000 queries, p_init 0.8 and no rescaled schedule.
torchattacks' own defaults differ (10 iterations), which is one reason its results drift.
"""
from __future__ import annotations

import torch
import torchattacks
from torch import Tensor, nn

from robustgen.attack import apgd_l1
from robustgen.attack.base import Attack, check_classes
from robustgen.attack.pgd import check_common
from robustgen.errors import ConfigError

_TA_NORM = {"linf": "Linf", "l2": "L2"}
_IMPLEMENTATION = f"torchattacks {torchattacks.__version__}"


class TorchattacksAttack(Attack):
    """Base of the wrappers: subclasses say how to build the torchattacks object (:meth:`build`)."""

    norms: tuple[str, ...] = ("linf", "l2")

    def __init__(self, norm: str, eps: float, **kwargs):
        super().__init__(eps, **kwargs)
        check_common(type(self).__name__, norm, eps, self.norms)
        self.norm = norm

    def build(self, model: nn.Module, n_classes: int) -> torchattacks.attack.Attack:
        raise NotImplementedError

    def _check_classes(self, model: nn.Module, x: Tensor) -> int:
        """The model's class count, refused in one line if this attack cannot run on it."""
        with torch.no_grad():
            n_classes = model(x[:1]).shape[1]
        check_classes({type(self).__name__.lower(): self}, n_classes, "attack")
        return n_classes

    def perturb(self, model: nn.Module, x: Tensor, y: Tensor, example_ids: Tensor | None) -> Tensor:
        n_classes = self._check_classes(model, x)
        devices = [x.device.index or 0] if x.device.type == "cuda" else []
        params = list(model.parameters())
        grads = [p.grad for p in params]
        try:
            with torch.random.fork_rng(devices=devices):
                return _keep_modes(self.build(model, n_classes))(x, y).to(x)
        finally:  # FAB calls .backward(), which would leave gradients on the parameters
            for p, g in zip(params, grads):
                p.grad = g

    def describe(self) -> dict:
        return {**super().describe(), "implementation": _IMPLEMENTATION}


def _keep_modes(attack: torchattacks.attack.Attack) -> torchattacks.attack.Attack:
    """Turn off torchattacks' own mode switching on this object: its ``__call__`` calls
    ``model.eval()`` / ``model.train()`` on the whole model through these two methods."""
    attack._change_model_mode = lambda given_training: None
    attack._recover_model_mode = lambda given_training: None
    return attack


def _check_positive(name: str, **values: int) -> None:
    for key, value in values.items():
        if value < 1:
            raise ConfigError(f"{name}: {key} must be ≥ 1, got {value}")


class APGD(TorchattacksAttack):
    """Auto-PGD (Croce & Hein, 2020) on the cross-entropy ("ce") or DLR ("dlr") loss.

    ℓ∞ / ℓ2: torchattacks.APGD. ℓ1: the hand-written ℓ1-APGD of apgd_l1.py; `eps_schedule=True`
    (ℓ1 only) runs the reference's 3ε → 2ε → ε schedule over 30/30/40% of the iterations.
    """

    norms = ("linf", "l2", "l1")

    def __init__(self, norm: str = "linf", eps: float = 8 / 255, loss: str = "ce", steps: int = 100,
                 n_restarts: int = 1, eps_schedule: bool = False, **kwargs):
        super().__init__(norm, eps, **kwargs)
        if loss not in ("ce", "dlr"):
            raise ConfigError(f"APGD: loss must be 'ce' or 'dlr', got {loss!r}")
        _check_positive("APGD", steps=steps, n_restarts=n_restarts)
        apgd_l1.check_schedule("APGD", norm, eps_schedule, steps)
        self.loss, self.steps, self.n_restarts, self.eps_schedule = loss, int(steps), int(n_restarts), eps_schedule

    def min_classes(self) -> tuple[int, str]:
        if self.loss == "dlr":
            return 3, "its DLR loss compares the three largest logits"
        return super().min_classes()

    def build(self, model, n_classes):
        return torchattacks.APGD(model, norm=_TA_NORM[self.norm], eps=self.eps, steps=self.steps,
                                 n_restarts=self.n_restarts, seed=self.seed, loss=self.loss)

    def perturb(self, model, x, y, example_ids):
        if self.norm != "l1":
            return super().perturb(model, x, y, example_ids)
        self._check_classes(model, x)
        return apgd_l1.attack(model, x, y, eps=self.eps, steps=self.steps, loss=self.loss,
                              n_restarts=self.n_restarts, eps_schedule=self.eps_schedule,
                              example_ids=example_ids, seed=self.seed)

    def describe(self) -> dict:
        out = {**super().describe(), "loss": self.loss, "steps": self.steps, "n_restarts": self.n_restarts}
        if self.norm == "l1":
            out.update(implementation=apgd_l1.IMPLEMENTATION, eps_schedule=self.eps_schedule)
        return out


class APGDT(TorchattacksAttack):
    """Targeted Auto-PGD on the targeted DLR loss, against the `n_target_classes` most likely
    wrong classes in turn. ℓ∞ / ℓ2: torchattacks.APGDT; ℓ1: apgd_l1.py (see :class:`APGD`)."""

    norms = ("linf", "l2", "l1")

    def __init__(self, norm: str = "linf", eps: float = 8 / 255, steps: int = 100, n_target_classes: int = 9,
                 n_restarts: int = 1, eps_schedule: bool = False, **kwargs):
        super().__init__(norm, eps, **kwargs)
        _check_positive("APGDT", steps=steps, n_target_classes=n_target_classes, n_restarts=n_restarts)
        apgd_l1.check_schedule("APGDT", norm, eps_schedule, steps)
        self.steps, self.n_target_classes, self.n_restarts = int(steps), int(n_target_classes), int(n_restarts)
        self.eps_schedule = eps_schedule

    def min_classes(self) -> tuple[int, str]:
        return 4, "its targeted DLR loss compares the four largest logits"

    def build(self, model, n_classes):
        attack = torchattacks.APGDT(model, norm=_TA_NORM[self.norm], eps=self.eps, steps=self.steps,
                                    n_restarts=self.n_restarts, seed=self.seed, n_classes=n_classes)
        attack.n_target_classes = min(self.n_target_classes, n_classes - 1)
        return attack

    def perturb(self, model, x, y, example_ids):
        if self.norm != "l1":
            return super().perturb(model, x, y, example_ids)
        self._check_classes(model, x)
        return apgd_l1.attack(model, x, y, eps=self.eps, steps=self.steps, loss="dlr-targeted",
                              n_restarts=self.n_restarts, n_target_classes=self.n_target_classes,
                              eps_schedule=self.eps_schedule, example_ids=example_ids, seed=self.seed)

    def describe(self) -> dict:
        out = {**super().describe(), "steps": self.steps, "n_target_classes": self.n_target_classes,
               "n_restarts": self.n_restarts}
        if self.norm == "l1":
            out.update(implementation=apgd_l1.IMPLEMENTATION, eps_schedule=self.eps_schedule)
        return out


class FAB(TorchattacksAttack):
    """FAB (Croce & Hein, 2020), minimal-perturbation attack; a point counts as broken only if the
    perturbation found is within eps. `targeted=True` is AutoAttack's FAB-T (multi-targeted)."""

    def __init__(self, norm: str = "linf", eps: float = 8 / 255, steps: int = 100, n_restarts: int = 1,
                 targeted: bool = True, n_target_classes: int = 9, **kwargs):
        super().__init__(norm, eps, **kwargs)
        _check_positive("FAB", steps=steps, n_restarts=n_restarts, n_target_classes=n_target_classes)
        self.steps, self.n_restarts, self.targeted = int(steps), int(n_restarts), targeted
        self.n_target_classes = int(n_target_classes)

    def build(self, model, n_classes):
        attack = torchattacks.FAB(model, norm=_TA_NORM[self.norm], eps=self.eps, steps=self.steps,
                                  n_restarts=self.n_restarts, seed=self.seed, multi_targeted=self.targeted,
                                  n_classes=n_classes)
        attack.n_target_classes = min(self.n_target_classes, n_classes - 1)
        return attack

    def describe(self) -> dict:
        return {**super().describe(), "steps": self.steps, "n_restarts": self.n_restarts, "targeted": self.targeted,
                "n_target_classes": self.n_target_classes}


class Square(TorchattacksAttack):
    """Square Attack (Andriushchenko et al., 2020): score-based black-box random search on the
    margin loss. Needs no gradients, so it is the check against gradient masking."""

    def __init__(self, norm: str = "linf", eps: float = 8 / 255, n_queries: int = 5000, n_restarts: int = 1,
                 p_init: float = 0.8, **kwargs):
        super().__init__(norm, eps, **kwargs)
        _check_positive("Square", n_queries=n_queries, n_restarts=n_restarts)
        if not 0 < p_init <= 1:
            raise ConfigError(f"Square: p_init is a share of the image and must lie in (0, 1], got {p_init}")
        self.n_queries, self.n_restarts, self.p_init = int(n_queries), int(n_restarts), float(p_init)

    def build(self, model, n_classes):
        return torchattacks.Square(model, norm=_TA_NORM[self.norm], eps=self.eps, n_queries=self.n_queries,
                                   n_restarts=self.n_restarts, p_init=self.p_init, seed=self.seed,
                                   resc_schedule=False)

    def describe(self) -> dict:
        return {**super().describe(), "n_queries": self.n_queries, "n_restarts": self.n_restarts,
                "p_init": self.p_init}
