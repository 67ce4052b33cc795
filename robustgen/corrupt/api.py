"""Corrupting images: CIFAR-10-C (32×32, the table of params.py) and ImageNet-C (224 px, the package's own).

Randomness. Every random corruption draws an image's numbers from that image's own generator,
`image_rng(seed, corruption, severity, index)` = NumPy's PCG64 seeded by the SeedSequence of
(seed, corruption index in CORRUPTIONS, severity, index of the image in the test set). So a
generated file does not depend on how the work was split into chunks or processes, and any single
image of it can be recomputed alone: `corrupt_as_cifar10c(images[i:i+1], name, s, seed, start=i)`.
"""
from __future__ import annotations

import contextlib
import functools
from typing import Callable, Sequence

import numpy as np

from robustgen.corrupt.params import CORRUPTIONS, IMAGE_SIZE, SEVERITIES, params
from robustgen.errors import ConfigError

# The corruptions that draw random numbers; the others are deterministic functions of the image.
RANDOM = frozenset({"gaussian_noise", "shot_noise", "impulse_noise", "glass_blur", "motion_blur",
                    "snow", "frost", "fog", "elastic_transform"})


@functools.lru_cache(maxsize=None)
def _functions() -> dict[str, Callable]:
    # imported on first use: cv2, scikit-image and numba (via imagecorruptions) take a second to load,
    # and `from robustgen.corrupt import CORRUPTIONS` should not pay for them
    from robustgen.corrupt import noise_blur, weather_digital

    return {name: getattr(noise_blur, name, None) or getattr(weather_digital, name) for name in CORRUPTIONS}


def check(name: str, severity: int) -> None:
    """Raise ConfigError naming the valid choices if `name` or `severity` is not one of them."""
    if name not in CORRUPTIONS:
        raise ConfigError(f"unknown corruption {name!r}; choose from: {', '.join(CORRUPTIONS)}")
    if severity not in SEVERITIES:
        raise ConfigError(f"severity must be one of {', '.join(map(str, SEVERITIES))}, got {severity!r}")


def image_rng(seed: int, name: str, severity: int, index: int) -> np.random.Generator:
    """The generator of image `index` (its position in the test set) in cell (name, severity)."""
    return np.random.default_rng([int(seed), CORRUPTIONS.index(name), int(severity), int(index)])


def _check_images(images: np.ndarray, batch: bool) -> None:
    shape = (IMAGE_SIZE, IMAGE_SIZE, 3)
    ok = isinstance(images, np.ndarray) and images.dtype == np.uint8 and images.shape[int(batch):] == shape
    if not ok or images.ndim != len(shape) + int(batch):
        found = f"{images.dtype} {images.shape}" if isinstance(images, np.ndarray) else type(images).__name__
        want = "N×32×32×3" if batch else "32×32×3"
        raise ConfigError(f"expected uint8 images {want} (H×W×C, values 0-255), found {found}; the CIFAR-10-C "
                          f"parameters are for 32×32 images (use corrupt_imagenet for 224 px)")


def corrupt_batch(images: np.ndarray, name: str, severity: int,
                  rngs: Sequence[np.random.Generator] | None = None) -> np.ndarray:
    """Corrupt uint8 images N×32×32×3 with the CIFAR-10-C parameters; `rngs`: one Generator per
    image (needed by the corruptions in RANDOM, ignored by the others). Returns uint8 N×32×32×3."""
    check(name, severity)
    _check_images(images, batch=True)
    if name in RANDOM:
        if rngs is None or len(rngs) != len(images):
            raise ConfigError(f"{name} is random: pass one numpy Generator per image "
                              f"({len(images)} images, got {'none' if rngs is None else len(rngs)})")
    if len(images) == 0:
        return images.copy()
    return _functions()[name](images, params(name, severity), rngs)


def corrupt(image: np.ndarray, name: str, severity: int, rng: np.random.Generator | int | None = None) -> np.ndarray:
    """Corrupt one uint8 32×32×3 image (H×W×C) with the CIFAR-10-C parameters of (name, severity);
    `rng`: a numpy Generator or an int seed (needed by the random corruptions)."""
    _check_images(image, batch=False)
    if rng is not None and not isinstance(rng, np.random.Generator):
        rng = np.random.default_rng(rng)
    return corrupt_batch(image[None], name, severity, None if rng is None else [rng])[0]


def corrupt_as_cifar10c(images: np.ndarray, name: str, severity: int, seed: int, start: int = 0) -> np.ndarray:
    """Corrupt test images start, start+1, ... exactly as `python -m robustgen.corrupt --seed seed`
    writes them: the rows [start, start+N) of severity `severity` in `<name>.npy`."""
    rngs = [image_rng(seed, name, severity, start + i) for i in range(len(images))] if name in RANDOM else None
    return corrupt_batch(images, name, severity, rngs)


@contextlib.contextmanager
def _global_numpy_seed(seed: int):
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        yield
    finally:
        np.random.set_state(state)


def corrupt_imagenet(image: np.ndarray, name: str, severity: int, seed: int) -> np.ndarray:
    """Corrupt one uint8 H×W×3 image (ImageNet-sized, e.g. 224 px) with the ImageNet-C parameters:
    the `imagecorruptions` package's own function for `name`. The package draws from NumPy's global
    generator (seeded here with `seed`, and restored afterwards) and takes a seed argument for glass
    blur and impulse noise (given `seed`), so the same seed gives the same image."""
    check(name, severity)
    if not (0 <= int(seed) < 2**32):
        raise ConfigError(f"seed must lie in [0, 2**32), got {seed}")
    from imagecorruptions import corrupt as package_corrupt

    extra = {"seed": int(seed)} if name in ("glass_blur", "impulse_noise") else {}
    with _global_numpy_seed(int(seed)):
        return np.asarray(package_corrupt(np.asarray(image), severity=severity, corruption_name=name, **extra),
                          dtype=np.uint8)
