"""Shared fixtures: real CIFAR-10 from ../shared (prepared once per session), CPU-only settings."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import robustgen.cli  # noqa: F401,E402  (registers the resolvers conf/ uses: tests load its YAML files directly)

REPO = Path(__file__).resolve().parents[1]
SHARED_CIFAR = REPO.parent / "shared" / "data" / "cifar10"

torch.set_num_threads(max(1, min(2, torch.get_num_threads())))
if os.environ.get("PYTEST_XDIST_WORKER"):
    # `make test` runs two pytest-xdist workers on the CI's two cores: one thread each, and one for
    # the programs they start (threads spin-waiting for a busy core made runs up to 5× slower).
    os.environ.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def cifar_root(tmp_path_factory) -> Path:
    """A folder holding `cifar-10-batches-py/`: the repo's ./data if prepared, else made from the pack."""
    if (REPO / "data" / "cifar-10-batches-py" / "test_batch").is_file():
        return REPO / "data"
    script = SHARED_CIFAR / "prepare_cifar10.py"
    if not script.is_file():
        pytest.skip(f"no CIFAR-10 in {REPO / 'data'} and no pack at {SHARED_CIFAR}")
    root = tmp_path_factory.mktemp("cifar")
    subprocess.run([sys.executable, str(script), str(root)], check=True, capture_output=True)
    return root


@pytest.fixture(scope="session")
def cifar_test_points(cifar_root):
    """The first 512 CIFAR-10 test images in [0, 1] with labels and ids."""
    from robustgen.data.cifar10 import load_cifar10

    images, labels = load_cifar10(cifar_root, "test", download=False)
    return images[:512].float() / 255, labels[:512], torch.arange(512)


@pytest.fixture(scope="session")
def robust_cnn(cifar_root):
    """The small adversarially trained CNN of tests/helpers/trained_model.py (trained once per run)."""
    from tests.helpers.trained_model import trained_cnn

    return trained_cnn(cifar_root)


@pytest.fixture
def one_thread():
    """For tests that attack the trained model: see tests/helpers/trained_model.py's single_thread."""
    from tests.helpers.trained_model import single_thread

    with single_thread():
        yield
