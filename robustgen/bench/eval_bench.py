"""Evaluation benchmark on CPU, in one process:

1. the cascade (each attack only on the points every earlier attack failed to break) against
   every attack on every clean-correct point, for one attack set (`paper` by default), on the
   same model and points: wall time of each, the speed-up, and whether both give the same
   worst-case accuracy and the same first breaking attack per point;
2. our PGD-ℓ∞ against torchattacks' PGD: same model, points, ε, step size, steps and random
   start; seconds per step, median of repeats, alternating the two.

Only ratios between runs of the same process are meaningful; nothing here asserts a time.
"""
from __future__ import annotations

import os
import platform
import statistics
import time
from datetime import date
from pathlib import Path

import torch
import torchattacks
from hydra.utils import instantiate
from omegaconf import OmegaConf

import robustgen
from robustgen.attack import PGD
from robustgen.errors import ConfigError
from robustgen.eval.worst_case import EvalReport, evaluate_worst_case
from robustgen.modes import eval_mode

CONF = Path(robustgen.__file__).resolve().parents[1] / "conf"


def load_attack_set(name: str) -> tuple[dict, int]:
    path = CONF / "eval" / f"{name}.yaml"
    if not path.is_file():
        options = sorted(p.stem for p in (CONF / "eval").glob("*.yaml"))
        raise ConfigError(f"no attack set {name!r}; options: {', '.join(options)}")
    cfg = OmegaConf.load(path)  # `${div:8,255}` resolves: importing robustgen registered it
    return {k: instantiate(spec) for k, spec in cfg.attacks.items()}, int(cfg.batch_size)


def get_model(checkpoint: str | None, small_model: Path | None, data_root: str, log=print) -> tuple:
    if checkpoint:
        from robustgen.checkpoint import load_model

        model, hparams = load_model(checkpoint)
        return model.eval(), f"checkpoint {checkpoint} (arch={hparams['arch']['name']})"
    from robustgen.bench.small_model import small_cnn, train_small_cnn

    if small_model is not None and small_model.is_file():
        model = small_cnn()
        model.load_state_dict(torch.load(small_model, weights_only=True))
        return model.eval(), f"small PGD-trained CNN loaded from {small_model}"
    log("training the small CNN (PGD-AT on real CIFAR-10: robustgen/bench/small_model.py) ...")
    start = time.perf_counter()
    model = train_small_cnn(data_root, log=log)
    seconds = time.perf_counter() - start
    if small_model is not None:
        torch.save(model.state_dict(), small_model)
    return model, f"small PGD-trained CNN, trained here in {seconds:.0f} s"


def cpu_name() -> str:
    """The CPU model and core count, e.g. "AMD EPYC, 2 cores" (platform.processor() is often empty)."""
    name = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{name}, {os.cpu_count()} cores"


def time_pgd(model, x, y, ids, steps: int, repeats: int) -> dict:
    """Seconds per step of our PGD-ℓ∞ (with per-example random starts, as evaluations run it) and
    of torchattacks.PGD, same settings; alternated so that load changes hit both alike."""
    eps, alpha = 8 / 255, 2 / 255
    ours = PGD("linf", eps=eps, steps=steps, step_size=alpha, random_start=True)
    theirs = torchattacks.PGD(model, eps=eps, alpha=alpha, steps=steps, random_start=True)
    runs = {"robustgen": lambda: ours(model, x, y, example_ids=ids), "torchattacks": lambda: theirs(x, y)}
    seconds: dict[str, list[float]] = {k: [] for k in runs}
    for k, run in runs.items():  # warm-up (allocator, kernels)
        run()
    for _ in range(repeats):
        for k, run in runs.items():
            start = time.perf_counter()
            run()
            seconds[k].append(time.perf_counter() - start)
    per_step = {k: statistics.median(v) / steps for k, v in seconds.items()}
    return {"points": len(x), "steps": steps, "repeats": repeats, "per_step_s": per_step,
            "all_runs_s": seconds, "ratio": per_step["robustgen"] / per_step["torchattacks"]}


