"""What robustgen expects of a classifier, checked once where a model comes in, in one line.

The contract: ``model(x)`` for images x of shape (N, 3, H, W) in [0, 1] returns the logits, one
tensor of shape (N, classes). Models from elsewhere often return more — ``(logits, features)``, or
``{"logits": ..., "features": ...}`` (timm's ``forward_intermediates``, torchvision's detection
heads, HuggingFace's ``ImageClassifierOutput``) — and would otherwise fail deep inside an attack
(``'tuple' object has no attribute 'to'``) or the evaluation (``... has no attribute 'argmax'``).
:class:`LogitsOf` picks the logits out of such an output.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from robustgen.errors import ConfigError
from robustgen.modes import eval_mode


class LogitsOf(nn.Module):
    """`model` with its logits picked out of a tuple, list or dict output: ``output[key]``.

    Example: ``LogitsOf(net, 0)`` for ``net(x) -> (logits, features)``; ``LogitsOf(net, "logits")``
    for ``net(x) -> {"logits": ..., ...}``. Its state dict is the model's, under ``model.``.
    """

    def __init__(self, model: nn.Module, key: int | str = 0):
        super().__init__()
        self.model, self.key = model, key

    def forward(self, x: Tensor) -> Tensor:
        out = self.model(x)
        if isinstance(out, dict) or hasattr(out, "keys"):
            return out[self.key]
        return out[self.key] if isinstance(self.key, int) else getattr(out, self.key)


def non_finite(tensors) -> int:
    """How many entries of `tensors` (floating ones; non-tensors and None skipped) are NaN or infinite."""
    return int(sum((~torch.isfinite(t)).sum() for t in tensors
                   if torch.is_tensor(t) and t.is_floating_point()))


def logits_problem(output, n: int | None = None, classes: int | None = None) -> str | None:
    """What is wrong with `output` as the logits of `n` images of `classes` classes (None: nothing)."""
    if isinstance(output, (tuple, list)):
        kinds = ", ".join(type(o).__name__ for o in output[:4])
        return (f"the model returns a {type(output).__name__} ({kinds}), not one logits tensor of shape "
                f"(N, classes); pick the logits with robustgen.arch.LogitsOf(model, 0) (or the index they have)")
    if isinstance(output, dict) or (hasattr(output, "keys") and not torch.is_tensor(output)):
        keys = ", ".join(map(repr, list(output.keys())[:6]))
        return (f"the model returns a mapping with keys {keys}, not one logits tensor of shape (N, classes); "
                f"pick the logits with robustgen.arch.LogitsOf(model, 'logits') (or the key they have)")
    if not torch.is_tensor(output):
        return f"the model returns a {type(output).__name__}, not a logits tensor of shape (N, classes)"
    if output.ndim != 2 or (n is not None and output.shape[0] != n):
        return (f"the model returns a tensor of shape {tuple(output.shape)} for {n} images; the logits must have "
                f"shape (N, classes)")
    if classes is not None and output.shape[1] != classes:
        return (f"the model returns {output.shape[1]} logits per image but the data has {classes} classes; build it "
                f"with num_classes={classes} (a factory is called with num_classes)")
    return None


def check_logits(output, where: str, n: int | None = None, classes: int | None = None) -> Tensor:
    """`output` if it is a logits tensor of `n` rows (and `classes` columns), else ConfigError
    naming `where` and the fix."""
    problem = logits_problem(output, n, classes)
    if problem:
        raise ConfigError(f"{where}: {problem}")
    return output


def check_classifier(model: nn.Module, x: Tensor, where: str, finite: bool = True,
                     classes: int | None = None) -> Tensor:
    """One forward pass (no gradients) on the images `x`: the output must be a logits tensor of
    shape (len(x), classes) and, with `finite`, hold no NaN or infinity (a diverged model's logits
    are, and every accuracy it gets would be chance level's). Returns the logits.

    Raises:
        ConfigError: the contract is broken, or the logits are not finite.
    """
    with torch.no_grad(), eval_mode(model):  # a check: BatchNorm statistics must not move
        logits = check_logits(model(x), where, len(x), classes)
    if finite and not torch.isfinite(logits).all():
        bad = int((~torch.isfinite(logits)).any(1).sum())
        raise ConfigError(f"{where}: the model's logits are NaN or infinite on {bad} of {len(x)} images (its "
                          f"weights diverged?); there is nothing to evaluate")
    return logits
