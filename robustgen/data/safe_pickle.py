"""Read data pickles without running arbitrary code.

A pickle can call any importable function while loading, so a tampered data file is code. A
CIFAR-10 batch is a dict of bytes/str, ints, lists and plain numpy arrays, so the unpickler below
resolves only the few names that numpy (1.x and 2.x, protocols 0-5) and Python use to rebuild
those, and each name resolves to a guard that checks its arguments before calling numpy.

Why the pure-Python unpickler (`pickle._Unpickler`) rather than the C one: numpy trusts the state
a pickle hands to `dtype.__setstate__` (flags that claim "holds objects" turn raw bytes into
pointers; a new item size outgrows an existing array's buffer), and only the Python unpickler lets
us check each BUILD (`__setstate__`) step. It costs about 0.06 s per 10,000-image batch.
"""
from __future__ import annotations

import importlib
import pickle
import struct
from pathlib import Path

import numpy as np


def _numpy_internal(module: str):
    """numpy's own reconstruction helpers: `numpy._core.*` in NumPy 2, `numpy.core.*` in NumPy 1."""
    try:
        return importlib.import_module(f"numpy._core.{module}")
    except ImportError:
        return importlib.import_module(f"numpy.core.{module}")


_multiarray = _numpy_internal("multiarray")
_numeric = _numpy_internal("numeric")


def _refuse(what: str) -> pickle.UnpicklingError:
    return pickle.UnpicklingError(f"refusing to load {what}: not plain data")


# Plain dtypes: bool, signed/unsigned ints, floats, complex, bytes, str, timedelta, datetime. Object,
# void/structured, sub-array and user dtypes (StringDType, ...) are refused.
_PLAIN_KINDS = "biufcSUmM"


def _canonical(dtype) -> np.dtype:
    """numpy's own dtype equal to `dtype`, which must be plain with the state numpy would give it.

    Arrays and scalars are built with this one, never with the pickle's dtype object, so a later
    BUILD on that object (say one turning U1 into U100) cannot change what an array's buffer means.
    """
    if not isinstance(dtype, np.dtype) or dtype.kind not in _PLAIN_KINDS:
        raise _refuse(f"dtype {dtype!r}")
    if dtype.fields is not None or dtype.subdtype is not None:
        raise _refuse(f"structured dtype {dtype!r}")
    fresh = np.dtype(dtype.str)  # rebuilt by numpy's constructor, which validates what it is given
    if (type(dtype) is not type(fresh) or dtype != fresh or dtype.itemsize != fresh.itemsize
            or dtype.alignment != fresh.alignment or dtype.flags != fresh.flags):
        raise _refuse(f"dtype {dtype!r} whose pickled state (flags {dtype.flags}) is inconsistent")
    return fresh


# --- Guards: what each allowed name resolves to. ---------------------------------------------------

def _dtype(spec, align=False, copy=True) -> np.dtype:
    """numpy pickles a dtype as `dtype(code, False, True)` followed by BUILD(state)."""
    if isinstance(spec, bytes):  # Python-2 pickles read with encoding="bytes"
        spec = spec.decode("ascii")
    if not isinstance(spec, str):
        raise _refuse(f"dtype({spec!r})")
    # Always copy: with copy=False the BUILD that follows would rewrite numpy's shared built-in
    # dtype (say int32's byte order) for the whole process.
    dtype = np.dtype(spec, align=bool(align), copy=True)
    _canonical(dtype)
    return dtype


class _NdarrayName:
    """What the name `numpy.ndarray` resolves to: usable only as `_reconstruct`'s first argument.

    The real class is never handed out, so a pickle cannot call `ndarray(shape, dtype, buffer,
    offset, strides)` or build a subclass (np.matrix, np.memmap, ...).
    """

    def __repr__(self) -> str:
        return "numpy.ndarray"

    def __call__(self, *args, **kwargs):
        raise _refuse("a call of numpy.ndarray (only _reconstruct may use it)")


_NDARRAY = _NdarrayName()


def _reconstruct(subtype, shape, dtype):
    """numpy ≤ protocol 4 (and non-contiguous arrays at 5): an empty array, then BUILD(state)."""
    if subtype is not _NDARRAY:
        raise _refuse(f"_reconstruct of {subtype!r}")
    if isinstance(dtype, bytes):  # numpy writes b"b" (a placeholder; the real dtype is in the state)
        dtype = dtype.decode("latin1")
    if not isinstance(dtype, (str, np.dtype)):
        raise _refuse(f"_reconstruct with dtype {dtype!r}")
    return _multiarray._reconstruct(np.ndarray, shape, _canonical(np.dtype(dtype)))


def _frombuffer(buf, dtype, shape, order, *axis_order):
    """numpy protocol 5: the array's bytes (in-band bytearray or bytes), dtype, shape, order."""
    if not isinstance(buf, (bytes, bytearray)):
        raise _refuse(f"_frombuffer of {type(buf).__name__}")
    return _numeric._frombuffer(buf, _canonical(dtype), shape, order, *axis_order)


