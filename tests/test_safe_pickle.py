"""The safe CIFAR-10 unpickler: loads every way NumPy 1.x/2.x pickles plain arrays, refuses code.

NumPy-1.x pickles are made under NumPy 2 by renaming the reconstruction functions' `__module__`
(pickle checks that the old name resolves to the same object, which the `numpy.core` shim does).
"""
from __future__ import annotations

import codecs
import contextlib
import os
import pickle
import re
import struct
import subprocess

import numpy as np
import pytest
from numpy._core import multiarray, numeric

from robustgen.data.cifar10 import read_batch
from robustgen.data.safe_pickle import load_pickle
from robustgen.errors import DataError

PROTOCOLS = range(pickle.HIGHEST_PROTOCOL + 1)


@contextlib.contextmanager
def numpy1_names():
    """Pickle as NumPy 1.x does: numpy.core.* instead of numpy._core.*."""
    renamed = [(multiarray._reconstruct, "numpy.core.multiarray"), (multiarray.scalar, "numpy.core.multiarray"),
               (numeric._frombuffer, "numpy.core.numeric")]
    saved = [func.__module__ for func, _ in renamed]
    try:
        for func, module in renamed:
            func.__module__ = module
        yield
    finally:
        for (func, _), module in zip(renamed, saved):
            func.__module__ = module


def dump(obj, protocol: int, names: str, **kwargs) -> bytes:
    """`obj` pickled with the real pickle module, naming numpy's helpers as NumPy `names` does."""
    with numpy1_names() if names == "numpy1" else contextlib.nullcontext():
        data = pickle.dumps(obj, protocol=protocol, **kwargs)
    if names == "numpy1":  # the old names are really in the file
        assert b"numpy._core" not in data and b"numpy.core." in data
    return data


def load_bytes(tmp_path, data: bytes, name: str = "data_batch_1"):
    path = tmp_path / name
    path.write_bytes(data)
    return load_pickle(path)


def assert_same(loaded, original):
    assert type(loaded) is type(original)
    assert loaded.dtype == original.dtype and loaded.shape == original.shape
    np.testing.assert_array_equal(loaded, original)


ARRAYS = {
    "uint8_images": np.arange(2 * 3072, dtype=np.uint8).reshape(2, 3072),
    "int64_labels": np.array([3, 0, 9, 1], dtype=np.int64),
    "float32_fortran": np.asfortranarray(np.linspace(-1, 1, 12, dtype=np.float32).reshape(3, 4)),
    "int64_strided": np.arange(20, dtype=np.int64)[::3],  # not contiguous: _reconstruct even at 5
    "uint8_permuted": np.arange(24, dtype=np.uint8).reshape(2, 3, 4).transpose(1, 0, 2),  # order "K"
    "float32_0d": np.array(2.5, dtype=np.float32),
    "uint8_empty": np.empty((0, 3072), dtype=np.uint8),
    "scalar_uint8": np.uint8(200),
    "scalar_int64": np.int64(-7),
    "scalar_float32": np.float32(1.5),
}


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("names", ["numpy2", "numpy1"])
@pytest.mark.parametrize("key", ARRAYS)
def test_plain_arrays_and_scalars_load(tmp_path, protocol, names, key):
    original = ARRAYS[key]
    assert_same(load_bytes(tmp_path, dump(original, protocol, names)), original)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_other_plain_dtypes_load_as_pickle_does(tmp_path, protocol):
    for original in [np.array(["ab", "c"]), np.array([b"ab", b""]), np.array([1 + 2j]),
                     np.array(["2020-01-01"], dtype="datetime64[D]"), np.array([1, 0], dtype=bool),
                     np.zeros(3, dtype=">i4"), np.dtype("<u2"), np.dtype(">f8")]:
        data = dump(original, protocol, "numpy2")
        loaded, expected = load_bytes(tmp_path, data), pickle.loads(data)
        if isinstance(original, np.dtype):
            assert type(loaded) is type(expected) and loaded == expected
        else:
            assert_same(loaded, expected)


def cifar_batch(n: int, str_keys: bool, labels_as_array: bool = False) -> dict:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, n)
    batch = {b"batch_label": b"training batch 1 of 5",
             b"labels": labels if labels_as_array else labels.tolist(),
             b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
             b"filenames": [f"img_{i:05d}.png".encode() for i in range(n)]}
    if not str_keys:
        return batch
    # What prepare_cifar10.py writes, and what latin1 makes of the Python-2 archive.
    as_str = {b"batch_label": bytes.decode, b"filenames": lambda names: [f.decode() for f in names]}
    return {key.decode(): as_str.get(key, lambda value: value)(value) for key, value in batch.items()}


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("names", ["numpy2", "numpy1"])
@pytest.mark.parametrize("str_keys", [False, True])
def test_cifar_batch_dict_loads(tmp_path, protocol, names, str_keys):
    batch = cifar_batch(8, str_keys, labels_as_array=protocol % 2 == 1)
    loaded = load_bytes(tmp_path, dump(batch, protocol, names))
    assert loaded.keys() == batch.keys()
    for key, value in batch.items():
        if isinstance(value, np.ndarray):
            assert_same(loaded[key], value)
        else:
            assert loaded[key] == value


