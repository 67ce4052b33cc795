"""The Hydra callback that writes a multirun's summary (robustgen/record/sweep_summary.py):
it records how many jobs were planned when the sweep starts, and summarises when it ends."""
from __future__ import annotations

import itertools
import json
import sys
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from robustgen.record.sweep_summary import PLAN_FILE, line, summarize


# The sweep this process launched (set when a multirun starts): robustgen/cli/app.py summarises it
# when a job failed, and ends the sweep with a non-zero status.
current_sweep: Path | None = None


def planned_jobs(config: DictConfig) -> int | None:
    """How many jobs this multirun makes: the basic sweeper's product of the number of values of
    every swept override and sweeper param, Optuna's `n_trials`, None for other sweepers."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    sweeper = str(OmegaConf.select(config, "hydra.sweeper._target_", default=""))
    if "optuna" in sweeper.lower():
        return int(config.hydra.sweeper.n_trials)
    if "BasicSweeper" not in sweeper:
        return None
    params = config.hydra.sweeper.params
    params = OmegaConf.to_container(params, resolve=True) if params else {}
    overrides = [f"{k}={v}" for k, v in params.items()] + list(config.hydra.overrides.task)
    parsed = OverridesParser.create().parse_overrides(overrides)
    counts = {o.get_key_element(): len(list(o.sweep_string_iterator())) if o.is_sweep_override() else 1
              for o in parsed}
    return int(max(1, list(itertools.accumulate(counts.values(), lambda a, b: a * b))[-1])) if counts else 1


class SweepSummary(Callback):
    """Hydra callback: records the planned job count when a multirun starts and writes the summary
    when it ends."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        global current_sweep
        sweep = current_sweep = Path(config.hydra.sweep.dir)
        sweep.mkdir(parents=True, exist_ok=True)
        try:
            planned = planned_jobs(config)
        except Exception:  # noqa: BLE001 — a summary must never stop a sweep; it then counts folders
            planned = None
        (sweep / PLAN_FILE).write_text(json.dumps({"planned": planned}))

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        print(line(summarize(config.hydra.sweep.dir)), file=sys.stderr)
