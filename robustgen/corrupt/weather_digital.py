"""Weather and digital corruptions of CIFAR-10-C, on batches (same contract as noise_blur.py)."""
from __future__ import annotations

import contextlib
import functools
import importlib.resources
from io import BytesIO

import cv2
import numpy as np
import skimage.color
from imagecorruptions.corruptions import _motion_blur, plasma_fractal
from PIL import Image
from scipy.ndimage import gaussian_filter, map_coordinates
from scipy.ndimage import zoom as scizoom

from robustgen.corrupt.noise_blur import Rngs, imagemagick_round, to_uint8
from robustgen.corrupt.params import FOG_MAPSIZE, FROST_PICTURES, FROST_SCALE


@contextlib.contextmanager
def numpy_global_seed(rng: np.random.Generator):
    """Seed NumPy's global generator from `rng` for a helper of the package that draws from it
    (plasma_fractal), and put the caller's global state back afterwards."""
    state = np.random.get_state()
    np.random.seed(rng.integers(0, 2**32, size=4, dtype=np.uint32))
    try:
        yield
    finally:
        np.random.set_state(state)


def _clipped_zoom(img: np.ndarray, zoom: float) -> np.ndarray:
    """The official CIFAR clipped_zoom (centre crop, scipy zoom, centre trim) of an H×W×C array."""
    h = img.shape[0]
    crop = int(np.ceil(h / zoom))
    top = (h - crop) // 2
    img = scizoom(img[top:top + crop, top:top + crop], (zoom, zoom, 1), order=1)
    trim = (img.shape[0] - h) // 2
    return img[trim:trim + h, trim:trim + h]


def snow(x: np.ndarray, p: tuple, rngs: Rngs) -> np.ndarray:
    mean, std, zoom, threshold, blur_radius, blur_sigma, blend = p
    x = x.astype(np.float32) / 255.0
    out = np.empty(x.shape, dtype=np.float64)
    for i, rng in enumerate(rngs):
        layer = rng.normal(size=x.shape[1:3], loc=mean, scale=std)
        layer = _clipped_zoom(layer[..., None], zoom)
        layer[layer < threshold] = 0
        layer = (np.clip(layer.squeeze(-1), 0, 1) * 255).astype(np.uint8)  # the official saved it as an 8-bit PNG
        # ImageMagick's motion blur in the official; the package's helper here (see noise_blur.motion_blur)
        layer = imagemagick_round(_motion_blur(layer, radius=blur_radius, sigma=blur_sigma,
                                               angle=rng.uniform(-135, -45)))[..., None] / 255.0
        gray = cv2.cvtColor(x[i], cv2.COLOR_RGB2GRAY)[..., None]
        image = blend * x[i] + (1 - blend) * np.maximum(x[i], gray * 1.5 + 0.5)
        out[i] = np.clip(image + layer + np.rot90(layer, k=2), 0, 1) * 255
    return to_uint8(out)


@functools.lru_cache(maxsize=None)
def frost_pictures() -> tuple[np.ndarray, ...]:
    """The package's frost pictures 1-5 as RGB, scaled by FROST_SCALE (cv2.resize, bilinear), as the
    official generator does per image (done once per process here)."""
    pictures = []
    for name in FROST_PICTURES:
        ref = importlib.resources.files("imagecorruptions") / "frost" / name
        with importlib.resources.as_file(ref) as path:
            bgr = cv2.imread(str(path))
        if bgr is None:
            raise FileNotFoundError(f"cannot read the frost picture {ref}; reinstall imagecorruptions-imaug")
        small = cv2.resize(bgr, (0, 0), fx=FROST_SCALE, fy=FROST_SCALE)
        pictures.append(np.ascontiguousarray(small[..., ::-1]))  # BGR -> RGB
    return tuple(pictures)


