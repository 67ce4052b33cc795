"""Evaluation on common corruptions against plain clean evaluation, on CPU, in one process.

The same model evaluates (1) every (corruption, severity) cell of a CIFAR-10-C folder, memory-mapped
from disk, and (2) the in-memory clean test set as many times over, so both see the same number of
images through the same evaluation loop (per-example outcomes saved as in real runs). The ratio of
their images per second says whether reading corrupted data dominates (target ≥ 0.8). Peak
resident memory is reported too: the 750,000 images (2.3 GB) must not be held at once.
Only ratios between runs of the same process are meaningful; nothing here asserts a time.
"""
from __future__ import annotations

import resource
import tempfile
import time
from datetime import date
from pathlib import Path

import torch

from robustgen.bench.eval_bench import cpu_name, get_model
from robustgen.corrupt import CORRUPTIONS
from robustgen.data.corrupted import cifar10c_source
from robustgen.eval.corruptions import CorruptionSettings, evaluate_corruptions
from robustgen.data.cifar10 import load_cifar10
from robustgen.data.datasets import IndexedTensorDataset
from robustgen.eval.worst_case import evaluate_worst_case


def run_corruption_bench(*, folder: str | None, data_root: str = "data", n_per_cell: int = 2000,
                         batch_size: int = 500, threads: int = 1, small_model: Path | None = None,
                         checkpoint: str | None = None, log=print) -> dict:
    torch.set_num_threads(threads)
    model, model_note = get_model(checkpoint, small_model, data_root, log)
    images, labels = load_cifar10(data_root, "test", download=False)
    test = IndexedTensorDataset(images, labels)
    source = cifar10c_source(data_root, list(CORRUPTIONS), labels.numpy(), folder)
    n = min(n_per_cell, source.n_images)
    settings = CorruptionSettings.from_dict({"enabled": True, "n_points": n})
    cells = len(CORRUPTIONS) * 5
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        report = evaluate_corruptions(model, source, settings, {}, n_points=None, batch_size=batch_size,
                                      per_attack=True, output_dir=Path(tmp) / "corrupted", progress=False)
        corrupted_s = time.perf_counter() - start
        start = time.perf_counter()
        for k in range(cells):  # the same number of clean images, the same loop, an outcomes file each
            evaluate_worst_case(model, test, {}, n_points=n, batch_size=batch_size, progress=False,
                                state_path=Path(tmp) / "clean" / f"{k}.json")
        clean_s = time.perf_counter() - start
    total = cells * n
    numbers = {
        "date": date.today().isoformat(), "cpu": cpu_name(), "torch_threads": threads, "model": model_note,
        "source": source.describe(), "cells": cells, "images_per_cell": n, "images": total,
        "corrupted_s": corrupted_s, "clean_s": clean_s,
        "corrupted_images_per_s": total / corrupted_s, "clean_images_per_s": total / clean_s,
        "ratio": clean_s / corrupted_s, "mean_corruption_acc": report.record()["mean_acc"],
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    log(f"\n== corruption evaluation benchmark ({numbers['date']}, {numbers['cpu']}, {threads} torch thread(s))\n"
        f"model: {model_note}\n"
        f"{cells} cells × {n} images = {total:,} images from {source.folder} ({source.kind})\n"
        f"corrupted (memory-mapped): {corrupted_s:.1f} s = {numbers['corrupted_images_per_s']:,.0f} images/s\n"
        f"clean (in memory):         {clean_s:.1f} s = {numbers['clean_images_per_s']:,.0f} images/s\n"
        f"ratio corrupted/clean images/s: {numbers['ratio']:.2f} (target ≥ 0.8)\n"
        f"mean accuracy over the cells: {numbers['mean_corruption_acc']:.2f}%; "
        f"peak resident memory: {numbers['peak_rss_mb']:,.0f} MB")
    return numbers
