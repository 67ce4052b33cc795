"""Weight regularizers added to the training loss (mirrors conf/regularizer/)."""
from robustgen.regularizer.base import NoRegularizer, Regularizer

__all__ = ["NoRegularizer", "Regularizer"]
