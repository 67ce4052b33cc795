"""robustgen: how architecture shapes adversarially robust generalization."""
from robustgen.config import register_resolvers

__version__ = "0.1.0"
register_resolvers()
