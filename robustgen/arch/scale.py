"""Architecture scales: a named set of per-architecture settings that shrinks the study's networks,
so that the whole study's pipeline can run with numbers that mean something on a laptop.

The arch node carries the scale it is run at (conf/arch/scale/<name>.yaml, package `arch.scale`):

    scale: {name: smoke, vgg: {width: 0.25}, vit: {embed_dim: 128, depth: 4, num_heads: 4}, ...}

A run of `arch=vit` at that scale builds ViT with those settings on top of its own; the run's
`architecture` section records the scale (robustgen/record/architecture.py), so the report can say
that its rows are narrower networks than the paper's. `arch/scale=full` (or no scale) builds the
study's sizes.
"""
from __future__ import annotations

from robustgen.arch.external import is_external
from robustgen.errors import ConfigError

FULL = "full"
LEAVE_OUT = "leave the scale out (drop +arch/scale=...; under experiment=paper_smoke, add arch/scale=full)"


def raise_unsized(name: str, scale: dict, choice: str) -> None:
    """Raises ConfigError: scale `name` has no settings for `arch=<choice>`."""
    sized = ", ".join(sorted(k for k in scale if k != "name")) or "nothing"
    raise ConfigError(f"arch/scale={name} sizes {sized}, not arch={choice}: add its settings to "
                      f"conf/arch/scale/{name}.yaml, or {LEAVE_OUT}")


def scaled(arch: dict) -> tuple[dict, dict | None]:
    """(the arch settings to build: `arch` without `scale`, with the scale's settings for its `name`
    replacing its own; the scale applied, ``{"name": ..., "settings": {...}}``, or None at full size).

    Raises:
        ConfigError: the scale has no settings for this architecture (one line naming the fix).
    """
    arch = dict(arch)
    scale = dict(arch.pop("scale", None) or {})
    name = scale.pop("name", FULL)
    if name == FULL and not scale:
        return arch, None
    if is_external(arch):
        raise ConfigError(f"arch/scale={name} sizes the zoo's architectures only, not arch.source={arch['source']} "
                          f"models: {LEAVE_OUT}")
    choice = arch.get("name")
    if choice not in scale:
        raise_unsized(name, scale, choice)
    settings = dict(scale[choice] or {})
    return {**arch, **settings}, {"name": name, "settings": settings}
