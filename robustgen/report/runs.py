"""Finished runs as rows, read from their results.json files only (never a checkpoint), and the
jobs of a sweep that have none.

A path may be a run folder, a multirun (sweep) folder, a results.json file or a glob. Inside a
sweep folder, every job folder (one holding `.hydra/`) without a results.json is reported as
missing — it failed, was killed or is still running — so that a table is never silently short.

Where a run belongs (its family, its paper row, whether it is the study's configuration) is read
from the `architecture` section its results.json recorded when it ran, never from today's configs
or registry: changing a default in conf/ does not move old runs between tables. Files written
before that section existed are completed once by the caller (`complete`; the report's command
line derives it from today's conf/ and says which files it did that for).
"""
from __future__ import annotations

import glob
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from robustgen.errors import RobustgenError
from robustgen.record.architecture import SECTION, penalised
from robustgen.record.results import RESULTS_FILE

# The attacks of the paper's table, in its column order (conf/eval/paper.yaml's names).
PAPER_ATTACKS = ("pgd_linf", "aa_linf", "pgd_l2", "pgd_l1")


class ReportError(RobustgenError):
    """A report that cannot be built as asked (no runs, a column mixing attack settings, ...)."""


@dataclass
class Run:
    """One finished run, as the report needs it."""

    path: Path                       # the run's folder
    arch: str                        # the `arch` config choice (e.g. "vit", "coatnet")
    data: str                        # the `data` choice
    vanilla: bool                    # trained without an attack (attack=none)
    method: str                      # training method (pgd_at, trades, ...)
    seed: int | None
    params: int | None
    n_points: int
    clean: float                     # accuracies in %
    attacks: dict[str, float]
    worst_case: float | None
    attack_settings: dict[str, dict]  # name → the attack's describe() as results.json holds it
    record: dict = field(repr=False)
    label: str = ""                  # the row it belongs to: set by :func:`label_rows`

    @property
    def architecture(self) -> dict:
        """The run's `architecture` section (robustgen/record/architecture.py)."""
        return self.record[SECTION]

    @property
    def study_default(self) -> bool:
        """The study's own configuration of this architecture: it has a paper row."""
        return bool(self.architecture.get("study_configuration"))

    @property
    def family(self) -> str | None:
        """cnn, transformer, hybrid or mlp, as the run recorded it (None if unknown)."""
        return self.architecture.get("family")

    @property
    def paper_row(self) -> str | None:
        """The paper's main-table row this run reproduces (None for variants and other architectures)."""
        return self.architecture.get("paper_row")

    @property
    def penalised(self) -> bool:
        return penalised(self.record.get("regularizer"))

    def training_setup(self) -> dict:
        """Everything that defines the trained model except the seed: runs equal here are seeds
        of one configuration."""
        r = self.record
        return {"arch": r.get("arch"), "data": self.data, "method": r.get("method"),
                "train_attack": r.get("train_attack"), "regularizer": r.get("regularizer"),
                "epochs": r.get("epochs"), "vanilla": self.vanilla}


def _value(setup: dict, section: str, key: str):
    value = setup.get(section)
    return value if key == "" else (value or {}).get(key) if isinstance(value, dict) or value is None else None


def _differing(setups: list[dict]) -> set[tuple[str, str]]:
    """(section, key) pairs whose value is not the same in every setup (key "" for a plain value
    such as epochs)."""
    keys = {(section, key) for s in setups for section, value in s.items()
            for key in (value if isinstance(value, dict) else [""])}
    return {(sec, key) for sec, key in keys
            if len({json.dumps(_value(s, sec, key), sort_keys=True) for s in setups}) > 1}


def _variant(run: Run) -> list[str]:
    """What sets the run apart from the study's configuration of its arch choice: its scale,
    architecture settings that differ from the study's (as recorded), the weight penalty, the method."""
    differs = run.architecture.get("differs_from_study") or {}
    scale = run.architecture.get("scale")  # a narrower network than the study's (robustgen/arch/scale.py)
    parts = ([f"({scale['name']} scale)"] if scale else []) + [f"arch.{k}={v}" for k, v in sorted(differs.items())]
    regularizer = run.record.get("regularizer") or {}
    if regularizer.get("type", "NoRegularizer") != "NoRegularizer":
        scope = regularizer.get("scope")
        parts.append(f"ℓ1 λ={regularizer.get('weight', 0):g}" + (f" ({scope})" if scope not in (None, "all") else ""))
    if not run.vanilla and run.method != "pgd_at":
        parts.append(run.method)
    return parts


