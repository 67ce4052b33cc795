"""robustgen: how architecture shapes adversarially robust generalization."""
from robustgen.config import register_resolvers

__version__ = "0.2.0"
register_resolvers()
