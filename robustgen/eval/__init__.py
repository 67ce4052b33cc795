"""Evaluation (mirrors conf/eval/): clean, per-attack and worst-case accuracy, per-example
outcomes that an interrupted evaluation resumes from, sanity checks against broken attacks, and
the progress it reports while it runs."""
from robustgen.eval.outcomes import OUTCOMES_FILE, Outcomes, load_outcomes
from robustgen.eval.progress import Reporter
from robustgen.eval.run import EvalResult, EvalSettings, run_evaluation
from robustgen.eval.sanity import SanityFlag, SanitySettings, run_sanity_checks
from robustgen.eval.worst_case import EvalReport, evaluate_worst_case

__all__ = ["OUTCOMES_FILE", "EvalReport", "EvalResult", "EvalSettings", "Outcomes", "Reporter", "SanityFlag",
           "SanitySettings", "evaluate_worst_case", "load_outcomes", "run_evaluation", "run_sanity_checks"]
