"""Weights trained elsewhere: a state dict read safely and loaded into the architecture it is for
(`python -m robustgen.evaluate weights=PATH arch=...`).

`.safetensors` files are read with safetensors (no code can run); `.pt` / `.pth` / `.bin` files
with ``torch.load(weights_only=True)``. The keys may be those of the bare network (timm's, a
checkpoint's ``state_dict``) or of robustgen's model, which wraps the network as ``net`` behind its
input normalisation; ``module.`` prefixes (DataParallel, DDP) are dropped.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import torch
from torch import nn

from robustgen.arch.contract import non_finite
from robustgen.arch.normalize import Normalized
from robustgen.errors import CheckpointError

TORCH_SUFFIXES = (".pt", ".pth", ".bin", ".ckpt")


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """The tensors of a state dict file. Raises CheckpointError for a missing or unreadable file."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"weights={path}: no such file")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        elif path.suffix in TORCH_SUFFIXES:
            state = torch.load(path, map_location="cpu", weights_only=True)
        else:
            raise CheckpointError(f"weights={path}: a .safetensors or {', '.join(TORCH_SUFFIXES)} state dict, please")
    except CheckpointError:
        raise
    except Exception as err:  # truncated file, pickled objects (refused by weights_only), not a state dict
        raise CheckpointError(f"weights={path}: cannot read it safely ({type(err).__name__}: "
                              f"{str(err).splitlines()[0][:200]})") from None
    for key in ("state_dict", "model", "model_state_dict"):  # a training checkpoint around the weights
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict) or not all(torch.is_tensor(v) for v in state.values()):
        raise CheckpointError(f"weights={path}: not a state dict of tensors")
    return {k.removeprefix("module."): v for k, v in state.items()}


def load_weights(model: nn.Module, path: str | Path) -> dict:
    """Load the state dict at `path` into `model` (robustgen's, or its inner network); returns where
    the weights came from (path, sha256, which keys). Raises CheckpointError naming a few keys or
    shapes that do not fit, or non-finite weights."""
    state = read_state_dict(path)
    bad = non_finite(state.values())
    if bad:
        raise CheckpointError(f"weights={path} holds {bad} NaN or infinite weight(s): there is nothing to evaluate")
    # the bare network first: weights from elsewhere are a network's (timm's, a training script's)
    targets = ([("network", model.net)] if isinstance(model, Normalized) else []) + [("model", model)]
    problems = []
    for what, target in targets:
        expected = target.state_dict()
        missing, unexpected = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
        shapes = [f"{k} {tuple(state[k].shape)} vs {tuple(v.shape)}" for k, v in expected.items()
                  if k in state and state[k].shape != v.shape]
        if not missing and not unexpected and not shapes:
            target.load_state_dict(state)
            digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
            return {"weights": str(Path(path).resolve()), "sha256": digest, "loaded_into": what}
        problems.append(f"as the {what}'s: missing {missing[:3]}, unexpected {unexpected[:3]}, shapes {shapes[:3]}")
    raise CheckpointError(f"weights={path} do not fit this architecture ({'; '.join(problems)}); check arch= and "
                          f"its settings (e.g. arch.kwargs), and data= (the class count)")
