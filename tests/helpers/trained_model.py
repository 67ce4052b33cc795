"""A small adversarially trained CIFAR-10 CNN for the attack tests that need a real model.

Comparing attacks on an untrained network says little: every attack wins on every point. This
trains a 3-conv CNN with "fast" adversarial training (FGSM from a random start, Wong et al. 2020,
ε = 8/255, step 10/255) on the first 5,000 real CIFAR-10 training images, in about 15 s on one
CPU core. It reaches about 39% clean and 25% PGD-ℓ∞ accuracy (first 500 test points): robust
enough that attacks of different strength leave visibly different accuracies.

Trained once per test session (module-level cache, so every test module that imports
:func:`trained_cnn` shares it) and deterministic given the seed.
"""
from __future__ import annotations

import time

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from robustgen.arch.normalize import Normalized
from robustgen.data.cifar10 import MEAN, STD, load_cifar10

N_TRAIN = 5000
EPOCHS = 8
EPS = 8 / 255
_CACHE: dict[str, object] = {}


def small_cnn() -> nn.Module:
    """3×(conv–ReLU–pool) and a linear head, 26k parameters; takes [0, 1] images."""
    net = nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2),
        nn.Flatten(), nn.Linear(256, 10))
    return Normalized(net, MEAN, STD)


def train_small_cnn(cifar_root, *, n_train: int = N_TRAIN, epochs: int = EPOCHS, seed: int = 0) -> nn.Module:
    images, labels = load_cifar10(cifar_root, "train", download=False)
    x_all, y_all = images[:n_train].float() / 255, labels[:n_train]
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = small_cnn()
    steps_per_epoch = (n_train + 127) // 128
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4, nesterov=True)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.1, total_steps=epochs * steps_per_epoch)
    model.train()
    for _ in range(epochs):
        order = torch.randperm(n_train, generator=gen)
        for start in range(0, n_train, 128):
            batch = order[start:start + 128]
            x, y = x_all[batch], y_all[batch]
            if torch.rand((), generator=gen) < 0.5:  # horizontal flip, half of the batches
                x = x.flip(3)
            delta = ((torch.rand(x.shape, generator=gen) * 2 - 1) * EPS).requires_grad_(True)
            loss = F.cross_entropy(model((x + delta).clamp(0, 1)), y)
            (grad,) = torch.autograd.grad(loss, delta)
            delta = (delta.detach() + 1.25 * EPS * grad.sign()).clamp(-EPS, EPS)
            x_adv = (x + delta).clamp(0, 1)
            opt.zero_grad()
            F.cross_entropy(model(x_adv), y).backward()
            opt.step()
            sched.step()
    return model.eval()


class single_thread:
    """Run torch on one thread inside the block. On a CPU shared with other jobs, two threads
    spin-waiting for each other made this training 6× slower (98 s vs 16 s) than one thread;
    one thread also makes the trained weights independent of the machine's core count."""

    def __enter__(self):
        self.before = torch.get_num_threads()
        torch.set_num_threads(1)

    def __exit__(self, *exc):
        torch.set_num_threads(self.before)


def trained_cnn(cifar_root) -> nn.Module:
    """The session's trained CNN (trained on first use)."""
    if "model" not in _CACHE:
        start = time.perf_counter()
        with single_thread():
            _CACHE["model"] = train_small_cnn(cifar_root)
        _CACHE["seconds"] = time.perf_counter() - start
    return _CACHE["model"]


@pytest.fixture(scope="session")
def robust_cnn(cifar_root) -> nn.Module:
    return trained_cnn(cifar_root)


@pytest.fixture
def one_thread():
    """For tests that attack the trained model: see :class:`single_thread`."""
    with single_thread():
        yield
