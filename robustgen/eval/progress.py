"""What an evaluation says while it runs, on stderr, whether or not stderr is a terminal.

On a terminal, rich draws bars: points done of the total with the ETA, and the points each attack
and each AutoAttack component ran on. When stderr is a file or a pipe (a cluster job, ``2> log``),
where a rich bar draws nothing until it ends, the same news comes as plain lines: one per attack
and per AutoAttack component of each batch (points, broken, seconds), one per batch (points done,
robust so far, elapsed, ETA), one when a phase starts (naming the earlier phases and how long each
took) and ends, and — whenever nothing was said for `heartbeat_s` seconds — one naming what is
still running and for how long, so a long FAB-T is never mistaken for a hang.

The sanity checks, the attack set and the corruption cells all report through one
:class:`Reporter`; its phase durations also go into results.json (``eval.seconds_by_phase``).
"""
from __future__ import annotations

import sys
import threading
import time
from contextlib import contextmanager
from typing import Iterator

PREFIX = "robustgen: "


def duration(seconds: float) -> str:
    """12.3 s → "12 s", 185 s → "3m05s", 3720 s → "1h02m"; under 10 s with one decimal."""
    if seconds < 10:
        return f"{seconds:.1f} s"
    s = round(seconds)
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


def eta(elapsed: float, done: int, total: int) -> str:
    """Remaining time at the rate so far (unknown before anything is done)."""
    if done <= 0:
        return "?"
    return duration(elapsed / done * max(total - done, 0))


def is_terminal() -> bool:
    """Whether rich can draw on stderr (a terminal, or FORCE_TERMINAL; not a file or a pipe)."""
    from rich.console import Console

    return Console(stderr=True).is_terminal


class Reporter:
    """Phase lines, progress lines and a heartbeat on stderr (nothing when `enabled` is false).

    Use it as a context manager (re-entrant): the heartbeat thread runs inside. ``terminal=None``
    asks rich whether stderr is a terminal; ``heartbeat_s=None`` turns the heartbeat off.
    """

    def __init__(self, enabled: bool = True, *, terminal: bool | None = None, heartbeat_s: float | None = 15.0):
        self.enabled = enabled
        self.terminal = (is_terminal() if terminal is None else terminal) if enabled else False
        self.heartbeat_s = heartbeat_s
        self.phases: dict[str, float] = {}     # finished phases, in order: name → seconds
        self.live = None                       # the rich Progress being drawn, if any
        self._doing: list[tuple[str, float]] = []  # what is running (innermost last), since when
        self._said = time.perf_counter()
        self._lock = threading.RLock()
        self._depth = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._console = None

    @classmethod
    def of(cls, progress: bool | Reporter) -> Reporter:
        """`progress` if it is a reporter already, else a new one (enabled or not)."""
        return progress if isinstance(progress, Reporter) else cls(bool(progress))

    # --- the heartbeat -----------------------------------------------------------------------
    def __enter__(self) -> Reporter:
        with self._lock:
            self._depth += 1
            if self._depth == 1 and self.enabled and self.heartbeat_s:
                self._stop.clear()
                self._thread = threading.Thread(target=self._beat, name="robustgen-heartbeat", daemon=True)
                self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        with self._lock:
            self._depth -= 1
            thread = self._thread if self._depth == 0 else None
            if thread is not None:
                self._thread = None
                self._stop.set()
        if thread is not None:
            thread.join()

    def _beat(self) -> None:
        while not self._stop.wait(min(1.0, self.heartbeat_s)):
            with self._lock:
                now = time.perf_counter()
                if self._doing and self.live is None and now - self._said >= self.heartbeat_s:
                    what, since = self._doing[-1]
                    self.say(f"… still running {what}, {duration(now - since)} so far")

    # --- saying things -------------------------------------------------------------------------
    def say(self, text: str) -> None:
        """One line: above the bars on a terminal, a plain stderr line otherwise."""
        if not self.enabled:
            return
        with self._lock:
            self._said = time.perf_counter()
            if self.live is not None:
                self.live.console.print(text, highlight=False, markup=False, soft_wrap=True)
            elif self.terminal:
                if self._console is None:
                    from rich.console import Console

                    self._console = Console(stderr=True)
                self._console.print(text, highlight=False, markup=False, soft_wrap=True)
            else:
                print(PREFIX + text, file=sys.stderr, flush=True)

    @contextmanager
    def running(self, what: str) -> Iterator[None]:
        """Name what runs inside the block, for the heartbeat."""
        depth = self.begin(what)
        try:
            yield
        finally:
            with self._lock:
                del self._doing[depth:]  # also what began inside and never ended (an exception)

    def begin(self, what: str) -> int:
        """`what` starts running (until :meth:`end`); returns the depth it runs at."""
        with self._lock:
            self._doing.append((what, time.perf_counter()))
            return len(self._doing) - 1

    def end(self, depth: int) -> None:
        with self._lock:
            del self._doing[depth:]

    @contextmanager
    def phase(self, name: str, detail: str = "") -> Iterator[None]:
        """A line when the phase starts (with `detail`, and the earlier phases' durations) and when
        it ends; its duration is kept in `phases[name]`."""
        before = ", ".join(f"{k} {duration(v)}" for k, v in self.phases.items())
        self.say(f"{name}{detail} ..." + (f" (before: {before})" if before else ""))
        start = time.perf_counter()
        ok = False
        try:
            with self.running(name):
                yield
            ok = True
        finally:
            seconds = time.perf_counter() - start
            self.phases[name] = self.phases.get(name, 0.0) + seconds
            self.say(f"{name}: {'done' if ok else 'stopped'} after {duration(seconds)}")

    def summary(self) -> str:
        total = sum(self.phases.values())
        return ", ".join(f"{k} {duration(v)} ({100 * v / total:.0f}%)" if total else f"{k} {duration(v)}"
                         for k, v in self.phases.items())

    def evaluation(self, total: int, done: int, attack_names: list[str], batches: int,
                   label: str = "evaluated points") -> EvalProgress:
        return EvalProgress(self, total, done, attack_names, batches, label)


