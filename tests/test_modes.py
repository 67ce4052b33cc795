"""Train/eval modes are restored per submodule, not wholesale: a BatchNorm the user froze
(`model.bn.eval()` in a training model) stays frozen through attacks, sanity checks and the
sparsity monitor, also when an attack raises; with eval_mode=False the attack runs the model in
exactly the modes the caller set."""
from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from robustgen.attack import APGD, APGDT, FAB, PGD, AutoAttack, NoAttack, Square
from robustgen.eval.sanity import SanitySettings, run_sanity_checks, zero_gradient_fraction
from robustgen.modes import eval_mode, preserved_modes
from robustgen.sparsity import SparsityMonitor

pytestmark = pytest.mark.usefixtures("one_thread")


class Net(nn.Module):
    """Two BatchNorms (one to freeze) and a dropout; forward pre-hooks record the flags each sees."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.bn_frozen, self.bn_live = nn.BatchNorm2d(4), nn.BatchNorm2d(4)
        self.drop = nn.Dropout(0.1)
        self.head = nn.Linear(4 * 4 * 4, 10)
        self.seen: list[tuple[bool, bool, bool]] = []
        self.bn_frozen.register_forward_pre_hook(lambda *_: self.seen.append(
            (self.bn_frozen.training, self.bn_live.training, self.drop.training)))

    def forward(self, x):
        h = self.bn_live(self.bn_frozen(self.conv(x))).relu()
        return self.head(self.drop(nn.functional.avg_pool2d(h, 8).flatten(1)))


def frozen_net() -> Net:
    net = Net().train()
    net.bn_frozen.eval()
    return net


def flags(model: nn.Module) -> dict[str, bool]:
    return {name: m.training for name, m in model.named_modules()}


def shrunk_autoattack(norm: str, eps: float, **kwargs) -> AutoAttack:
    attack = AutoAttack(norm, eps, **kwargs)
    for component in attack.components.values():
        for name, most in {"steps": 3, "n_queries": 10, "n_restarts": 1, "n_target_classes": 2}.items():
            if hasattr(component, name):
                setattr(component, name, min(getattr(component, name), most))
    return attack


ATTACKS = {
    "pgd_linf": lambda **kw: PGD("linf", 8 / 255, steps=2, step_size=2 / 255, **kw),
    "pgd_l2": lambda **kw: PGD("l2", 0.5, steps=2, step_size=0.2, **kw),
    "pgd_l1_study": lambda **kw: PGD("l1", 12.0, steps=2, step_size=4.0, l1_variant="study", **kw),
    "pgd_l1_strong": lambda **kw: PGD("l1", 12.0, steps=2, step_size=4.0, l1_variant="strong", **kw),
    "apgd_linf": lambda **kw: APGD("linf", 8 / 255, steps=2, **kw),
    "apgd_l1": lambda **kw: APGD("l1", 12.0, steps=2, **kw),
    "apgdt_l2": lambda **kw: APGDT("l2", 0.5, steps=2, n_target_classes=2, **kw),
    "apgdt_l1": lambda **kw: APGDT("l1", 12.0, steps=2, n_target_classes=2, **kw),
    "fab_linf": lambda **kw: FAB("linf", 8 / 255, steps=2, n_target_classes=2, **kw),
    "square_linf": lambda **kw: Square("linf", 8 / 255, n_queries=10, **kw),
    "autoattack_linf": lambda **kw: shrunk_autoattack("linf", 8 / 255, **kw),
    "autoattack_l1": lambda **kw: shrunk_autoattack("l1", 12.0, **kw),
}


def batch(n: int = 4):
    gen = torch.Generator().manual_seed(1)
    return torch.rand(n, 3, 32, 32, generator=gen), torch.randint(0, 10, (n,), generator=gen), torch.arange(n)


# --- the helper ------------------------------------------------------------------------------------
def test_eval_mode_sets_eval_and_restores_each_flag_even_on_error():
    net = frozen_net()
    before = flags(net)
    with pytest.raises(RuntimeError, match="boom"), eval_mode(net):
        assert not any(flags(net).values())
        raise RuntimeError("boom")
    assert flags(net) == before and net.training and not net.bn_frozen.training


def test_preserved_modes_restores_what_the_block_changed():
    net = frozen_net()
    before = flags(net)
    with preserved_modes(net):
        net.train()  # wholesale, as torchattacks would
    assert flags(net) == before


# --- attacks -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("eval_mode_flag", [True, False], ids=["eval_mode", "caller_modes"])
@pytest.mark.parametrize("name", list(ATTACKS))
def test_attack_restores_every_submodule_mode(name, eval_mode_flag):
    net, (x, y, ids) = frozen_net(), batch()
    with torch.no_grad():  # labels the model gets right, so every AutoAttack component has work
        y = net.eval()(x).argmax(1)
    net.train().bn_frozen.eval()
    before = flags(net)
    net.seen.clear()
    ATTACKS[name](eval_mode=eval_mode_flag)(net, x, y, example_ids=ids)
    assert flags(net) == before
    assert net.seen, "the attack ran the model"
    # During the attack: all eval, or exactly the caller's modes (frozen BN eval, live BN and dropout train).
    expected = (False, False, False) if eval_mode_flag else (False, True, True)
    assert set(net.seen) == {expected}


def test_issue_example_frozen_batchnorm_stays_frozen_through_pgd_training():
    """The report: `model.bn.eval()`, then PGD-AT with the training attack of conf/attack/pgd_linf.yaml;
    after the first attack the frozen BatchNorm was back in train mode and its statistics moved."""
    from pathlib import Path

    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    import robustgen  # noqa: F401  (registers the ${div:} resolver)

    attack = instantiate(OmegaConf.load(Path(__file__).resolve().parents[1] / "conf" / "attack" / "pgd_linf.yaml"))
    attack.steps = 2
    net, (x, y, _) = frozen_net(), batch(8)
    frozen_stats = net.bn_frozen.running_mean.clone()
    live_stats = net.bn_live.running_mean.clone()
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    for _ in range(3):
        x_adv = attack(net, x, y)
        assert net.training and not net.bn_frozen.training and net.bn_live.training and net.drop.training
        loss = nn.functional.cross_entropy(net(x_adv), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert torch.equal(net.bn_frozen.running_mean, frozen_stats)
    assert not torch.equal(net.bn_live.running_mean, live_stats)


def test_no_attack_leaves_modes_alone():
    net, (x, y, _) = frozen_net(), batch()
    before = flags(net)
    NoAttack()(net, x, y)
    assert flags(net) == before


class Explodes(nn.Module):
    def forward(self, x):
        raise RuntimeError("model failed")


@pytest.mark.parametrize("eval_mode_flag", [True, False], ids=["eval_mode", "caller_modes"])
@pytest.mark.parametrize("name", ["pgd_linf", "apgd_linf", "apgd_l1", "square_linf", "autoattack_linf"])
def test_modes_are_restored_when_the_attack_raises(name, eval_mode_flag):
    net = nn.Sequential(frozen_net(), nn.Dropout(0.1), Explodes()).train()
    net[0].bn_frozen.eval()
    before = flags(net)
    x, y, ids = batch()
    with pytest.raises(RuntimeError, match="model failed"):
        ATTACKS[name](eval_mode=eval_mode_flag)(net, x, y, example_ids=ids)
    assert flags(net) == before


# --- sanity checks and the sparsity monitor ----------------------------------------------------------
def test_sanity_checks_preserve_per_module_modes():
    net, (x, y, ids) = frozen_net(), batch(8)
    before = flags(net)
    zero_gradient_fraction(net, x, y)
    assert flags(net) == before
    settings = SanitySettings(n_points=8, batch_size=8, huge_eps_steps=2, square_queries=10)
    attacks = {"pgd_linf": ATTACKS["pgd_linf"](), "pgd_l1": ATTACKS["pgd_l1_strong"]()}
    names = {f.name for f in run_sanity_checks(net, x, y, ids, attacks, settings)}
    assert {"huge_eps/linf", "zero_gradients", "black_box/linf"} <= names
    assert flags(net) == before


def test_sparsity_monitor_preserves_per_module_modes():
    from robustgen.arch import create_arch

    torch.manual_seed(0)
    model = create_arch("vit", embed_dim=16, depth=1, num_heads=2).train()
    model.net.blocks[0].attn.eval()  # a part frozen by the user
    before = flags(model)
    x, y, ids = batch(8)
    subset = TensorDataset(x, y, ids)
    datamodule = SimpleNamespace(train_eval_dataset=lambda n: subset, eval_batch_size=8,
                                 train_dataloader=lambda: SimpleNamespace(dataset=range(100)))
    trainer = SimpleNamespace(current_epoch=0, max_epochs=1, global_step=1, datamodule=datamodule,
                              callback_metrics={"val/acc_adv": torch.tensor(10.0)})
    pl_module = SimpleNamespace(model=model, val_attack=ATTACKS["pgd_linf"](), device=torch.device("cpu"),
                                log=lambda *args, **kwargs: None)
    monitor = SparsityMonitor(train_points=8, margin=1.0)
    monitor.on_train_epoch_end(trainer, pl_module)
    assert "gap/robust" in monitor.history[-1]
    assert flags(model) == before
    record = monitor.results_record(model)  # measures ‖X‖_F of block inputs in eval mode
    assert record["bound"]["blocks"][0]["x_fro"] > 0
    assert flags(model) == before
