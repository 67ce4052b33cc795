"""The study's results from finished runs: tables beside the paper's, statistics, comparisons.

`python -m robustgen.report` (see __main__.py). Reads results.json and eval_outcomes.json files
only; data flows runs → these files → the report, never back.
"""
