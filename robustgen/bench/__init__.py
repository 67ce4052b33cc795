"""Benchmarks: `python -m robustgen.bench eval` (cascade vs every attack on every point, our PGD vs
torchattacks'). Numbers are ratios against a baseline measured in the same process."""
