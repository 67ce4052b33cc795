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

import torch
import torch.nn.functional as F
from torch import nn

from robustgen.bench.small_model import small_cnn as bench_small_cnn
from robustgen.bench.small_model import train_small_cnn as bench_train_small_cnn
from tests.helpers.shared_files import shared_path

N_TRAIN = 5000
EPOCHS = 8
EPS = 8 / 255
_CACHE: dict[str, object] = {}


def small_cnn() -> nn.Module:
    """3×(conv–ReLU–pool) and a linear head, 26k parameters; takes [0, 1] images."""
    return bench_small_cnn(16, batch_norm=False)


def train_small_cnn(cifar_root, *, n_train: int = N_TRAIN, epochs: int = EPOCHS, seed: int = 0) -> nn.Module:
    """The benchmarks' training loop with fast AT (Wong et al. 2020): FGSM from a random start
    drawn from the loop's generator, step 1.25·ε, on the model in train mode."""
    return bench_train_small_cnn(cifar_root, n_train=n_train, epochs=epochs, seed=seed, make_model=small_cnn,
                                 attack=fgsm_from_random_start, log=lambda *_: None)


def fgsm_from_random_start(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    gen = bench_train_small_cnn.generator
    delta = ((torch.rand(x.shape, generator=gen) * 2 - 1) * EPS).requires_grad_(True)
    loss = F.cross_entropy(model((x + delta).clamp(0, 1)), y)
    (grad,) = torch.autograd.grad(loss, delta)
    delta = (delta.detach() + 1.25 * EPS * grad.sign()).clamp(-EPS, EPS)
    return (x + delta).clamp(0, 1)


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
    """The session's trained CNN (trained on first use). Under pytest-xdist the first worker to
    need it trains it and the others load its weights (the training is deterministic: same weights)."""
    if "model" not in _CACHE:
        start = time.perf_counter()
        with single_thread(), shared_path(f"trained_cnn_{N_TRAIN}_{EPOCHS}.pt") as path:
            if path is not None and path.is_file():
                model = small_cnn()
                model.load_state_dict(torch.load(path, weights_only=True))
                _CACHE["model"] = model.eval()
            else:
                _CACHE["model"] = train_small_cnn(cifar_root)
                if path is not None:
                    torch.save(_CACHE["model"].state_dict(), path)
        _CACHE["seconds"] = time.perf_counter() - start
    return _CACHE["model"]
