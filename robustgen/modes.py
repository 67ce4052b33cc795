"""Train/eval modes saved and restored per submodule.

``model.train(flag)`` sets *every* submodule, so restoring a mode with it undoes a user's choice
for part of the model — a BatchNorm frozen with ``model.bn.eval()`` while the rest trains comes
back in train mode. Every place in robustgen that switches a model's modes for a while, to give
it back afterwards, goes through these two context managers instead: they put each module's own
flag back, even on an exception.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from torch import nn


@contextmanager
def preserved_modes(model: nn.Module) -> Iterator[nn.Module]:
    """Leaves modes alone on entry; on exit, every submodule gets back the flag it had on entry."""
    saved = {module: module.training for module in model.modules()}
    try:
        yield model
    finally:
        for module, training in saved.items():
            module.training = training


@contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """`model.eval()` for the duration of the block, then each submodule's own flag back."""
    with preserved_modes(model):
        model.eval()
        yield model
