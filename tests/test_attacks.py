"""Properties of every attack: budget and box respected, inputs and model mode untouched, random
starts reproducible per example, clear errors for impossible settings; the exact ℓ1 ∩ box
projection against a brute-force solver; the strong ℓ1 PGD against the study's on a trained CNN."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from omegaconf import OmegaConf
from scipy.optimize import minimize
from torch import nn

import robustgen  # noqa: F401  (registers the ${div:} resolver)
from robustgen.attack import APGD, APGDT, FAB, PGD, Attack, AutoAttack, NoAttack, Square
from robustgen.attack.projections import project_l1_box, sparse_l1_step
from robustgen.attack.random_start import ExampleRNG, random_start
from robustgen.errors import ConfigError

pytestmark = pytest.mark.usefixtures("one_thread")

CONF = Path(__file__).resolve().parents[1] / "conf"
NORM_P = {"linf": float("inf"), "l2": 2.0, "l1": 1.0}


def tiny_cnn(seed: int = 0) -> nn.Module:
    """Random CNN with BatchNorm and Dropout, so a wrong train/eval mode would show."""
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(4),
                         nn.Flatten(), nn.Dropout(0.2), nn.Linear(8 * 8 * 8, 10))


@pytest.fixture(scope="module")
def batch():
    gen = torch.Generator().manual_seed(1)
    x = torch.rand(12, 3, 32, 32, generator=gen)
    x[:2, :, :4] = 0.0  # pixels on the box faces, where only one direction is allowed
    x[2:4, :, :4] = 1.0
    return x, torch.randint(0, 10, (12,), generator=gen), torch.arange(100, 112)


# Cheap settings of every attack; the property tests run all of them.
CHEAP = {
    "pgd_linf": lambda: PGD("linf", 8 / 255, steps=3, step_size=2 / 255),
    "pgd_l2": lambda: PGD("l2", 0.5, steps=3, step_size=0.2),
    "pgd_l1_study": lambda: PGD("l1", 12.0, steps=3, step_size=4.0, l1_variant="study"),
    "pgd_l1_strong": lambda: PGD("l1", 12.0, steps=3, step_size=4.0, l1_variant="strong"),
    "apgd_l1": lambda: APGD("l1", 12.0, steps=4),
    "apgd_l1_schedule": lambda: APGD("l1", 12.0, steps=4, n_restarts=2, eps_schedule=True),
    "apgdt_l1": lambda: APGDT("l1", 12.0, steps=3, n_target_classes=2),
    "apgd_linf": lambda: APGD("linf", 8 / 255, steps=3),
    "apgdt_l2": lambda: APGDT("l2", 0.5, steps=3, n_target_classes=2),
    "fab_linf": lambda: FAB("linf", 8 / 255, steps=3, n_target_classes=2),
    "square_l2": lambda: Square("l2", 0.5, n_queries=20),
}


def budget_excess(attack: Attack, x: torch.Tensor, x_adv: torch.Tensor) -> float:
    norms = (x_adv - x).flatten(1).double().norm(p=NORM_P[attack.norm], dim=1)
    return float((norms - attack.eps).max())


@pytest.mark.parametrize("name", list(CHEAP))
@pytest.mark.parametrize("training", [False, True])
def test_budget_box_inputs_and_mode(name, training, batch):
    model, attack = tiny_cnn(), CHEAP[name]()
    model.train(training)
    x, y, ids = batch
    x_copy, y_copy = x.clone(), y.clone()
    x_adv = attack(model, x, y, example_ids=ids)
    assert model.training is training
    assert torch.equal(x, x_copy) and torch.equal(y, y_copy)
    assert x_adv.shape == x.shape and x_adv.dtype == x.dtype and not x_adv.requires_grad
    assert float(x_adv.min()) >= 0 and float(x_adv.max()) <= 1
    assert budget_excess(attack, x, x_adv) <= 1e-5 * max(attack.eps, 1.0)
    assert not any(p.grad is not None for p in model.parameters()), "an attack must not touch parameter grads"


@pytest.mark.parametrize("name", ["pgd_linf", "pgd_l1_strong", "apgd_l1", "apgd_linf"])
def test_runs_inside_inference_mode(name, batch):
    """Lightning's evaluation loops run under inference_mode: attacks must still get gradients."""
    model, attack = tiny_cnn(), CHEAP[name]()
    x, y, ids = batch
    with torch.inference_mode():
        x_adv = attack(model, x, y, example_ids=ids)
    with torch.no_grad():
        x_adv_again = attack(model, x, y, example_ids=ids)
    assert (x_adv - x).abs().sum() > 0
    assert torch.allclose(x_adv, x_adv_again, atol=1e-6)


