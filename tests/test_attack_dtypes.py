"""Every attack we ship, on half-precision images and models: finite adversarial examples in the
images' dtype, inside the ε-ball and the [0, 1] box (attacks compute in float32: precision.py).

The attacks are those of every evaluation set (conf/eval/*.yaml) and every training attack
(conf/attack/*.yaml), built from the YAML files, with budgets shrunk so each case takes well under
a second; AutoAttack's components are shrunk one by one (it builds them with fixed budgets).
"""
from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf
from torch import nn

import robustgen  # noqa: F401  (registers the ${div:} resolver)
from robustgen.attack import PGD, Attack, AutoAttack
from robustgen.attack.precision import round_toward
from robustgen.attack.random_start import ExampleRNG, random_start

pytestmark = pytest.mark.usefixtures("one_thread")

CONF = Path(__file__).resolve().parents[1] / "conf"
NORM_P = {"linf": float("inf"), "l2": 2.0, "l1": 1.0}
SHRUNK = {"steps": 3, "n_queries": 20, "n_restarts": 1, "n_target_classes": 2}  # 3: ℓ1 ε-schedule's minimum


def shrink(attack: Attack) -> Attack:
    for component in getattr(attack, "components", {}).values():
        shrink(component)
    for name, most in SHRUNK.items():
        if hasattr(attack, name):
            setattr(attack, name, min(getattr(attack, name), most))
    return attack


def shipped_attacks() -> dict[str, Attack]:
    """Every distinct attack of conf/eval/*.yaml and conf/attack/*.yaml, and AutoAttack's
    components, shrunk."""
    attacks: dict[str, Attack] = {}
    for path in sorted((CONF / "eval").glob("*.yaml")):
        for name, spec in OmegaConf.load(path).attacks.items():
            attacks[f"{path.stem}/{name}"] = instantiate(spec)
    for path in sorted((CONF / "attack").glob("*.yaml")):
        attacks[f"train/{path.stem}"] = instantiate(OmegaConf.load(path))
    for name, attack in list(attacks.items()):  # each component on its own too: in AutoAttack an
        for part, component in getattr(attack, "components", {}).items():  # early one may break every point
            attacks[f"{name}/{part}"] = component
    distinct: dict[str, Attack] = {}
    seen: list[dict] = []
    for name, attack in attacks.items():
        if shrink(attack).describe() not in seen:
            seen.append(attack.describe())
            distinct[name] = attack
    return distinct


ATTACKS = shipped_attacks()


def test_every_attack_class_norm_and_variant_is_covered():
    kinds = {(type(a).__name__, getattr(a, "norm", None), getattr(a, "l1_variant", None) if a.norm == "l1" else None)
             for a in ATTACKS.values()}
    assert {("PGD", "linf", None), ("PGD", "l2", None), ("PGD", "l1", "study"), ("PGD", "l1", "strong"),
            ("APGD", "l1", None), ("AutoAttack", "linf", None), ("AutoAttack", "l2", None),
            ("AutoAttack", "l1", None), ("NoAttack", "none", None)} <= kinds
    components = {type(c).__name__ for a in ATTACKS.values() for c in getattr(a, "components", {}).values()}
    assert components == {"APGD", "APGDT", "FAB", "Square"}


