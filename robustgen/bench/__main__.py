"""`python -m robustgen.bench eval [--checkpoint PATH] [--n-points N] ...` (see eval_bench.py),
`python -m robustgen.bench corruptions [--folder DIR] [--n-per-cell N]` (see corrupt_bench.py) and
`python -m robustgen.bench train [--arch NAME] [--device cuda] [--parts ...]` (see train_bench.py)."""
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
    tr = sub.add_parser("train", help="PGD-AT images/s: the Lightning module vs a plain loop, speed options, "
                                      "PGD steps × batch size")
    tr.add_argument("--arch", default="small", help="'small' (the bench CNN) or a zoo name (resnet, vit, ...)")
    tr.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    tr.add_argument("--precision", default=None, help="Lightning precision (default: bf16-mixed on cuda, else 32-true)")
    tr.add_argument("--batch-size", type=int, default=128)
    tr.add_argument("--steps", type=int, default=15, help="training PGD steps (the study's: 15)")
    tr.add_argument("--n-batches", type=int, default=10, help="timed batches per measurement")
    tr.add_argument("--warmup", type=int, default=3, help="untimed batches first")
    tr.add_argument("--repeats", type=int, default=3)
    tr.add_argument("--scaling-steps", default="1,3,7,15")
    tr.add_argument("--scaling-batches", default="32,128,256")
    tr.add_argument("--peak-tflops", type=float, default=None, help="device peak for the MFU (default: known GPUs)")
    tr.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    tr.add_argument("--data-root", default="data", help="folder holding cifar-10-batches-py/")
    tr.add_argument("--parts", default=None, help="comma-separated: overhead, options, scaling, val_cost (default: all)")
    tr.add_argument("--json", type=Path, help="also write the numbers to this file")
    args = parser.parse_args(argv)

    try:
        if args.bench == "eval":
            from robustgen.bench.eval_bench import run_eval_bench

            numbers = run_eval_bench(checkpoint=args.checkpoint, small_model=args.small_model,
                                     n_points=args.n_points, eval_set=args.eval_set, data_root=args.data_root,
                                     threads=args.threads, pgd_points=args.pgd_points, pgd_steps=args.pgd_steps,
                                     repeats=args.repeats, sanity_points=args.sanity_points,
                                     **({"parts": tuple(args.parts.split(","))} if args.parts else {}))
        elif args.bench == "train":
            from robustgen.bench.train_bench import run_train_bench

            numbers = run_train_bench(
                arch=args.arch, device=args.device, batch_size=args.batch_size, steps=args.steps,
                n_batches=args.n_batches, warmup=args.warmup, repeats=args.repeats, data_root=args.data_root,
                scaling_steps=tuple(int(v) for v in args.scaling_steps.split(",")),
                scaling_batches=tuple(int(v) for v in args.scaling_batches.split(",")),
                precision=args.precision, peak_tflops=args.peak_tflops, threads=args.threads,
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
