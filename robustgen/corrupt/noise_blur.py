"""Noise and blur corruptions of CIFAR-10-C, on batches.

Every function takes `x`, uint8 images N×32×32×3, one row `p` of the parameter table (params.py)
and `rngs`, one numpy Generator per image (None for the deterministic ones), and returns uint8
images N×32×32×3. An image's random numbers come from its own generator only, and the batched
arithmetic is elementwise per image, so an image's result does not depend on the batch it is in.
Like the official generator, results are cast with np.uint8 (truncation), except motion blur,
which ImageMagick rounded.
"""
from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np
import skimage.util
from imagecorruptions.corruptions import _motion_blur, disk
from scipy.ndimage import gaussian_filter

from robustgen.corrupt.params import IMAGE_SIZE, zoom_factors

Rngs = Sequence[np.random.Generator]


def to_uint8(x: np.ndarray) -> np.ndarray:
    """np.uint8(x) as the official generator does: truncation of values already in [0, 255]."""
    return x.astype(np.uint8)


def imagemagick_round(x: np.ndarray) -> np.ndarray:
    """ImageMagick quantises its float result to the nearest integer (the official motion blur
    went through ImageMagick and PNG)."""
    return np.clip(np.floor(x + 0.5), 0, 255).astype(np.uint8)


def gaussian_noise(x: np.ndarray, sigma: float, rngs: Rngs) -> np.ndarray:
    x = x / 255.0
    noise = np.stack([rng.normal(size=x.shape[1:], scale=sigma) for rng in rngs])
    return to_uint8(np.clip(x + noise, 0, 1) * 255)


def shot_noise(x: np.ndarray, lam: float, rngs: Rngs) -> np.ndarray:
    x = x / 255.0
    counts = np.stack([rng.poisson(xi * lam) for xi, rng in zip(x, rngs)])
    return to_uint8(np.clip(counts / lam, 0, 1) * 255)


def impulse_noise(x: np.ndarray, amount: float, rngs: Rngs) -> np.ndarray:
    x = x / 255.0
    out = np.stack([skimage.util.random_noise(xi, mode="s&p", rng=rng, amount=amount) for xi, rng in zip(x, rngs)])
    return to_uint8(np.clip(out, 0, 1) * 255)


def defocus_blur(x: np.ndarray, p: tuple, rngs: Rngs | None = None) -> np.ndarray:
    radius, alias_sigma = p
    kernel = disk(radius=radius, alias_blur=alias_sigma)  # the package's helper: disk on −8..8, 3×3 Gaussian
    planes = np.ascontiguousarray((x / 255.0).transpose(0, 3, 1, 2))  # one contiguous 32×32 plane per channel
    out = np.empty_like(planes)
    for i in range(len(planes)):
        for c in range(3):
            out[i, c] = cv2.filter2D(planes[i, c], -1, kernel)  # border: reflect-101, as the official
    return to_uint8(np.clip(out.transpose(0, 2, 3, 1), 0, 1) * 255)


def _gaussian_hw(x: np.ndarray, sigma: float) -> np.ndarray:
    """skimage.filters.gaussian(image, sigma, channel_axis=-1) of each image of the batch: the
    batch and channel axes get σ = 0, which scipy skips, so images do not mix."""
    return gaussian_filter(x, sigma=(0, sigma, sigma, 0), mode="nearest", truncate=4.0)


def glass_shuffle_loop(img: np.ndarray, offsets: np.ndarray, shift: int) -> np.ndarray:
    """The official per-pixel loop on one H×W×C image (modified in place), with its random
    (dx, dy) pairs given as `offsets[row, col]`. Kept as the reference for the vectorised form.

    Note what the official statement does: `x[h, w]` of an H×W×C array is a view, so the tuple
    assignment first copies pixel (h', w') into (h, w) and then writes that same value back to
    (h', w'): a copy, not a swap. We keep exactly that.
    """
    positions = range(img.shape[0] - shift, shift, -1)
    for a, h in enumerate(positions):
        for b, w in enumerate(range(img.shape[1] - shift, shift, -1)):
            dx, dy = offsets[a, b]
            h_prime, w_prime = h + dy, w + dx
            img[h, w], img[h_prime, w_prime] = img[h_prime, w_prime], img[h, w]
    return img


