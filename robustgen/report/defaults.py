"""Which runs are the study's own configuration of an architecture, and so have a row in the paper.

A run is the study's default for its `arch` choice when its architecture settings are the ones
`python -m robustgen arch=<choice>` composes (e.g. ViT with patch 4, CoAtNet with stages CCTT), it
was trained with PGD-AT (or is the vanilla run) and without a weight penalty. Patch-size and hybrid
variants have rows in the paper's other table (see paper.py); ℓ1-penalised runs go to the sparsity
table.
"""
from __future__ import annotations

from functools import lru_cache

from omegaconf import OmegaConf


@lru_cache(maxsize=None)
def default_arch(choice: str) -> dict | None:
    """The resolved `arch` node that `arch=<choice>` composes (None if the choice is unknown here).

    Composed with Hydra itself, so defaults lists (vgg11 → vgg) apply exactly as in a run."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.errors import HydraException

    from robustgen.cli import CONFIG_DIR

    try:
        if GlobalHydra.instance().is_initialized():
            cfg = compose(config_name="train", overrides=[f"arch={choice}"])
        else:
            with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
                cfg = compose(config_name="train", overrides=[f"arch={choice}"])
    except (HydraException, ValueError):
        return None
    return OmegaConf.to_container(cfg.arch, resolve=True)


def penalised(record: dict) -> bool:
    """Trained with a weight penalty configured (the ℓ1 sweep's jobs, including its λ = 0 baseline,
    which is the sweep's row rather than the main table's)."""
    regularizer = record.get("regularizer") or {}
    return regularizer.get("type", "NoRegularizer") != "NoRegularizer" or float(regularizer.get("weight") or 0) > 0


def is_study_default(choice: str, record: dict) -> bool:
    """The run's architecture settings equal the composed defaults of `choice` (keys the record
    lacks count as default), with PGD-AT or no attack, and no weight penalty."""
    default = default_arch(choice)
    arch = record.get("arch") or {}
    if default is None or any(arch[k] != v for k, v in default.items() if k in arch):
        return False
    method = (record.get("method") or {}).get("name", "pgd_at")
    return method == "pgd_at" and not penalised(record)
