"""Evaluation (mirrors conf/eval/): clean, per-attack and worst-case accuracy."""
from robustgen.eval.worst_case import EvalReport, evaluate_worst_case

__all__ = ["EvalReport", "evaluate_worst_case"]
