"""Compose the real configs the way `python -m robustgen` does, for tests."""
from __future__ import annotations

from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf, open_dict

from robustgen.cli import CONFIG_DIR

# A tiny but real setup: a 1-block ViT, 64 real training images, 2-step PGD, 32 evaluation points.
TINY = [
    "experiment=smoke", "logger=none", "progress_bar=false",
    "arch=vit", "+arch.embed_dim=32", "+arch.depth=1", "+arch.num_heads=2",
    "trainer.max_epochs=1", "data.train_subset=64", "data.val_size=32", "data.val_adv_points=16",
    "data.batch_size=32", "data.eval_batch_size=32", "attack.steps=2", "val_attack.steps=2",
    "eval.n_points=32", "eval.batch_size=32", "eval.attacks.pgd_linf.steps=3",
    "val_eval.attacks.pgd_l2.steps=2", "val_eval.attacks.pgd_l1.steps=2",
]


# The same tiny run for any architecture (tests of arch=timm / arch=custom and of other data sets).
TINY_ANY_ARCH = [
    "experiment=smoke", "logger=none", "progress_bar=false", "trainer.max_epochs=1", "data.train_subset=64",
    "data.val_size=32", "data.val_adv_points=16", "data.batch_size=32", "data.eval_batch_size=32", "attack.steps=2",
    "val_attack.steps=2", "eval.n_points=32", "eval.batch_size=32", "eval.sanity.n_points=16",
    "eval.sanity.batch_size=16", "eval.attacks.pgd_linf.steps=3", "val_eval.attacks.pgd_l2.steps=2",
    "val_eval.attacks.pgd_l1.steps=2", "callbacks.sparsity.train_points=16",
]


def compose_config(overrides: list[str], output_dir: Path | None = None, config_name: str = "train") -> DictConfig:
    """Compose with Hydra's own machinery (including the hydra node, so `${hydra:...}` resolves)."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose(config_name=config_name, overrides=overrides, return_hydra_config=True)
    if output_dir is not None:
        OmegaConf.set_readonly(cfg.hydra, False)
        with open_dict(cfg):
            cfg.hydra.runtime.output_dir = str(output_dir)
    HydraConfig.instance().set_config(cfg)
    return cfg