@pytest.mark.parametrize("protocol,names", [(5, "numpy2"), (5, "numpy1"), (4, "numpy2"), (2, "numpy1")])
def test_read_batch_accepts_batch_written_by_pickle_dump(tmp_path, protocol, names):
    # The reported failure: pickle.dump(d, f, protocol=5) was refused (numpy._core.numeric._frombuffer).
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    batch = cifar_batch(100, str_keys=True)
    with numpy1_names() if names == "numpy1" else contextlib.nullcontext():
        with open(folder / "data_batch_1", "wb") as f:
            pickle.dump(batch, f, protocol=protocol)
    assert (b"numpy._core" in (folder / "data_batch_1").read_bytes()) == (names == "numpy2")
    images, labels = read_batch(folder / "data_batch_1")
    assert images.dtype == np.uint8 and images.shape == (100, 3, 32, 32)
    np.testing.assert_array_equal(images.reshape(100, 3072), batch["data"])
    assert labels.dtype == np.int64 and labels.tolist() == batch["labels"]


class Py2Pickler(pickle._Pickler):
    """Writes bytes as Python-2 `str` (BINSTRING), as the official cifar-10-python.tar.gz does."""

    dispatch = dict(pickle._Pickler.dispatch)

    def save_py2_str(self, obj: bytes):
        size = len(obj)
        head = pickle.SHORT_BINSTRING + bytes([size]) if size < 256 else pickle.BINSTRING + struct.pack("<i", size)
        self.write(head + obj)
        self.memoize(obj)

    dispatch[bytes] = save_py2_str


