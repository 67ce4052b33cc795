"""`manifest.json` beside the generated CIFAR-10-C files: what made each file, and its checksum.

A file is up to date when its entry's settings (seed, n_images, parameter-table hash, code version)
equal the current run's and the file on disk has the recorded size and sha256; anything else is
regenerated, with the reason said. Files and the manifest are written atomically (a temporary file
in the same folder, then os.replace), so an interrupted run leaves either the old or the new file,
never half of one, and the next run resumes with the files still missing.
"""
from __future__ import annotations

import hashlib
import importlib.metadata
import json
from pathlib import Path

import numpy as np

import robustgen
from robustgen.corrupt.params import params_hash
from robustgen.files import atomic_write

MANIFEST = "manifest.json"
LABELS = "labels.npy"
# The modules whose text decides the pixel values: the corruption functions (robustgen/corrupt/) and
# the generator that seeds and orders them (cifar10c_generate.py, hashed under its first name,
# generate.py). Not hashed: the CLI, this file and the reading and evaluation side, so editing
# those does not invalidate 2 GB of data.
CORRUPT_DIR = Path(__file__).resolve().parents[1] / "corrupt"
GENERATOR_SOURCES = {"params.py": CORRUPT_DIR / "params.py", "api.py": CORRUPT_DIR / "api.py",
                     "noise_blur.py": CORRUPT_DIR / "noise_blur.py",
                     "weather_digital.py": CORRUPT_DIR / "weather_digital.py",
                     "generate.py": Path(__file__).resolve().parent / "cifar10c_generate.py"}
LAYOUT = ("<corruption>.npy: uint8 (5·n_images, 32, 32, 3), H×W×C; rows [n·(s−1), n·s) are severity s, "
          "in test-set order. labels.npy: uint8 (5·n_images,), the test labels 5 times over.")
RNG = ("image i of (corruption, severity): numpy.random.default_rng([seed, index of the corruption in the "
       "official order, severity, i]) (PCG64)")


def library_versions() -> dict[str, str]:
    import cv2
    import PIL
    import scipy
    import skimage

    return {"numpy": np.__version__, "scipy": scipy.__version__, "scikit-image": skimage.__version__,
            "opencv": cv2.__version__, "pillow": PIL.__version__,
            "imagecorruptions-imaug": importlib.metadata.version("imagecorruptions-imaug")}


def code_version() -> dict[str, str]:
    """sha256 of the generator's sources, robustgen's version and the versions of the libraries
    that compute pixels (a new SciPy or Pillow may change a value by one)."""
    digest = hashlib.sha256()
    for name, path in GENERATOR_SOURCES.items():
        digest.update(name.encode() + b"\0" + path.read_bytes())
    return {"sources_sha256": digest.hexdigest(), "robustgen": robustgen.__version__, **library_versions()}


def settings(seed: int, n_images: int) -> dict:
    return {"seed": seed, "n_images": n_images, "params_hash": params_hash(), "code_version": code_version()}


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def save_array(path: Path, array: np.ndarray, file_settings: dict) -> dict:
    """Write `array` as .npy atomically; return its manifest entry."""
    atomic_write(path, lambda f: np.save(f, array, allow_pickle=False))
    return {"sha256": sha256_file(path), "bytes": path.stat().st_size, "shape": list(array.shape),
            "dtype": str(array.dtype), "settings": file_settings}


def load(folder: Path) -> tuple[dict, str | None]:
    """The manifest of `folder` (an empty one if there is none) and, if it was unreadable, why."""
    path = folder / MANIFEST
    empty = {"dataset": "CIFAR-10-C", "files": {}}
    if not path.is_file():
        return empty, None
    try:
        manifest = json.loads(path.read_text())
        if not isinstance(manifest.get("files"), dict):
            raise ValueError("no 'files' table")
        return manifest, None
    except (ValueError, OSError, AttributeError) as err:
        return empty, f"{path} is unreadable ({err}); every file is checked as if it had no entry"


def save(folder: Path, manifest: dict) -> None:
    text = json.dumps(manifest, indent=2, sort_keys=False) + "\n"
    atomic_write(folder / MANIFEST, lambda f: f.write(text.encode()))


def _describe_difference(old: dict, new: dict) -> str:
    parts = []
    for key in ("seed", "n_images"):
        if old.get(key) != new.get(key):
            parts.append(f"{key} {old.get(key)} (now {new.get(key)})")
    if old.get("params_hash") != new.get("params_hash"):
        parts.append("another parameter table")
    old_code, new_code = old.get("code_version") or {}, new.get("code_version") or {}
    changed = [f"{k} {old_code.get(k)} → {new_code.get(k)}" for k in new_code
               if k != "sources_sha256" and old_code.get(k) != new_code.get(k)]
    if old_code.get("sources_sha256") != new_code.get("sources_sha256"):
        changed.insert(0, "robustgen/corrupt sources")
    if changed:
        parts.append("other code (" + ", ".join(changed) + ")")
    return "made with " + ("; ".join(parts) or "other settings")


def stale_reason(folder: Path, name: str, manifest: dict, file_settings: dict, verify: bool = True) -> str | None:
    """None if `folder/name` is complete and was made with `file_settings`; otherwise why not."""
    path = folder / name
    entry = manifest["files"].get(name)
    if not path.is_file():
        return "missing"
    if not isinstance(entry, dict):
        return "not in the manifest (an earlier run was interrupted, or the file was put there by hand)"
    if entry.get("settings") != file_settings:
        return _describe_difference(entry.get("settings") or {}, file_settings)
    if path.stat().st_size != entry.get("bytes"):
        return f"{path.stat().st_size} bytes on disk, {entry.get('bytes')} in the manifest (truncated or modified)"
    if verify and sha256_file(path) != entry.get("sha256"):
        return "contents differ from the manifest's sha256 (modified)"
    return None
