"""Generate CIFAR-10-C files in the official layout: `<root>/CIFAR-10-C/<corruption>.npy` + `labels.npy`.

The work is split into tasks of (corruption, severity, a chunk of test images), run by a pool of
worker processes; each image's randomness comes from its own generator (api.image_rng), so the
files are byte-identical whatever the number of workers or the chunk size. A corruption's file is
written (atomically) as soon as its last task returns, and recorded in manifest.json; a rerun skips
files that are up to date (manifest.py), so an interrupted generation resumes where it stopped.
"""
from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import time
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Protocol, Sequence

import numpy as np

from robustgen.data import cifar10c_manifest as mf
from robustgen.corrupt.params import CORRUPTIONS, SEVERITIES
from robustgen.errors import ConfigError, DataError

FOLDER = "CIFAR-10-C"
CHUNK = 250  # images per task: small enough to keep workers busy to the end, large enough to batch


class Report(Protocol):
    """What generate() tells its caller (the CLI draws a progress bar or prints lines)."""

    def note(self, message: str) -> None: ...
    def start(self, todo: Sequence[str], images_per_file: int) -> None: ...
    def advance(self, name: str, images: int) -> None: ...
    def finished(self, name: str, stats: "FileStats") -> None: ...


class Silent:
    def note(self, message): pass
    def start(self, todo, images_per_file): pass
    def advance(self, name, images): pass
    def finished(self, name, stats): pass


@dataclass
class FileStats:
    images: int
    worker_seconds: float = 0.0   # compute time summed over tasks (one core each)
    wall_seconds: float = 0.0     # from its first task's start to its file written

    @property
    def images_per_worker_second(self) -> float:
        return self.images / self.worker_seconds if self.worker_seconds else float("nan")


@dataclass
class Summary:
    folder: Path
    generated: dict[str, FileStats] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    wall_seconds: float = 0.0


def load_test_set(root: Path, n_images: int | None) -> tuple[np.ndarray, np.ndarray]:
    """The first `n_images` CIFAR-10 test images as uint8 N×32×32×3 (H×W×C) and their labels."""
    folder = "cifar-10-batches-py"
    if not (root / folder / "test_batch").is_file():  # said before importing torch (seconds)
        raise DataError(f"CIFAR-10 not found in {root / folder}: run `make data`, or pass --root DIR "
                        f"(or set $ROBUSTGEN_DATA) naming the folder that holds {folder}/")
    from robustgen.data.cifar10 import load_cifar10

    images, labels = load_cifar10(root, "test", download=False)
    images = images.permute(0, 2, 3, 1).numpy()
    if n_images is None:
        n_images = len(images)
    if not 1 <= n_images <= len(images):
        raise ConfigError(f"--n-images must lie in 1..{len(images)}, got {n_images}")
    return np.ascontiguousarray(images[:n_images]), labels[:n_images].numpy()


# ---- worker side -------------------------------------------------------------------------------
_IMAGES: np.ndarray | None = None


def _init_worker(images: np.ndarray) -> None:
    global _IMAGES
    _IMAGES = images
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle: it lets tasks finish
    import cv2

    from robustgen.corrupt.api import _functions

    cv2.setNumThreads(1)  # one process per core already
    _functions()  # load the image libraries now, so their import time is not billed to the first corruption


def _run_task(name: str, severity: int, start: int, stop: int, seed: int,
              images: np.ndarray | None = None) -> tuple[np.ndarray, float]:
    from robustgen.corrupt.api import corrupt_as_cifar10c

    images = _IMAGES if images is None else images
    t0 = time.process_time()
    out = corrupt_as_cifar10c(images[start:stop], name, severity, seed, start=start)
    return out, time.process_time() - t0


# ---- parent side -------------------------------------------------------------------------------
def _tasks(todo: Sequence[str], n: int, chunk: int) -> Iterator[tuple[str, int, int, int]]:
    for name in todo:
        for severity in SEVERITIES:
            for start in range(0, n, chunk):
                yield name, severity, start, min(start + chunk, n)


def generate(root: str | Path, seed: int = 0, corruptions: Sequence[str] = CORRUPTIONS, n_images: int | None = None,
             workers: int | None = None, chunk: int = CHUNK, report: Report | None = None,
             verify: bool = True) -> Summary:
    """Write `<root>/CIFAR-10-C/<name>.npy` for each of `corruptions` that is not up to date, and
    `labels.npy` and `manifest.json`. `n_images`: the first N test images (default all 10,000);
    `workers`: processes (default os.cpu_count(); 1 runs in this process); `verify`: check the
    sha256 of files that look up to date (else only their size)."""
    report = report or Silent()
    unknown = [c for c in corruptions if c not in CORRUPTIONS]
    if unknown:
        raise ConfigError(f"unknown corruption(s) {', '.join(unknown)}; choose from: {', '.join(CORRUPTIONS)}")
    if int(seed) < 0:
        raise ConfigError(f"--seed must be ≥ 0, got {seed}")
    workers = (os.cpu_count() or 1) if workers is None else workers
    if workers < 1 or chunk < 1:
        raise ConfigError(f"--workers and the chunk size must be ≥ 1, got {workers} and {chunk}")
    t_start = time.perf_counter()
    root = Path(root).expanduser()
    images, labels = load_test_set(root, n_images)
    folder = root / FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    with _folder_lock(folder):
        return _generate(folder, images, labels, int(seed), corruptions, workers, chunk, report, verify, t_start)