def glass_shuffle(x: np.ndarray, offsets: np.ndarray, shift: int) -> np.ndarray:
    """One iteration of the official loop on a batch (N×H×W×C), `offsets` N×rows×cols×(dx, dy).

    With shift 1 (every severity of the table) the loop is a single gather. Offsets lie in
    [−1, 0], so each pixel's source is itself or its upper/left neighbours; the loop visits rows
    and columns in decreasing order, so those sources have not been written yet in this pass,
    and each step copies (see glass_shuffle_loop): new[h, w] = old[h + dy, w + dx] for every
    visited (h, w), all at once. A larger shift could read pixels already written; there the
    sequential loop runs, per image.
    """
    if shift != 1:
        return np.stack([glass_shuffle_loop(img.copy(), off, shift) for img, off in zip(x, offsets)])
    n, height, width = x.shape[:3]
    rows = np.arange(height - shift, shift, -1)
    cols = np.arange(width - shift, shift, -1)
    src_rows = rows[None, :, None] + offsets[..., 1]
    src_cols = cols[None, None, :] + offsets[..., 0]
    out = x.copy()
    out[:, rows[:, None], cols[None, :]] = x[np.arange(n)[:, None, None], src_rows, src_cols]
    return out


def glass_offsets(rng: np.random.Generator, p: tuple, size: int = IMAGE_SIZE) -> np.ndarray:
    """An image's random (dx, dy) in [−shift, shift) for every iteration and visited pixel."""
    _, shift, iterations = p
    visited = size - 2 * shift
    return rng.integers(-shift, shift, size=(iterations, visited, visited, 2))


def glass_blur(x: np.ndarray, p: tuple, rngs: Rngs) -> np.ndarray:
    sigma, shift, iterations = p
    x = to_uint8(_gaussian_hw(x / 255.0, sigma) * 255)
    offsets = np.stack([glass_offsets(rng, p, x.shape[1]) for rng in rngs])
    for it in range(iterations):
        x = glass_shuffle(x, offsets[:, it], shift)
    return to_uint8(np.clip(_gaussian_hw(x / 255.0, sigma), 0, 1) * 255)


def motion_blur(x: np.ndarray, p: tuple, rngs: Rngs) -> np.ndarray:
    # The official blur is ImageMagick's MotionBlurImage; the package's helper reproduces it
    # (kernel width 2·radius+1, Gaussian weights of σ, offsets rounded along the angle, edge pixels
    # repeated past the border) without ImageMagick.
    radius, sigma = p
    out = np.empty_like(x)
    for i, rng in enumerate(rngs):
        out[i] = imagemagick_round(_motion_blur(x[i], radius=radius, sigma=sigma, angle=rng.uniform(-45, 45)))
    return out


def _zoom_plan(zoom: float, size: int = IMAGE_SIZE):
    """Source rows and weights of the official clipped_zoom on one axis: crop the centre
    ceil(size/zoom), scipy.ndimage.zoom(order=1) to round(crop·zoom), cut the centre `size`."""
    crop = int(np.ceil(size / zoom))
    top = (size - crop) // 2
    zoomed = int(round(crop * zoom))
    trim = (zoomed - size) // 2
    coord = np.arange(trim, trim + size, dtype=np.float64) * ((crop - 1) / (zoomed - 1))  # scipy's grid
    lo = np.floor(coord).astype(np.intp)
    t = coord - lo
    return top + lo, top + np.minimum(lo + 1, crop - 1), 1.0 - t, t


def clipped_zoom_batch(planes: np.ndarray, zoom: float) -> np.ndarray:
    """The official clipped_zoom of N×C×H×W float64 planes, bit-identical to calling
    scipy.ndimage.zoom(order=1) per image (same products v·w_row·w_col, summed in scipy's order)
    but several times faster: two gathers per axis instead of a spline evaluation per pixel."""
    r0, r1, w0, w1 = _zoom_plan(zoom, planes.shape[-1])
    top = planes[:, :, r0] * w0[:, None]
    bottom = planes[:, :, r1] * w1[:, None]
    out = top[..., r0] * w0
    out += top[..., r1] * w1
    out += bottom[..., r0] * w0
    out += bottom[..., r1] * w1
    return out


def zoom_blur(x: np.ndarray, p: tuple, rngs: Rngs | None = None) -> np.ndarray:
    factors = zoom_factors(p)
    x = (x / 255.0).astype(np.float32)
    planes = np.ascontiguousarray(x.transpose(0, 3, 1, 2), dtype=np.float64)
    out = np.zeros(planes.shape, dtype=np.float32)
    for zoom in factors:
        out += clipped_zoom_batch(planes, zoom).astype(np.float32)  # scipy returns the input's float32
    x = (x + out.transpose(0, 2, 3, 1)) / (len(factors) + 1)
    return to_uint8(np.clip(x, 0, 1) * 255)
