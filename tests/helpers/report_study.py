"""A synthetic study for the report's tests: every architecture of the paper's table with the
paper's numbers plus known offsets, two seeds each, its vanilla run, CIFAR-10-C means, the hybrid
and patch-size rows, an ℓ1 sweep with sparsity measures, and a failed sweep job."""
from __future__ import annotations

import json
from pathlib import Path

from robustgen.arch import get_spec, list_archs
from robustgen.cli.study_defaults import default_arch, describe_architecture
from robustgen.report.paper import hybrid_patch_paper, paper_table

ATTACKS = ("pgd_linf", "aa_linf", "pgd_l2", "pgd_l1")
SETTINGS = {name: {"type": "PGD", "norm": name.split("_")[1]} for name in ATTACKS}
SEED_OFFSETS = {1: -0.5, 2: +0.5}   # seed s reads paper + offset: the mean is the paper's number
C_CELLS = {"fog": {"1": 0.0}}


def write(folder: Path, arch_choice: str, arch: dict, *, seed: int = 1, vanilla: bool = False, clean: float,
          attacks: dict | None = None, worst: float | None = None, c_mean: float | None = None,
          regularizer: dict | None = None, extra: dict | None = None, n: int = 1000, c_points: int = 1000) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / ".hydra").mkdir(exist_ok=True)
    attacks = attacks or {}
    record = {"choices": {"arch": arch_choice, "data": "cifar10", "attack": "none" if vanilla else "pgd_linf"},
              "arch": arch, "seed": seed, "params": 10_000_000, "method": {"name": "pgd_at"}, "n_points": n,
              "clean_acc": clean, "attack_acc": attacks, "worst_case_acc": worst,
              "eval_attacks": {k: SETTINGS[k] for k in attacks},
              "regularizer": regularizer or {"type": "NoRegularizer"}, **(extra or {})}
    record["architecture"] = describe_architecture(record)  # as a run records it (robustgen/record/architecture.py)
    if c_mean is not None:
        record["corruptions"] = {"mean_acc": c_mean, "n_points": c_points, "acc": C_CELLS, "source": {"kind": "files"}}
    (folder / "results.json").write_text(json.dumps(record))
    return folder


def write_study(root: Path) -> Path:
    paper = paper_table().set_index("architecture")
    corrupt = paper_table("paper_table_cifar10c.csv").set_index("architecture")
    for choice in list_archs():
        name = get_spec(choice).paper_name
        if not name:
            continue
        row, arch = paper.loc[name], default_arch(choice)
        for seed, offset in SEED_OFFSETS.items():
            write(root / "zoo" / f"{choice}_s{seed}", choice, arch, seed=seed, clean=row["at_clean_acc"] + offset,
                  attacks={k: row[k] + offset for k in ATTACKS}, worst=row["worst_case"] + offset,
                  c_mean=corrupt.loc[name, "at_cifar_c_acc"] + offset if name in corrupt.index else None)
        write(root / "vanilla" / choice, choice, arch, vanilla=True, clean=row["vanilla_acc"],
              c_mean=corrupt.loc[name, "vanilla_cifar_c_acc"] if name in corrupt.index else None)
    for name, row in hybrid_patch_paper().set_index("architecture").iterrows():
        if name.startswith("CoAtNet"):
            choice, arch = "coatnet", {"name": "coatnet", "stages": name.split("-")[1]}
        else:
            model, size = name.split(" p=")
            choice, arch = model.lower(), {"name": model.lower(), "patch_size": int(size)}
        write(root / "design" / name.replace(" ", "_"), choice, arch, clean=row["at_clean_acc"],
              attacks={k: row[k] for k in ATTACKS}, worst=row["worst_case"])
    for lam, hoyer in ((0.0, 0.2), (1e-5, 0.3), (1e-4, 0.45)):
        write(root / "l1" / f"vit_{lam:g}", "vit", default_arch("vit"), clean=78.0,
              attacks={k: 40.0 for k in ATTACKS}, worst=28 + 10 * hoyer,
              regularizer={"type": "L1Penalty", "weight": lam, "scope": "all"},
              extra={"sparsity": {"overall": {"near_zero": hoyer / 2, "hoyer": hoyer}, "attention": {"hoyer": hoyer}},
                     "bound": {"rademacher_norm_mean": 1000 * (1 - hoyer), "layer_pair_norm_mean": 50 / hoyer},
                     "robust_gap": {"final": 20 - 10 * hoyer}})
    (root / "zoo" / "failed_job" / ".hydra").mkdir(parents=True)
    return root
