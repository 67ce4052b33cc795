"""The CIFAR-10-C parameter table: 15 corruptions × 5 severities, tuned for 32×32 images.

Values are those of the authors' generator (hendrycks/robustness, `ImageNet-C/create_c/make_cifar_c.py`),
as listed in /work/shared/reference/CIFAR10C.md; they are NOT the ImageNet-C values of the
`imagecorruptions` package (those are for 224 px and wreck a 32×32 image at severity 1).
Pixel values are in [0, 255] unless a comment says [0, 1]. This file is the one place to read them;
`params_hash()` fingerprints it for the manifest.
"""
from __future__ import annotations

import hashlib
import json

import numpy as np

# Official order of the files and of the paper's tables.
CORRUPTIONS: tuple[str, ...] = (
    "gaussian_noise", "shot_noise", "impulse_noise",
    "defocus_blur", "glass_blur", "motion_blur", "zoom_blur",
    "snow", "frost", "fog", "brightness",
    "contrast", "elastic_transform", "pixelate", "jpeg_compression",
)
SEVERITIES: tuple[int, ...] = (1, 2, 3, 4, 5)
IMAGE_SIZE = 32

PARAMS: dict[str, tuple] = {
    # σ of N(0, σ²) added to x in [0, 1]
    "gaussian_noise": (0.04, 0.06, 0.08, 0.09, 0.10),
    # λ: Poisson(x·λ)/λ on x in [0, 1]
    "shot_noise": (500, 250, 100, 75, 50),
    # fraction of values replaced by salt or pepper (scikit-image random_noise mode="s&p")
    "impulse_noise": (0.01, 0.02, 0.03, 0.05, 0.07),
    # (disk radius in px, σ of the 3×3 Gaussian that anti-aliases the disk)
    "defocus_blur": ((0.3, 0.4), (0.4, 0.5), (0.5, 0.6), (1, 0.2), (1.5, 0.1)),
    # (Gaussian σ in px, max shift in px, iterations of the local pixel shuffle)
    "glass_blur": ((0.05, 1, 1), (0.25, 1, 1), (0.4, 1, 1), (0.25, 1, 2), (0.4, 1, 2)),
    # ImageMagick motion blur (radius px, σ px); angle ~ U(-45°, 45°)
    "motion_blur": ((6, 1), (6, 1.5), (6, 2), (8, 2), (9, 2.5)),
    # zoom factors np.arange(start, stop, step), exactly as the official generator calls it: float
    # round-off makes the first two ranges include their stop (1.06, 1.11: 7 and 12 factors) and
    # the other three exclude it (16, 21, 26 factors); see zoom_factors().
    "zoom_blur": ((1.0, 1.06, 0.01), (1.0, 1.11, 0.01), (1.0, 1.16, 0.01), (1.0, 1.21, 0.01), (1.0, 1.26, 0.01)),
    # (layer mean, layer σ, layer zoom, threshold, motion-blur radius px, motion-blur σ px, image blend)
    "snow": ((0.1, 0.2, 1, 0.6, 8, 3, 0.95), (0.1, 0.2, 1, 0.5, 10, 4, 0.9), (0.15, 0.3, 1.75, 0.55, 10, 4, 0.9),
             (0.25, 0.3, 2.25, 0.6, 12, 6, 0.85), (0.3, 0.3, 1.25, 0.65, 14, 12, 0.8)),
    # (image weight, frost weight); frost pictures 1-5 of the package, scaled by FROST_SCALE
    "frost": ((1, 0.2), (1, 0.3), (0.9, 0.4), (0.85, 0.4), (0.75, 0.45)),
    # (fog strength on x in [0, 1], plasma-fractal wibble decay); fractal map size FOG_MAPSIZE
    "fog": ((0.2, 3), (0.5, 3), (0.75, 2.5), (1, 2), (1.5, 1.75)),
    # added to the HSV value channel (in [0, 1])
    "brightness": (0.05, 0.1, 0.15, 0.2, 0.3),
    # factor on (x - per-channel mean)
    "contrast": (0.75, 0.5, 0.4, 0.3, 0.15),
    # (α, σ, affine) as multiples of the image size: displacement scale, its smoothing, affine jitter
    "elastic_transform": ((0, 0, 0.08), (0.05, 0.2, 0.07), (0.08, 0.06, 0.06), (0.1, 0.04, 0.05), (0.1, 0.03, 0.03)),
    # box-resize to int(32·factor) and back
    "pixelate": (0.95, 0.9, 0.85, 0.75, 0.65),
    # JPEG quality (Pillow)
    "jpeg_compression": (80, 65, 58, 50, 40),
}
FROST_PICTURES = ("frost1.png", "frost2.png", "frost3.png", "frost4.jpg", "frost5.jpg")  # the first five of six
FROST_SCALE = 0.2
FOG_MAPSIZE = 32


def params(name: str, severity: int):
    """The table row of `name` at `severity` (1..5)."""
    return PARAMS[name][severity - 1]


def zoom_factors(row: tuple) -> np.ndarray:
    """The zoom factors of a zoom_blur row (start, stop, step), as the official np.arange gives them."""
    start, stop, step = row
    return np.arange(start, stop, step)


def params_hash() -> str:
    """sha256 of the whole table (and the constants above), for the manifest."""
    table = {"PARAMS": PARAMS, "CORRUPTIONS": CORRUPTIONS, "FROST_PICTURES": FROST_PICTURES,
             "FROST_SCALE": FROST_SCALE, "FOG_MAPSIZE": FOG_MAPSIZE, "IMAGE_SIZE": IMAGE_SIZE}
    return hashlib.sha256(json.dumps(table, sort_keys=True).encode()).hexdigest()
