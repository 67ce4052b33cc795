"""Faults replayed from the field's bug reports, each kind with the example that showed it:
a diverged (NaN) training run, an evaluation silently capping the points asked for, models that
return more than the logits, and attacks that cannot run on a model with few classes.
(Sweeps that go on past a failed job: tests/test_multirun.py; DDP validation: tests/test_ddp.py.)"""
from __future__ import annotations

import subprocess
import sys

import lightning as L
import pytest
import torch
from torch import nn

from robustgen.arch import LogitsOf
from robustgen.attack import APGD, PGD, AutoAttack, Square
from robustgen.errors import CheckpointError, ConfigError, TrainingDiverged
from robustgen.eval import EvalSettings, SanitySettings, run_evaluation
from robustgen.eval.sanity import zero_gradient_fraction
from robustgen.training.guard import NonFiniteGuard
from robustgen.training.resume import RunCheckpoint
from tests.helpers.hydra_helpers import TINY

X = torch.rand(4, 3, 2, 2)
Y = torch.tensor([0, 1, 2, 0])


class Points(torch.utils.data.Dataset):
    def __init__(self, n: int = 8, size: int = 2):
        gen = torch.Generator().manual_seed(0)
        self.x, self.y = torch.rand(n, 3, size, size, generator=gen), torch.arange(n) % 3

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return self.x[i], self.y[i], i


def linear(classes: int = 3) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(12, classes))


# --- a NaN loss ----------------------------------------------------------------------------------
class Diverging(L.LightningModule):
    """A linear classifier whose loss becomes NaN at batch `bad` of epoch 1 (the second)."""

    def __init__(self, bad: int):
        super().__init__()
        self.net, self.bad = linear(), bad

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = nn.functional.cross_entropy(self.net(x), y)
        if self.current_epoch == 1 and batch_idx == self.bad:
            loss = loss * torch.tensor(float("nan"))
        self.last_train_loss = loss.detach()
        return loss

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def test_the_first_nan_loss_stops_training_and_no_nan_reaches_a_checkpoint(tmp_path):
    data = torch.utils.data.TensorDataset(torch.rand(32, 3, 2, 2), torch.arange(32) % 3)
    module = Diverging(bad=2)
    last = RunCheckpoint(dirpath=tmp_path, filename="last", monitor=None, save_top_k=1, enable_version_counter=False)
    trainer = L.Trainer(max_epochs=3, accelerator="cpu", logger=False, enable_progress_bar=False,
                        enable_model_summary=False, callbacks=[NonFiniteGuard(), last], default_root_dir=tmp_path)
    with pytest.raises(TrainingDiverged, match=r"at epoch 1, batch 2: .*training loss was nan.*optim\.lr"):
        trainer.fit(module, torch.utils.data.DataLoader(data, batch_size=8))
    assert all(torch.isfinite(p).all() for p in module.parameters())  # the NaN step was not taken
    saved = torch.load(tmp_path / "last.ckpt", weights_only=True)  # epoch 0's, the last finished one
    assert saved["epoch"] == 0 and all(torch.isfinite(t).all() for t in saved["state_dict"].values())


def test_a_checkpoint_with_nan_weights_is_never_written(tmp_path):
    module = Diverging(bad=0)
    with torch.no_grad():
        module.net[1].weight[0, 0] = float("nan")
    trainer = L.Trainer(max_epochs=1, logger=False, enable_progress_bar=False, default_root_dir=tmp_path)
    trainer.strategy.connect(module)
    checkpoint = RunCheckpoint(dirpath=tmp_path, filename="last", monitor=None)
    with pytest.raises(TrainingDiverged, match="1 weight"):
        checkpoint._save_checkpoint(trainer, str(tmp_path / "last.ckpt"))
    assert not (tmp_path / "last.ckpt").exists()


