"""Read data pickles without running arbitrary code.

A pickle can call any importable function while loading, so a tampered data file is code. The
CIFAR-10 batches need only builtins and numpy's array reconstruction; everything else is refused.
"""
from __future__ import annotations

import io
import pickle
from pathlib import Path

_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("_codecs", "encode"),  # Python-2 pickles (the official archive) store byte strings this way
    ("builtins", "bytearray"),
}


class RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) in _ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}: not plain data")


def load_pickle(path: Path, encoding: str = "latin1"):
    with open(path, "rb") as f:
        return RestrictedUnpickler(io.BufferedReader(f), encoding=encoding).load()
