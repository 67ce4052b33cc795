"""A small PGD-trained CIFAR-10 CNN for benchmarks, trained in-process in 1.5–3 minutes on 2 CPU cores.

Timing an evaluation on an untrained network says little: every attack breaks every point at once,
so a cascade has nothing to skip. This trains a 3-conv CNN (~100k parameters) with short PGD-ℓ∞
adversarial training (ε = 8/255, 2 steps of 10/255 from a random start, our own PGD) on the first
`n_train` real CIFAR-10 training images: about 49% clean, 30% PGD-ℓ∞ and 20% PGD-ℓ2 (ε = 1.5)
accuracy on the first 300 test points. Unlike the study's large models, whose PGD-ℓ2 accuracy is
far below their ℓ∞ one, such a small model is about as weak in every norm — which limits what a
cascade can skip (docs/benchmarks.md).
"""
from __future__ import annotations

import time
from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from robustgen.arch.normalize import Normalized
from robustgen.attack import PGD
from robustgen.data.cifar10 import MEAN, STD, load_cifar10


def small_cnn(width: int = 32, batch_norm: bool = True) -> nn.Module:
    """3×(conv–[BN–]ReLU–pool) and a linear head; takes [0, 1] images. The benchmarks' model is
    the default; the tests' is `small_cnn(16, batch_norm=False)` (26k parameters)."""
    w, norm = width, (nn.BatchNorm2d if batch_norm else lambda _: nn.Identity())
    net = nn.Sequential(
        nn.Conv2d(3, w, 3, padding=1), norm(w), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(w, 2 * w, 3, padding=1), norm(2 * w), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(2 * w, 4 * w, 3, padding=1), norm(4 * w), nn.ReLU(), nn.AdaptiveAvgPool2d(2),
        nn.Flatten(), nn.Linear(16 * w, 10))
    return Normalized(net, MEAN, STD)


def train_small_cnn(cifar_root: str, *, n_train: int = 10000, epochs: int = 6, batch_size: int = 128,
                    pgd_steps: int = 2, eps: float = 8 / 255, seed: int = 0,
                    make_model: Callable[[], nn.Module] = small_cnn,
                    attack: Callable[[nn.Module, Tensor, Tensor], Tensor] | None = None, log=print) -> nn.Module:
    """Adversarial training (loss on adversarial examples only, as the study trains) of the model
    `make_model()` builds after seeding, with `attack(model, x, y) -> x_adv` (default: PGD-ℓ∞ of
    `pgd_steps` steps of 2.5·ε/steps from a random start; the tests train with fast AT). SGD with
    Nesterov momentum and a one-cycle learning rate up to 0.1; half of the batches flipped. Random
    numbers: torch's global generator seeded with `seed`, and `train_small_cnn.generator` (order,
    flips), which an `attack` may draw from too."""
    start = time.perf_counter()
    images, labels = load_cifar10(cifar_root, "train", download=False)
    x_all, y_all = images[:n_train].float() / 255, labels[:n_train]
    gen = torch.Generator().manual_seed(seed)
    train_small_cnn.generator = gen
    torch.manual_seed(seed)
    model = make_model()
    attack = attack or PGD("linf", eps=eps, steps=pgd_steps, step_size=2.5 * eps / pgd_steps, random_start=True)
    steps_per_epoch = (n_train + batch_size - 1) // batch_size
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4, nesterov=True)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.1, total_steps=epochs * steps_per_epoch)
    model.train()
    for epoch in range(epochs):
        order = torch.randperm(n_train, generator=gen)
        for k in range(0, n_train, batch_size):
            batch = order[k:k + batch_size]
            x, y = x_all[batch], y_all[batch]
            if torch.rand((), generator=gen) < 0.5:  # horizontal flip on half of the batches
                x = x.flip(3)
            x_adv = attack(model, x, y)  # a robustgen Attack runs the model in eval mode, then restores train mode
            loss = F.cross_entropy(model(x_adv), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
        log(f"  epoch {epoch + 1}/{epochs}: adversarial loss {loss.item():.3f} "
            f"({time.perf_counter() - start:.0f} s)")
    return model.eval()