def frost(x: np.ndarray, p: tuple, rngs: Rngs) -> np.ndarray:
    image_weight, frost_weight = p
    pictures = frost_pictures()
    size = x.shape[1]
    crops = np.empty_like(x)
    for i, rng in enumerate(rngs):
        picture = pictures[rng.integers(len(pictures))]
        top, left = rng.integers(0, picture.shape[0] - size), rng.integers(0, picture.shape[1] - size)
        crops[i] = picture[top:top + size, left:left + size]
    return to_uint8(np.clip(image_weight * x + frost_weight * crops.astype(np.float64), 0, 255))


def fog(x: np.ndarray, p: tuple, rngs: Rngs) -> np.ndarray:
    strength, decay = p
    x = x / 255.0
    max_val = x.max(axis=(1, 2, 3), keepdims=True)
    for i, rng in enumerate(rngs):
        with numpy_global_seed(rng):  # the package's plasma_fractal draws from np.random
            fractal = plasma_fractal(mapsize=FOG_MAPSIZE, wibbledecay=decay)
        x[i] += strength * fractal[:x.shape[1], :x.shape[2], None]
    return to_uint8(np.clip(x * max_val / (max_val + strength), 0, 1) * 255)


def brightness(x: np.ndarray, shift: float, rngs: Rngs | None = None) -> np.ndarray:
    hsv = skimage.color.rgb2hsv(x / 255.0)  # per pixel, so a whole batch at once
    hsv[..., 2] = np.clip(hsv[..., 2] + shift, 0, 1)
    return to_uint8(np.clip(skimage.color.hsv2rgb(hsv), 0, 1) * 255)


def contrast(x: np.ndarray, factor: float, rngs: Rngs | None = None) -> np.ndarray:
    x = x / 255.0
    means = x.mean(axis=(1, 2), keepdims=True)
    return to_uint8(np.clip((x - means) * factor + means, 0, 1) * 255)


def elastic_transform(x: np.ndarray, p: tuple, rngs: Rngs) -> np.ndarray:
    size = x.shape[1]
    alpha, sigma, affine = (v * size for v in p)
    # three points around the centre, each moved by U(−affine, affine)
    centre = np.float32((size, size)) // 2
    square = size // 3
    pts1 = np.float32([centre + square, [centre[0] + square, centre[1] - square], centre - square])
    cols, rows, chans = np.meshgrid(np.arange(size), np.arange(size), np.arange(3))
    out = np.empty(x.shape, dtype=np.float64)
    for i, rng in enumerate(rngs):
        image = x[i].astype(np.float32) / 255.0
        pts2 = pts1 + rng.uniform(-affine, affine, size=pts1.shape).astype(np.float32)
        image = cv2.warpAffine(image, cv2.getAffineTransform(pts1, pts2), (size, size),
                               borderMode=cv2.BORDER_REFLECT_101)
        dx = (gaussian_filter(rng.uniform(-1, 1, size=(size, size)), sigma, mode="reflect", truncate=3)
              * alpha).astype(np.float32)[..., None]
        dy = (gaussian_filter(rng.uniform(-1, 1, size=(size, size)), sigma, mode="reflect", truncate=3)
              * alpha).astype(np.float32)[..., None]
        coords = np.stack([(rows + dy).ravel(), (cols + dx).ravel(), chans.ravel()])
        out[i] = map_coordinates(image, coords, order=1, mode="reflect").reshape(image.shape)
    return to_uint8(np.clip(out, 0, 1) * 255)


def pixelate(x: np.ndarray, factor: float, rngs: Rngs | None = None) -> np.ndarray:
    size = x.shape[1]
    small = int(size * factor)
    return np.stack([np.asarray(Image.fromarray(xi).resize((small, small), Image.BOX).resize((size, size), Image.BOX))
                     for xi in x])


def _jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    buffer = BytesIO()
    Image.fromarray(image).save(buffer, "JPEG", quality=quality)
    return np.asarray(Image.open(buffer).convert("RGB"))


def jpeg_compression(x: np.ndarray, quality: int, rngs: Rngs | None = None) -> np.ndarray:
    return np.stack([_jpeg(xi, quality) for xi in x])

