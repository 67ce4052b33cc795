"""Training methods (robustgen/method/): losses against hand computations, the inner attacks'
budgets, a short real training run of each against vanilla, and the catastrophic-overfitting flag."""
from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from robustgen.attack import PGD, NoAttack
from robustgen.errors import ConfigError
from robustgen.method import (MART, PGDAT, TRADES, CatastrophicOverfittingMonitor, FastAT, NoiseStartPGD,
                              catastrophic_overfitting)
from tests.helpers.trained_model import single_thread, small_cnn

EPS = 8 / 255


def tiny_batch():
    """A linear model on 2×2 RGB images, 4 examples, 3 classes, and a fixed 'adversarial' batch."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 3)).double()
    x = torch.rand(4, 3, 2, 2, dtype=torch.float64)
    x_adv = (x + EPS * torch.sign(torch.randn_like(x))).clamp(0, 1)
    y = torch.tensor([0, 2, 1, 2])
    return model, x, x_adv, y


def fixed(method, x_adv):
    """The method with its attack replaced by one returning `x_adv`: the outer loss alone is tested."""
    method.attack = lambda model, x, y: x_adv
    return method


def softmax_rows(logits):
    """Softmax by hand (the formula, not torch's function): a list of lists of floats."""
    out = []
    for row in logits.tolist():
        e = [math.exp(v - max(row)) for v in row]
        out.append([v / sum(e) for v in e])
    return out


def test_pgd_at_loss_is_the_cross_entropy_on_adversarial_examples():
    model, x, x_adv, y = tiny_batch()
    out = fixed(PGDAT(PGD("linf", EPS)), x_adv)(model, x, y)
    q = softmax_rows(model(x_adv))
    hand = -sum(math.log(q[i][int(y[i])]) for i in range(4)) / 4
    assert out.loss.item() == pytest.approx(hand, rel=1e-12)


@pytest.mark.parametrize("beta", [0.0, 1.0, 6.0])
def test_trades_loss_by_hand(beta):
    model, x, x_adv, y = tiny_batch()
    out = fixed(TRADES(PGD("linf", EPS), beta=beta), x_adv)(model, x, y)
    p, q = softmax_rows(model(x)), softmax_rows(model(x_adv))
    natural = -sum(math.log(p[i][int(y[i])]) for i in range(4)) / 4
    kl = sum(p[i][k] * math.log(p[i][k] / q[i][k]) for i in range(4) for k in range(3)) / 4  # KL(p(x) ‖ p(x'))
    expected = natural + beta * (kl if beta > 0 else 0.0)
    assert out.loss.item() == pytest.approx(expected, rel=1e-12)
    assert out.terms["loss_natural"].item() == pytest.approx(natural, rel=1e-12)


def test_trades_with_beta_zero_is_clean_training():
    model, x, _, y = tiny_batch()
    method = TRADES(PGD("linf", EPS), beta=0.0)
    method.attack = lambda *a: pytest.fail("β = 0 must not attack")
    loss = method(model, x, y).loss
    grads = torch.autograd.grad(loss, list(model.parameters()))
    clean = F.cross_entropy(model(x), y)
    for g, c in zip(grads, torch.autograd.grad(clean, list(model.parameters()))):
        assert torch.equal(g, c)


@pytest.mark.parametrize("lam", [0.0, 5.0])
def test_mart_loss_by_hand(lam):
    model, x, x_adv, y = tiny_batch()
    out = fixed(MART(PGD("linf", EPS), lam=lam), x_adv)(model, x, y)
    p, q = softmax_rows(model(x)), softmax_rows(model(x_adv))
    total = 0.0
    for i in range(4):
        t = int(y[i])
        wrong = max((k for k in range(3) if k != t), key=lambda k: q[i][k])
        boosted = -math.log(q[i][t]) - math.log(1.0001 - q[i][wrong] + 1e-12)
        kl = sum(p[i][k] * (math.log(p[i][k]) - math.log(q[i][k] + 1e-12)) for k in range(3))
        total += boosted + lam * kl * (1.0000001 - p[i][t])
    assert out.loss.item() == pytest.approx(total / 4, rel=1e-9)


def test_fast_at_perturbation_stays_in_the_eps_ball():
    torch.manual_seed(0)
    model = small_cnn()
    x, y = torch.rand(64, 3, 32, 32), torch.randint(0, 10, (64,))
    method = FastAT(PGD("linf", EPS))
    assert method.attack.steps == 1 and method.attack.step_size == pytest.approx(1.25 * EPS)
    x_adv = method.attack(model, x, y)
    delta = x_adv - x
    assert delta.abs().max().item() <= EPS + 1e-7
    assert x_adv.min() >= 0 and x_adv.max() <= 1
    # The 1.25·ε step leaves the ball from most starts and is projected back: many coordinates sit on it.
    assert (delta.abs() > EPS - 1e-6).float().mean() > 0.3
    # The attack group's random start carries over: without it, plain FGSM puts every coordinate on ±ε
    plain = FastAT(PGD("linf", EPS, random_start="none"))
    assert plain.attack.describe()["random_start"] == "none" and method.attack.describe()["random_start"] == "ball"
    fgsm = plain.attack(model, x, y) - x
    assert ((fgsm.abs() > EPS - 1e-6) | (x + fgsm <= 0) | (x + fgsm >= 1)).all()


def test_inner_attacks_stay_in_the_budget_and_raise_their_objective():
    torch.manual_seed(0)
    model = small_cnn()
    x, y = torch.rand(32, 3, 32, 32), torch.randint(0, 10, (32,))
    for loss in ("kl", "ce"):
        attack = NoiseStartPGD(eps=EPS, steps=5, step_size=0.007, loss=loss)
        x_adv = attack(model, x, y)
        assert (x_adv - x).abs().max() <= EPS + 1e-7
        with torch.no_grad():
            target = attack.loss_target(model, x, y)
            assert attack.loss(model(x_adv), target) > attack.loss(model(x), target)


@pytest.mark.parametrize("cls", [TRADES, MART, FastAT])
def test_methods_defined_for_linf_refuse_other_budgets(cls):
    with pytest.raises(ConfigError, match="use attack=pgd_linf"):
        cls(PGD("l2", 0.5))
    with pytest.raises(ConfigError, match="vanilla training is attack=none with method=pgd_at"):
        cls(NoAttack())


# --- a short real training run of each method --------------------------------------------------
N_TRAIN, EPOCHS, BATCH, N_TEST = 2000, 4, 100, 500


def train(cifar_root, method, seed=0):
    """SGD + one-cycle on the first N_TRAIN CIFAR-10 training images, the same for every method."""
    from robustgen.data.cifar10 import load_cifar10

    images, labels = load_cifar10(cifar_root, "train", download=False)
    x_all, y_all = images[:N_TRAIN].float() / 255, labels[:N_TRAIN]
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model = small_cnn()
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4, nesterov=True)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.1, total_steps=EPOCHS * (N_TRAIN // BATCH))
    model.train()
    for _ in range(EPOCHS):
        order = torch.randperm(N_TRAIN, generator=gen)
        for start in range(0, N_TRAIN, BATCH):
            batch = order[start:start + BATCH]
            loss = method(model, x_all[batch], y_all[batch]).loss
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    return model.eval()


def pgd_accuracy(model, cifar_test_points):
    x, y, _ = cifar_test_points
    x, y = x[:N_TEST], y[:N_TEST]
    x_adv = PGD("linf", EPS, steps=10, step_size=2 / 255)(model, x, y, example_ids=torch.arange(len(x)))
    with torch.no_grad():
        robust, clean = (model(x_adv).argmax(1) == y).float().mean(), (model(x).argmax(1) == y).float().mean()
    return 100 * robust.item(), 100 * clean.item()


@pytest.fixture(scope="module")
def vanilla_pgd(cifar_root, cifar_test_points):
    with single_thread():
        return pgd_accuracy(train(cifar_root, PGDAT(NoAttack())), cifar_test_points)


SHORT = {"steps": 3, "step_size": 2.5 * EPS / 3}


# 12–28 s each on one CPU core: fast AT (the cheapest) runs by default, the multi-step methods are
# slow-marked (`make test-slow`); their losses are checked exactly above, and each trains through
# the app below.
@pytest.mark.parametrize("name,make", [
    pytest.param("pgd_at", lambda: PGDAT(PGD("linf", EPS, **SHORT)), marks=pytest.mark.slow),
    pytest.param("trades", lambda: TRADES(PGD("linf", EPS), **SHORT), marks=pytest.mark.slow),
    pytest.param("mart", lambda: MART(PGD("linf", EPS), **SHORT), marks=pytest.mark.slow),
    ("fast_at", lambda: FastAT(PGD("linf", EPS))),
])
def test_each_method_raises_pgd_accuracy_over_vanilla_training(name, make, cifar_root, cifar_test_points,
                                                                vanilla_pgd):
    with single_thread():
        robust, clean = pgd_accuracy(train(cifar_root, make()), cifar_test_points)
    vanilla_robust, vanilla_clean = vanilla_pgd
    assert clean > 20, f"{name}: {clean:.1f}% clean — it did not learn"
    assert robust > vanilla_robust + 5, f"{name}: PGD {robust:.1f}% vs vanilla {vanilla_robust:.1f}%"


# --- catastrophic overfitting ---------------------------------------------------------------------
def test_catastrophic_overfitting_flag_fires_on_a_collapse_with_rising_fgsm():
    # Robustness builds for three epochs, then PGD accuracy collapses while FGSM accuracy jumps
    # (Wong et al., 2020, Fig. 3): flagged from that epoch on, and only there.
    pgd = [10.0, 25.0, 30.0, 2.0, 0.5]
    fgsm = [15.0, 30.0, 35.0, 60.0, 80.0]
    assert catastrophic_overfitting(pgd, fgsm) == [False, False, False, True, True]
    # A drop where FGSM accuracy falls too is ordinary instability, not catastrophic overfitting.
    assert catastrophic_overfitting([10.0, 30.0, 5.0], [15.0, 35.0, 10.0]) == [False, False, False]
    # No robustness yet, nothing to lose.
    assert catastrophic_overfitting([3.0, 1.0], [5.0, 40.0]) == [False, False]
    with pytest.raises(ValueError):
        catastrophic_overfitting([1.0], [])


def test_catastrophic_overfitting_monitor_logs_and_records(caplog):
    monitor = CatastrophicOverfittingMonitor()
    logged = []
    module = SimpleNamespace(log=lambda key, value, **kw: logged.append((key, value)))
    for epoch, (p, f) in enumerate([(20.0, 30.0), (28.0, 33.0), (1.0, 70.0)]):
        trainer = SimpleNamespace(sanity_checking=False, current_epoch=epoch,
                                  callback_metrics={"val/acc_adv": torch.tensor(p), "val/acc_fgsm": torch.tensor(f)})
        monitor.on_validation_epoch_end(trainer, module)
    assert logged == [("val/catastrophic_overfitting", 0.0)] * 2 + [("val/catastrophic_overfitting", 1.0)]
    assert monitor.results_record(None)["catastrophic_overfitting"]["epochs"] == [2]
    assert "catastrophic overfitting in epoch 2" in caplog.text
    restored = CatastrophicOverfittingMonitor()
    restored.load_state_dict(monitor.state_dict())
    assert restored.state_dict() == monitor.state_dict()


# --- through the app ----------------------------------------------------------------------------
@pytest.mark.parametrize("method", ["trades", "mart", "fast_at"])
def test_each_method_trains_through_the_app_and_is_recorded(method, tmp_path, cifar_root):
    """The tiny real run of test_train.py with `method=<name>`: it trains, evaluates, and
    results.json says which method and which inner attack ran (and its settings)."""
    from tests.test_train import run_tiny

    worst, record = run_tiny(tmp_path, cifar_root, f"method={method}")
    assert record["choices"]["method"] == method and record["method"]["name"] == method
    expected_attack = {"trades": "NoiseStartPGD", "mart": "NoiseStartPGD", "fast_at": "PGD"}[method]
    assert record["train_attack"]["type"] == expected_attack
    assert record["train_attack"]["eps"] == pytest.approx(8 / 255)
    if method == "fast_at":
        assert record["train_attack"]["steps"] == 1
        assert record["train_attack"]["step_size"] == pytest.approx(1.25 * 8 / 255)
    assert 0 <= worst <= record["clean_acc"]
    assert "catastrophic_overfitting" in record and len(record["catastrophic_overfitting"]["val_acc_fgsm"]) == 1


def test_cyclic_schedule_rises_to_lr_at_two_fifths_then_falls_to_zero():
    from robustgen.training.optim import OptimConfig, build_optimizer

    param = nn.Parameter(torch.zeros(1))
    optimizer, schedule = build_optimizer([param], OptimConfig(lr=0.2, schedule="cyclic"), 100, 10)
    lrs = []
    for _ in range(100):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        schedule.step()
    assert lrs[0] == 0.0 and max(lrs) == pytest.approx(0.2) and lrs.index(max(lrs)) == 40
    assert lrs[70] == pytest.approx(0.1) and optimizer.param_groups[0]["lr"] == pytest.approx(0.0)
    with pytest.raises(ConfigError, match="optim.schedule must be one of"):
        OptimConfig(schedule="step")


def test_method_configs_compose_and_fast_at_selects_the_cyclic_schedule():
    from tests.helpers.hydra_helpers import compose_config

    from robustgen.cli import build

    for name, schedule in [("pgd_at", "warmup_cosine"), ("trades", "warmup_cosine"), ("mart", "warmup_cosine"),
                           ("fast_at", "cyclic")]:
        cfg = compose_config([f"method={name}"])
        assert cfg.optim.schedule == schedule, name
        assert build(cfg.method, attack=build(cfg.attack)).name == name
    assert compose_config(["method=fast_at", "optim=adamw"]).optim.schedule == "warmup_cosine"  # user's choice wins
    sweep = compose_config(["+sweep=methods"])
    assert sweep.hydra.sweeper.params.method == "pgd_at,trades,mart,fast_at"


def test_channels_last_module_trains_the_same_model():
    """channels_last changes the memory layout, not the function: one step gives the same loss."""
    from robustgen.training.module import AdversarialClassifier
    from robustgen.training.optim import OptimConfig

    torch.manual_seed(0)
    base = small_cnn()
    x, y = torch.rand(8, 3, 32, 32), torch.randint(0, 10, (8,))
    losses = []
    for layout in (False, True):
        model = small_cnn()
        model.load_state_dict(base.state_dict())
        module = AdversarialClassifier(model, PGD("linf", EPS, steps=1, random_start=False), PGD("linf", EPS),
                                       OptimConfig(), channels_last=layout)
        images = module.layout(x)
        assert images.is_contiguous(memory_format=torch.channels_last) == layout
        losses.append(module.method(module.net, images, y).loss.item())
    assert losses[0] == pytest.approx(losses[1], rel=1e-5)


@pytest.mark.slow  # 34 s: the benchmark itself is `make bench-train`
def test_training_benchmark_runs_and_reports_ratios(cifar_root, capsys):
    from robustgen.bench.__main__ import main
    from robustgen.bench.train_bench import run_train_bench

    lines: list[str] = []
    out = run_train_bench(arch="small", device="cpu", batch_size=8, steps=1, n_batches=1, warmup=1, repeats=2,
                          data_root=str(cifar_root), parts=("overhead", "val_cost"), log=lines.append)
    overhead = out["overhead"]
    pairs = sorted(p / q for p, q in zip(overhead["plain_runs"], overhead["lightning_runs"]))
    assert overhead["pair_ratios"] == pytest.approx(pairs) and len(pairs) == 2
    assert overhead["time_ratio"] == pytest.approx(sum(pairs) / 2)  # the median of two pairs
    assert out["val_cost"]["attacks"] == ["pgd_linf", "pgd_l2", "pgd_l1"] and 0 < out["val_cost"]["share"]
    assert any("time ratio" in line for line in lines)
    assert main(["train", "--parts", "bogus", "--data-root", str(cifar_root)]) == 2
    assert "robustgen: error: --parts: unknown part(s) ['bogus']" in capsys.readouterr().err
