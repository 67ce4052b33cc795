"""Training throughput of PGD adversarial training: robustgen's Lightning module against a plain
PyTorch loop doing the same work, the speed options, and how cost grows with PGD steps and batch.

Parts (`python -m robustgen.bench train --parts ...`):

* ``overhead`` — images/s of PGD-AT through :class:`AdversarialClassifier` under a Lightning
  Trainer vs a plain loop: same model (same initial weights), same attack, AdamW with the same
  schedule, same in-memory batches, same device and precision, in the same process, in pairs
  whose order alternates (plain–Lightning, Lightning–plain, ...) so drift hits both. Reported:
  the ratio of the Lightning path's time per image to the plain loop's (target ≤ 1.05), as the
  median of the pairs' ratios with the range of the middle half of them.
* ``options`` — the module with each speed option on its own: channels_last, torch.compile,
  bf16 autocast (precision="bf16-mixed"), fused AdamW; images/s and the ratio to the module
  without options. Options a device cannot use are listed as skipped, not measured.
* ``scaling`` — the module's images/s for PGD steps × batch sizes, to budget a sweep.
* ``val_cost`` — the per-epoch worst-case validation (conf/train.yaml's `val_attack` + `val_eval`
  on `data.val_adv_points` = 512 images, plus FGSM) in seconds, against one training epoch of
  50,000 images at the measured training speed.

Timing starts after `warmup` batches (kernel selection, compilation, allocator growth) and stops
at the last batch's end, with the device synchronised; each number is the median of `repeats`.
On CUDA, the estimated model FLOPs utilisation (MFU) is given for the study's recipe:
FLOPs per image ≈ 2 · MACs · 3 · (PGD steps + 1) — one forward and a backward of about twice its
cost per attack step and for the training step (the attack's backward skips weight gradients, so
this slightly overcounts) — against the device's dense peak (`--peak-tflops`).
"""
from __future__ import annotations

import logging
import statistics
import time
from dataclasses import dataclass

import lightning as L
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from robustgen.attack import PGD
from robustgen.errors import ConfigError
from robustgen.training.optim import OptimConfig, build_optimizer

PARTS = ("overhead", "options", "scaling", "val_cost")
# Dense (non-sparse) bf16 tensor-core peaks, TFLOP/s, from NVIDIA's data sheets.
PEAK_BF16_TFLOPS = {"H200": 989.5, "H100": 989.5, "A100": 312.0}


@dataclass
class Setting:
    arch: str = "small"          # "small" (the bench CNN) or a zoo name (resnet, vit, ...)
    batch_size: int = 128
    steps: int = 15              # the study's training PGD: 15 steps of 0.8/255
    precision: str = "32-true"
    channels_last: bool = False
    compile: bool = False
    fused: bool = False


def make_model(arch: str):
    if arch == "small":
        from robustgen.bench.small_model import small_cnn

        return small_cnn()
    from robustgen.arch import create_arch
    from robustgen.data.cifar10 import MEAN, STD

    return create_arch(arch, num_classes=10, img_size=32, mean=MEAN, std=STD)


def make_attack(steps: int) -> PGD:
    eps = 8 / 255
    return PGD("linf", eps=eps, steps=steps, step_size=0.1 * eps if steps >= 10 else 2.5 * eps / steps,
               random_start=True)