def test_python2_style_archive_batch_reads(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    batch = cifar_batch(20, str_keys=False)  # Python-2 str keys and values, written as BINSTRING
    with numpy1_names(), open(folder / "test_batch", "wb") as f:
        Py2Pickler(f, protocol=2).dump(batch)
    data = (folder / "test_batch").read_bytes()
    assert b"_codecs" not in data and b"numpy.core.multiarray" in data
    images, labels = read_batch(folder / "test_batch")
    np.testing.assert_array_equal(images.reshape(20, 3072), batch[b"data"])
    assert labels.tolist() == batch[b"labels"]


# --- Refused: anything that would run code or corrupt memory. -----------------------------------

class Payload:
    """Pickles as a call of `func(*args)`, optionally followed by BUILD(state)."""

    def __init__(self, func, args, state=None):
        self.func, self.args, self.state = func, args, state

    def __reduce__(self):
        return (self.func, self.args) if self.state is None else (self.func, self.args, self.state)


class SetstateTouches:
    """A plain class: pickled via copyreg (protocols 0-1) or NEWOBJ; loading it would touch `marker`."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __setstate__(self, state):
        open(state["marker"], "w").close()


def forged_dtype(flags: int = 63):
    """An int64 dtype whose pickled flags claim it holds Python objects (raw bytes become pointers)."""
    return Payload(np.dtype, ("i8", False, True), (3, "<", None, None, None, -1, -1, flags))


def malicious(marker, tmp_path) -> dict:
    touch = f"open({str(marker)!r}, 'w').close()"
    npy = tmp_path / "payload.npy"
    np.save(npy, np.array([Payload(os.system, (f"touch {marker}",))], dtype=object), allow_pickle=True)
    return {
        "os.system": Payload(os.system, (f"touch {marker}",)),
        "builtins.eval": Payload(eval, (touch,)),
        "builtins.exec": Payload(exec, (touch,)),
        "subprocess.call": Payload(subprocess.call, (["touch", str(marker)],)),
        "numpy.load": Payload(np.load, (str(npy), None, True)),
        "numpy.testing runstring": Payload(np.testing._private.utils.runstring, (touch, {})),
        "object array of payload": np.array([Payload(os.system, (f"touch {marker}",))], dtype=object),
        "object array of ints": np.array([1, 2], dtype=object),
        "copyreg class instance": SetstateTouches(marker),
        "payload inside batch": {"data": np.zeros((1, 3072), np.uint8), "labels": [Payload(eval, (touch,))]},
        "ndarray called directly": Payload(np.ndarray, ((2,), np.dtype("O"))),
        "forged dtype": forged_dtype(),
        "array with forged dtype": Payload(multiarray._reconstruct, (np.ndarray, (0,), b"b"),
                                           (1, (2,), forged_dtype(), False, b"\x01" * 16)),
        "frombuffer with forged dtype": Payload(numeric._frombuffer, (bytearray(16), forged_dtype(), (2,), "C")),
        "structured dtype": np.zeros(2, dtype=[("a", "<i4"), ("b", "<f8")]),
        "zlib codec": Payload(codecs.encode, (b"x", "zlib")),
        "StringDType array": np.array(["x"], dtype=np.dtypes.StringDType()),
    }


def test_payloads_are_live(tmp_path):
    # Control: with the plain pickle module these payloads do run, so the refusals below mean something.
    marker = tmp_path / "pwned"
    pickle.loads(pickle.dumps(malicious(marker, tmp_path)["builtins.eval"]))
    assert marker.exists()


@pytest.mark.parametrize("protocol", [0, 2, 5])
def test_code_and_non_plain_objects_are_refused(tmp_path, protocol):
    marker = tmp_path / "pwned"
    for name, payload in malicious(marker, tmp_path).items():
        path = tmp_path / "data_batch_1"
        path.write_bytes(pickle.dumps(payload, protocol=protocol))
        with pytest.raises(pickle.UnpicklingError, match="refusing"):
            load_pickle(path)
        with pytest.raises(DataError, match=re.escape(str(path))):
            read_batch(path)
        assert not marker.exists(), name


def test_getattr_import_chain_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "data_batch_1"
    path.write_bytes(b"cbuiltins\ngetattr\n(cbuiltins\n__import__\n(Vos\ntRVsystem\ntR(Vtouch "
                     + str(marker).encode() + b"\ntR.")
    with pytest.raises(pickle.UnpicklingError, match="builtins.getattr"):
        load_pickle(path)
    assert not marker.exists()


def test_out_of_band_buffers_and_truncated_files_are_refused(tmp_path):
    path = tmp_path / "data_batch_1"
    path.write_bytes(pickle.dumps(np.zeros(4, np.uint8), protocol=5, buffer_callback=lambda buf: None))
    with pytest.raises(pickle.UnpicklingError):
        load_pickle(path)
    path.write_bytes(pickle.dumps(cifar_batch(4, str_keys=True), protocol=5)[:-100])
    with pytest.raises(DataError, match=re.escape(str(path))):
        read_batch(path)


def text(value: str) -> bytes:
    return pickle.SHORT_BINUNICODE + bytes([len(value)]) + value.encode()


def name(module: str, attribute: str) -> bytes:
    return text(module) + text(attribute) + pickle.STACK_GLOBAL


def test_rebuilding_a_dtype_after_use_does_not_resize_the_array(tmp_path):
    # Hand-written: an array is made from 4 bytes with dtype d = U1, then d's state is set to U100.
    # With plain pickle the array would read 400 bytes from a 4-byte buffer; here it keeps U1.
    data = (pickle.PROTO + b"\x05" + name("numpy._core.numeric", "_frombuffer") + pickle.MARK
            + pickle.BYTEARRAY8 + struct.pack("<Q", 4) + b"abcd"
            + name("numpy", "dtype") + text("U1") + pickle.NEWFALSE + pickle.NEWTRUE + pickle.TUPLE3
            + pickle.REDUCE + pickle.BINPUT + b"\x00" + pickle.BININT1 + b"\x01" + pickle.TUPLE1 + text("C")
            + pickle.TUPLE + pickle.REDUCE + pickle.BINGET + b"\x00" + pickle.MARK + pickle.BININT1 + b"\x03"
            + text("<") + pickle.NONE * 3 + pickle.BININT2 + struct.pack("<H", 400) + pickle.BININT1 + b"\x04"
            + pickle.BININT1 + b"\x08" + pickle.TUPLE + pickle.BUILD + pickle.TUPLE2 + pickle.STOP)
    array, dtype = load_bytes(tmp_path, data)
    assert dtype == np.dtype("<U100") and array.dtype == np.dtype("<U1") and array.nbytes == 4


def test_in_band_readonly_buffer_opcode_is_refused(tmp_path):
    data = (pickle.PROTO + b"\x05" + pickle.BYTEARRAY8 + struct.pack("<Q", 4) + b"abcd"
            + pickle.READONLY_BUFFER + pickle.STOP)
    with pytest.raises(pickle.UnpicklingError, match="refusing"):
        load_bytes(tmp_path, data)


def test_loading_does_not_change_numpy_builtin_dtypes(tmp_path):
    # dtype("i4", copy=False) is numpy's shared int32 descriptor; a BUILD on it would flip its byte
    # order for the whole process. The loader always copies.
    loaded = load_bytes(tmp_path, pickle.dumps(Payload(np.dtype, ("i4", False, False),
                                                       (3, ">", None, None, None, -1, -1, 0)), protocol=2))
    assert loaded == np.dtype(">i4") and np.dtype("i4").byteorder == "="