def test_eval_mode_false_attacks_the_training_mode():
    """With eval_mode=False dropout stays active during the attack, so two runs differ."""
    model = nn.Sequential(nn.Flatten(), nn.Dropout(0.5), nn.Linear(3 * 32 * 32, 10)).train()
    x, y = torch.rand(4, 3, 32, 32), torch.arange(4)
    ids = torch.arange(4)
    runs = [PGD("linf", 8 / 255, 3, 2 / 255, eval_mode=False)(model, x, y, example_ids=ids) for _ in range(2)]
    assert model.training and not torch.equal(runs[0], runs[1])
    runs = [PGD("linf", 8 / 255, 3, 2 / 255)(model, x, y, example_ids=ids) for _ in range(2)]
    assert model.training and torch.equal(runs[0], runs[1])


@pytest.mark.parametrize("name", ["pgd_linf", "pgd_l2", "pgd_l1_study", "pgd_l1_strong", "apgd_l1", "apgdt_l1"])
def test_random_start_is_per_example(name, batch):
    """The same example gets the same result whatever batch it lands in, and in any order."""
    model, attack = tiny_cnn(), CHEAP[name]()
    x, y, ids = batch
    whole = attack(model, x, y, example_ids=ids)
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(3))
    shuffled = attack(model, x[perm], y[perm], example_ids=ids[perm])
    split = torch.cat([attack(model, x[:5], y[:5], example_ids=ids[:5]),
                       attack(model, x[5:], y[5:], example_ids=ids[5:])])
    assert torch.allclose(shuffled, whole[perm], atol=1e-5)
    assert torch.allclose(split, whole, atol=1e-5)


def test_seed_changes_start_and_same_seed_repeats(batch):
    model = tiny_cnn()
    x, y, ids = batch
    a, b, c = (PGD("l2", 0.5, 1, 0.01, seed=s)(model, x, y, example_ids=ids) for s in (0, 0, 1))
    assert torch.equal(a, b) and not torch.allclose(a, c)


def test_torchattacks_wrappers_leave_global_rng_alone(batch):
    model = tiny_cnn()
    x, y, ids = batch
    state = torch.random.get_rng_state()
    CHEAP["apgd_linf"]()(model, x, y, example_ids=ids)
    CHEAP["square_l2"]()(model, x, y, example_ids=ids)
    assert torch.equal(torch.random.get_rng_state(), state)


def test_no_attack_is_identity(batch):
    x, y, _ = batch
    assert torch.equal(NoAttack()(tiny_cnn(), x, y), x)


@pytest.mark.parametrize("make, message", [
    (lambda: PGD("l1", 40, 20, 3.0, l1_variant="dense"), "l1_variant"),
    (lambda: PGD("linf", -0.1, 10, 0.01), "eps must be ≥ 0"),
    (lambda: PGD("linf", 8 / 255, 0, 0.01), "steps must be an integer ≥ 1"),
    (lambda: PGD("linf", 8, 10, 2), "exceeds the [0, 1] pixel range"),
    (lambda: PGD("l3", 1.0, 10, 0.1), "norm must be one of"),
    (lambda: PGD("l1", 40, 20, 3.0, l1_variant="strong", sparsity=1.0), "sparsity"),
    (lambda: PGD("l2", 0.5, 10, 0.0), "step_size must be > 0"),
    (lambda: APGD("linf", 8 / 255, loss="mse"), "loss must be"),
    (lambda: APGD("linf", 8 / 255, eps_schedule=True), "eps_schedule exists only"),
    (lambda: APGDT("l1", 12, steps=0), "steps must be ≥ 1"),
    (lambda: Square("l1", 12), "norm must be one of"),
    (lambda: FAB("linf", 8 / 255, n_target_classes=0), "n_target_classes"),
    (lambda: AutoAttack("linf", 8 / 255, version="plus"), "version"),
    (lambda: AutoAttack("linf", 16), "pixel range"),
    (lambda: AutoAttack("linf", 8 / 255, components=["apgd-ce"]), "components go with version=custom"),
    (lambda: AutoAttack("linf", 8 / 255, version="custom"), "components go with version=custom"),
    (lambda: AutoAttack("l1", 12, version="custom", components=["square"]), "unknown component"),
])
def test_impossible_settings_are_refused_at_construction(make, message):
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        make()


