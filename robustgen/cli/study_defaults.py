"""The study's configuration of each architecture, as conf/ composes it today: recorded in each
run's results.json when it is made (robustgen/record/architecture.py), and used once to fill in that
section for result files written before it existed (the report warns when it does)."""
from __future__ import annotations

from functools import lru_cache

from omegaconf import OmegaConf

from robustgen import CONFIG_DIR
from robustgen.arch.external import is_external
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
    """Refuse a setting the user gave (one that differs from what `arch=<choice>` composes) when the
    arch's scale (robustgen/arch/scale.py) would replace it: the run would silently not be the one asked for.

    Raises:
        ConfigError: one line naming the setting, the scale's value and the two ways out."""
    scale = dict(arch.get("scale") or {})
    settings = dict(scale.get(arch.get("name")) or {})
    defaults = default_arch(choice) if settings else None
    if defaults is None:
        return
    for key, value in settings.items():
        if key in arch and arch[key] != defaults.get(key):
            raise ConfigError(f"arch.{key}={arch[key]} is replaced by arch/scale={scale.get('name')}'s {key}={value}: "
                              f"leave arch.{key} out, or run at the study's size with arch/scale=full")