def test_the_cli_stops_a_diverging_run_in_one_line(tmp_path, cifar_root):
    """The report's example: `optim.lr=1e8`. One line naming the epoch and batch and what to try,
    exit 2, no results.json and no checkpoint of NaN weights."""
    out = tmp_path / "run"
    done = subprocess.run([sys.executable, "-m", "robustgen", *TINY, "optim.lr=1e8", f"data.root={cifar_root}",
                           f"hydra.run.dir={out}"], capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert done.returncode == 2, done.stderr[-2000:]
    error = [line for line in done.stderr.splitlines() if line.startswith("robustgen: error:")]
    assert len(error) == 1 and "training diverged at epoch 0, batch" in error[0] and "optim.lr" in error[0]
    assert "Traceback" not in done.stderr and not (out / "results.json").exists()
    for ckpt in out.rglob("*.ckpt"):
        assert all(torch.isfinite(t).all() for t in torch.load(ckpt, weights_only=True)["state_dict"].values())


def test_nan_weights_are_refused_by_the_evaluation_and_the_checkpoint_reader(tmp_path):
    model = linear()
    with torch.no_grad():
        model[1].weight.fill_(float("nan"))
    settings = EvalSettings(n_points=8, batch_size=8, sanity=SanitySettings(enabled=False))
    with pytest.raises(ConfigError, match="logits are NaN or infinite on 4 of 4 images"):
        run_evaluation(model, Points(), {"pgd": PGD(eps=0.1, steps=1, step_size=0.1)}, settings, output_dir=None,
                       progress=False)
    from robustgen.record.checkpoint import load_model

    state = {f"model.{k}": v for k, v in _vgg_state_with_a_nan().items()}
    torch.save({"state_dict": state, "hyper_parameters": {"arch": {"name": "vgg", "depth": 11, "width": 0.0625},
                                                          "data": {"num_classes": 10, "img_size": 32}}},
               tmp_path / "nan.ckpt")
    with pytest.raises(CheckpointError, match="NaN or infinite weight"):
        load_model(tmp_path / "nan.ckpt")


def _vgg_state_with_a_nan() -> dict:
    from robustgen.arch import create_arch

    state = create_arch("vgg", depth=11, width=0.0625).state_dict()
    first = next(k for k, v in state.items() if v.is_floating_point())
    state[first] = state[first].clone().fill_(float("nan"))
    return state


def test_zero_gradients_counts_nan_gradients_as_a_failure():
    """NaN ≠ 0: all-NaN input gradients used to pass as "no zero gradients"."""
    model = linear()
    with torch.no_grad():
        model[1].weight.fill_(float("nan"))
    assert zero_gradient_fraction(model, X, Y) == 1.0


# --- points asked for --------------------------------------------------------------------------
def test_more_points_than_the_test_set_has_are_refused_before_any_work():
    settings = EvalSettings(n_points=20000, batch_size=8, sanity=SanitySettings(enabled=False))
    with pytest.raises(ConfigError, match=r"eval.n_points=20000 but the test set has 8 images"):
        run_evaluation(linear(), Points(), {"pgd": PGD(eps=0.1, steps=1, step_size=0.1)}, settings, output_dir=None,
                       progress=False)


# --- models that return more than the logits -----------------------------------------------------
class TupleOut(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = linear()

    def forward(self, x):
        return self.net(x), x.flatten(1)


class DictOut(TupleOut):
    def forward(self, x):
        return {"logits": self.net(x), "features": x.flatten(1)}


@pytest.mark.parametrize("model, fix", [(TupleOut(), "LogitsOf(model, 0)"), (DictOut(), "LogitsOf(model, 'logits')")])
def test_a_model_returning_a_tuple_or_dict_is_named_with_the_way_out(model, fix):
    for attack in (PGD(eps=0.1, steps=1, step_size=0.1), Square(eps=0.1, n_queries=5)):
        with pytest.raises(ConfigError, match=fix.replace("(", r"\(").replace(")", r"\)")):
            attack(model, X, Y)
    settings = EvalSettings(n_points=8, batch_size=8, sanity=SanitySettings(enabled=False))
    with pytest.raises(ConfigError, match="not one logits tensor"):
        run_evaluation(model, Points(), {"pgd": PGD(eps=0.1, steps=1, step_size=0.1)}, settings, output_dir=None,
                       progress=False)
    wrapped = LogitsOf(model, "logits" if isinstance(model, DictOut) else 0)
    assert torch.equal(wrapped(X), model.net(X))
    x_adv = PGD(eps=0.1, steps=2, step_size=0.05)(wrapped, X, Y)
    assert (x_adv - X).abs().max() <= 0.1 + 1e-6


# --- attacks that need more classes ---------------------------------------------------------------
def test_autoattack_on_three_classes_is_refused_before_its_first_component_runs(monkeypatch):
    """The report's example: a 3-class linear model and four 3×2×2 inputs. APGD-T's targeted DLR
    loss compares four logits: refused in one line naming the components that can run."""
    attack = AutoAttack(norm="linf", eps=8 / 255)
    ran = []
    monkeypatch.setattr(attack.components["apgd-ce"], "perturb", lambda *a, **k: ran.append(1))
    with pytest.raises(ConfigError, match=r"needs at least 4 classes.*this model has 3.*components=\[apgd-ce,fab-t,square\]"):
        attack(linear(3), X, Y)
    assert ran == []
    custom = AutoAttack(norm="linf", eps=8 / 255, version="custom", components=["apgd-ce", "square"])
    assert custom(linear(3), X, Y).shape == X.shape


@pytest.mark.parametrize("attack, classes", [(APGD(loss="dlr", steps=2), 3), (AutoAttack("l1", 12.0), 4)])
def test_every_attack_states_the_classes_it_needs(attack, classes):
    from robustgen.attack.base import check_classes

    check_classes({"a": attack}, classes)  # enough
    with pytest.raises(ConfigError, match=f"needs at least {classes} classes"):
        check_classes({"a": attack}, classes - 1)
    with pytest.raises(ConfigError, match=f"needs at least {classes} classes"):
        attack(linear(classes - 1), X, torch.tensor([0, 1, 0, 1]))


def test_the_evaluation_refuses_an_attack_set_the_classes_cannot_carry():
    settings = EvalSettings(n_points=8, batch_size=8, sanity=SanitySettings(enabled=False))
    with pytest.raises(ConfigError, match=r"eval.attacks.aa: AutoAttack needs at least 4 classes"):
        run_evaluation(linear(3), Points(), {"pgd": PGD(eps=0.1, steps=1, step_size=0.1),
                                             "aa": AutoAttack("linf", 8 / 255)}, settings, output_dir=None,
                       progress=False)


def test_the_cli_refuses_more_points_than_the_test_set_before_training(tmp_path, cifar_root):
    out = tmp_path / "run"
    done = subprocess.run([sys.executable, "-m", "robustgen", *TINY, "eval.n_points=20000", f"data.root={cifar_root}",
                           f"hydra.run.dir={out}"], capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert done.returncode == 2, done.stderr[-2000:]
    assert "robustgen: error: eval.n_points=20000 but the test set has 10000 images" in done.stderr
    assert not out.exists()  # refused before any work: not even a run folder is left