def label_rows(runs: list[Run]) -> None:
    """Give each run its row label: the arch choice, what sets it apart from the study's
    configuration (e.g. "vit arch.patch_size=2", "vit ℓ1 λ=1e-05", "vgg11 arch.width=0.5"), and any
    other training setting that differs between runs of that arch choice (e.g. "vit epochs=20")."""
    by_arch: dict[str, list[Run]] = {}
    for run in runs:
        by_arch.setdefault(run.arch, []).append(run)
    for arch, group in by_arch.items():
        # the scale's settings count too: two runs at one scale name but other sizes are two rows
        setups = [{**{k: v for k, v in r.training_setup().items() if k not in ("arch", "regularizer", "method")},
                   "scale": (r.architecture.get("scale") or {}).get("settings")} for r in group]
        differing = sorted(_differing(setups))
        for run, setup in zip(group, setups):
            parts = [f"{sec}.{key}={_value(setup, sec, key)}" if key else f"{sec}={_value(setup, sec, key)}"
                     for sec, key in differing]
            run.label = " ".join([arch, *_variant(run), *parts])


@dataclass
class Collection:
    runs: list[Run]
    missing: list[Path]              # job folders of a sweep without results.json
    completed: list[Path] = field(default_factory=list)  # files whose architecture section was derived now


def _expand(paths: list[str | Path]) -> list[Path]:
    out: list[Path] = []
    for raw in map(str, paths):
        matches = sorted(glob.glob(raw)) if any(c in raw for c in "*?[") else [raw]
        if not matches or not Path(matches[0]).exists():
            raise ReportError(f"{raw} does not exist: pass run folders, sweep folders, results.json files or globs")
        out += map(Path, matches)
    return out


def results_files(paths: list[str | Path]) -> tuple[list[Path], list[Path]]:
    """(every results.json at or under `paths`, every job folder — one holding `.hydra/` — without
    one), each sorted and without duplicates.

    Raises:
        ReportError: a path (or glob) that matches nothing.
    """
    files: list[Path] = []
    missing: list[Path] = []
    for path in _expand(paths):
        if path.is_file():
            files.append(path)
            continue
        files += sorted(path.rglob(RESULTS_FILE))
        for hydra_dir in sorted(path.rglob(".hydra")):
            if not (hydra_dir.parent / RESULTS_FILE).is_file():
                missing.append(hydra_dir.parent)
    return sorted(dict.fromkeys(p.resolve() for p in files)), sorted(dict.fromkeys(missing))


def _run_from(path: Path, record: dict) -> Run:
    choices = record.get("choices") or {}
    section = record[SECTION]
    # an architecture from outside the study (arch=timm, arch=custom) is its own row, by the name it was given
    arch = section.get("name") if section.get("code") else section.get("choice")
    return Run(path=path.parent, arch=arch or choices.get("arch") or "?",
               data=choices.get("data", "cifar10"), vanilla=choices.get("attack") == "none",
               method=(record.get("method") or {}).get("name", "pgd_at"), seed=record.get("seed"),
               params=record.get("params"), n_points=int(record.get("n_points") or 0),
               clean=float(record["clean_acc"]), attacks=dict(record.get("attack_acc") or {}),
               worst_case=record.get("worst_case_acc"), attack_settings=dict(record.get("eval_attacks") or {}),
               record=record)


Completion = Callable[[dict], dict]  # a results.json record → its `architecture` section


def collect(paths: list[str | Path], complete: Completion | None = None) -> Collection:
    """Every results.json at or under `paths`, and every sweep job folder without one.

    `complete(record)` gives the `architecture` section of files written before robustgen 0.3
    recorded it; :attr:`Collection.completed` lists the files it was used for.

    Raises:
        ReportError: a path that does not exist, a results.json that cannot be read, or one
            without an architecture section when no `complete` is given.
    """
    files, missing = results_files(paths)
    runs, completed = [], []
    for file in files:
        try:
            record = json.loads(file.read_text())
            if SECTION not in record:
                if complete is None:
                    raise ReportError(f"{file} was written before robustgen recorded each run's architecture "
                                      f"section; report it with `python -m robustgen.report`, which fills it in")
                record[SECTION] = complete(record)
                completed.append(file)
            runs.append(_run_from(file, record))
        except (OSError, ValueError, KeyError) as err:
            raise ReportError(f"{file}: not a readable robustgen results.json ({err})") from err
    for data in {r.data for r in runs}:  # each data set is reported on its own
        label_rows([r for r in runs if r.data == data and not r.vanilla])
        label_rows([r for r in runs if r.data == data and r.vanilla])
    return Collection(runs, missing, completed)