def test_describe_says_which_variant_ran():
    assert PGD("l1", 40, 20, 3.0).describe()["l1_variant"] == "study"
    strong = PGD("l1", 40, 20, 3.0, l1_variant="strong", sparsity=0.95).describe()
    assert strong["l1_variant"] == "strong" and strong["sparsity"] == 0.95
    assert "l1_variant" not in PGD("linf", 8 / 255, 20, 0.6 / 255).describe()
    aa = AutoAttack("l1", 12).describe()
    assert list(aa["components"]) == ["apgd-ce", "apgd-t"]
    custom = AutoAttack("linf", 8 / 255, version="custom", components=["square", "apgd-ce"]).describe()
    assert custom["version"] == "custom" and list(custom["components"]) == ["apgd-ce", "square"]  # standard order
    assert "hand-written" in aa["components"]["apgd-ce"]["implementation"]
    assert AutoAttack("linf", 8 / 255).describe()["components"]["square"]["n_queries"] == 5000


# --- the exact ℓ1 ∩ box projection -------------------------------------------------------------
def brute_force_projection(v: np.ndarray, x: np.ndarray, eps: float) -> np.ndarray:
    """argmin ½‖δ − v‖² s.t. ‖δ‖₁ ≤ eps, 0 ≤ x + δ ≤ 1, by a generic QP solver on δ = p − n."""
    d = len(v)

    def objective(z):
        r = z[:d] - z[d:] - v
        return 0.5 * r @ r, np.concatenate([r, -r])

    bounds = [(0, 1 - xi) for xi in x] + [(0, xi) for xi in x]
    budget = {"type": "ineq", "fun": lambda z: eps - z.sum(), "jac": lambda z: -np.ones(2 * d)}
    res = minimize(objective, np.zeros(2 * d), jac=True, bounds=bounds, constraints=[budget], method="SLSQP",
                   options={"ftol": 1e-15, "maxiter": 500})
    return res.x[:d] - res.x[d:]


finite = dict(allow_nan=False, allow_infinity=False)


@settings(max_examples=60, deadline=None)
@given(d=st.integers(1, 7), seed=st.integers(0, 2**31 - 1), scale=st.floats(0.01, 3.0, **finite),
       eps=st.floats(0.0, 3.0, **finite))
