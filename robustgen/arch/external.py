"""Architectures from outside the study's zoo: any timm model (`arch=timm`) or the user's own module
(`arch=custom`), built at the data's class count and image size and taking [0, 1] images like the
zoo's.

* ``source: timm`` — ``timm.create_model(model_name, num_classes=..., img_size=..., **kwargs)``;
  `img_size` only where the model takes it (ViTs do, most CNNs do not). ``pretrained: true`` loads
  timm's weights where they can be had; offline, timm cannot fetch them, and the error says how to
  point timm at a local file (``+arch.kwargs.pretrained_cfg_overlay.file=PATH``).
* ``source: custom`` — ``factory: "my_pkg.nets:build"`` or ``"path/to/nets.py:build"``: a callable
  taking ``num_classes`` and ``img_size`` and returning an ``nn.Module`` that takes images normalised
  as the data module says (or ``normalize: false``: a module that normalises inside and takes [0, 1]
  images). The factory's source file is hashed into results.json, so a result says which code made it.

Every error is one line naming the setting and the fix (robustgen.errors.ConfigError).
"""
from __future__ import annotations

import difflib
import hashlib
import importlib
import importlib.util
import inspect
import sys
from pathlib import Path
from typing import Callable

import timm
from torch import nn

from robustgen.arch.normalize import Normalized
from robustgen.errors import ConfigError

SOURCES = ("timm", "custom")


def is_external(arch: dict) -> bool:
    """Whether an arch config (its resolved node) names an architecture outside the zoo."""
    return arch.get("source") in SOURCES


def create_external(arch: dict, num_classes: int, img_size: int, mean, std) -> nn.Module:
    """The model an external arch config describes, taking [0, 1] images (see the module docstring)."""
    arch = dict(arch)
    source = arch.pop("source")
    if source == "timm":
        net = _timm(arch, num_classes, img_size)
    elif source == "custom":
        net = _custom(arch, num_classes, img_size)
    else:
        raise ConfigError(f"arch.source={source!r}; choose one of {', '.join(SOURCES)}")
    return Normalized(net, mean=mean, std=std) if arch.get("normalize", True) else net


def _timm(arch: dict, num_classes: int, img_size: int) -> nn.Module:
    model_name = arch.get("model_name")
    if not model_name or model_name not in timm.list_models(pretrained=False) + timm.list_models(pretrained=True):
        close = difflib.get_close_matches(str(model_name), timm.list_models(), n=3)
        raise ConfigError(f"arch.model_name={model_name!r} is not a timm model" +
                          (f"; did you mean {', '.join(close)}?" if close else "; `timm.list_models('*name*')` "
                           "lists them"))
    kwargs = {**(arch.get("kwargs") or {}), "num_classes": num_classes}
    pretrained = bool(arch.get("pretrained", False))
    try:
        return _create_at_size(model_name, pretrained, kwargs, img_size)
    except (OSError, RuntimeError) as err:
        if not pretrained or not _looks_offline(err):
            raise
        raise ConfigError(f"arch.pretrained=true: timm cannot fetch {model_name}'s weights here ({type(err).__name__}: "
                          f"{str(err).splitlines()[0][:120]}); download them where there is a network and point timm "
                          f"at the file: '+arch.kwargs.pretrained_cfg_overlay.file=PATH' (a .safetensors or "
                          f".pth), or train from scratch with arch.pretrained=false") from None


def _create_at_size(model_name: str, pretrained: bool, kwargs: dict, img_size: int) -> nn.Module:
    """timm.create_model with `img_size` where the model takes it (models that do not raise a
    TypeError naming it: built again without it)."""
    try:
        return timm.create_model(model_name, pretrained=pretrained, img_size=img_size, **kwargs)
    except TypeError as err:
        if "img_size" not in str(err):
            raise ConfigError(f"arch.kwargs for {model_name}: {err}") from None
    try:
        return timm.create_model(model_name, pretrained=pretrained, **kwargs)
    except TypeError as err:
        raise ConfigError(f"arch.kwargs for {model_name}: {err}") from None


def _looks_offline(err: Exception) -> bool:
    text = f"{type(err).__name__} {err}".lower()
    return any(word in text for word in ("connect", "resolve", "offline", "network", "hub", "http", "huggingface",
                                         "download", "name or service"))


def _custom(arch: dict, num_classes: int, img_size: int) -> nn.Module:
    factory = load_factory(arch.get("factory"))
    try:
        net = factory(num_classes=num_classes, img_size=img_size, **(arch.get("kwargs") or {}))
    except TypeError as err:
        raise ConfigError(f"arch.factory={arch.get('factory')}: {err} (it must take num_classes and img_size as "
                          f"keyword arguments, and arch.kwargs)") from None
    if not isinstance(net, nn.Module):
        raise ConfigError(f"arch.factory={arch.get('factory')} returned a {type(net).__name__}, not an nn.Module")
    return net


def load_factory(spec: str | None) -> Callable[..., nn.Module]:
    """The callable `spec` names: "package.module:name" or "path/to/file.py:name"."""
    if not spec or ":" not in str(spec):
        raise ConfigError(f"arch.factory={spec!r}: name the callable that builds the model, as "
                          f"'my_pkg.nets:build' or 'path/to/nets.py:build'")
    where, name = str(spec).rsplit(":", 1)
    try:
        module = _import(where)
    except (ImportError, OSError, SyntaxError) as err:
        raise ConfigError(f"arch.factory={spec}: cannot import {where} ({type(err).__name__}: {err}); give an "
                          f"importable module or an existing .py file") from None
    factory = getattr(module, name, None)
    if not callable(factory):
        found = sorted(n for n, v in vars(module).items() if callable(v) and not n.startswith("_"))[:8]
        raise ConfigError(f"arch.factory={spec}: {where} has no callable {name!r} (it has {', '.join(found)})")
    return factory


def _import(where: str):
    if where.endswith(".py"):
        path = Path(where).expanduser().resolve()
        if not path.is_file():
            raise OSError(f"no file {path}")
        name = f"robustgen_user_arch_{hashlib.sha256(str(path).encode()).hexdigest()[:12]}"
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        return module
    return importlib.import_module(where)


def source_record(arch: dict) -> dict | None:
    """For results.json: where an external architecture's code came from, with the sha256 of the
    custom factory's source file or the timm version (None for the zoo's own)."""
    if arch.get("source") == "timm":
        return {"source": "timm", "model_name": arch.get("model_name"), "timm": timm.__version__,
                "pretrained": bool(arch.get("pretrained", False))}
    if arch.get("source") == "custom":
        factory = load_factory(arch.get("factory"))
        path = Path(inspect.getsourcefile(factory) or "")
        digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None
        return {"source": "custom", "factory": arch.get("factory"), "file": str(path), "sha256": digest}
    return None
