"""What a multirun left behind, at a glance: `<sweep dir>/summary.md` (and summary.json) lists the
jobs done (with a results.json), failed (a user error, recorded in the job's job_status.json),
and missing (planned but never finished: killed, preempted for good, still running or never
started), with their folders, so a user sees what to rerun.

Written by the Hydra callback :class:`SweepSummary` when a multirun ends (conf/hydra/default.yaml),
and by a job that fails on a user error (the basic launcher stops the sweep there); readable again
any time with `python -m robustgen.sweep SWEEP_DIR`.
"""
from __future__ import annotations

import itertools
import json
import sys
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from robustgen.results import RESULTS_FILE

STATUS_FILE = "job_status.json"
PLAN_FILE = "sweep_plan.json"


def record_failure(job_dir: str | Path, message: str) -> None:
    """Note in a sweep job's folder that it failed, and why (read by :func:`summarize`)."""
    Path(job_dir, STATUS_FILE).write_text(json.dumps({"status": "failed", "error": message}))


def planned_jobs(config: DictConfig) -> int | None:
    """How many jobs the basic sweeper makes of this multirun: the product of the number of values
    of every swept override and sweeper param (None for other sweepers, e.g. Optuna's trials)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    if "BasicSweeper" not in str(OmegaConf.select(config, "hydra.sweeper._target_", default="")):
        return None
    params = config.hydra.sweeper.params
    params = OmegaConf.to_container(params, resolve=True) if params else {}
    overrides = [f"{k}={v}" for k, v in params.items()] + list(config.hydra.overrides.task)
    parsed = OverridesParser.create().parse_overrides(overrides)
    counts = {o.get_key_element(): len(list(o.sweep_string_iterator())) if o.is_sweep_override() else 1
              for o in parsed}
    return int(max(1, list(itertools.accumulate(counts.values(), lambda a, b: a * b))[-1])) if counts else 1


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


class SweepSummary(Callback):
    """Hydra callback: records the planned job count when a multirun starts and writes the summary
    when it ends."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        sweep = Path(config.hydra.sweep.dir)
        sweep.mkdir(parents=True, exist_ok=True)
        try:
            planned = planned_jobs(config)
        except Exception:  # noqa: BLE001 — a summary must never stop a sweep; it then counts folders
            planned = None
        (sweep / PLAN_FILE).write_text(json.dumps({"planned": planned}))

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        print(line(summarize(config.hydra.sweep.dir)), file=sys.stderr)


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