def test_l1_projection_matches_brute_force(d, seed, scale, eps):
    gen = np.random.default_rng(seed)
    x = gen.uniform(0, 1, d)
    x[gen.uniform(size=d) < 0.2] = 0.0  # some pixels on the box faces
    v = gen.normal(0, scale, d)
    ours = project_l1_box(torch.from_numpy(v).view(1, 1, 1, d), torch.from_numpy(x).view(1, 1, 1, d), eps)
    assert np.abs(ours.flatten().numpy() - brute_force_projection(v, x, eps)).max() < 1e-6


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), scale=st.floats(1e-3, 1.0, **finite), eps=st.floats(0.1, 60.0, **finite))
def test_l1_projection_is_feasible_optimal_and_idempotent(seed, scale, eps):
    """At image size: inside ball and box, a fixed point, and ⟨v − P(v), z − P(v)⟩ ≤ 0 for feasible z."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(3, 3, 32, 32, generator=gen).double()
    v = torch.randn(3, 3, 32, 32, generator=gen).double() * scale
    p = project_l1_box(v, x, eps)
    assert float((p.flatten(1).abs().sum(1) - eps).max()) <= 1e-9 * eps
    assert float((x + p).min()) >= -1e-12 and float((x + p).max()) <= 1 + 1e-12
    assert torch.allclose(project_l1_box(p, x, eps), p, atol=1e-10)
    for _ in range(5):
        z = project_l1_box(torch.randn(3, 3, 32, 32, generator=gen).double(), x, eps)
        assert float(((v - p) * (z - p)).flatten(1).sum(1).max()) <= 1e-8


def test_sparse_step_has_the_step_norm_and_avoids_blocked_coordinates():
    x_adv = torch.rand(4, 3, 8, 8)
    x_adv[:, 0] = 1.0  # channel 0 at the top face
    grad = torch.randn(4, 3, 8, 8)
    grad[:, 0] = 10.0  # largest gradients push further up: blocked
    step = sparse_l1_step(grad, x_adv, fraction=0.05, step_size=2.5)
    assert torch.allclose(step.flatten(1).abs().sum(1), torch.full((4,), 2.5))
    assert (step[:, 0] == 0).all()
    assert ((step != 0).flatten(1).sum(1) == 10).all()  # ⌈0.05 · 192⌉ coordinates
    assert (step * grad >= 0).all()


@pytest.mark.parametrize("norm, kind, p, eps", [("linf", "ball", float("inf"), 0.03), ("l2", "ball", 2.0, 1.5),
                                                ("l2", "radius", 2.0, 1.5), ("l1", "ball", 1.0, 40.0),
                                                ("l1", "radius", 1.0, 40.0)])
def test_random_starts_lie_in_the_ball(norm, kind, p, eps):
    x = torch.zeros(64, 3, 32, 32)
    delta = random_start(norm, kind, ExampleRNG(torch.arange(64), 0), x, eps)
    norms = delta.flatten(1).norm(p=p, dim=1)
    assert float(norms.max()) <= eps * (1 + 1e-5) and float(norms.min()) > 0


@pytest.mark.parametrize("norm, p, eps", [("l2", 2.0, 1.5), ("l1", 1.0, 40.0)])
def test_ball_start_is_uniform_in_volume_and_radius_start_is_not(norm, p, eps):
    """Uniform in a d-dimensional ball, the radius is eps·u^(1/d): P(r ≤ t·eps) = t^d, so in
    d = 3,072 dimensions every draw lies within 0.5% of the sphere (P(r < 0.995 eps) = 2e-7).
    The "radius" start's radius is eps·u: its quartiles sit at eps/4, eps/2 and 3eps/4."""
    x = torch.zeros(1000, 3, 32, 32)
    rng = ExampleRNG(torch.arange(1000), 1)
    ball = random_start(norm, "ball", rng, x, eps).flatten(1).norm(p=p, dim=1) / eps
    radius = random_start(norm, "radius", rng, x, eps).flatten(1).norm(p=p, dim=1) / eps
    assert float(ball.min()) > 0.995
    quartiles = torch.quantile(radius, torch.tensor([0.25, 0.5, 0.75]))
    assert torch.allclose(quartiles, torch.tensor([0.25, 0.5, 0.75]), atol=0.05)


def test_ball_start_directions_are_symmetric():
    """Each coordinate of a uniform-ball start has mean 0 and the same spread (no favoured pixel)."""
    x = torch.zeros(2000, 3, 4, 4)
    for norm in ("l2", "l1"):
        delta = random_start(norm, "ball", ExampleRNG(torch.arange(2000), 2), x, 1.0).flatten(1)
        assert float(delta.mean(0).abs().max()) < 0.1 * float(delta.std(0).mean())
        spread = delta.abs().mean(0)
        assert float(spread.max() / spread.min()) < 1.25


@pytest.mark.parametrize("value, kind", [(True, "ball"), ("ball", "ball"), ("radius", "radius"),
                                         (False, "none"), (None, "none"), ("none", "none")])
def test_random_start_setting_is_recorded_by_name(value, kind):
    assert PGD("l2", 1.5, 2, 0.1, random_start=value).describe()["random_start"] == kind


@pytest.mark.parametrize("norm, value, needle", [("linf", "radius", "set random_start: ball"),
                                                 ("l2", "sphere", "one of ('ball', 'radius') or none")])
def test_bad_random_start_is_refused_in_one_line(norm, value, needle):
    with pytest.raises(ConfigError, match=re.escape(needle)) as err:
        PGD(norm, 0.03, 2, 0.01, random_start=value)
    assert "\n" not in str(err.value)


# --- config files --------------------------------------------------------------------------------
def instantiate_attacks(path) -> dict[str, Attack]:
    from hydra.utils import instantiate

    cfg = OmegaConf.load(path)
    return {name: instantiate(spec) for name, spec in cfg.attacks.items()}


