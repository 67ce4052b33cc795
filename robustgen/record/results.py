"""The machine-readable record every run leaves: `results.json` in its output folder.

Reports and plots are functions of these files only, so a result always travels with the config
choices, seed and code version that produced it.
"""
from __future__ import annotations

import json
import platform
import subprocess
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

import torch

import robustgen
from robustgen.arch import count_parameters
from robustgen.files import atomic_write_text

RESULTS_FILE = "results.json"


def code_version() -> dict:
    """Package version plus git commit and whether the tree had uncommitted changes."""
    repo = Path(__file__).resolve().parents[1]
    version = {"package": robustgen.__version__, "commit": None, "dirty": None}
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True, timeout=10)
        if commit.returncode == 0:
            status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=repo,
                                    capture_output=True, text=True, timeout=10)
            version.update(commit=commit.stdout.strip(), dirty=bool(status.stdout.strip()))
    except (OSError, subprocess.SubprocessError):
        pass  # not a git checkout: the package version alone identifies the code
    return version


# The libraries whose releases can move a number: the model code (torch, timm), training (lightning),
# the attacks (torchattacks), the data (numpy, torchvision, pillow) and the config (hydra, omegaconf).
LIBRARIES = ("torch", "torchvision", "lightning", "timm", "torchattacks", "numpy", "pillow", "hydra-core", "omegaconf")


def library_versions() -> dict[str, str | None]:
    """Installed version of each library in LIBRARIES (None if it is not installed)."""
    versions = {}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def hardware() -> dict:
    info = {"python": platform.python_version(), "torch": torch.__version__, "cpu_threads": torch.get_num_threads()}
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def write_results(output_dir: str | Path, record: dict) -> Path:
    """Write `record` as `output_dir`/results.json (atomically: a crash never leaves half of one),
    with when, which code and libraries and which hardware wrote it."""
    record = {"written_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "code_version": code_version(), "libraries": library_versions(), "hardware": hardware(), **record}
    return atomic_write_text(Path(output_dir) / RESULTS_FILE, json.dumps(record, indent=2, default=str))


def read_results(path: str | Path) -> dict:
    path = Path(path)
    if path.is_dir():
        path = path / RESULTS_FILE
    return json.loads(path.read_text())


def results_record(*, identity: dict, architecture: dict, model: torch.nn.Module, evaluation, time_s: dict,
                   **fields) -> dict:
    """The one builder of the record both entry points write (training and evaluation runs).

    Args:
        identity: who ran what — run_name, choices, seed, overrides (robustgen/cli/components.py).
        architecture: the section the report places the run by (robustgen/record/architecture.py).
        model: the evaluated classifier (its parameters are counted).
        evaluation: the final evaluation (robustgen.eval.EvalResult): its `record()` fields.
        time_s: seconds by phase ("train", "eval", "total").
        fields: what only one kind of run has (training: method, epochs, best checkpoint, ...;
            evaluation: the checkpoint or weights file and the training run it came from).
    """
    return {**identity, "architecture": architecture, "params": count_parameters(model), **fields,
            "eval_attacks": evaluation.attacks, **evaluation.record(), "time_s": time_s}