class EvalProgress:
    """Progress of one worst-case evaluation: batches, attacks, AutoAttack components."""

    def __init__(self, reporter: Reporter, total: int, done: int, attack_names: list[str], batches: int,
                 label: str):
        self.r, self.total, self.resumed, self.names, self.batches, self.label = \
            reporter, total, done, attack_names, batches, label
        self.done, self.robust, self.batch, self.batch_size = done, 0, 0, 0
        self.tasks: dict[str, int] = {}

    def __enter__(self) -> EvalProgress:
        self.start = time.perf_counter()
        if self.r.enabled and self.r.terminal:
            self.bar = progress_bars()
            self.bar.start()
            self.r.live = self.bar
            self.overall = self.bar.add_task(self._overall_label(), total=self.total, completed=self.done)
            for name in self.names:
                self.tasks[name] = self.bar.add_task(f"  attacked by {name}", total=None)
        elif self.resumed:
            self.r.say(f"{self.label}: {self.resumed}/{self.total} resumed from the saved outcomes")
        return self

    def __exit__(self, *exc) -> None:
        if getattr(self, "bar", None) is not None:
            self.bar.stop()
            self.r.live = None

    def _overall_label(self) -> str:
        new = self.done - self.resumed
        robust = f", robust so far {100 * self.robust / new:.1f}%" if new else ""
        resumed = f" ({self.resumed} resumed)" if self.resumed else ""
        return f"{self.label}{resumed}{robust}"

    def _where(self) -> str:
        return f"batch {self.batch}/{self.batches}"

    # --- events ----------------------------------------------------------------------------------
    def start_batch(self, size: int) -> None:
        self.batch += 1
        self.batch_size = size

    @contextmanager
    def attack(self, name: str, points: int) -> Iterator[None]:
        with self.r.running(f"{name} on {points} points ({self._where()})"):
            yield

    def attack_done(self, name: str, points: int, broken: int, seconds: float) -> None:
        if getattr(self, "bar", None) is not None:
            self.bar.advance(self.tasks[name], points)
        else:
            self.r.say(f"{self._where()} · {name}: {points} points, {broken} broken, {duration(seconds)}")

    def component(self, attack: str):
        """A listener for AutoAttack.watch: a line (or a bar) per component of `attack`."""
        depth: list[int] = []

        def listen(event) -> None:
            key = f"{attack}/{event.component}"
            bar = getattr(self, "bar", None)
            if event.broken is None:  # the component starts: its row shows from now on
                depth.append(self.r.begin(f"{key} on {event.points} points ({self._where()})"))
                if bar is not None and key not in self.tasks:
                    self.tasks[key] = bar.add_task(f"    {key}", total=None)
                return
            if depth:
                self.r.end(depth.pop())
            if bar is not None:
                bar.advance(self.tasks[key], event.points)
            else:
                self.r.say(f"{self._where()} · {key}: {event.points} points, {len(event.broken)} broken, "
                           f"{duration(event.seconds)}")

        return listen

    def end_batch(self, points: int, robust: int) -> None:
        self.done += points
        self.robust += robust
        new, elapsed = self.done - self.resumed, time.perf_counter() - self.start
        if getattr(self, "bar", None) is not None:
            self.bar.update(self.overall, completed=self.done, description=self._overall_label())
            return
        which = f" of the {new} attacked in this run" if self.resumed else ""  # resumed points: in results.json
        self.r.say(f"{self._where()} done: {self.done}/{self.total} points, robust so far "
                   f"{100 * self.robust / max(new, 1):.1f}%{which} ({self.robust}/{new}), elapsed {duration(elapsed)}, "
                   f"ETA {eta(elapsed, new, self.total - self.resumed)}")


def progress_bars(stderr: bool = True, label_width: int | None = None):
    """The one kind of rich progress display robustgen shows: label, bar, done/total, elapsed and
    remaining time (labels padded to `label_width`), on stderr unless `stderr=False`."""
    from rich.console import Console
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                               TimeRemainingColumn)

    label = "{task.description}" if label_width is None else f"{{task.description:<{label_width}}}"
    return Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn(),
                    console=Console(stderr=stderr))