@contextlib.contextmanager
def _folder_lock(folder: Path):
    """One generation per folder at a time: two would race on manifest.json."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock
        yield
        return
    with open(folder / ".lock", "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ConfigError(f"another `python -m robustgen.corrupt` is writing {folder}; wait for it to "
                              f"finish, or pass another --root") from None
        yield


def _generate(folder: Path, images: np.ndarray, labels: np.ndarray, seed: int, corruptions: Sequence[str],
              workers: int, chunk: int, report: Report, verify: bool, t_start: float) -> Summary:
    n = len(images)
    for stale in folder.glob(".*.tmp"):  # left by a run that was killed mid-write (we hold the lock)
        stale.unlink(missing_ok=True)
    manifest, problem = mf.load(folder)
    if problem:
        report.note(problem)
    current = mf.settings(seed, n)
    manifest.update(dataset="CIFAR-10-C", layout=mf.LAYOUT, rng=mf.RNG, **current)
    summary = Summary(folder)

    label_settings = {"n_images": n}
    why = mf.stale_reason(folder, mf.LABELS, manifest, label_settings, verify)
    if why:
        manifest["files"][mf.LABELS] = mf.save_array(folder / mf.LABELS, np.tile(labels, 5).astype(np.uint8),
                                                     label_settings)
        mf.save(folder, manifest)
    todo = _stale_files(folder, corruptions, manifest, current, verify, summary, report)
    report.start(todo, 5 * n)
    files = _FileAssembler(folder, manifest, current, n, images.shape[1:], summary, report,
                           {name: len(SEVERITIES) * -(-n // chunk) for name in todo})
    if workers == 1:
        for task in _tasks(todo, n, chunk):
            files.first_start.setdefault(task[0], time.perf_counter())
            files.collect(*task, *_run_task(*task, seed, images=images))
    else:
        _run_in_pool(_tasks(todo, n, chunk), images, seed, workers, files)
    summary.wall_seconds = time.perf_counter() - t_start
    _warn_mixed(folder, manifest, current, report)
    return summary


def _stale_files(folder: Path, corruptions: Sequence[str], manifest: dict, current: dict, verify: bool,
                 summary: Summary, report: Report) -> list[str]:
    """The corruptions whose file is missing or was made otherwise (the others are skipped)."""
    todo = []
    for name in dict.fromkeys(corruptions):  # keeps the order given, drops repeats
        why = mf.stale_reason(folder, f"{name}.npy", manifest, current, verify)
        if why is None:
            summary.skipped.append(name)
            report.note(f"{name}.npy: up to date, skipped")
        else:
            todo.append(name)
            if why != "missing":
                report.note(f"{name}.npy: {why}; regenerating it")
    return todo


@dataclass
class _FileAssembler:
    """Puts finished chunks into their corruption's array and writes the file (and the manifest)
    when its last chunk is in."""

    folder: Path
    manifest: dict
    current: dict
    n: int
    shape: tuple
    summary: Summary
    report: Report
    left: dict[str, int]                              # chunks still to come, per corruption
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    first_start: dict[str, float] = field(default_factory=dict)

    def collect(self, name: str, severity: int, start: int, stop: int, out: np.ndarray, seconds: float) -> None:
        n = self.n
        if name not in self.arrays:
            self.arrays[name] = np.empty((len(SEVERITIES) * n, *self.shape), dtype=np.uint8)
            self.summary.generated[name] = FileStats(len(SEVERITIES) * n)
        self.arrays[name][(severity - 1) * n + start:(severity - 1) * n + stop] = out
        stats = self.summary.generated[name]
        stats.worker_seconds += seconds
        self.report.advance(name, stop - start)
        self.left[name] -= 1
        if self.left[name] == 0:
            self.manifest["files"][f"{name}.npy"] = mf.save_array(self.folder / f"{name}.npy", self.arrays.pop(name),
                                                                  self.current)
            mf.save(self.folder, self.manifest)
            stats.wall_seconds = time.perf_counter() - self.first_start[name]
            self.report.finished(name, stats)


def _run_in_pool(tasks, images: np.ndarray, seed: int, workers: int, files: _FileAssembler) -> None:
    context = multiprocessing.get_context("spawn")  # no fork of a parent that may hold torch threads
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_init_worker, initargs=(images,)) as pool:
        pending: dict[Future, tuple] = {}
        try:
            for task in tasks:
                while len(pending) >= 3 * workers:  # a bounded window: at most ~2 files held in memory
                    done, _ = wait(pending, return_when=FIRST_COMPLETED)
                    for future in done:
                        files.collect(*pending.pop(future), *future.result())
                files.first_start.setdefault(task[0], time.perf_counter())
                pending[pool.submit(_run_task, *task, seed)] = task
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    files.collect(*pending.pop(future), *future.result())
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)
            raise


def _warn_mixed(folder: Path, manifest: dict, current: dict, report: Report) -> None:
    others = sorted(name for name, entry in manifest["files"].items()
                    if name != mf.LABELS and (entry or {}).get("settings") != current)
    if others:
        report.note(f"{len(others)} file(s) in {folder} were made with other settings than this run "
                    f"({', '.join(others)}); run again without --corruptions to make the set consistent")
