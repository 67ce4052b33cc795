"""Rebuild a trained model from a Lightning checkpoint, safely.

Checkpoints from elsewhere are code if unpickled freely, so they are read with
``torch.load(weights_only=True)``. The module saves the arch config and the data's class count,
image size and normalisation as hyper-parameters, which is all that is needed to rebuild it.
"""
from __future__ import annotations

import pickle
from pathlib import Path

import torch
from torch import nn

from robustgen.arch import build_arch
from robustgen.arch.contract import non_finite
from robustgen.data.cifar10 import MEAN as CIFAR10_MEAN
from robustgen.data.cifar10 import STD as CIFAR10_STD
from robustgen.errors import CheckpointError


def read_checkpoint(path: str | Path) -> dict:
    path = Path(path)
    if path.is_dir():
        hint = next((str(p) for p in (path / "checkpoints" / "best.ckpt", path / "best.ckpt") if p.is_file()), None)
        raise CheckpointError(f"checkpoint {path} is a folder; pass the .ckpt file"
                              + (f", e.g. checkpoint={hint}" if hint else " (a run keeps them in <run>/checkpoints/)"))
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:  # objects other than tensors and plain data: possibly code
        first = str(err).split(". ")[0].split("\n")[0]
        raise CheckpointError(f"cannot read checkpoint {path} safely: it holds more than tensors and plain data, "
                              f"and robustgen loads checkpoints with weights_only=True ({first}); use a checkpoint "
                              f"that robustgen wrote") from None
    except Exception as err:  # truncated file, not a checkpoint at all
        raise CheckpointError(f"cannot read checkpoint {path} safely: {type(err).__name__}: {err} (truncated, or not "
                              f"a PyTorch checkpoint; a run's checkpoints are in <run>/checkpoints/)") from None


def model_state(checkpoint: dict) -> dict:
    """The classifier's weights (keys without the Lightning module's `model.` prefix)."""
    state = checkpoint.get("state_dict", checkpoint)
    return {k.removeprefix("model."): v for k, v in state.items() if k.startswith("model.")} or state


def load_model(path: str | Path, expected_arch: str | None = None) -> tuple[nn.Module, dict]:
    """Return (model taking [0, 1] images, hyper-parameters) from a robustgen checkpoint."""
    checkpoint = read_checkpoint(path)
    hparams = checkpoint.get("hyper_parameters") or {}
    arch, data = dict(hparams.get("arch") or {}), dict(hparams.get("data") or {})
    if "name" not in arch:
        raise CheckpointError(f"{path} is not a robustgen checkpoint (no arch in its hyper-parameters)")
    if expected_arch is not None and arch["name"] != expected_arch:
        raise CheckpointError(f"{path} holds arch={arch['name']}, but arch={expected_arch} was requested")
    name = arch["name"]
    model = build_arch(arch, num_classes=data.get("num_classes", 10), img_size=data.get("img_size", 32),
                       mean=tuple(data.get("mean", CIFAR10_MEAN)), std=tuple(data.get("std", CIFAR10_STD)))
    state = model_state(checkpoint)
    bad = non_finite(state.values())
    if bad:
        raise CheckpointError(f"{path} holds {bad} NaN or infinite weight(s): the run that wrote it diverged, and "
                              f"its numbers would mean nothing; evaluate an earlier checkpoint or retrain with a "
                              f"smaller optim.lr")
    try:
        model.load_state_dict(state)
    except RuntimeError as err:
        raise CheckpointError(f"{path}: weights do not fit arch={name} {arch}: {str(err)[:300]}") from None
    return model, hparams
