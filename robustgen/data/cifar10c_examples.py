"""`python -m robustgen.data.cifar10c_examples [--index I] [--out PNG]`: one test image under every corruption.

Rows: the 15 corruptions; columns: the clean image and severities 1, 3, 5, each upscaled ×4 with
nearest-neighbour so single pixels stay visible. The images are exactly those the generated files
hold for that test image (same seed and per-image generator).
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np

from robustgen.corrupt.api import corrupt_as_cifar10c
from robustgen.corrupt.params import CORRUPTIONS

SHOWN = (1, 3, 5)


def example_grid(image: np.ndarray, index: int, seed: int = 0) -> dict[tuple[str, int], np.ndarray]:
    """{(corruption, severity): corrupted image} for one uint8 32×32×3 test image at `index`."""
    return {(name, s): corrupt_as_cifar10c(image[None], name, s, seed, start=index)[0]
            for name in CORRUPTIONS for s in SHOWN}


def plot(image: np.ndarray, grid: dict, title: str, out: Path, scale: int = 4) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    up = lambda x: np.repeat(np.repeat(x, scale, axis=0), scale, axis=1)  # noqa: E731 (nearest ×scale)
    fig, axes = plt.subplots(len(CORRUPTIONS), 1 + len(SHOWN), figsize=(1.2 * (1 + len(SHOWN)) + 1.1,
                                                                        1.2 * len(CORRUPTIONS) + 0.4))
    for r, name in enumerate(CORRUPTIONS):
        for c, cell in enumerate([image] + [grid[name, s] for s in SHOWN]):
            ax = axes[r, c]
            ax.imshow(up(cell), interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title("clean" if c == 0 else f"severity {SHOWN[c - 1]}", fontsize=9)
        axes[r, 0].set_ylabel(name.replace("_", " "), rotation=0, ha="right", va="center", fontsize=9)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout(rect=(0, 0, 1, 0.985))
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    from robustgen.data.cifar10 import CLASSES, load_cifar10

    parser = argparse.ArgumentParser(prog="python -m robustgen.data.cifar10c_examples", description=__doc__)
    parser.add_argument("--root", default=os.environ.get("ROBUSTGEN_DATA") or "data")
    parser.add_argument("--index", type=int, default=6, help="CIFAR-10 test image (default 6, a red car)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("docs/cifar10c_examples.png"))
    args = parser.parse_args(argv)
    images, labels = load_cifar10(args.root, "test", download=False)
    image = images[args.index].permute(1, 2, 0).numpy().copy()
    plot(image, example_grid(image, args.index, args.seed),
         f"CIFAR-10-C (robustgen, seed {args.seed}): test image {args.index} ({CLASSES[int(labels[args.index])]})",
         args.out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
