"""`python -m robustgen.evaluate` on the checkpoint of a tiny real training run: the same numbers
and results.json fields as training's own evaluation, resuming, and clear refusals."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from robustgen.errors import CheckpointError, ConfigError
from robustgen.evaluate import evaluate
from robustgen.train import train
from tests.helpers.hydra_helpers import TINY, compose_config

# The fields a training run's results.json has that do not depend on training itself.
SHARED_FIELDS = {"run_name", "choices", "seed", "overrides", "code_version", "hardware", "arch", "params",
                 "train_attack", "eval_attacks", "n_points", "clean_acc", "attack_acc", "worst_case_acc", "metrics",
                 "eval", "time_s"}
EVAL_FIELDS = {"set", "attacks", "n_points", "per_attack", "batch_size", "outcomes_file", "resumed_points",
               "attacked_points", "sanity"}


@pytest.fixture(scope="module")
def trained(tmp_path_factory, cifar_root):
    out = tmp_path_factory.mktemp("trained")
    train(compose_config(TINY + [f"data.root={cifar_root}"], output_dir=out))
    return out, json.loads((out / "results.json").read_text())


def run_evaluate(out, cifar_root, *overrides: str) -> dict:
    cfg = compose_config([f"data.root={cifar_root}", "progress_bar=false", *overrides], output_dir=out,
                         config_name="evaluate")
    evaluate(cfg)
    return json.loads((out / "results.json").read_text())


def test_evaluate_matches_training_and_writes_the_same_fields(trained, cifar_root, tmp_path):
    run, train_results = trained
    # The same attack set and points as the tiny training's final evaluation.
    results = run_evaluate(tmp_path, cifar_root, f"checkpoint={run / 'checkpoints' / 'best.ckpt'}", "eval=quick",
                           "eval.n_points=32", "eval.batch_size=32", "eval.attacks.pgd_linf.steps=3")
    assert SHARED_FIELDS <= results.keys() and SHARED_FIELDS <= train_results.keys()
    assert EVAL_FIELDS <= results["eval"].keys() and EVAL_FIELDS <= train_results["eval"].keys()
    for key in ("clean_acc", "attack_acc", "worst_case_acc", "n_points", "params", "arch", "eval_attacks"):
        assert results[key] == train_results[key], key
    assert results["choices"]["eval"] == "quick" and results["eval"]["set"] == "quick"
    assert results["eval"]["attacks"]["pgd_l1"]["l1_variant"] == "study"
    assert results["training_run"]["seed"] == train_results["seed"]
    sanity = results["eval"]["sanity"]
    assert sanity["enabled"] and sanity["n_points"] == 32 and len(sanity["flags"]) == 9
    assert all({"name", "passed", "values", "message"} <= flag.keys() for flag in sanity["flags"])
    outcomes = json.loads((tmp_path / "eval_outcomes.json").read_text())
    assert outcomes["examples"]["id"] == list(range(32))


def test_evaluate_resumes_in_the_same_folder(trained, cifar_root, tmp_path):
    ckpt = f"checkpoint={trained[0] / 'checkpoints' / 'best.ckpt'}"
    quick = ["eval=quick", "eval.sanity.enabled=false"]
    first = run_evaluate(tmp_path, cifar_root, ckpt, *quick, "eval.n_points=40")
    assert first["eval"]["resumed_points"] == 0 and first["eval"]["sanity"]["flags"] == []
    more = run_evaluate(tmp_path, cifar_root, ckpt, *quick, "eval.n_points=64")
    assert more["eval"]["resumed_points"] == 40 and more["n_points"] == 64
    fresh = run_evaluate(tmp_path / "fresh", cifar_root, ckpt, *quick, "eval.n_points=64")
    for key in ("clean_acc", "attack_acc", "worst_case_acc"):
        assert more[key] == fresh[key], key


def test_checkpoint_of_another_arch_is_refused(trained, cifar_root, tmp_path):
    ckpt = f"checkpoint={trained[0] / 'checkpoints' / 'best.ckpt'}"
    with pytest.raises(CheckpointError, match="holds arch=vit, but arch=resnet was requested"):
        run_evaluate(tmp_path, cifar_root, ckpt, "arch=resnet")
    assert not (tmp_path / "results.json").exists()


def test_checkpoint_of_other_data_is_refused(trained, tmp_path):
    cfg = compose_config([f"checkpoint={trained[0] / 'checkpoints' / 'best.ckpt'}", "data=imagenette",
                          f"data.root={tmp_path}"], output_dir=tmp_path, config_name="evaluate")
    with pytest.raises(CheckpointError, match=r"img_size': 32.*pass the data it was trained on \(data=cifar10\)"):
        evaluate(cfg)


def test_missing_checkpoint_is_asked_for(tmp_path):
    cfg = compose_config([], output_dir=tmp_path, config_name="evaluate")
    with pytest.raises(ConfigError, match="give checkpoint=PATH"):
        evaluate(cfg)
    cfg = compose_config([f"checkpoint={tmp_path / 'nope.ckpt'}"], output_dir=tmp_path, config_name="evaluate")
    with pytest.raises(CheckpointError, match="does not exist"):
        evaluate(cfg)


def test_corrupt_checkpoint_exits_with_a_clear_message(tmp_path):
    bad = tmp_path / "corrupt.ckpt"
    bad.write_bytes(b"PK\x03\x04 this is not a checkpoint")
    proc = subprocess.run([sys.executable, "-m", "robustgen.evaluate", f"checkpoint={bad}",
                           f"hydra.run.dir={tmp_path / 'out'}"], capture_output=True, text=True, timeout=120,
                          check=False)
    assert proc.returncode == 2
    assert f"robustgen: error: cannot read checkpoint {bad} safely" in proc.stderr
    assert "Traceback" not in proc.stderr
