"""A test-only Lightning callback that SIGKILLs its own training process once, at a chosen point.

Used by tests/test_kill.py through the config (`+callbacks.kill._target_=tests.helpers.kill_helpers.KillOnce`),
so the kill is real (no cleanup, no exception handlers run) and lands exactly where asked. The
marker file is written first: the rerun of the same command finds it and runs to the end.
"""
from __future__ import annotations

import os
import signal
from pathlib import Path

from lightning.pytorch.callbacks import Callback


class KillOnce(Callback):
    def __init__(self, marker: str, stage: str, epoch: int, batch: int = 0):
        assert stage in ("train", "val"), stage
        self.marker, self.stage, self.epoch, self.batch = Path(marker), stage, epoch, batch

    def _maybe_kill(self, stage: str, epoch: int, batch_idx: int) -> None:
        if (stage, epoch, batch_idx) == (self.stage, self.epoch, self.batch) and not self.marker.exists():
            self.marker.write_text(f"killed in {stage} of epoch {epoch} at batch {batch_idx}\n")
            os.kill(os.getpid(), signal.SIGKILL)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self._maybe_kill("train", trainer.current_epoch, batch_idx)

    def on_validation_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0) -> None:
        if not trainer.sanity_checking:
            self._maybe_kill("val", trainer.current_epoch, batch_idx)
