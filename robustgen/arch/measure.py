"""What an architecture costs: multiply-accumulates and forward latency of one model
(parameters: robustgen.arch.count_parameters). Used by the zoo table, results.json and the benchmarks."""
from __future__ import annotations

import math
import statistics
import time
from contextlib import contextmanager

import torch
from torch.utils.flop_counter import FlopCounterMode

IMG_SIZE = 32


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
