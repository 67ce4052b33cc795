"""The Hydra app every entry point shares, and how a user's mistake ends.

A user error — a bad config value, an unknown option or knob, a missing or malformed data file or
checkpoint — ends with one line, ``robustgen: error: <what is wrong and how to fix it>``, and exit
status 2, before any work is done; never with a stack trace. Bugs still show their traceback.

Hydra prints its own composition errors (unknown option, unknown key, override syntax) and exits
with 1; :func:`hydra_app` asks Hydra to raise them instead (``HYDRA_FULL_ERROR`` while composing)
and ends them the same way as ours.
"""
from __future__ import annotations

import functools
import os
import re
import shutil
import sys
import traceback
from pathlib import Path
from typing import Any, Callable

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.errors import HydraException
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from robustgen import CONFIG_DIR
from robustgen.cli import sweep_callback
from robustgen.errors import PREFIX, ConfigError, RobustgenError, SweepJobFailed, TrainingDiverged, fail
from robustgen.record.sweep_summary import line, record_failure, summarize
from robustgen.training.resume import flatten

_FRACTION = re.compile(r"^\s*[-+]?\d+(\.\d*)?\s*/\s*\d+(\.\d*)?\s*$")


def config_choices(cfg: DictConfig) -> dict:
    """Which option of each config group ran (arch=vit, eval=quick, ...)."""
    if HydraConfig.initialized():
        return {k: v for k, v in HydraConfig.get().runtime.choices.items()
                if not k.startswith("hydra/") and v is not None}
    return {}


