"""OmegaConf resolvers used by conf/ (registered when robustgen is imported).

``${div:8,255}`` lets ε and step sizes be written the way papers write them (8/255) while staying
plain floats for the code.
"""
from __future__ import annotations

from omegaconf import OmegaConf


def register_resolvers() -> None:
    if not OmegaConf.has_resolver("div"):
        OmegaConf.register_new_resolver("div", lambda a, b: float(a) / float(b))
