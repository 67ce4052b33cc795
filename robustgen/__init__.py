"""robustgen: how architecture shapes adversarially robust generalization.

The package is layered (docs/architecture.md, enforced by tests/test_layers.py): importing it, or
any library package under it, loads neither Hydra nor OmegaConf; only `robustgen.cli` does.
"""
from pathlib import Path

__version__ = "0.3.0"
# conf/ sits beside the package in the checkout (an editable install, as `make install` does).
CONFIG_DIR = str(Path(__file__).resolve().parents[1] / "conf")
