"""Files that the pytest-xdist workers of one test run make once and share (a trained model, a run
folder written by old code): the first worker to need one makes it under a lock, the others reuse it."""
from __future__ import annotations

import fcntl
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


@contextmanager
def shared_path(name: str) -> Iterator[Path | None]:
    """The path the workers of this pytest-xdist run share `name` under, held under a lock while the
    block runs (None outside xdist: the caller keeps its own copy)."""
    run = os.environ.get("PYTEST_XDIST_TESTRUNUID")
    if not run:
        yield None
        return
    folder = Path(tempfile.gettempdir()) / f"robustgen-tests-{run}"
    folder.mkdir(exist_ok=True)
    with open(folder / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield folder / name
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
