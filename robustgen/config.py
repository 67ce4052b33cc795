"""OmegaConf resolvers used by conf/ (registered when robustgen is imported).

``${div:8,255}`` lets ε and step sizes be written the way papers write them (8/255) while staying
plain floats for the code. ``${wandb_offline:}`` makes W&B log offline unless the user is logged in.
"""
from __future__ import annotations

import netrc
import os

from omegaconf import OmegaConf


def wandb_offline() -> bool:
    """True unless W&B credentials exist (WANDB_MODE, when set, decides instead)."""
    mode = os.environ.get("WANDB_MODE")
    if mode:
        return mode in ("offline", "dryrun", "disabled")
    if os.environ.get("WANDB_API_KEY"):
        return False
    try:
        return netrc.netrc().authenticators("api.wandb.ai") is None
    except (OSError, netrc.NetrcParseError):
        return True


def register_resolvers() -> None:
    if not OmegaConf.has_resolver("div"):
        OmegaConf.register_new_resolver("div", lambda a, b: float(a) / float(b))
    if not OmegaConf.has_resolver("wandb_offline"):
        OmegaConf.register_new_resolver("wandb_offline", wandb_offline)
