"""Common corruptions: CIFAR-10-C generated here (15 corruptions × 5 severities, 32×32 parameters),
and ImageNet-C's functions for ImageNette-sized images.

    from robustgen.corrupt import CORRUPTIONS, SEVERITIES, corrupt, corrupt_imagenet
    out = corrupt(image_hwc_uint8, "fog", 3, rng)          # one 32×32×3 uint8 image, CIFAR-10-C parameters
    out = corrupt_imagenet(image_224_uint8, "fog", 3, seed)  # the imagecorruptions package's ImageNet-C

`python -m robustgen.corrupt` (or `make cifar10c`) writes the whole benchmark in the official layout;
generate.py says how, params.py holds the parameter table. Importing this package is cheap: the
image libraries load on the first corruption.
"""
from robustgen.corrupt.api import (RANDOM, corrupt, corrupt_as_cifar10c, corrupt_batch, corrupt_imagenet,
                                   image_rng)
from robustgen.corrupt.params import CORRUPTIONS, PARAMS, SEVERITIES

__all__ = ["CORRUPTIONS", "SEVERITIES", "PARAMS", "RANDOM", "corrupt", "corrupt_batch", "corrupt_as_cifar10c",
           "corrupt_imagenet", "image_rng"]
