"""Accuracy under common corruptions: one number per (corruption, severity) cell, each corruption's
mean over its severities, and the mean over all cells — the figure CIFAR-10-C reports
(Hendrycks & Dietterich, ICLR 2019) and the study's third pathway compares.

Each cell is evaluated by the same worst-case evaluation as the clean test set
(robustgen/eval/worst_case.py): with no attacks that is clean accuracy on the corrupted images;
with `attacks: true` the attack set also runs on them (worst case under corruption + attack).
Every cell keeps its own per-example outcomes file, `corruptions/<corruption>_s<severity>.json`,
keyed on the cell's images, so an interrupted evaluation resumes cell by cell and point by point.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from torch import nn

from robustgen.attack.base import Attack
from robustgen.data.corrupted import CorruptionSource, check_names
from robustgen.errors import ConfigError
from robustgen.eval.progress import Reporter, duration, eta, progress_bars
from robustgen.eval.worst_case import evaluate_worst_case

METRIC_PREFIX = "test/corruption"


@dataclass
class CorruptionSettings:
    """conf/eval/corrupted/<option>.yaml."""

    enabled: bool = False
    names: list[str] | None = None        # None: the study's 15
    severities: list[int] = field(default_factory=lambda: [1, 2, 3, 4, 5])
    folder: str | None = None             # CIFAR-10-C folder (default <data root>/CIFAR-10-C)
    n_points: int | None = None           # images per cell (None: the evaluation's n_points)
    attacks: bool = False                 # also run the attack set on corrupted images
    seed: int = 0                         # on-the-fly corruptions (ImageNette-C)

    @classmethod
    def from_dict(cls, values: dict | None) -> CorruptionSettings:
        values = dict(values or {})
        unknown = set(values) - set(cls.__dataclass_fields__)
        if unknown:
            raise ConfigError(f"eval.corrupted: unknown key(s) {', '.join(sorted(unknown))}; "
                              f"known: {', '.join(cls.__dataclass_fields__)}")
        settings = cls(**values)
        if settings.enabled:
            settings.names, settings.severities = check_names(settings.names, list(settings.severities))
        n = settings.n_points
        if n is not None and (not isinstance(n, int) or n < 1):
            raise ConfigError(f"eval.corrupted.n_points must be an integer ≥ 1 or null, got {n!r}")
        return settings


@dataclass
class CorruptionReport:
    accuracy: dict[str, dict[int, float]]                 # clean accuracy (%) on each cell
    worst_case: dict[str, dict[int, float]] | None        # with attacks: worst case (%) on each cell
    n_points: int                                          # images per cell
    source: dict
    seconds: float = 0.0
    resumed_points: int = 0

    @staticmethod
    def _means(cells: dict[str, dict[int, float]]) -> tuple[dict[str, float], float]:
        per = {name: sum(by.values()) / len(by) for name, by in cells.items()}
        values = [acc for by in cells.values() for acc in by.values()]
        return per, sum(values) / len(values)

    def metrics(self) -> dict[str, float]:
        out = {}
        for label, cells in (("acc", self.accuracy), ("worst_case", self.worst_case)):
            if cells is None:
                continue
            per, mean = self._means(cells)
            out[f"{METRIC_PREFIX}/{label}/mean"] = mean
            for name, by in cells.items():
                out[f"{METRIC_PREFIX}/{label}/{name}"] = per[name]
                out.update({f"{METRIC_PREFIX}/{label}/{name}/s{s}": acc for s, acc in by.items()})
        return out

    def record(self) -> dict:
        per, mean = self._means(self.accuracy)
        out = {"mean_acc": mean, "acc_by_corruption": per,
               "acc": {name: {str(s): a for s, a in by.items()} for name, by in self.accuracy.items()},
               "n_points": self.n_points, "cells": sum(len(by) for by in self.accuracy.values()),
               "source": self.source, "seconds": self.seconds, "resumed_points": self.resumed_points}
        if self.worst_case is not None:
            wper, wmean = self._means(self.worst_case)
            out.update(mean_worst_case=wmean, worst_case_by_corruption=wper,
                       worst_case={name: {str(s): a for s, a in by.items()} for name, by in self.worst_case.items()})
        return out


def evaluate_corruptions(model: nn.Module, source: CorruptionSource, settings: CorruptionSettings,
                         attacks: dict[str, Attack], *, n_points: int | None, batch_size: int, per_attack: bool,
                         output_dir: str | Path | None, progress: bool = True, num_workers: int = 0) -> CorruptionReport:
    """Evaluate `model` (eval mode, on its device) on every (corruption, severity) cell of `source`.
    `n_points` (the evaluation's) applies unless `settings.n_points` is given."""
    start = time.perf_counter()
    limit = settings.n_points if settings.n_points is not None else n_points
    cells = [(name, s) for name in settings.names for s in settings.severities]
    accuracy: dict[str, dict[int, float]] = {name: {} for name in settings.names}
    worst: dict[str, dict[int, float]] | None = {name: {} for name in settings.names} if settings.attacks else None
    resumed, per_cell = 0, 0
    with _CellProgress(progress, cells) as advance:
        for name, severity in cells:
            dataset = source.cell(name, severity, limit)
            per_cell = len(dataset)
            state = Path(output_dir) / "corruptions" / f"{name}_s{severity}.json" if output_dir is not None else None
            report = evaluate_worst_case(model, dataset, attacks if settings.attacks else {}, n_points=per_cell,
                                         batch_size=batch_size, per_attack=per_attack, progress=False,
                                         state_path=state, data_tag=f"{source.kind}:{name}:s{severity}",
                                         num_workers=num_workers)
            accuracy[name][severity] = report.clean_acc
            if worst is not None:
                worst[name][severity] = report.worst_case_acc
            resumed += report.resumed_points
            advance(name, severity, report.clean_acc)
    return CorruptionReport(accuracy, worst, per_cell, source.describe(), time.perf_counter() - start, resumed)


class _CellProgress:
    """Progress over cells through the evaluation's reporter (robustgen/eval/progress.py): a rich
    bar on a terminal; otherwise one line per cell with cells done, elapsed and ETA, and a
    heartbeat line naming the cell while one runs long (with `attacks: true`)."""

    def __init__(self, enabled, cells: list[tuple[str, int]]):
        self.enabled, self.cells = enabled, cells  # enabled: a bool, or the evaluation's Reporter

    def __enter__(self):
        self.started = time.perf_counter()
        self.reporter = Reporter.of(self.enabled).__enter__()
        self.progress, self.running = None, None
        total = len(self.cells)
        if self.reporter.enabled and self.reporter.terminal:
            self.progress = progress_bars()
            self.progress.start()
            self.reporter.live = self.progress
            overall = self.progress.add_task("corruption cells", total=total)
            per_name: dict[str, int] = {}
            for name, _ in self.cells:
                per_name[name] = per_name.get(name, 0) + 1
            tasks = {name: self.progress.add_task(f"  {name}", total=k) for name, k in per_name.items()}
        done = iter(range(1, total + 1))
        self._next(0)

        def advance(name: str, severity: int, acc: float) -> None:
            k = next(done)
            if self.progress is not None:
                self.progress.advance(tasks[name])
                self.progress.advance(overall)
            else:
                elapsed = time.perf_counter() - self.started
                self.reporter.say(f"corruptions: {k}/{total} {name} s{severity}: {acc:.2f}%, elapsed "
                                  f"{duration(elapsed)}, ETA {eta(elapsed, k, total)}")
            self._next(k)

        return advance

    def _next(self, k: int) -> None:
        """Name the cell that runs next, for the heartbeat."""
        if self.running is not None:
            self.reporter.end(self.running)
            self.running = None
        if k < len(self.cells):
            name, severity = self.cells[k]
            self.running = self.reporter.begin(f"corruption cell {name} s{severity} ({k + 1}/{len(self.cells)})")

    def __exit__(self, *exc) -> None:
        if self.running is not None:
            self.reporter.end(self.running)
        if self.progress is not None:
            self.progress.stop()
            self.reporter.live = None
        self.reporter.__exit__(*exc)
