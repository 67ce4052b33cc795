"""Registry of the study's architectures.

Every architecture is a timm model (registered with ``timm.models.register_model`` so that
``timm.create_model`` and ``timm.list_models("robustgen_*")`` see it) plus an :class:`ArchSpec`
with what the study needs to know about it: the name users type (``arch=vit``), its family, the
paper's parameter count and whether it can run at ImageNette's 224 px.

timm factories return the bare network, which expects normalised input as every timm model does;
:func:`create_arch` wraps it in :class:`~robustgen.arch.normalize.Normalized` so that the model the
rest of robustgen sees takes images in [0, 1] and every ε is in pixel units.
"""
from __future__ import annotations

import functools
import inspect
import re
from dataclasses import dataclass, field
from typing import Callable

import timm
from timm.models import register_model
from torch import nn

from robustgen.data.cifar10 import MEAN as CIFAR10_MEAN
from robustgen.data.cifar10 import STUDY_STD as CIFAR10_STUDY_STD
from robustgen.errors import ConfigError

FAMILIES = ("cnn", "transformer", "hybrid", "mlp")


@dataclass(frozen=True)
class ArchSpec:
    name: str  # option name: `arch=<name>`
    timm_name: str  # name in timm's registry: `robustgen_<name>`
    family: str  # one of FAMILIES
    paper_name: str  # row of ../shared/reference/paper_table_cifar10.csv ("" if none)
    paper_params_m: float | None  # the study's parameter count in millions (CIFAR-10, 32 px)
    exact_params: int | None = None  # exact count where PROTOCOL.md gives one
    imagenette: bool = True  # False: CIFAR-only variant that cannot run at 224 px
    patch_sizes: tuple[int, ...] = field(default=())  # patch sizes the study swept, if any


ARCHS: dict[str, ArchSpec] = {}
_TIMM_ONLY_KWARGS = ("pretrained_cfg", "pretrained_cfg_overlay", "cache_dir")


def register_arch(
    name: str,
    *,
    family: str,
    paper_name: str = "",
    paper_params_m: float | None = None,
    exact_params: int | None = None,
    imagenette: bool = True,
    patch_sizes: tuple[int, ...] = (),
) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Decorator for a timm-style factory ``robustgen_<name>(num_classes=10, img_size=32, **kwargs)``."""
    if family not in FAMILIES:
        raise ValueError(f"family must be one of {FAMILIES}, got {family!r}")

    def decorate(factory: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        timm_name = f"robustgen_{name}"
        if factory.__name__ != timm_name:
            raise ValueError(f"factory for {name!r} must be called {timm_name}")
        ARCHS[name] = ArchSpec(name, timm_name, family, paper_name, paper_params_m,
                               exact_params, imagenette, patch_sizes)

        @functools.wraps(factory)
        def timm_entrypoint(pretrained: bool = False, **kwargs) -> nn.Module:
            if pretrained:
                raise ConfigError(f"arch={name}: robustgen ships no pretrained weights; train one first")
            for key in _TIMM_ONLY_KWARGS:  # create_model passes these; our factories build from scratch
                kwargs.pop(key, None)
            return factory(**kwargs)

        return register_model(timm_entrypoint)

    return decorate


def get_spec(name: str) -> ArchSpec:
    _import_all()
    if name not in ARCHS:
        raise ConfigError(f"unknown architecture {name!r}; choose one of: {', '.join(sorted(ARCHS))}")
    return ARCHS[name]


def list_archs() -> list[str]:
    _import_all()
    return sorted(ARCHS)


def create_arch(
    name: str,
    *,
    num_classes: int = 10,
    img_size: int = 32,
    mean: tuple[float, ...] = CIFAR10_MEAN,
    std: tuple[float, ...] = CIFAR10_STUDY_STD,
    **kwargs,
) -> nn.Module:
    """Build architecture `name` for `num_classes` classes at `img_size`, taking [0, 1] images.

    `kwargs` go to the timm factory (e.g. ``patch_size=2``, ``stages="CTTT"``); factories raise
    :class:`ConfigError` for settings their family cannot support.
    """
    from robustgen.arch.normalize import Normalized

    spec = get_spec(name)
    if img_size > 64 and not spec.imagenette:
        raise ConfigError(f"arch={name} is a CIFAR-only variant (32 px) and cannot run at {img_size} px")
    try:
        net = timm.create_model(spec.timm_name, num_classes=num_classes, img_size=img_size, **kwargs)
    except AssertionError as err:  # timm checks its own shapes with asserts (e.g. heads must divide the width)
        raise ConfigError(f"arch={name} cannot be built with {kwargs}: {err or 'a shape check failed'}") from None
    except TypeError as err:
        unknown = re.search(r"unexpected keyword argument '(\w+)'", str(err))
        if unknown is None:
            raise
        raise ConfigError(f"arch={name} has no knob {unknown.group(1)!r}; its knobs: {', '.join(knobs(name))} "
                          f"(set one with +arch.<knob>=... unless conf/arch/{name}.yaml already lists it)") from None
    return Normalized(net, mean=mean, std=std)


def knobs(name: str) -> list[str]:
    """The keyword arguments architecture `name` accepts (its model class's constructor), without
    those the data decides (classes, image size, input channels)."""
    net = timm.create_model(get_spec(name).timm_name, num_classes=10, img_size=32)
    params = inspect.signature(type(net).__init__).parameters.values()
    return [p.name for p in params if p.name not in ("self", "num_classes", "img_size", "in_chans")
            and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)]


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _import_all() -> None:
    # Importing the model modules runs their @register_arch decorators.
    import robustgen.arch.models  # noqa: F401


def build_arch(arch: dict, *, num_classes: int, img_size: int, mean: tuple[float, ...],
               std: tuple[float, ...]) -> nn.Module:
    """The model an arch config (its resolved node, with `name`) describes, taking [0, 1] images:
    a zoo architecture (:func:`create_arch`) or an external one (`source: timm | custom`, external.py),
    at the node's `scale` (scale.py; none: the study's size)."""
    from robustgen.arch.external import create_external, is_external
    from robustgen.arch.scale import scaled

    arch, _ = scaled(arch)
    if is_external(arch):
        return create_external(arch, num_classes, img_size, mean, std)
    name = arch.pop("name")
    return create_arch(name, num_classes=num_classes, img_size=img_size, mean=mean, std=std, **arch)