def tiny_model() -> nn.Module:
    """Conv, BatchNorm, pooling and a linear head: ops CPU runs in float16 and bfloat16 too."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.AvgPool2d(8),
                         nn.Flatten(), nn.Linear(64, 10)).eval()


def images(n: int = 6) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(1)
    x = torch.rand(n, 3, 32, 32, generator=gen)
    x[0, :, :8] = 0.0  # pixels on the box faces, where only one direction is allowed
    x[1, :, :8] = 1.0
    return x, torch.randint(0, 10, (n,), generator=gen), torch.arange(n)


# (input dtype, model dtype, autocast to bfloat16)
CASES = {
    "fp32": (torch.float32, torch.float32, False),
    "fp16_inputs": (torch.float16, torch.float32, False),
    "bf16_inputs": (torch.bfloat16, torch.float32, False),
    "bf16_model": (torch.bfloat16, torch.bfloat16, False),
    "fp16_model": (torch.float16, torch.float16, False),
    "autocast_bf16": (torch.float32, torch.float32, True),
}


def check_adversarial(attack: Attack, x: torch.Tensor, x_adv: torch.Tensor) -> None:
    assert x_adv.dtype == x.dtype and x_adv.shape == x.shape
    assert torch.isfinite(x_adv).all()
    assert float(x_adv.min()) >= 0 and float(x_adv.max()) <= 1
    if attack.norm in NORM_P:
        norms = (x_adv.double() - x.double()).flatten(1).norm(p=NORM_P[attack.norm], dim=1)
        # float32 arithmetic: x + δ rounds each pixel by up to 6e-8; 1e-6·max(ε, 1) covers it in every norm.
        assert float(norms.max()) <= attack.eps + 1e-6 * max(attack.eps, 1.0)


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("name", list(ATTACKS))
def test_finite_and_inside_budget_in_every_precision(name, case):
    x_dtype, model_dtype, autocast = CASES[case]
    attack, model = ATTACKS[name], tiny_model().to(model_dtype)
    x, _, ids = images()
    x = x.to(x_dtype)
    with torch.autocast("cpu", dtype=torch.bfloat16) if autocast else contextlib.nullcontext():
        with torch.no_grad():  # labels the model gets right, so AutoAttack's components all have work
            y = model(x.to(model_dtype)).argmax(1)
        x_adv = attack(model, x, y, example_ids=ids)
    check_adversarial(attack, x, x_adv)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_issue_example_pgd_l1_study_on_half_precision_cifar(dtype, cifar_test_points):
    """The reported case: eval=paper's PGD-ℓ1 (study variant, ε = 40, 20 steps of 3, random start)
    on 200 CIFAR-10 test images in bf16 returned NaN for all 200 (fp16: about half)."""
    spec = OmegaConf.load(CONF / "eval" / "paper.yaml").attacks.pgd_l1
    attack = instantiate(spec)
    assert (attack.norm, attack.l1_variant, attack.eps, attack.random_start) == ("l1", "study", 40.0, "ball")
    x, y, ids = (t[:200] for t in cifar_test_points)
    x = x.to(dtype)
    x_adv = attack(tiny_model().to(dtype), x, y, example_ids=ids)
    assert int(torch.isnan(x_adv).flatten(1).any(1).sum()) == 0
    check_adversarial(attack, x, x_adv)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_l1_random_start_is_finite_for_half_precision_images(dtype):
    """A U[0, 1) draw rounded to bf16 can be 1.0 and log1p(−1) = −∞: starts are drawn in float32."""
    x = torch.full((200, 3, 32, 32), 0.5, dtype=dtype)
    delta = random_start("l1", "ball", ExampleRNG(torch.arange(200), 0), x, 40.0)
    assert delta.dtype == torch.float32 and torch.isfinite(delta).all()
    assert float(delta.flatten(1).abs().sum(1).max()) <= 40.0 * (1 + 1e-5)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_rounding_goes_toward_the_clean_image(dtype):
    """Each coordinate lands on the dtype's grid between x and x_adv, never past x_adv."""
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(4, 3000, generator=gen).to(dtype).float()
    x_adv = (x + (torch.rand(4, 3000, generator=gen) - 0.5) * 0.05).clamp(0, 1)
    out = round_toward(x_adv, x, dtype)
    assert out.dtype == dtype
    delta, rounded = x_adv - x, out.float() - x
    assert (rounded.abs() <= delta.abs()).all() and (rounded * delta >= 0).all()
    nearest = x_adv.to(dtype).float() - x
    assert (nearest.abs() > delta.abs()).any(), "round-to-nearest does overshoot: the test is not vacuous"
    assert (rounded != 0).any()


def test_fp32_results_are_unchanged_by_the_float32_boundary():
    """float32 images and model: the adapter and the rounding are identities."""
    model, (x, y, ids) = tiny_model(), images()
    attack = PGD("l1", 12.0, steps=3, step_size=4.0, l1_variant="strong")
    assert torch.equal(attack(model, x, y, example_ids=ids), attack.perturb(model, x, y, ids))


def test_autoattack_components_see_the_float32_model():
    """AutoAttack calls its components' perturb directly: they must get the adapter it got."""
    seen = []
    attack = shrink(AutoAttack("linf", 8 / 255))
    for component in attack.components.values():
        original = component.perturb

        def spy(model, x, y, ids, original=original):
            seen.append((type(model).__name__, x.dtype))
            return original(model, x, y, ids)
        component.perturb = spy
    x, y, ids = images()
    model = tiny_model().to(torch.bfloat16)
    with torch.no_grad():  # every point starts out correct, so the components have points to attack
        y = model(x.to(torch.bfloat16)).argmax(1)
    check_adversarial(attack, x.to(torch.bfloat16), attack(model, x.to(torch.bfloat16), y, example_ids=ids))
    assert seen and all(s == ("Float32Model", torch.float32) for s in seen)