def plain_config(cfg: DictConfig) -> dict:
    """The resolved config as a plain dict, without Hydra's own node (present when composed in tests)."""
    return OmegaConf.to_container(OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"]), resolve=True)


def check_values(cfg: DictConfig) -> None:
    """Refuse values that every entry point would misread, naming the key and the fix. Today:
    fractions written as text (`attack.eps=8/255` reaches the code as the string '8/255')."""
    try:
        values = plain_config(cfg)
    except OmegaConfBaseException as err:  # e.g. ${div:8,0}, or an interpolation to a missing key
        raise ConfigError(f"cannot resolve the config: {str(err).splitlines()[0]}") from None
    for key, value in flatten(values).items():
        if isinstance(value, str) and _FRACTION.match(value) and not key.endswith(".shard"):  # shards are "i/n"
            a, b = (part.strip() for part in value.split("/"))
            raise ConfigError(f"{key}={value!r} is text, not a number; write it as '{key}=${{div:{a},{b}}}' "
                              f"(quoted for the shell) or as a decimal ({float(a) / float(b):.7g})")


def drop_unused_run_dir() -> None:
    """Remove the folder Hydra made for a single run that was refused before doing anything (it
    holds only `.hydra/` and the log). A sweep job's folder stays: it records the failed job."""
    if not HydraConfig.initialized():
        return
    hydra_cfg = HydraConfig.get()
    if hydra_cfg.mode != RunMode.RUN:
        return
    folder = Path(hydra_cfg.runtime.output_dir)
    startup = {".hydra", f"{hydra_cfg.job.name}.log"}
    if folder.is_dir() and {p.name for p in folder.iterdir()} <= startup:
        shutil.rmtree(folder, ignore_errors=True)


def in_multirun() -> bool:
    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def job_failed(message: str) -> SweepJobFailed:
    """Record a multirun job's failure in its folder (summary.md lists it) and say it in one line;
    the returned error is raised so that the sweep goes on with the other jobs."""
    hydra_cfg = HydraConfig.get()
    record_failure(hydra_cfg.runtime.output_dir, message)
    overrides = " ".join(hydra_cfg.overrides.task)
    print(f"{PREFIX} job {hydra_cfg.job.num} ({overrides}) failed: {message}; the other jobs go on",
          file=sys.stderr)
    return SweepJobFailed(message)


def end_of_failed_sweep(err: BaseException | None) -> None:
    """After a multirun in which a job failed (or the sweeper gave up, `err`): the summary, then
    exit 1. An error that is not a job's failure keeps its traceback: it may be a bug."""
    if err is not None and not isinstance(err, SweepJobFailed):
        traceback.print_exception(err)
    summary = summarize(sweep_callback.current_sweep)
    print(line(summary), file=sys.stderr)
    why = f" ({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''})" \
        if err is not None and not isinstance(err, SweepJobFailed) else ""
    fail_sweep = f"{len(summary['failed'])} job(s) failed{why}; their errors are in summary.md"
    print(f"{PREFIX} {fail_sweep}", file=sys.stderr)
    raise SystemExit(1)


def hydra_app(config_name: str, interrupted: Callable[[DictConfig], str] | None = None):
    """Turn `task(cfg)` into a Hydra entry point (`main()`) whose user errors end as :func:`fail`.
    `interrupted(cfg)`, if given, says on Ctrl-C what was kept and how to continue.

    In a multirun, a job that fails — a user error or a crash — is recorded in its folder and the
    other jobs run; the sweep then ends with the summary and exit status 1."""

    def decorate(task: Callable[[DictConfig], Any]) -> Callable[[], Any]:
        @hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name=config_name)
        def app(cfg: DictConfig) -> Any:
            try:
                check_values(cfg)
                return task(cfg)
            except RobustgenError as err:
                if not isinstance(err, TrainingDiverged):  # a diverged run keeps its folder: config and log
                    drop_unused_run_dir()
                if in_multirun():
                    raise job_failed(str(err)) from None
                fail(err)
            except KeyboardInterrupt:
                if interrupted is None:
                    raise
                print(f"robustgen: interrupted. {interrupted(cfg)}", file=sys.stderr)
                raise SystemExit(130) from None
            except Exception as err:  # a crash: in a multirun, one job's bug must not stop the others
                if not in_multirun():
                    raise
                traceback.print_exc()  # the crash's traceback on stderr (under SLURM: the job's .err file)
                raise job_failed(f"crashed: {type(err).__name__}: {err}") from err

        @functools.wraps(task)
        def main() -> Any:
            previous = os.environ.get("HYDRA_FULL_ERROR")
            os.environ["HYDRA_FULL_ERROR"] = "1"  # Hydra raises its composition errors for us to report
            sweep_callback.current_sweep = None
            try:
                result = app()
            except (HydraException, OmegaConfBaseException) as err:  # unknown option or key, bad override
                fail(_hydra_message(err))
            except Exception as err:  # noqa: BLE001 — the cluster's refusal, a failed job, a sweeper giving up
                if type(err).__name__ == "FailedJobError":  # submitit: sbatch refused the jobs
                    lines = [line for line in str(err).splitlines() if line.strip()]
                    fail(f"SLURM refused the jobs ({lines[0] if lines else err}); check hydra.launcher.partition, "
                         "account and qos (or ROBUSTGEN_SLURM_PARTITION / _ACCOUNT / _QOS): `sinfo` lists the "
                         "partitions")
                if sweep_callback.current_sweep is None:
                    raise
                end_of_failed_sweep(err)
            finally:
                if previous is None:
                    os.environ.pop("HYDRA_FULL_ERROR", None)
                else:
                    os.environ["HYDRA_FULL_ERROR"] = previous
            if sweep_callback.current_sweep is not None and summarize(sweep_callback.current_sweep)["failed"]:
                end_of_failed_sweep(None)  # e.g. Optuna: failed trials were counted, the study went on
            return result

        return main

    return decorate


def _hydra_message(err: Exception) -> str:
    """Hydra's message on one line where it can be: the options listed inline, no search path."""
    message = str(err).split("\nConfig search path:")[0].strip()
    options = re.search(r"\n+Available options in '([^']+)':\n((?:\t.*\n?)+)", message)
    if options:
        names = ", ".join(line.strip() for line in options.group(2).splitlines() if line.strip())
        message = f"{message[:options.start()]}; available options in '{options.group(1)}': {names}"
    cause = err.__cause__
    if isinstance(cause, OmegaConfBaseException) and str(cause).splitlines()[0] not in message:
        message += f": {str(cause).splitlines()[0]}"
    if "hydra/launcher/submitit" in message or ("hydra/launcher" in message and "submitit" not in message):
        message += ("; the slurm and local launchers need hydra-submitit-launcher "
                    "(pip install hydra-submitit-launcher, or reinstall robustgen: make install)")
    return message.replace("\n", " ")
