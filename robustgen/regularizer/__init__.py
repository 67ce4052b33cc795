"""Weight regularizers added to the training loss (mirrors conf/regularizer/)."""
from robustgen.regularizer.base import NoRegularizer, Regularizer
from robustgen.regularizer.l1 import L1Penalty

__all__ = ["L1Penalty", "NoRegularizer", "Regularizer"]
