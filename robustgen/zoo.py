"""The architecture zoo at a glance: size against the paper, compute, and CPU speed.

    python -m robustgen.zoo [--json] [--batch N] [--names resnet,vit] [--runs R]

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
import math
import statistics
import time
from contextlib import contextmanager

import torch
from torch.utils.flop_counter import FlopCounterMode

from robustgen.arch import count_parameters, create_arch, get_spec, list_archs
from robustgen.errors import ConfigError

IMG_SIZE = 32
NUM_CLASSES = 10


def _attention_as_matmuls(q, k, v, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None, enable_gqa=False):
    """softmax(QKᵀ·scale + mask)·V as explicit matrix products (no dropout: counting runs in eval)."""
    if enable_gqa and k.shape[-3] != q.shape[-3]:
        k = k.repeat_interleave(q.shape[-3] // k.shape[-3], dim=-3)
        v = v.repeat_interleave(q.shape[-3] // v.shape[-3], dim=-3)
    scores = (q @ k.transpose(-2, -1)) * (scale if scale is not None else 1 / math.sqrt(q.shape[-1]))
    if is_causal:
        causal = torch.ones(q.shape[-2], k.shape[-2], dtype=torch.bool, device=q.device).tril()
        scores = scores.masked_fill(~causal, float("-inf"))
    if attn_mask is not None:
        scores = scores.masked_fill(~attn_mask, float("-inf")) if attn_mask.dtype == torch.bool else scores + attn_mask
    return scores.softmax(-1) @ v


@contextmanager
def _explicit_attention():
    """Route F.scaled_dot_product_attention (looked up at call time by timm and our models)
    through explicit matrix products for the duration of the block."""
    fused = torch.nn.functional.scaled_dot_product_attention
    torch.nn.functional.scaled_dot_product_attention = _attention_as_matmuls
    try:
        yield
    finally:
        torch.nn.functional.scaled_dot_product_attention = fused


def count_macs(model: torch.nn.Module, img_size: int = IMG_SIZE) -> int:
    """Multiply-accumulates of one forward pass of one image: convolutions and matrix products,
    attention's QKᵀ and AV included whichever attention kernel torch would pick."""
    x = torch.rand(1, 3, img_size, img_size, device=next(model.parameters()).device)
    with torch.no_grad(), _explicit_attention(), FlopCounterMode(display=False) as counter:
        model(x)
    return counter.get_total_flops() // 2


def forward_latency_ms(model: torch.nn.Module, batch: int, runs: int = 3, img_size: int = IMG_SIZE) -> float:
    """Median wall time in ms of one forward pass of `batch` images, after one warm-up pass."""
    x = torch.rand(batch, 3, img_size, img_size)
    times = []
    with torch.no_grad():
        model(x)  # warm-up: first calls pay for allocations and kernel selection
        for _ in range(runs):
            start = time.perf_counter()
            model(x)
            times.append(1000 * (time.perf_counter() - start))
    return statistics.median(times)


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
    args = parser.parse_args(argv)
    if args.batch < 0 or args.runs < 1:
        parser.error("--batch must be ≥ 0 and --runs ≥ 1")
    names = None if args.names is None else [n.strip() for n in args.names.split(",") if n.strip()]
    try:
        rows = zoo_rows(names, batch=args.batch, runs=args.runs)
    except ConfigError as err:
        parser.exit(2, f"error: {err}\n")
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        render_table(rows, args.batch)


if __name__ == "__main__":
    main()
