"""The study's configuration of each architecture, as conf/ composes it today: recorded in each
run's results.json when it is made (robustgen/record/architecture.py), and used once to fill in that
section for result files written before it existed (the report warns when it does)."""
from __future__ import annotations

from functools import lru_cache

from omegaconf import OmegaConf

from robustgen import CONFIG_DIR
from robustgen.arch.external import is_external
from robustgen.arch.scale import LEAVE_OUT, raise_unsized, scaled
from robustgen.errors import ConfigError
from robustgen.record.architecture import architecture_record


@lru_cache(maxsize=None)
def default_arch(choice: str) -> dict | None:
    """The resolved `arch` node that `arch=<choice>` composes (None if the choice is unknown here).

    Composed with Hydra itself, so defaults lists (vgg11 → vgg) apply exactly as in a run."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.errors import HydraException

    try:
        if GlobalHydra.instance().is_initialized():
            cfg = compose(config_name="train", overrides=[f"arch={choice}"])
        else:
            with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
                cfg = compose(config_name="train", overrides=[f"arch={choice}"])
    except (HydraException, ValueError):
        return None
    return OmegaConf.to_container(cfg.arch, resolve=True)


def describe_architecture(record: dict) -> dict:
    """The `architecture` section for a results.json record (written now or by robustgen < 0.3)."""
    choices = record.get("choices") or {}
    arch = record.get("arch") or {}
    choice = choices.get("arch") or arch.get("name", "?")
    method = (record.get("method") or {}).get("name", "pgd_at")
    defaults = None if is_external(arch) else default_arch(choice)  # timm / custom: no study configuration
    return architecture_record(choice, arch, defaults, method, record.get("regularizer"))


def check_scale_overrides(choice: str, arch: dict) -> None:
    """Refuse a scale (robustgen/arch/scale.py) that would not build the architecture asked for: one
    with no settings for the `arch=<choice>` option (arch=vgg11 is built by vgg, but the scale's vgg
    settings are VGG-16's), or one that would replace a setting the user gave (a value that differs
    from what `arch=<choice>` composes): the run would silently not be the one asked for.

    Raises:
        ConfigError: one line naming the option or setting and the ways out."""
    _, applied = scaled(arch)  # the zoo's architectures only, and only those the scale sizes
    if applied is None:
        return
    if choice not in (arch.get("scale") or {}):
        raise_unsized(applied["name"], arch["scale"], choice)
    defaults = default_arch(choice) or {}
    for key, value in applied["settings"].items():
        if key in arch and arch[key] != defaults.get(key) and arch[key] != value:
            raise ConfigError(f"arch.{key}={arch[key]} would be replaced by arch/scale={applied['name']}'s "
                              f"{key}={value}: leave arch.{key} out, or {LEAVE_OUT}")
