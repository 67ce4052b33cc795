"""Config nodes → objects: `hydra.utils.instantiate`, with a bad config named in one line.

The only place (with cli/app.py) that turns configs into robustgen's objects; library code below
takes plain arguments.
"""
from __future__ import annotations

import re

from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import OmegaConf

from robustgen.errors import ConfigError, RobustgenError

_TYPES_HINT = ("check the types of its values: numbers as numbers (0.0313725, or '${div:8,255}' for 8/255), "
               "lists as [a,b], null for none")


def build(spec, **kwargs):
    """hydra.utils.instantiate, with our own errors passed through unwrapped and a bad config
    (unknown key, wrong type) turned into a ConfigError that names the config node and the fix."""
    try:
        return instantiate(spec, **kwargs)
    except InstantiationException as err:
        cause = err.__cause__
        if isinstance(cause, ConfigError):  # name the config node: several may build the same class
            node = _node_key(spec)
            raise (ConfigError(f"{node}: {cause}") if node and not str(cause).startswith(node) else cause) from None
        if isinstance(cause, RobustgenError):
            raise cause from None
        key = re.search(r"full_key: (\S+)", str(err))
        where = key.group(1) if key else str(spec.get("_target_", "config"))
        if isinstance(cause, TypeError) and "unexpected keyword argument" in str(cause):
            raise ConfigError(f"{where}: {cause}") from None
        if isinstance(cause, (TypeError, ValueError)):
            raise ConfigError(f"{where}: {type(cause).__name__}: {cause}{_text_values(spec, where)}; "
                              f"{_TYPES_HINT}") from None
        raise ConfigError(str(err)) from err


def _node_key(spec) -> str:
    """The config path of `spec` ("eval.attacks.pgd_l2"), or "" for a plain mapping."""
    try:
        return str(spec._get_full_key(None)) if OmegaConf.is_config(spec) else ""
    except Exception:  # a detached node has no path; the error is still raised, only unnamed
        return ""


def build_named(specs) -> dict:
    """name → instance for a mapping of name → config node (None entries switched off)."""
    return {name: build(spec) for name, spec in (specs or {}).items() if spec is not None}


def _text_values(values, where: str) -> str:
    """The text-valued keys of a config node: where a number was written as text, it is among them."""
    try:
        plain = OmegaConf.to_container(values, resolve=True) if OmegaConf.is_config(values) else dict(values)
    except Exception:  # an unresolvable node has its own error; naming its values is a bonus
        return ""
    text = [f"{where}.{k}={v!r}" for k, v in plain.items() if isinstance(v, str) and not k.startswith("_")]
    return f" (text values there: {', '.join(text)})" if text else ""


def construct(cls, group: str, values: dict):
    """`cls(**values)` for a config group read into a dataclass, with bad keys or types named."""
    try:
        return cls(**values)
    except RobustgenError:
        raise
    except (TypeError, ValueError) as err:
        raise ConfigError(f"{group}: {type(err).__name__}: {err}{_text_values(values, group)}; {_TYPES_HINT}") from None


