"""`python -m robustgen.bench eval [--checkpoint PATH] [--n-points N] ...` (see eval_bench.py) and
`python -m robustgen.bench corruptions [--folder DIR] [--n-per-cell N]` (see corrupt_bench.py)."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from robustgen.errors import RobustgenError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m robustgen.bench", description=__doc__)
    sub = parser.add_subparsers(dest="bench", required=True)
    ev = sub.add_parser("eval", help="evaluation: cascade speed-up on the `paper` set, PGD time per step")
    ev.add_argument("--checkpoint", help="a robustgen checkpoint (.ckpt); default: train a small CNN (~1 min)")
    ev.add_argument("--small-model", type=Path,
                    help="state dict of the small CNN: loaded if it exists, else trained and saved there")
    ev.add_argument("--n-points", type=int, default=500, help="test points of the cascade comparison")
    ev.add_argument("--eval-set", default="paper", help="conf/eval/<name>.yaml attack set (default: paper)")
    ev.add_argument("--data-root", default="data", help="folder holding cifar-10-batches-py/")
    ev.add_argument("--threads", type=int, default=1,
                    help="torch CPU threads (default 1: on a shared CPU, threads spin-waiting for each other "
                         "make timings erratic)")
    ev.add_argument("--pgd-points", type=int, default=256)
    ev.add_argument("--pgd-steps", type=int, default=10)
    ev.add_argument("--repeats", type=int, default=5, help="PGD timing repeats (the median is reported)")
    ev.add_argument("--json", type=Path, help="also write the numbers to this file")
    ev.add_argument("--parts", default=None,
                    help="comma-separated parts to run (default: all; see PARTS in robustgen/bench/eval_bench.py)")
    ev.add_argument("--sanity-points", type=int, default=100, help="points of the with/without sanity comparison")
    co = sub.add_parser("corruptions", help="evaluation on CIFAR-10-C (memory-mapped) vs clean, images/s")
    co.add_argument("--folder", default=None, help="CIFAR-10-C folder (default: <data root>/CIFAR-10-C)")
    co.add_argument("--data-root", default="data", help="folder holding cifar-10-batches-py/")
    co.add_argument("--n-per-cell", type=int, default=2000, help="images per (corruption, severity) cell")
    co.add_argument("--batch-size", type=int, default=500)
    co.add_argument("--threads", type=int, default=1)
    co.add_argument("--checkpoint", help="a robustgen checkpoint (.ckpt); default: the small CNN")
    co.add_argument("--small-model", type=Path, help="state dict of the small CNN (loaded, or trained and saved)")
    co.add_argument("--json", type=Path, help="also write the numbers to this file")
    args = parser.parse_args(argv)

    try:
        if args.bench == "eval":
            from robustgen.bench.eval_bench import run_eval_bench

            numbers = run_eval_bench(checkpoint=args.checkpoint, small_model=args.small_model,
                                     n_points=args.n_points, eval_set=args.eval_set, data_root=args.data_root,
                                     threads=args.threads, pgd_points=args.pgd_points, pgd_steps=args.pgd_steps,
                                     repeats=args.repeats, sanity_points=args.sanity_points,
                                     **({"parts": tuple(args.parts.split(","))} if args.parts else {}))
        else:
            from robustgen.bench.corrupt_bench import run_corruption_bench

            numbers = run_corruption_bench(folder=args.folder, data_root=args.data_root, n_per_cell=args.n_per_cell,
                                           batch_size=args.batch_size, threads=args.threads,
                                           small_model=args.small_model, checkpoint=args.checkpoint)
    except RobustgenError as err:
        print(f"robustgen: error: {err}", file=sys.stderr)
        return 2
    if args.json:
        args.json.write_text(json.dumps(numbers, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
