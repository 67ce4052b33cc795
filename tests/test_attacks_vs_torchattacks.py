"""Our attacks against an independent implementation (torchattacks) on the same trained CNN and the
same 512 CIFAR-10 test points: ours must be at least as strong (PGD) or agree (AutoAttack).
The default run checks PGD without random starts (deterministic, must match); the slow ones
(`pytest -m slow`) compare with random starts, AutoAttack, and order the ℓ1 attacks.

Accuracies are in percent; 0.5 points is 2.56 of 512 points. Run with `-s` to see the numbers.
"""
from __future__ import annotations

import pytest
import torch
import torchattacks

from robustgen.attack import APGD, APGDT, PGD, AutoAttack

pytestmark = pytest.mark.usefixtures("one_thread")
TOLERANCE = 0.5  # accuracy points


def accuracy(model, x, y) -> float:
    with torch.no_grad():
        return 100.0 * float((model(x).argmax(1) == y).float().mean())


PGD_SETTINGS = [("linf", 8 / 255, 0.6 / 255, torchattacks.PGD), ("l2", 1.5, 0.1125, torchattacks.PGDL2)]
TORCHATTACKS_START = {"linf": "ball", "l2": "radius"}  # PGDL2 draws the radius uniformly in [0, ε]
SEEDS = (0, 1, 2)


@pytest.mark.slow  # 12 PGD runs on 512 points: ~55 s on one shared CPU core
@pytest.mark.parametrize("norm, eps, step_size, reference", PGD_SETTINGS, ids=["linf", "l2"])
def test_pgd_is_at_least_as_strong_as_torchattacks(norm, eps, step_size, reference, robust_cnn, cifar_test_points):
    """The paper's PGD settings (20 steps, one random start), accuracy averaged over 3 seeds: one
    seed's random starts move the accuracy by ±0.3 points (on 512 points; over 20 seeds each,
    ours and torchattacks' PGD-ℓ2 averaged 16.96% and 16.98%), so a single seed cannot resolve 0.5."""
    x, y, ids = cifar_test_points
    ours, theirs = [], []
    for seed in SEEDS:
        attack = PGD(norm, eps, 20, step_size, random_start=TORCHATTACKS_START[norm], seed=seed)
        ours.append(accuracy(robust_cnn, attack(robust_cnn, x, y, example_ids=ids), y))
        torch.manual_seed(seed)
        attack = reference(robust_cnn, eps=eps, alpha=step_size, steps=20, random_start=True)
        theirs.append(accuracy(robust_cnn, attack(x, y), y))
    ours_mean, theirs_mean = sum(ours) / len(ours), sum(theirs) / len(theirs)
    print(f"PGD-{norm} (mean of seeds {SEEDS}): robustgen {ours_mean:.2f}% {ours}  "
          f"torchattacks {theirs_mean:.2f}% {theirs}  (clean {accuracy(robust_cnn, x, y):.2f}%)")
    assert ours_mean <= theirs_mean + TOLERANCE
    assert not robust_cnn.training


@pytest.mark.slow  # 26 s; `make fidelity` checks the same agreement against foolbox 3 and ART
@pytest.mark.parametrize("norm, eps, step_size, reference", PGD_SETTINGS, ids=["linf", "l2"])
def test_pgd_without_random_start_matches_torchattacks(norm, eps, step_size, reference, robust_cnn,
                                                       cifar_test_points):
    """Without random starts both are deterministic and run the same algorithm, so the results
    must agree point by point: the cheap default-run check that our steps and projections are
    torchattacks' (the random-start comparison above needs several seeds and is slow)."""
    x, y, ids = cifar_test_points
    ours = PGD(norm, eps, 20, step_size, random_start=False)(robust_cnn, x, y, example_ids=ids)
    theirs = reference(robust_cnn, eps=eps, alpha=step_size, steps=20, random_start=False)(x, y)
    print(f"PGD-{norm} without random start: robustgen {accuracy(robust_cnn, ours, y):.2f}%  "
          f"torchattacks {accuracy(robust_cnn, theirs, y):.2f}%")
    assert abs(accuracy(robust_cnn, ours, y) - accuracy(robust_cnn, theirs, y)) <= TOLERANCE
    # Same iterates up to float rounding (our summed loss vs their mean rescales the gradient).
    same = (ours - theirs).flatten(1).abs().amax(1) < 1e-2
    assert float(same.float().mean()) >= 0.99


@pytest.mark.slow
def test_autoattack_linf_agrees_with_torchattacks(robust_cnn, cifar_test_points):
    """Ours runs the reference settings (100 iterations); torchattacks' AutoAttack its own (10)."""
    x, y, ids = cifar_test_points
    ours = accuracy(robust_cnn, AutoAttack("linf", 8 / 255)(robust_cnn, x, y, example_ids=ids), y)
    reference = torchattacks.AutoAttack(robust_cnn, norm="Linf", eps=8 / 255, version="standard", n_classes=10, seed=0)
    theirs = accuracy(robust_cnn, reference(x, y), y)
    pgd = accuracy(robust_cnn, PGD("linf", 8 / 255, 20, 0.6 / 255)(robust_cnn, x, y, example_ids=ids), y)
    print(f"AutoAttack-linf: robustgen {ours:.2f}%  torchattacks {theirs:.2f}%  (PGD-20 {pgd:.2f}%)")
    assert abs(ours - theirs) <= TOLERANCE
    assert ours <= pgd


@pytest.mark.slow
def test_l1_attacks_order_by_strength(robust_cnn, cifar_test_points):
    """At the paper's ε = 40: ℓ1-APGD ≤ strong PGD ≤ study PGD; at RobustBench's ε = 12 the ℓ1
    AutoAttack (APGD-CE + APGD-T with the ε-schedule) ≤ a single plain APGD-CE run."""
    x, y, ids = cifar_test_points
    run = {name: accuracy(robust_cnn, attack(robust_cnn, x, y, example_ids=ids), y) for name, attack in {
        "pgd_study_40": PGD("l1", 40, 20, 3.0, l1_variant="study"),
        "pgd_strong_40": PGD("l1", 40, 20, 3.0, l1_variant="strong"),
        "apgd_ce_40": APGD("l1", 40),
        "apgd_t_40": APGDT("l1", 40, n_target_classes=5),
        "apgd_ce_12": APGD("l1", 12),
        "aa_12": AutoAttack("l1", 12),
    }.items()}
    print("  ".join(f"{k} {v:.2f}%" for k, v in run.items()))
    assert run["apgd_ce_40"] <= run["pgd_strong_40"] <= run["pgd_study_40"]
    assert run["aa_12"] <= run["apgd_ce_12"]
