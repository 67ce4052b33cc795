"""A data set's fingerprint: what an evaluation's resume state is keyed on besides the model and
the attacks (robustgen/eval/outcomes.py)."""
from __future__ import annotations

import hashlib


def data_fingerprint(dataset, n: int) -> str:
    """sha256 of the first `n` items exactly as the model sees them: images, labels and example ids.
    Which split, which corruption and severity, which transform: all of it shows in the pixels, so
    two data sets that merely share a type and a length (clean vs noisy test set) never match.
    Data sets that can hash themselves without decoding (``fingerprint(n)``) do; others are read."""
    own = getattr(dataset, "fingerprint", None)
    if callable(own):
        return own(n)
    from torch.utils.data import DataLoader, Subset

    digest = hashlib.sha256()
    for x, y, ids in DataLoader(Subset(dataset, range(n)), batch_size=256, shuffle=False):
        for t in (x.contiguous(), y, ids):
            digest.update(f"{t.dtype}{tuple(t.shape)}".encode())
            digest.update(t.numpy().tobytes())
    return digest.hexdigest()
