"""`python -m robustgen.corrupt [--root DIR] [--seed S] [--corruptions a,b] [--n-images N] [--workers W]`

Writes CIFAR-10-C in the official layout to DIR/CIFAR-10-C/ (DIR: --root, else $ROBUSTGEN_DATA,
else ./data, the folder that holds cifar-10-batches-py/): <corruption>.npy, labels.npy and
manifest.json. Files that are up to date are skipped, so an interrupted run resumes when rerun.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

from robustgen.corrupt.params import CORRUPTIONS
from robustgen.data.cifar10c_generate import FileStats, Summary, generate
from robustgen.errors import RobustgenError, fail

PREFIX = "robustgen.corrupt:"


class PlainReport:
    """One line per event, for logs (stdout is not a terminal)."""

    def __init__(self):
        self.t0, self.done, self.total = time.perf_counter(), 0, 0

    def note(self, message: str) -> None:
        print(f"{PREFIX} {message}", flush=True)

    def start(self, todo, images_per_file: int) -> None:
        self.total = len(todo)
        if todo:
            self.note(f"generating {len(todo)} file(s) of {images_per_file} images: {', '.join(todo)}")

    def advance(self, name: str, images: int) -> None:
        pass

    def line(self, name: str, stats: FileStats) -> str:
        return (f"[{self.done}/{self.total}] {name}.npy written: {stats.images} images, "
                f"{stats.worker_seconds:.1f} worker-s ({stats.images_per_worker_second:.0f} images/s per worker), "
                f"{time.perf_counter() - self.t0:.0f} s since start")

    def finished(self, name: str, stats: FileStats) -> None:
        self.done += 1
        self.note(self.line(name, stats))


class RichReport(PlainReport):
    """A bar per corruption and one overall (stdout is a terminal)."""

    def __init__(self):
        from robustgen.eval.progress import progress_bars  # here: the evaluation package loads torch

        super().__init__()
        self.progress = progress_bars(stderr=False, label_width=18)
        self.tasks: dict[str, int] = {}

    def __enter__(self):
        self.progress.start()
        return self

    def __exit__(self, *exc):
        self.progress.stop()

    def note(self, message: str) -> None:
        self.progress.console.print(f"{PREFIX} {message}", highlight=False)

    def start(self, todo, images_per_file: int) -> None:
        self.total = len(todo)
        if todo:
            self.tasks["all"] = self.progress.add_task("all", total=len(todo) * images_per_file)
        for name in todo:
            self.tasks[name] = self.progress.add_task(name, total=images_per_file)

    def advance(self, name: str, images: int) -> None:
        self.progress.advance(self.tasks[name], images)
        self.progress.advance(self.tasks["all"], images)

    def finished(self, name: str, stats: FileStats) -> None:
        self.done += 1
        self.progress.remove_task(self.tasks.pop(name))
        self.note(self.line(name, stats))


def print_summary(summary: Summary) -> None:
    print(f"{PREFIX} {summary.folder}: {len(summary.generated)} file(s) written, {len(summary.skipped)} up to date")
    if not summary.generated:
        return
    print(f"  {'corruption':<18} {'images':>7} {'worker-s':>9} {'img/s/worker':>13}")
    for name, stats in summary.generated.items():
        print(f"  {name:<18} {stats.images:>7} {stats.worker_seconds:>9.1f} {stats.images_per_worker_second:>13.0f}")
    images = sum(s.images for s in summary.generated.values())
    print(f"  {'total':<18} {images:>7} {sum(s.worker_seconds for s in summary.generated.values()):>9.1f}"
          f"   wall {summary.wall_seconds:.1f} s = {images / summary.wall_seconds:.0f} images/s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m robustgen.corrupt", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.error = fail  # one line, exit 2, like every robustgen entry point
    parser.add_argument("--root", default=os.environ.get("ROBUSTGEN_DATA") or "data",
                        help="folder holding cifar-10-batches-py/; output goes to ROOT/CIFAR-10-C "
                             "(default: $ROBUSTGEN_DATA, else ./data)")
    parser.add_argument("--seed", type=int, default=0, help="the same seed gives byte-identical files (default 0)")
    parser.add_argument("--corruptions", default=",".join(CORRUPTIONS),
                        help="comma-separated subset (default: all 15, official order)")
    parser.add_argument("--n-images", type=int, default=None,
                        help="first N test images only, for smoke runs (files then hold 5·N images)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                        help="worker processes (default: os.cpu_count(); 1 runs in this process)")
    args = parser.parse_args(argv)
    names = [c.strip() for c in args.corruptions.split(",") if c.strip()]
    if not names:
        fail("--corruptions is empty; give names from: " + ", ".join(CORRUPTIONS))
    report = RichReport() if sys.stdout.isatty() else PlainReport()
    try:
        if isinstance(report, RichReport):
            with report:
                summary = generate(args.root, seed=args.seed, corruptions=names, n_images=args.n_images,
                                   workers=args.workers, report=report)
        else:
            summary = generate(args.root, seed=args.seed, corruptions=names, n_images=args.n_images,
                               workers=args.workers, report=report)
    except RobustgenError as err:
        fail(err)
    except KeyboardInterrupt:
        print("robustgen: interrupted. The files written so far are kept (see manifest.json); run the same "
              "command again to generate the rest.", file=sys.stderr)
        return 130
    print_summary(summary)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
