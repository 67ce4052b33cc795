"""`python -m robustgen.analyze sparsity RUNS...`: kept as an alias of
`python -m robustgen.report sparsity RUNS...` (the analysis lives in robustgen/report/sparsity.py)."""
from robustgen.report.sparsity import analyze_sparsity, find_results, main, rank_correlations, run_row

__all__ = ["analyze_sparsity", "find_results", "main", "rank_correlations", "run_row"]

if __name__ == "__main__":
    raise SystemExit(main())
