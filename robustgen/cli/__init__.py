"""The Hydra glue: the only package that imports Hydra or OmegaConf.

Entry points build their objects through it (config node → object, one-line errors) and run as
:func:`hydra_app` apps; importing it registers the config resolvers that conf/ uses.
"""
from robustgen import CONFIG_DIR
from robustgen.cli.app import check_values, config_choices, hydra_app, plain_config
from robustgen.cli.build import build, build_named, construct
from robustgen.cli.resolvers import register_resolvers
from robustgen.errors import fail

register_resolvers()

__all__ = ["CONFIG_DIR", "build", "build_named", "check_values", "config_choices", "construct", "fail", "hydra_app",
           "plain_config", "register_resolvers"]
