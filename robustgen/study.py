"""The whole study as Hydra multiruns, then its report: `make paper` / `make paper-smoke`.

    python -m robustgen.study [--smoke] [--out DIR] [--launcher NAME] [--only STAGE,...] [OVERRIDES...]

Stages (each one `python -m robustgen -m ...` into DIR/<stage>, then `python -m robustgen.report
DIR --compare paper --out DIR/report`):

  zoo            every architecture of the paper's table, PGD-AT, eval=paper + CIFAR-10-C
  zoo_vanilla    the same, trained without attack, clean + CIFAR-10-C (eval=corruptions)
  hybrids        CoAtNet stage layouts CTTT, CTTC, CTCC, CCCC (eval=paper), and their vanilla runs
  patches_vit    ViT patch sizes 8, 4, 2 (eval=paper), and their vanilla runs
  patches_pvtv2  PVTv2 patch sizes 4, 2, 1 (eval=paper), and their vanilla runs
  l1             the ℓ1 sweep on ViT (λ = 0 … 1e-3) with sparsity measures (eval=paper)

`--smoke` runs the same pipeline trained as the quickstart trains (conf/experiment/paper_smoke.yaml)
on three architectures at the smoke scale (conf/arch/scale/smoke.yaml: narrower VGG, ViT and CoAtNet,
so that every run ends above chance), CoAtNet CTTT and CCCC, ViT p=8 (beside
the zoo's p=4), ℓ1 λ = 1e-4 (the zoo's ViT is its λ = 0), no vanilla runs of the design variants, CIFAR-10-C on 100 images
per cell (generated for the smoke into DIR/data if the full set is absent), and eval=paper cut down
(SMOKE_EVAL).

`--launcher NAME` adds `hydra/launcher=NAME` to every stage (a cluster launcher). OVERRIDES go to
every stage (e.g. trainer=gpu). A stage whose previous run had the same command and left a
results.json in every job is skipped, so an interrupted study continues where it stopped (jobs
themselves resume from their last.ckpt: resume=auto).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from robustgen.errors import fail
from robustgen.report.runs import results_files

STAGE_FILE = "stage.json"       # the command a stage ran, and whether all its jobs finished
SMOKE_ARCHS = "vgg,vit,coatnet"  # one CNN, one Transformer, one hybrid with rows in the paper
# eval=paper at smoke scale: 5 steps instead of 20 (step sizes scaled to cover the same ε), AutoAttack
# as its first component only (APGD-CE): on a barely trained model APGD-T, FAB-T and Square spend their
# 900, 900 and 5,000 queries per point on the few points a near-constant classifier keeps (measured:
# 115 of ViT's 117 evaluation seconds).
SMOKE_EVAL = ["eval.attacks.aa_linf.version=custom", "+eval.attacks.aa_linf.components=[apgd-ce]",
              "eval.attacks.pgd_linf.steps=5", "eval.attacks.pgd_linf.step_size=${div:2.4,255}",
              "eval.attacks.pgd_l2.steps=5", "eval.attacks.pgd_l2.step_size=0.45",
              "eval.attacks.pgd_l1.steps=5", "eval.attacks.pgd_l1.step_size=12.0"]
SMOKE_C_POINTS = 100


@dataclass
class Stage:
    name: str
    overrides: list[str]


def stages(smoke: bool) -> list[Stage]:
    """The study's stages; the smoke's are the same with fewer jobs (see the module docstring)."""
    paper = ["eval=paper"] + (SMOKE_EVAL if smoke else [])
    vanilla_design = ["attack=none", "eval=quick"]
    if smoke:
        return [Stage("zoo", [f"arch={SMOKE_ARCHS}", *paper, "eval/corrupted=all"]),
                Stage("zoo_vanilla", [f"arch={SMOKE_ARCHS}", "attack=none", "eval=corruptions"]),
                Stage("hybrids", ["arch=coatnet", "arch.stages=CTTT,CCCC", *paper]),
                Stage("patches_vit", ["arch=vit", "arch.patch_size=8", *paper]),  # with the zoo's p=4
                # λ = 1e-4 only: the zoo's ViT is the unpenalised baseline (λ = 0 trains the same model)
                Stage("l1", ["arch=vit", "+sweep=l1", "regularizer.weight=1e-4", *paper])]
    out = [Stage("zoo", ["+sweep=zoo", *paper, "eval/corrupted=all"]),
           Stage("zoo_vanilla", ["+sweep=zoo", "attack=none", "eval=corruptions"])]
    for name, knobs in (("hybrids", ["arch=coatnet", "+sweep=coatnet_stages"]),
                        ("patches_vit", ["arch=vit", "+sweep=patch_size"]),
                        ("patches_pvtv2", ["arch=pvtv2", "+sweep=patch_size"])):
        out += [Stage(name, [*knobs, *paper]), Stage(f"{name}_vanilla", [*knobs, *vanilla_design])]
    return out + [Stage("l1", ["arch=vit", "+sweep=l1", *paper])]


def smoke_data(out: Path, data_root: Path) -> tuple[Path, list[str]]:
    """(data root, overrides for the stages that evaluate corruptions) of the smoke: the full
    CIFAR-10-C if `data_root` has it (read SMOKE_C_POINTS images per cell), else as many per cell generated
    into DIR/data beside a link to the CIFAR-10 batches (the generator resumes and checks its manifest)."""
    if (data_root / "CIFAR-10-C" / "labels.npy").is_file():
        return data_root, [f"eval.corrupted.n_points={SMOKE_C_POINTS}"]
    root = out / "data"
    root.mkdir(parents=True, exist_ok=True)
    link = root / "cifar-10-batches-py"
    if not link.exists():
        link.symlink_to((data_root / "cifar-10-batches-py").resolve())
    if run([sys.executable, "-m", "robustgen.corrupt", "--root", str(root), "--n-images", str(SMOKE_C_POINTS)]):
        fail(f"could not generate the smoke's CIFAR-10-C into {root} (see above)")
    return root, [f"eval.corrupted.n_points={SMOKE_C_POINTS}"]


def evaluates_corruptions(stage: Stage) -> bool:
    return "eval/corrupted=all" in stage.overrides or "eval=corruptions" in stage.overrides


def run(command: list[str]) -> int:
    print("+ " + " ".join(command), flush=True)
    return subprocess.call(command)


def finished(folder: Path) -> bool:
    files, missing = results_files([folder]) if folder.is_dir() else ([], [])
    return bool(files) and not missing


def run_stage(stage: Stage, out: Path, common: list[str]) -> bool:
    """Run one stage's multirun unless the same command already finished every job; True if done."""
    folder = out / stage.name
    command = [sys.executable, "-m", "robustgen", "-m", *stage.overrides, *common,
               f"hydra.sweep.dir={folder}", "resume=auto"]
    record = folder / STAGE_FILE
    previous = json.loads(record.read_text()) if record.is_file() else {}
    if previous.get("command") == command[1:] and finished(folder):
        print(f"stage {stage.name}: done before with the same command, skipped", flush=True)
        return True
    folder.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    code = run(command)
    done = code == 0 and finished(folder)
    record.write_text(json.dumps({"command": command[1:], "exit_code": code, "finished": done,
                                  "seconds": time.perf_counter() - start}, indent=1))
    print(f"stage {stage.name}: {'done' if done else f'incomplete (exit {code})'} in "
          f"{time.perf_counter() - start:.0f} s", flush=True)
    return done


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m robustgen.study", description=__doc__.split("\n\n")[0])
    parser.error = fail
    parser.add_argument("--smoke", action="store_true", help="quickstart training, three narrower architectures, on CPU")
    parser.add_argument("--out", type=Path, default=None, help="study folder (default multirun/paper[_smoke])")
    parser.add_argument("--launcher", default=None, help="a Hydra launcher for every stage (hydra/launcher=NAME)")
    parser.add_argument("--only", default=None, help="comma-separated stages to run (default: all)")
    parser.add_argument("--data-root", type=Path, default=Path(os.environ.get("ROBUSTGEN_DATA") or "data"))
    parser.add_argument("overrides", nargs="*", help="Hydra overrides for every stage")
    args = parser.parse_args(argv)
    out = (args.out or Path("multirun") / ("paper_smoke" if args.smoke else "paper")).resolve()
    chosen = stages(args.smoke)
    if args.only:
        wanted = [s.strip() for s in args.only.split(",") if s.strip()]
        unknown = sorted(set(wanted) - {s.name for s in chosen})
        if unknown:
            fail(f"--only: unknown stage(s) {', '.join(unknown)}; stages: {', '.join(s.name for s in chosen)}")
        chosen = [s for s in chosen if s.name in wanted]
    if not (args.data_root / "cifar-10-batches-py").is_dir():
        fail(f"no CIFAR-10 in {args.data_root}: run `make data` (or pass --data-root)")
    data_root, corrupted = args.data_root, []
    if args.smoke:
        data_root, corrupted = smoke_data(out, args.data_root)
    elif not (args.data_root / "CIFAR-10-C" / "labels.npy").is_file():
        fail(f"no CIFAR-10-C in {args.data_root}: run `make cifar10c` first (the zoo stages evaluate corruptions)")
    common = [*(["experiment=paper_smoke"] if args.smoke else []), f"data.root={data_root.resolve()}",
              *([f"hydra/launcher={args.launcher}"] if args.launcher else []), *args.overrides]
    start = time.perf_counter()
    incomplete = [s.name for s in chosen
                  if not run_stage(s, out, common + (corrupted if evaluates_corruptions(s) else []))]
    code = run([sys.executable, "-m", "robustgen.report", str(out), "--compare", "paper", "--out", str(out / "report")])
    print(f"study: {len(chosen) - len(incomplete)}/{len(chosen)} stages complete in "
          f"{time.perf_counter() - start:.0f} s; report in {out / 'report'}", flush=True)
    if incomplete:
        print(f"incomplete stages (rerun the same command to continue them): {', '.join(incomplete)}", file=sys.stderr)
    return 1 if incomplete or code else 0


if __name__ == "__main__":
    raise SystemExit(main())