def run_eval_bench(*, model: torch.nn.Module | None = None, checkpoint: str | None = None,
                   small_model: Path | None = None, n_points: int = 500,
                   eval_set: str = "paper", data_root: str = "data", threads: int = 1, pgd_points: int = 256,
                   pgd_steps: int = 10, repeats: int = 5, log=print) -> dict:
    torch.set_num_threads(threads)
    attacks, batch_size = load_attack_set(eval_set)
    if model is None:
        model, model_note = get_model(checkpoint, small_model, data_root, log)
    else:
        model_note = f"given {type(model).__name__}"
    from robustgen.data import CIFAR10DataModule

    dataset = CIFAR10DataModule(data_root, num_workers=0, download=False).test_dataset()
    log(f"model: {model_note}; {n_points} test points; attack set `{eval_set}`: {', '.join(attacks)}")

    reports: dict[str, EvalReport] = {}
    with eval_mode(model):  # a model the caller passed in gets each submodule's mode back afterwards
        for mode, per_attack in (("cascade", False), ("every_attack", True)):
            log(f"running the {mode} schedule ...")
            reports[mode] = evaluate_worst_case(model, dataset, attacks, n_points=n_points, batch_size=batch_size,
                                                per_attack=per_attack, progress=False)
        x = torch.stack([dataset[i][0] for i in range(pgd_points)])
        y = torch.as_tensor([int(dataset[i][1]) for i in range(pgd_points)])
        pgd = time_pgd(model, x, y, torch.arange(pgd_points), pgd_steps, repeats)
    cascade, every = reports["cascade"], reports["every_attack"]
    differing = [i for i, a, b in zip(cascade.example_ids, cascade.broken_by, every.broken_by) if a != b]

    numbers = {
        "date": date.today().isoformat(), "cpu": cpu_name(),
        "torch_threads": threads, "torch": torch.__version__, "torchattacks": torchattacks.__version__,
        "model": model_note, "eval_set": eval_set, "n_points": n_points,
        "clean_acc": cascade.clean_acc, "attack_acc": every.attack_acc,
        **{mode: {"seconds": r.seconds, "worst_case_acc": r.worst_case_acc, "attacked_points": r.attacked_points,
                  "seconds_by_attack": r.seconds_by_attack} for mode, r in reports.items()},
        "speedup": every.seconds / cascade.seconds,
        "identical_worst_case": cascade.worst_case_acc == every.worst_case_acc,
        "points_with_different_first_break": differing,
        "pgd": pgd,
    }
    print_numbers(numbers, log)
    return numbers


def print_numbers(n: dict, log=print) -> None:
    c, e, p = n["cascade"], n["every_attack"], n["pgd"]
    log(f"\n== evaluation benchmark ({n['date']}, {n['cpu']}, torch {n['torch']} on {n['torch_threads']} "
        f"thread(s)) ==")
    log(f"model: {n['model']}")
    log(f"`{n['eval_set']}` set on {n['n_points']} CIFAR-10 test points, clean {n['clean_acc']:.1f}%; "
        f"per attack: " + ", ".join(f"{k} {v:.1f}%" for k, v in n["attack_acc"].items()))
    for label, r in (("every attack on every point", e), ("cascade", c)):
        log(f"  {label + ':':28s} {r['seconds']:7.1f} s, worst case {r['worst_case_acc']:.2f}%; points attacked "
            f"(seconds): " + ", ".join(f"{k} {r['attacked_points'][k]} ({r['seconds_by_attack'].get(k, 0):.0f})"
                                       for k in r["attacked_points"]))
    same = "identical" if n["identical_worst_case"] else "DIFFERENT"
    log(f"  cascade speed-up: {n['speedup']:.2f}x; worst case {same}; points whose first breaking attack "
        f"differs: {len(n['points_with_different_first_break'])}")
    log(f"PGD-linf, {p['points']} points, {p['steps']} steps, median of {p['repeats']}: robustgen "
        f"{1e3 * p['per_step_s']['robustgen']:.1f} ms/step, torchattacks {1e3 * p['per_step_s']['torchattacks']:.1f}"
        f" ms/step; ratio robustgen/torchattacks {p['ratio']:.2f}")
