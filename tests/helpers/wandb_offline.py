"""Read back an offline W&B run as W&B wrote it: the records of its `run-<id>.wandb` file, parsed
with W&B's own protobuf definitions (`wandb.proto.wandb_internal_pb2`), plus its files/ folder.

wandb ≥ 0.19 writes config and summary only into that record log (wandb-core, in Go) and no longer
ships a Python reader for it, so the log's framing is read here: LevelDB's log format, as W&B uses
it — a 7-byte file header (":W&B", magic 0xBEE1, version), then 32 KiB blocks of chunks, each with a
7-byte header (CRC-32, length, type: 1 full, 2 first, 3 middle, 4 last), zero padding at the end
of a block.
"""
from __future__ import annotations

import json
import struct
from pathlib import Path

BLOCK, HEADER = 32768, 7


def _chunks(data: bytes):
    if data[:4] != b":W&B":
        raise ValueError(f"not a W&B record log (starts {data[:8]!r})")
    pos, pending = HEADER, b""
    while pos + HEADER <= len(data):
        left = BLOCK - pos % BLOCK
        if left < HEADER:  # block trailer: padding
            pos += left
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos:pos + HEADER])
        chunk = data[pos + HEADER:pos + HEADER + length]
        pos += HEADER + length
        if kind == 1:
            yield chunk
        elif kind == 2:
            pending = chunk
        elif kind == 3:
            pending += chunk
        elif kind == 4:
            yield pending + chunk
            pending = b""
        elif kind == 0:  # zero padding to the block's end
            pos += BLOCK - pos % BLOCK if pos % BLOCK else 0


def _key(item) -> str:
    return item.key or "/".join(item.nested_key)


def read_run(run_dir: Path) -> dict:
    """{"group", "id", "config": {key: value}, "summary": {key: value}, "files": [paths under files/]}."""
    from wandb.proto import wandb_internal_pb2

    (log,) = Path(run_dir).glob("run-*.wandb")
    out: dict = {"config": {}, "summary": {}, "group": None, "id": None}
    for data in _chunks(log.read_bytes()):
        record = wandb_internal_pb2.Record()
        record.ParseFromString(data)
        kind = record.WhichOneof("record_type")
        if kind == "run":
            out["group"], out["id"] = record.run.run_group, record.run.run_id
        elif kind == "config":
            out["config"].update({_key(i): json.loads(i.value_json) for i in record.config.update})
        elif kind == "summary":
            out["summary"].update({_key(i): json.loads(i.value_json) for i in record.summary.update})
    out["files"] = sorted(str(p.relative_to(run_dir / "files")) for p in (run_dir / "files").rglob("*") if p.is_file())
    return out
