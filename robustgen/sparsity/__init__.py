"""Weight sparsity, the norm terms of the study's Theorem 1, and the robust generalization gap.

- measures.py: near-zero fraction, Hoyer sparsity, ℓ1/ℓ2 norms per layer kind and overall;
- bound.py: s₁, s₂, b₁, b₂ of Theorem 1 per attention block (and the per-layer CNN analogue);
- callback.py: `SparsityMonitor`, logging both each epoch plus the robust gap, into results.json.
"""
from robustgen.sparsity.bound import bound_record, block_norms, theorem1_complexity
from robustgen.sparsity.callback import SparsityMonitor
from robustgen.sparsity.measures import sparsity_measures

__all__ = ["SparsityMonitor", "block_norms", "bound_record", "sparsity_measures", "theorem1_complexity"]
