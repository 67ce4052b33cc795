"""Attacks compute in float32 whatever the precision of the images and the model.

The attacks' arithmetic assumes at least float32: a U[0, 1) draw rounded to bfloat16 can be 1.0
(so the ℓ1 start's log1p(−u) is −∞: NaN images), an ε of 8/255 is only 8 ulps of a bf16 pixel near
1, and torchattacks mixes float32 tensors with tensors of the images' dtype and converts some to
NumPy, which has no bfloat16. So :meth:`Attack.__call__` works at the boundary, once:

* images go in as float32 (float64 stays float64): :func:`work_dtype`;
* the model is seen through :class:`Float32Model`, which casts its input to the model's own
  floating dtype and returns float32 logits (under ``torch.autocast`` the model still computes in
  low precision inside; the attack's losses, steps and projections do not);
* the result goes back in the images' dtype, each coordinate rounded toward the clean image
  (:func:`round_toward`): |δ_i| never grows, so the ε-ball and the [0, 1] box still hold, which
  round-to-nearest cannot promise (it may push a coordinate one ulp outward, past ε).
"""
from __future__ import annotations

import itertools

import torch
from torch import Tensor, nn

from robustgen.arch.contract import check_logits


def work_dtype(x: Tensor) -> torch.dtype:
    """The dtype an attack computes in: float32, or x's dtype if that is wider (float64)."""
    return torch.promote_types(x.dtype, torch.float32)


def _floating_dtype(model: nn.Module) -> torch.dtype | None:
    """The dtype of the model's first floating parameter (or buffer): what its layers expect."""
    for tensor in itertools.chain(model.parameters(), model.buffers()):
        if tensor.is_floating_point():
            return tensor.dtype
    return None


class Float32Model(nn.Module):
    """The model as an attack sees it: any input dtype in, float32 (or wider) logits out.

    Its parameters are the model's (torchattacks reads the device from ``next(model.parameters())``,
    and FAB's parameter gradients are restored by the wrapper). Modes are not its business:
    ``training`` mirrors the wrapped model and ``train()`` / ``eval()`` do nothing, because
    :meth:`Attack.__call__` alone sets modes, per submodule (robustgen/modes.py), while code inside
    an attack (torchattacks) would switch the whole model wholesale.
    """

    def __init__(self, model: nn.Module):
        super().__init__()
        self.inner = model
        self.input_dtype = _floating_dtype(model)

    @classmethod
    def wrap(cls, model: nn.Module) -> Float32Model:
        """`model` behind the adapter, once (AutoAttack hands its components the adapter it got)."""
        return model if isinstance(model, cls) else cls(model)

    @property
    def training(self) -> bool:  # type: ignore[override]
        inner = self.__dict__.get("_modules", {}).get("inner")  # absent while nn.Module.__init__ runs
        return inner.training if inner is not None else False

    @training.setter
    def training(self, value: bool) -> None:  # nn.Module.__init__ sets it; the wrapped model decides
        pass

    def train(self, mode: bool = True) -> Float32Model:
        return self

    def forward(self, x: Tensor) -> Tensor:
        logits = check_logits(self.inner(x if self.input_dtype is None else x.to(self.input_dtype)), "attack",
                              len(x))
        return logits.to(torch.promote_types(logits.dtype, torch.float32))


def round_toward(x_adv: Tensor, x: Tensor, dtype: torch.dtype) -> Tensor:
    """`x_adv` in `dtype`, each coordinate rounded toward the clean `x` (both in the work dtype;
    x must be representable in `dtype`, as it is when it came from there).

    Round-to-nearest lands on one of the two `dtype` neighbours around x_adv_i; where it lands on
    the far side from x_i, one step toward x_i gives the other neighbour, which lies between x_i
    and x_adv_i because x_i itself is on the grid. torch.nextafter takes that step in bfloat16 and
    float16 on CPU (checked with torch 2.14; tests/test_attack_dtypes.py runs it) and, by its
    source, on CUDA, so the step needs no arithmetic on the integer bit pattern.
    """
    out = x_adv.to(dtype)
    if out.dtype == x_adv.dtype:
        return out
    overshot = (out.to(x_adv.dtype) - x).abs() > (x_adv - x).abs()
    return torch.where(overshot, torch.nextafter(out, x.to(dtype)), out)
