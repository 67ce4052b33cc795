"""The architecture zoo at a glance: size against the paper, compute, and CPU speed.

    python -m robustgen.zoo [--json] [--batch N] [--names resnet,vit] [--runs R] [--timm NAME,...] [--factory SPEC]

One row per registered architecture (at CIFAR-10 size: 10 classes, 32 px): its parameter count
next to the paper's and the difference in percent, multiply-accumulates per image, and the median
CPU forward latency for a batch (eval mode, no gradients, after one warm-up run).

MACs come from PyTorch's own `FlopCounterMode` (no extra dependency), which counts 2 FLOPs per
multiply-accumulate of matrix products and convolutions; element-wise work (norms, activations,
softmax) is not counted, as is usual for MAC tables. Fused attention
(`F.scaled_dot_product_attention`) is counted as its two matrix products (QKᵀ and AV): how
`FlopCounterMode` counts the fused kernel depends on which kernel a torch release dispatches to
(torch 2.14 on CPU leaves part of it out, 2.15 counts it), so while counting, attention runs as
explicit products and the figure does not change with the torch version.
"""
from __future__ import annotations

import argparse
import json

import torch

from robustgen.arch import build_arch, count_parameters, create_arch, get_spec, list_archs
from robustgen.arch.measure import IMG_SIZE, count_macs, forward_latency_ms
from robustgen.data.cifar10 import MEAN as CIFAR10_MEAN
from robustgen.data.cifar10 import STUDY_STD as CIFAR10_STUDY_STD
from robustgen.errors import ConfigError

NUM_CLASSES = 10


def zoo_row(name: str, batch: int = 32, runs: int = 3) -> dict:
    """Measure architecture `name` (seeded init, eval mode) and return its row."""
    spec = get_spec(name)
    torch.manual_seed(0)
    model = create_arch(name, num_classes=NUM_CLASSES, img_size=IMG_SIZE).eval()
    params = count_parameters(model)
    paper = spec.paper_params_m
    return {
        "name": name,
        "family": spec.family,
        "paper_name": spec.paper_name,
        "params": params,
        "paper_params_m": paper,
        "diff_pct": None if paper is None else round(100 * (params / (paper * 1e6) - 1), 3),
        "exact_params": spec.exact_params,
        "macs": count_macs(model),
        "latency_ms": round(forward_latency_ms(model, batch, runs), 1) if batch > 0 else None,
        "batch": batch,
        "threads": torch.get_num_threads(),
    }


def external_row(arch: dict, batch: int = 32, runs: int = 3) -> dict:
    """The row of an architecture from outside the study (an arch=timm / arch=custom config), beside
    the zoo's (robustgen/arch/external.py); it has no paper row."""
    torch.manual_seed(0)
    model = build_arch(arch, num_classes=NUM_CLASSES, img_size=IMG_SIZE, mean=CIFAR10_MEAN, std=CIFAR10_STUDY_STD).eval()
    return {"name": arch["name"], "family": arch.get("family") or "—", "paper_name": None,
            "params": count_parameters(model), "paper_params_m": None, "diff_pct": None, "exact_params": None,
            "macs": count_macs(model),
            "latency_ms": round(forward_latency_ms(model, batch, runs), 1) if batch > 0 else None,
            "batch": batch, "threads": torch.get_num_threads()}


def zoo_rows(names: list[str] | None = None, batch: int = 32, runs: int = 3) -> list[dict]:
    """Rows for `names` (default: every registered architecture, sorted by name)."""
    known = list_archs()
    names = known if names is None else names
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ConfigError(f"unknown architecture(s) {', '.join(unknown)}; choose from: {', '.join(known)}")
    return [zoo_row(name, batch, runs) for name in names]


def render_table(rows: list[dict], batch: int) -> None:
    from rich.console import Console
    from rich.table import Table

    timing = (f"CPU forward of a batch of {batch}, eval, no grad, median after a warm-up, "
              f"{torch.get_num_threads()} threads" if batch > 0 else "not measured (--batch 0)")
    table = Table(title="robustgen architecture zoo (CIFAR-10: 10 classes, 32×32)",
                  caption=f"exact: count equals PROTOCOL.md's exact one. MACs: per image. Latency: {timing}")
    for column in ("arch", "family", "params", "paper", "diff %", "exact", "MACs/img", "latency ms"):
        table.add_column(column, justify="left" if column in ("arch", "family") else "right", no_wrap=True)
    for row in rows:
        paper = "—" if row["paper_params_m"] is None else f"{row['paper_params_m']:.2f}M"
        diff = "—" if row["diff_pct"] is None else f"{row['diff_pct']:+.2f}"
        exact = "" if row["exact_params"] is None else ("yes" if row["params"] == row["exact_params"] else "NO")
        latency = "—" if row["latency_ms"] is None else f"{row['latency_ms']:.1f}"
        table.add_row(row["name"], row["family"], f"{row['params']:,}", paper, diff, exact,
                      f"{row['macs'] / 1e6:,.1f}M", latency)
    console = Console()
    if not console.is_terminal:  # piped or logged: do not squeeze the table into 80 columns
        console = Console(width=120)
    console.print(table)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m robustgen.zoo", description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print the rows as a JSON list instead of a table")
    parser.add_argument("--batch", type=int, default=32, help="images per timed forward pass (0: skip timing)")
    parser.add_argument("--runs", type=int, default=3, help="timed runs per architecture (median reported)")
    parser.add_argument("--names", default=None, help="comma-separated architectures (default: all)")
    parser.add_argument("--timm", default=None, help="comma-separated timm models to list beside the zoo")
    parser.add_argument("--factory", action="append", default=[],
                        help="your own module to list beside the zoo, as for arch=custom: 'pkg.mod:fn' or 'nets.py:fn'")
    args = parser.parse_args(argv)
    if args.batch < 0 or args.runs < 1:
        parser.error("--batch must be ≥ 0 and --runs ≥ 1")
    names = None if args.names is None else [n.strip() for n in args.names.split(",") if n.strip()]
    try:
        rows = zoo_rows(names, batch=args.batch, runs=args.runs)
        extra = [{"source": "timm", "model_name": n.strip(), "name": n.strip()} for n in (args.timm or "").split(",")
                 if n.strip()] + [{"source": "custom", "factory": f, "name": f.rsplit(":", 1)[-1]} for f in args.factory]
        rows += [external_row(arch, batch=args.batch, runs=args.runs) for arch in extra]
    except ConfigError as err:
        parser.exit(2, f"error: {err}\n")
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        render_table(rows, args.batch)


if __name__ == "__main__":
    main()