def test_eval_sets_build_and_name_their_variants():
    paper = instantiate_attacks(CONF / "eval" / "paper.yaml")
    assert list(paper) == ["pgd_linf", "pgd_l2", "pgd_l1", "aa_linf"]
    assert paper["pgd_l1"].describe()["l1_variant"] == "study"
    assert (paper["pgd_l1"].eps, paper["pgd_l1"].steps, paper["pgd_l1"].step_size) == (40.0, 20, 3.0)
    assert paper["pgd_linf"].step_size == pytest.approx(0.6 / 255) and paper["pgd_l2"].step_size == 0.1125
    assert OmegaConf.load(CONF / "eval" / "paper.yaml").per_attack is True
    strong = instantiate_attacks(CONF / "eval" / "strong.yaml")
    assert strong["pgd_l1_strong"].describe()["l1_variant"] == "strong" and "apgd_l1" in strong
    # paper: the study's toolkits' starts (docs/protocol.md); strong: the stronger one, named apart
    assert {k: a.describe()["random_start"] for k, a in paper.items() if isinstance(a, PGD)} == {
        "pgd_linf": "ball", "pgd_l2": "ball", "pgd_l1": "ball"}
    assert {k: a.describe()["random_start"] for k, a in strong.items() if isinstance(a, PGD)} == {
        "pgd_linf": "ball", "pgd_l2_radius": "radius", "pgd_l1_strong": "radius"}
    bench = instantiate_attacks(CONF / "eval" / "robustbench.yaml")
    assert {k: (type(a).__name__, a.norm, round(a.eps, 6)) for k, a in bench.items()} == {
        "aa_linf": ("AutoAttack", "linf", round(8 / 255, 6)), "aa_l2": ("AutoAttack", "l2", 0.5),
        "aa_l1": ("AutoAttack", "l1", 12.0)}
    for name, attack in instantiate_attacks(CONF / "eval" / "quick.yaml").items():
        assert isinstance(attack, PGD) and attack.steps <= 10, name


@pytest.mark.parametrize("name, norm", [("pgd_linf", "linf"), ("pgd_l2", "l2"), ("pgd_l1", "l1")])
def test_training_attack_configs_build(name, norm):
    from hydra.utils import instantiate

    attack = instantiate(OmegaConf.load(CONF / "attack" / f"{name}.yaml"))
    assert isinstance(attack, PGD) and attack.norm == norm


# --- on a trained model ----------------------------------------------------------------------------
def accuracy(model, x, y) -> float:
    with torch.no_grad():
        return 100.0 * float((model(x).argmax(1) == y).float().mean())


def test_strong_l1_is_no_weaker_than_the_study_variant(robust_cnn, cifar_test_points):
    """PROTOCOL.md: the sparse/exact ℓ1 PGD is far stronger than the dense/rescale one."""
    x, y, ids = (t[:200] for t in cifar_test_points)
    clean = accuracy(robust_cnn, x, y)
    study = accuracy(robust_cnn, PGD("l1", 40, 20, 3.0, l1_variant="study")(robust_cnn, x, y, example_ids=ids), y)
    strong = accuracy(robust_cnn, PGD("l1", 40, 20, 3.0, l1_variant="strong")(robust_cnn, x, y, example_ids=ids), y)
    print(f"clean {clean:.1f}%  PGD-l1 study {study:.1f}%  strong {strong:.1f}%")
    assert strong <= study <= clean
    assert study - strong >= 5.0, "the two variants should differ clearly on a robust model"


@pytest.mark.parametrize("attack", [PGD("linf", 8 / 255, 10, 2 / 255), PGD("l2", 1.5, 10, 0.3)],
                         ids=["linf", "l2"])
def test_robust_accuracy_is_below_clean(attack, robust_cnn, cifar_test_points):
    x, y, ids = (t[:200] for t in cifar_test_points)
    clean = accuracy(robust_cnn, x, y)
    robust = accuracy(robust_cnn, attack(robust_cnn, x, y, example_ids=ids), y)
    assert 0 < robust < clean, "a trained robust model keeps some but not all points"


@pytest.mark.parametrize("norm, eps", [("linf", 8 / 255), ("l1", 12.0)])
def test_autoattack_restores_mode_and_respects_budget(norm, eps, batch):
    model = tiny_cnn().train()
    x, y, ids = batch
    attack = AutoAttack(norm, eps)
    x_adv = attack(model, x[:6], y[:6], example_ids=ids[:6])
    assert model.training
    assert float(x_adv.min()) >= 0 and float(x_adv.max()) <= 1
    assert budget_excess(attack, x[:6], x_adv) <= 1e-5 * max(eps, 1.0)
