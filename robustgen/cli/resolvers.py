"""OmegaConf resolvers used by conf/ (registered when robustgen is imported).

``${div:8,255}`` lets ε and step sizes be written the way papers write them (8/255) while staying
plain floats for the code. ``${wandb_offline:}`` makes W&B log offline unless the user is logged in.
``${patch_sweep:vit}`` and ``${study_archs:}`` are sweep lists kept in the architecture registry only.
``${run_group:<arch>}`` is the W&B group: the sweep's folder in a multirun (all its jobs in one
group), else the architecture. ``${cpu_precision:}`` is the faster CPU training precision here.
"""
from __future__ import annotations

import netrc
import os

from omegaconf import OmegaConf


def wandb_offline() -> bool:
    """True unless W&B credentials exist (WANDB_MODE, when set, decides instead)."""
    mode = os.environ.get("WANDB_MODE")
    if mode:
        return mode in ("offline", "dryrun", "disabled")
    if os.environ.get("WANDB_API_KEY"):
        return False
    try:
        return netrc.netrc().authenticators("api.wandb.ai") is None
    except (OSError, netrc.NetrcParseError):
        return True


def patch_sweep(arch: str) -> str:
    """The study's patch sizes for `arch` as a sweep list ("8,4,2"), read from the registry."""
    from robustgen.arch import ARCHS, get_spec

    spec = get_spec(arch)
    if not spec.patch_sizes:
        swept = sorted(name for name, s in ARCHS.items() if s.patch_sizes)
        raise ValueError(f"arch={arch} has no patch-size sweep; architectures with one: {', '.join(swept)}")
    return ",".join(str(p) for p in spec.patch_sizes)


def study_archs() -> str:
    """Every architecture with a row in the study's CIFAR-10 table, as a sweep list."""
    from robustgen.arch import ARCHS, list_archs

    return ",".join(name for name in list_archs() if ARCHS[name].paper_name)


def run_group(arch: str) -> str:
    """The sweep folder (e.g. multirun/2026-12-01/10-00-00-000000) of a multirun job, else `arch`."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    if HydraConfig.initialized():
        hydra = HydraConfig.get()
        if hydra.mode == RunMode.MULTIRUN:
            return str(hydra.sweep.dir)
    return arch


def cpu_precision() -> str:
    """"bf16-mixed" where the CPU computes bfloat16 natively (AVX512-BF16 or AMX), else "32-true".

    On such a CPU, bf16 autocast trains the quickstart ~1.25× faster (docs/benchmarks.md); on one
    without, bf16 is emulated and slower. torch exposes the check only privately (torch.cpu), so a
    torch without it counts as "no native bf16".
    """
    import torch

    checks = [getattr(torch.cpu, name, None) for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")]
    return "bf16-mixed" if any(check is not None and check() for check in checks) else "32-true"


def on_gpu(accelerator: str) -> bool:
    """Whether a trainer with this accelerator runs on GPUs: "gpu"/"cuda", or "auto" where CUDA is
    available. trainer=ddp turns BatchNorm into SyncBatchNorm only then: torch's SyncBatchNorm
    refuses CPU modules, so DDP on CPU keeps each rank's own BatchNorm statistics."""
    import torch

    return accelerator in ("gpu", "cuda") or (accelerator == "auto" and torch.cuda.is_available())


def callable_name(factory: str) -> str:
    """The callable's name in a factory spec ("path/to/nets.py:build" → "build"): arch=custom's
    default row name, which also names the run's folder in a multirun (no slashes)."""
    return str(factory).rsplit(":", 1)[-1]


def register_resolvers() -> None:
    if not OmegaConf.has_resolver("run_group"):
        OmegaConf.register_new_resolver("run_group", run_group)
    if not OmegaConf.has_resolver("div"):
        OmegaConf.register_new_resolver("div", lambda a, b: float(a) / float(b))
    if not OmegaConf.has_resolver("patch_sweep"):
        OmegaConf.register_new_resolver("patch_sweep", patch_sweep)
    if not OmegaConf.has_resolver("study_archs"):
        OmegaConf.register_new_resolver("study_archs", study_archs)
    if not OmegaConf.has_resolver("wandb_offline"):
        OmegaConf.register_new_resolver("wandb_offline", wandb_offline)
    if not OmegaConf.has_resolver("cpu_precision"):
        OmegaConf.register_new_resolver("cpu_precision", cpu_precision)
    if not OmegaConf.has_resolver("callable_name"):
        OmegaConf.register_new_resolver("callable_name", callable_name)
    if not OmegaConf.has_resolver("on_gpu"):
        OmegaConf.register_new_resolver("on_gpu", on_gpu)