def _scalar(dtype, data=None):
    """numpy scalars (np.int64(7), ...): dtype and the value's raw bytes (a str in Python-2 pickles)."""
    dtype = _canonical(dtype)
    if isinstance(data, str):
        data = data.encode("latin1")
    if not isinstance(data, bytes) or len(data) != dtype.itemsize:
        raise _refuse(f"numpy scalar of {dtype} from {type(data).__name__}")
    return _multiarray.scalar(dtype, data)


def _latin1_encode(text, encoding="utf-8", errors="strict") -> bytes:
    """Python 3 writes bytes at protocols 0-2 as `_codecs.encode(text, "latin1")`.

    Only that codec: other names (zlib, bz2, ...) would make the pickle pick codec modules by name.
    """
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1") or errors != "strict":
        raise _refuse(f"_codecs.encode(..., {encoding!r})")
    return text.encode("latin1")


def _bytes(*args) -> bytes:
    """Python 3 writes empty bytes at protocols 0-2 as `bytes()`."""
    if args and not (len(args) == 1 and isinstance(args[0], (bytes, bytearray))):
        raise _refuse("bytes(...) of a non-bytes value")
    return bytes(*args)


def _bytearray(data=b"", encoding=None) -> bytearray:
    """bytearray pickles as bytearray(text, "latin-1") at protocols 0-2, bytearray(data) at 3-4."""
    if encoding is not None:
        data = _latin1_encode(data, encoding)
    if not isinstance(data, (bytes, bytearray)):
        raise _refuse(f"bytearray({type(data).__name__})")
    return bytearray(data)


# The allow-list: every (module, name) a pickle may refer to. NumPy 2 writes numpy._core.*, NumPy 1
# numpy.core.* (1.16.0 alone wrote numpy.core._multiarray_umath.*); both map to the same guard, so
# the numpy.core shim of NumPy 2 is never imported. `__builtin__` is how protocols 0-2 (and Python 2)
# spell `builtins`. Anything not listed (os.system, builtins.eval/getattr, subprocess, numpy.load,
# copyreg._reconstructor, numpy.dtypes.*, StringDType's helper, ...) is refused by name.
_ALLOWED = {
    **{(f"{core}.{module}", name): guard
       for core in ("numpy._core", "numpy.core")
       for module, name, guard in [("multiarray", "_reconstruct", _reconstruct),
                                   ("multiarray", "scalar", _scalar),
                                   ("numeric", "_frombuffer", _frombuffer)]},
    ("numpy.core._multiarray_umath", "_reconstruct"): _reconstruct,
    ("numpy.core._multiarray_umath", "scalar"): _scalar,
    ("numpy", "ndarray"): _NDARRAY,
    ("numpy", "dtype"): _dtype,
    ("_codecs", "encode"): _latin1_encode,
    **{(builtins, name): guard
       for builtins in ("builtins", "__builtin__")
       for name, guard in [("bytes", _bytes), ("bytearray", _bytearray)]},
}


class RestrictedUnpickler(pickle._Unpickler):
    """Unpickles plain data and plain numpy arrays/scalars; refuses every other global."""

    def find_class(self, module: str, name: str):
        try:
            return _ALLOWED[module, name]
        except KeyError:
            raise _refuse(f"{module}.{name}") from None

    def load_build(self):
        # BUILD calls inst.__setstate__(state); numpy's pickles use it only on arrays and dtypes.
        # An array gets the canonical twin of the dtype its state names; a dtype must still be
        # plain once its state is applied (no array holds it, so a forged one is simply dropped).
        state, inst = self.stack[-1], self.stack[-2]
        if type(inst) is np.ndarray:
            if not isinstance(state, tuple) or sum(isinstance(item, np.dtype) for item in state) != 1:
                raise _refuse("array state without exactly one dtype")
            self.stack[-1] = tuple(_canonical(item) if isinstance(item, np.dtype) else item for item in state)
        elif not isinstance(inst, np.dtype):
            raise _refuse(f"BUILD on {type(inst).__name__}")
        super().load_build()
        if isinstance(inst, np.dtype):
            _canonical(inst)

    def load_buffer(self):
        # Out-of-band buffers (NEXT_BUFFER, READONLY_BUFFER) are never in a data file, and
        # READONLY_BUFFER could wrap an array's memory in a view that outlives a later BUILD.
        raise _refuse("an out-of-band buffer")

    dispatch = dict(pickle._Unpickler.dispatch)
    dispatch[pickle.BUILD[0]] = load_build
    dispatch[pickle.NEXT_BUFFER[0]] = dispatch[pickle.READONLY_BUFFER[0]] = load_buffer


def load_pickle(path: Path, encoding: str = "latin1"):
    """Unpickle `path`, refusing (pickle.UnpicklingError) anything but plain data and numpy arrays.

    encoding="latin1" reads Python-2 pickles (the official CIFAR archive) as numpy itself does.
    """
    with open(path, "rb") as f:
        try:
            return RestrictedUnpickler(f, encoding=encoding).load()
        except (pickle.UnpicklingError, EOFError):
            raise
        except (LookupError, ArithmeticError, ValueError, TypeError, AttributeError, struct.error) as err:
            # A truncated or garbled stream: report it as a bad pickle, not as a bug in the caller.
            raise pickle.UnpicklingError(f"malformed pickle ({type(err).__name__}: {err})") from err
