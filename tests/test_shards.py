"""Sharded evaluation (`eval.shard=i/n`) and `python -m robustgen.evaluate merge`: shards are
disjoint and cover the points; merged, they equal an unsharded evaluation point for point; shards
of different checkpoints, attack sets or splits are refused by name."""
from __future__ import annotations

import json

import pytest

from robustgen.errors import ConfigError
from robustgen.eval.merge import MergeError, merge
from robustgen.eval.run import parse_shard, shard_positions
from tests.test_evaluate_cli import run_evaluate, trained  # noqa: F401  (fixture)

QUICK = ["eval=quick", "eval.n_points=40", "eval.batch_size=16", "eval.attacks.pgd_linf.steps=3"]


def test_shards_are_disjoint_contiguous_and_cover_every_point():
    for n, k in ((40, 3), (10_000, 7), (5, 5)):
        parts = [shard_positions(n, (i, k)) for i in range(k)]
        assert sum(parts, []) == list(range(n)) and max(map(len, parts)) - min(map(len, parts)) <= 1
    assert shard_positions(5, None) == list(range(5))
    for bad in ("4/4", "1/0", "a/b", "2"):
        with pytest.raises(ConfigError, match="eval.shard must be 'i/n'"):
            parse_shard(bad)


def test_merged_shards_equal_the_unsharded_evaluation_point_for_point(trained, cifar_root, tmp_path):  # noqa: F811
    ckpt = f"checkpoint={trained[0] / 'checkpoints' / 'best.ckpt'}"
    whole = run_evaluate(tmp_path / "whole", cifar_root, ckpt, *QUICK)
    shards = []
    for i in range(3):
        record = run_evaluate(tmp_path / f"shard{i}", cifar_root, ckpt, *QUICK, f"eval.shard={i}/3")
        assert record["eval"]["shard"] == f"{i}/3" and record["n_points"] == len(shard_positions(40, (i, 3)))
        assert record["eval"]["sanity"]["enabled"] and bool(record["eval"]["sanity"]["flags"]) == (i == 0)
        shards.append(tmp_path / f"shard{i}")
    merged = json.loads(merge(list(reversed(shards)), tmp_path / "merged").read_text())
    for key in ("n_points", "clean_acc", "attack_acc", "worst_case_acc"):
        assert merged[key] == whole[key], key
    a = json.loads((tmp_path / "whole" / "eval_outcomes.json").read_text())["examples"]
    b = json.loads((tmp_path / "merged" / "eval_outcomes.json").read_text())["examples"]
    assert a == b  # every point's label, breaker and per-attack outcome, in the same order

    with pytest.raises(MergeError, match=r"shard\(s\) 1/3 missing"):
        merge([shards[0], shards[2]], tmp_path / "m1")
    with pytest.raises(MergeError, match="given twice"):
        merge([shards[0], shards[0], shards[1]], tmp_path / "m2")
    other = run_evaluate(tmp_path / "other", cifar_root, ckpt, *QUICK, "eval.shard=1/3", "eval.attacks.pgd_linf.steps=4")
    assert other["eval"]["shard"] == "1/3"
    with pytest.raises(MergeError, match=r"shards of different evaluations \(their attack set differ") as err:
        merge([shards[0], tmp_path / "other", shards[2]], tmp_path / "m3")
    assert str(tmp_path / "other") in str(err.value)
    with pytest.raises(MergeError, match="not a shard"):
        merge([tmp_path / "whole", shards[1]], tmp_path / "m4")


def test_a_shard_with_corruptions_is_refused_before_any_work(trained, cifar_root, tmp_path):  # noqa: F811
    ckpt = f"checkpoint={trained[0] / 'checkpoints' / 'best.ckpt'}"
    with pytest.raises(ConfigError, match="evaluate corruptions unsharded"):
        run_evaluate(tmp_path, cifar_root, ckpt, *QUICK, "eval.shard=0/2", "eval/corrupted=all")
