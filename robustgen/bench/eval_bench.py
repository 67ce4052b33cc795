"""Evaluation benchmark on CPU, in one process:

1. the cascade (each attack only on the points every earlier attack failed to break) against
   every attack on every clean-correct point, for one attack set (`paper` by default), on the
   same model and points: wall time of each, the speed-up, and whether both give the same
   worst-case accuracy and the same first breaking attack per point;
2. our PGD-ℓ∞ against torchattacks' PGD: same model, points, ε, step size, steps and random
   start; seconds per step, median of repeats, alternating the two;
3. what the sanity checks cost: the whole evaluation (`run_evaluation`, as `python -m
   robustgen.evaluate` runs it, with the set's sanity settings) on the same points without and
   with them, the ratio of the wall times, the phases of the run with them, and where the
   evaluation spends its time: the share of each attack and of each AutoAttack component.

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
from robustgen.attack import PGD
from robustgen.cli.presets import eval_settings, load_attack_set
from robustgen.errors import ConfigError
from robustgen.eval import EvalSettings, run_evaluation
from robustgen.eval.worst_case import EvalReport, evaluate_worst_case
from robustgen.modes import eval_mode

def time_sanity(model, dataset, eval_set: str, n_points: int, log=print) -> dict:
    """The whole evaluation on the same points without, then with the sanity checks (fresh attack
    objects each time), and where its time goes."""
    runs = {}
    for label, sanity in (("without_sanity", False), ("with_sanity", True)):
        log(f"running `{eval_set}` on {n_points} points {label.replace('_', ' ')} ...")
        attacks, _ = load_attack_set(eval_set)
        start, cpu = time.perf_counter(), time.process_time()
        result = run_evaluation(model, dataset, attacks, eval_settings(eval_set, n_points, sanity), output_dir=None)
        r = result.report
        runs[label] = {"seconds": time.perf_counter() - start, "cpu_seconds": time.process_time() - cpu,
                       "seconds_by_phase": result.seconds_by_phase,
                       "worst_case_acc": r.worst_case_acc, "attack_acc": r.attack_acc,
                       "seconds_by_attack": r.seconds_by_attack, "seconds_by_component": r.seconds_by_component,
                       "points_by_component": r.points_by_component, "attacked_points": r.attacked_points,
                       "sanity_points": result.sanity_points,
                       "flags": {f.name: f.passed for f in result.flags}}
    plain, checked = runs["without_sanity"], runs["with_sanity"]
    phases = checked["seconds_by_phase"]
    attack_total = sum(plain["seconds_by_attack"].values()) or 1.0
    # On a CPU shared with other jobs, wall times of the two runs drift apart with the load; the
    # process's CPU time (torch on one thread) counts only the work, so its ratio is reported too.
    return {**runs, "n_points": n_points, "ratio": checked["seconds"] / plain["seconds"],
            "ratio_cpu": checked["cpu_seconds"] / plain["cpu_seconds"],
            "ratio_within_run": sum(phases.values()) / phases["attack set"],
            "identical_worst_case": plain["worst_case_acc"] == checked["worst_case_acc"],
            "share_by_attack": {k: v / attack_total for k, v in plain["seconds_by_attack"].items()},
            "share_by_component": {k: v / plain["seconds_by_attack"][k.split("/")[0]]
                                   for k, v in plain["seconds_by_component"].items()}}


PARTS = ("cascade", "pgd", "sanity")


def get_model(checkpoint: str | None, small_model: Path | None, data_root: str, log=print) -> tuple:
    if checkpoint:
        from robustgen.record.checkpoint import load_model

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
                   pgd_steps: int = 10, repeats: int = 5, sanity_points: int = 100,
                   parts: tuple[str, ...] = PARTS, log=print) -> dict:
    unknown = sorted(set(parts) - set(PARTS))
    if unknown:
        raise ConfigError(f"unknown benchmark part(s) {', '.join(unknown)}; options: {', '.join(PARTS)}")
    torch.set_num_threads(threads)
    attacks, batch_size = load_attack_set(eval_set)
    if model is None:
        model, model_note = get_model(checkpoint, small_model, data_root, log)
    else:
        model_note = f"given {type(model).__name__}"
    from robustgen.data import CIFAR10DataModule

    dataset = CIFAR10DataModule(data_root, num_workers=0, download=False).test_dataset()
    points = ", ".join([f"{n_points} test points"] * ("cascade" in parts) + [f"{sanity_points} for the sanity "
                                                                               f"checks' cost"] * ("sanity" in parts))
    log(f"model: {model_note}; {points}; attack set `{eval_set}`: {', '.join(attacks)}")

    numbers = {"date": date.today().isoformat(), "cpu": cpu_name(), "torch_threads": threads,
               "torch": torch.__version__, "torchattacks": torchattacks.__version__, "model": model_note,
               "eval_set": eval_set, "n_points": n_points, "parts": list(parts)}
    with eval_mode(model):  # a model the caller passed in gets each submodule's mode back afterwards
        if "cascade" in parts:
            reports: dict[str, EvalReport] = {}
            for mode, per_attack in (("cascade", False), ("every_attack", True)):
                log(f"running the {mode} schedule ...")
                reports[mode] = evaluate_worst_case(model, dataset, attacks, n_points=n_points,
                                                    batch_size=batch_size, per_attack=per_attack, progress=False)
            cascade, every = reports["cascade"], reports["every_attack"]
            numbers.update({
                "clean_acc": cascade.clean_acc, "attack_acc": every.attack_acc,
                **{mode: {"seconds": r.seconds, "worst_case_acc": r.worst_case_acc,
                          "attacked_points": r.attacked_points, "seconds_by_attack": r.seconds_by_attack}
                   for mode, r in reports.items()},
                "speedup": every.seconds / cascade.seconds,
                "identical_worst_case": cascade.worst_case_acc == every.worst_case_acc,
                "points_with_different_first_break": [i for i, a, b in zip(cascade.example_ids, cascade.broken_by,
                                                                            every.broken_by) if a != b]})
        if "pgd" in parts:
            x = torch.stack([dataset[i][0] for i in range(pgd_points)])
            y = torch.as_tensor([int(dataset[i][1]) for i in range(pgd_points)])
            numbers["pgd"] = time_pgd(model, x, y, torch.arange(pgd_points), pgd_steps, repeats)
        if "sanity" in parts:
            numbers["sanity"] = time_sanity(model, dataset, eval_set, sanity_points, log)
    print_numbers(numbers, log)
    return numbers


def print_numbers(n: dict, log=print) -> None:
    log(f"\n== evaluation benchmark ({n['date']}, {n['cpu']}, torch {n['torch']} on {n['torch_threads']} "
        f"thread(s)) ==")
    log(f"model: {n['model']}")
    if "cascade" in n:
        c, e = n["cascade"], n["every_attack"]
        log(f"`{n['eval_set']}` set on {n['n_points']} CIFAR-10 test points, clean {n['clean_acc']:.1f}%; "
            f"per attack: " + ", ".join(f"{k} {v:.1f}%" for k, v in n["attack_acc"].items()))
        for label, r in (("every attack on every point", e), ("cascade", c)):
            log(f"  {label + ':':28s} {r['seconds']:7.1f} s, worst case {r['worst_case_acc']:.2f}%; points "
                f"attacked (seconds): " + ", ".join(f"{k} {r['attacked_points'][k]} "
                                                    f"({r['seconds_by_attack'].get(k, 0):.0f})"
                                                    for k in r["attacked_points"]))
        same = "identical" if n["identical_worst_case"] else "DIFFERENT"
        log(f"  cascade speed-up: {n['speedup']:.2f}x; worst case {same}; points whose first breaking attack "
            f"differs: {len(n['points_with_different_first_break'])}")
    if "pgd" in n:
        p = n["pgd"]
        log(f"PGD-linf, {p['points']} points, {p['steps']} steps, median of {p['repeats']}: robustgen "
            f"{1e3 * p['per_step_s']['robustgen']:.1f} ms/step, torchattacks "
            f"{1e3 * p['per_step_s']['torchattacks']:.1f} ms/step; ratio robustgen/torchattacks {p['ratio']:.2f}")
    if "sanity" in n:
        s = n["sanity"]
        plain, checked = s["without_sanity"], s["with_sanity"]
        same = "identical" if s["identical_worst_case"] else "DIFFERENT"
        log(f"`{n['eval_set']}` on {s['n_points']} points (sanity checks on {checked['sanity_points']}): without "
            f"sanity checks {plain['seconds']:.1f} s, with {checked['seconds']:.1f} s: ratio {s['ratio']:.2f}x "
            f"(CPU time {plain['cpu_seconds']:.1f} s vs {checked['cpu_seconds']:.1f} s: {s['ratio_cpu']:.2f}x; "
            f"phases within the run with them: {s['ratio_within_run']:.2f}x); worst case {same}")
        log("  phases of the run with them: " + ", ".join(f"{k} {v:.1f} s"
                                                        for k, v in checked["seconds_by_phase"].items()))
        log("  time by attack: " + ", ".join(f"{k} {100 * v:.1f}%" for k, v in s["share_by_attack"].items()))
        if s["share_by_component"]:
            log("  time by AutoAttack component (share of its attack; points it ran on): " + ", ".join(
                f"{k} {100 * v:.1f}% ({plain['points_by_component'][k]})" for k, v in s["share_by_component"].items()))