def batches(images: torch.Tensor, labels: torch.Tensor, batch_size: int, n: int) -> DataLoader:
    """`n` batches of real CIFAR-10 images from memory (no augmentation: both paths get the same)."""
    count = batch_size * n
    reps = -(-count // len(images))
    x = images.repeat(reps, 1, 1, 1)[:count].float() / 255
    y = labels.repeat(reps)[:count]
    return DataLoader(TensorDataset(x, y, torch.arange(count)), batch_size=batch_size, shuffle=False)


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


class _Clock(L.Callback):
    def __init__(self, warmup: int, device: str):
        self.warmup, self.device, self.start, self.end = warmup, device, None, None

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if batch_idx == self.warmup:
            _sync(self.device)
            self.start = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        _sync(self.device)
        self.end = time.perf_counter()


def lightning_seconds(s: Setting, state: dict, loader: DataLoader, warmup: int, device: str) -> float:
    """Seconds for the batches after `warmup` through the module under a Trainer."""
    from robustgen.training.module import AdversarialClassifier

    model = make_model(s.arch)
    model.load_state_dict(state)
    module = AdversarialClassifier(model, make_attack(s.steps), make_attack(1), OptimConfig(fused=s.fused),
                                   compile_model=s.compile, channels_last=s.channels_last)
    clock = _Clock(warmup, device)
    trainer = L.Trainer(accelerator="gpu" if device == "cuda" else "cpu", devices=1, precision=s.precision,
                        max_epochs=1, limit_val_batches=0, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, callbacks=[clock],
                        num_sanity_val_steps=0)
    trainer.fit(module, train_dataloaders=loader)
    return clock.end - clock.start


def plain_seconds(s: Setting, state: dict, loader: DataLoader, warmup: int, device: str) -> float:
    """The same work in a plain loop: attack, cross-entropy on the adversarial batch, AdamW step,
    schedule step (and the accuracy the module logs), under the same autocast."""
    model = make_model(s.arch)
    model.load_state_dict(state)
    model.to(device).train()
    if s.channels_last:
        model.to(memory_format=torch.channels_last)
    net = torch.compile(model) if s.compile else model
    attack = make_attack(s.steps)
    optimizer, schedule = build_optimizer(model.parameters(), OptimConfig(fused=s.fused), len(loader), len(loader))
    autocast = torch.autocast(device, dtype=torch.bfloat16, enabled=s.precision == "bf16-mixed")
    start = None
    for k, (x, y, _) in enumerate(loader):
        if k == warmup:
            _sync(device)
            start = time.perf_counter()
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        if s.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with autocast:
            logits = net(attack(net, x, y))
            loss = F.cross_entropy(logits, y)
        acc = (logits.argmax(1) == y).float().mean()  # the module logs it too
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        del acc
    _sync(device)
    return time.perf_counter() - start


def measure(path, s: Setting, state: dict, images, labels, n_batches: int, warmup: int, device: str) -> float:
    """Images per second of `path` (lightning_seconds or plain_seconds) on one setting."""
    loader = batches(images, labels, s.batch_size, warmup + n_batches)
    return s.batch_size * n_batches / path(s, state, loader, warmup, device)


def mfu(arch: str, steps: int, images_per_s: float, peak_tflops: float | None) -> float | None:
    if not peak_tflops:
        return None
    from robustgen.arch.measure import count_macs

    flops_per_image = 2 * count_macs(make_model(arch)) * 3 * (steps + 1)
    return flops_per_image * images_per_s / (peak_tflops * 1e12)


def device_peak(device: str) -> float | None:
    if device != "cuda":
        return None
    name = torch.cuda.get_device_name()
    return next((v for k, v in PEAK_BF16_TFLOPS.items() if k in name), None)


def run_train_bench(arch: str = "small", device: str | None = None, batch_size: int = 128, steps: int = 15,
                    n_batches: int = 10, warmup: int = 3, repeats: int = 3, data_root: str = "data",
                    parts: tuple[str, ...] = PARTS, scaling_steps=(1, 3, 7, 15), scaling_batches=(32, 128, 256),
                    precision: str | None = None, peak_tflops: float | None = None, threads: int | None = None,
                    log=print) -> dict:
    """Run the parts; returns the numbers (also printed as tables). `device`: "cuda" when there is
    one, else "cpu"; `precision`: bf16-mixed on CUDA, 32-true on CPU unless given."""
    from robustgen.data.cifar10 import load_cifar10

    unknown = set(parts) - set(PARTS)
    if unknown:
        raise ConfigError(f"--parts: unknown part(s) {sorted(unknown)}; choose from {', '.join(PARTS)}")
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)  # no banner per measured Trainer
    precision = precision or ("bf16-mixed" if device == "cuda" else "32-true")
    peak = peak_tflops if peak_tflops is not None else device_peak(device)
    if threads:
        torch.set_num_threads(threads)
    images, labels = load_cifar10(data_root, "train", download=False)
    images, labels = images[:4096], labels[:4096]
    torch.manual_seed(0)
    state = make_model(arch).state_dict()
    where = torch.cuda.get_device_name() if device == "cuda" else f"CPU, {torch.get_num_threads()} thread(s)"
    out: dict = {"arch": arch, "device": where, "precision": precision, "batch_size": batch_size, "steps": steps,
                 "n_batches": n_batches, "warmup": warmup, "repeats": repeats, "torch": torch.__version__,
                 "lightning": L.__version__}
    log(f"training benchmark: {arch}, PGD-AT {steps} steps, batch {batch_size}, {precision}, {where}")
    base = Setting(arch=arch, batch_size=batch_size, steps=steps, precision=precision)

    def median(path, s):
        return statistics.median(measure(path, s, state, images, labels, n_batches, warmup, device)
                                 for _ in range(repeats))

    if "overhead" in parts:
        plain, lightning = [], []
        for k in range(repeats):  # pairs in alternating order, so a slow spell hits both paths
            order = (plain_seconds, lightning_seconds) if k % 2 == 0 else (lightning_seconds, plain_seconds)
            pair = {path: measure(path, base, state, images, labels, n_batches, warmup, device) for path in order}
            plain.append(pair[plain_seconds])
            lightning.append(pair[lightning_seconds])
        p, l_ = statistics.median(plain), statistics.median(lightning)
        ratios = sorted(a / b for a, b in zip(plain, lightning))
        ratio = statistics.median(ratios)
        middle = ratios[len(ratios) // 4], ratios[(3 * len(ratios) - 1) // 4]
        out["overhead"] = {"plain_images_per_s": p, "lightning_images_per_s": l_, "time_ratio": ratio,
                           "time_ratio_middle_half": list(middle), "pair_ratios": ratios,
                           "plain_runs": plain, "lightning_runs": lightning}
        log(f"  plain loop {p:,.1f} img/s · robustgen module under Lightning {l_:,.1f} img/s · "
            f"time ratio {ratio:.3f}, median of {len(ratios)} pairs (middle half {middle[0]:.3f}–{middle[1]:.3f}; "
            f"target ≤ 1.05)")
        m = mfu(arch, steps, l_, peak)
        if m is not None:
            out["overhead"]["mfu"] = m
            log(f"  estimated MFU {100 * m:.1f}% of {peak:g} TFLOP/s; one CIFAR-10 epoch (50,000 images) "
                f"≈ {50000 / l_:.0f} s")

    if "options" in parts:
        options = {"channels_last": {"channels_last": True}, "compile": {"compile": True},
                   "bf16": {"precision": "bf16-mixed"}, "fused_adamw": {"fused": True}}
        reference = median(lightning_seconds, base)
        out["options"] = {"none": {"images_per_s": reference, "ratio": 1.0}}
        log(f"  options (each alone, through the module): none {reference:,.1f} img/s")
        for name, change in options.items():
            if name == "bf16" and precision == "bf16-mixed":
                continue  # already the baseline's precision
            try:
                ips = median(lightning_seconds, Setting(**{**base.__dict__, **change}))
            except Exception as err:  # e.g. no compiler toolchain, or fused AdamW on a CPU build without it
                out["options"][name] = {"skipped": f"{type(err).__name__}: {str(err).splitlines()[0][:160]}"}
                log(f"    {name}: skipped ({out['options'][name]['skipped']})")
                continue
            out["options"][name] = {"images_per_s": ips, "speedup": ips / reference}
            log(f"    {name}: {ips:,.1f} img/s, {ips / reference:.2f}× the module without options")

    if "scaling" in parts:
        rows = {}
        for b in scaling_batches:
            for k in scaling_steps:
                ips = median(lightning_seconds, Setting(**{**base.__dict__, "batch_size": b, "steps": k}))
                rows[f"b{b}_s{k}"] = {"batch_size": b, "steps": k, "images_per_s": ips,
                                      "epoch_s": 50000 / ips, "mfu": mfu(arch, k, ips, peak)}
        out["scaling"] = rows
        log("  images/s (one CIFAR-10 epoch in s) by PGD steps × batch size:")
        log("    batch " + "".join(f"{f'{k} steps':>22}" for k in scaling_steps))
        for b in scaling_batches:
            cells = "".join(f"{rows[f'b{b}_s{k}']['images_per_s']:>12,.1f} ({rows[f'b{b}_s{k}']['epoch_s']:>6.0f} s)"
                            for k in scaling_steps)
            log(f"    {b:>5} {cells}")
    if "val_cost" in parts:
        out["val_cost"] = val_cost(base, state, images, labels, device, n_val=512, log=log)
    return out


def val_cost(s: Setting, state: dict, images, labels, device: str, n_val: int, log=print) -> dict:
    """Seconds of the module's worst-case validation on `n_val` images vs a 50,000-image epoch."""
    from robustgen.cli.presets import validation_attacks
    from robustgen.training.module import ADV_LOADER, AdversarialClassifier

    val_attack, extra = validation_attacks()  # the study's validation attacks, as configured
    model = make_model(s.arch)
    model.load_state_dict(state)
    module = AdversarialClassifier(model.to(device).eval(), make_attack(s.steps), val_attack, OptimConfig(),
                                   val_attacks=extra)
    module.log = lambda *a, **k: None  # outside a Trainer: the numbers are not the point here
    loader = batches(images, labels, 256, n_val // 256)
    _sync(device)
    start = time.perf_counter()
    for batch in loader:
        x, y, ids = (t.to(device) for t in batch)
        module.validation_step((x, y, ids), 0, ADV_LOADER)
    _sync(device)
    seconds = time.perf_counter() - start
    train_ips = measure(lightning_seconds, s, state, images, labels, 4, 2, device)
    epoch = 50000 / train_ips
    log(f"  per-epoch worst-case validation on {n_val} images ({', '.join(module.val_attacks)} + FGSM): "
        f"{seconds:.1f} s vs {epoch:.0f} s for a 50,000-image training epoch: {100 * seconds / epoch:.1f}%")
    return {"seconds": seconds, "attacks": list(module.val_attacks), "n_val": n_val, "train_epoch_s": epoch,
            "share": seconds / epoch}
