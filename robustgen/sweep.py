"""`python -m robustgen.sweep SWEEP_DIR`: what a multirun left behind — jobs done, failed and
missing, with their folders (robustgen/record/sweep_summary.py); exit 1 if any job is not done."""
from __future__ import annotations

import sys
from pathlib import Path

# Run folders written before robustgen 0.3 name the callback robustgen.sweep.SweepSummary in their
# .hydra/hydra.yaml: kept importable here so those configs still compose.
from robustgen.cli.sweep_callback import SweepSummary  # noqa: F401
from robustgen.record.sweep_summary import markdown, summarize


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or not Path(args[0]).is_dir():
        print("robustgen: error: usage: python -m robustgen.sweep SWEEP_DIR (a multirun folder)", file=sys.stderr)
        return 2
    summary = summarize(args[0])
    print(markdown(summary))
    return 1 if summary["failed"] or summary["missing"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
