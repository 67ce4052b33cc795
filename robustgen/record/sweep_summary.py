"""What a multirun left behind, at a glance: `<sweep dir>/summary.md` (and summary.json) lists the
jobs done (with a results.json), failed (a user error, recorded in the job's job_status.json),
and missing (planned but never finished: killed, preempted for good, still running or never
started), with their folders, so a user sees what to rerun.

Written by the Hydra callback `robustgen.cli.sweep_callback.SweepSummary` when a multirun ends
(conf/hydra/default.yaml), and by a job that fails (robustgen/cli/app.py); readable again any time
with `python -m robustgen.sweep SWEEP_DIR`.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from robustgen.record.results import RESULTS_FILE

STATUS_FILE = "job_status.json"
PLAN_FILE = "sweep_plan.json"


def record_failure(job_dir: str | Path, message: str) -> None:
    """Note in a sweep job's folder that it failed, and why (read by :func:`summarize`)."""
    Path(job_dir, STATUS_FILE).write_text(json.dumps({"status": "failed", "error": message}))


def summarize(sweep_dir: str | Path, planned: int | None = None) -> dict:
    """{done, failed, missing: [{job, path[, error]}], planned}; writes summary.json and summary.md."""
    sweep = Path(sweep_dir)
    if planned is None and (sweep / PLAN_FILE).is_file():
        planned = json.loads((sweep / PLAN_FILE).read_text()).get("planned")
    jobs = sorted((p.parent for p in sweep.glob("*/.hydra")), key=lambda p: (_number(p.name), p.name))
    out: dict[str, Any] = {"sweep": str(sweep), "planned": planned, "done": [], "failed": [], "missing": []}
    for job in jobs:
        entry = {"job": job.name, "path": str(job)}
        status = job / STATUS_FILE
        if (job / RESULTS_FILE).is_file():
            out["done"].append(entry)
        elif status.is_file():
            out["failed"].append({**entry, "error": json.loads(status.read_text()).get("error", "")})
        else:
            out["missing"].append({**entry, "why": "no results.json: killed, preempted, still running or crashed"})
    if planned is not None:
        started = {_number(j.name) for j in jobs}
        out["missing"] += [{"job": str(k), "path": None, "why": "never started"} for k in range(planned) if k not in started]
    (sweep / "summary.json").write_text(json.dumps(out, indent=1))
    (sweep / "summary.md").write_text(markdown(out))
    return out


def _number(name: str) -> int:
    head = name.split("_", 1)[0]
    return int(head) if head.isdigit() else -1


def markdown(summary: dict) -> str:
    total = summary["planned"] if summary["planned"] is not None else \
        len(summary["done"]) + len(summary["failed"]) + len(summary["missing"])
    lines = [f"# Sweep {summary['sweep']}", "",
             f"{len(summary['done'])} of {total} jobs done, {len(summary['failed'])} failed, "
             f"{len(summary['missing'])} missing.", ""]
    for kind in ("failed", "missing"):
        if summary[kind]:
            lines += [f"## {kind.capitalize()} (rerun these)", ""]
            lines += [f"- job {e['job']}: {e['path'] or '(no folder)'} — {e.get('error') or e.get('why')}"
                      for e in summary[kind]]
            lines.append("")
    return "\n".join(lines)


def line(summary: dict) -> str:
    total = summary["planned"] if summary["planned"] is not None else \
        len(summary["done"]) + len(summary["failed"]) + len(summary["missing"])
    return (f"sweep {summary['sweep']}: {len(summary['done'])}/{total} jobs done, {len(summary['failed'])} failed, "
            f"{len(summary['missing'])} missing (summary.md there)")
