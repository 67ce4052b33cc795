"""What a user watches (issue 13): the worst case every epoch, what the offline W&B run holds
(read back from the files W&B itself writes), and the Optuna sweep over the ℓ1 penalty."""
from __future__ import annotations

import csv
import json

import pytest
import yaml

from tests.helpers.hydra_helpers import TINY
from tests.test_multirun import run_cli
from tests.test_train import run_tiny


def epoch_rows(run_dir):
    """The CSV logger's metrics per epoch (its rows of one epoch merged), for epochs with validation."""
    (path,) = run_dir.glob("csv/version_*/metrics.csv")
    epochs: dict[float, dict] = {}
    for row in csv.DictReader(path.open()):
        values = {k: float(v) for k, v in row.items() if v != ""}
        if "epoch" in values:
            epochs.setdefault(values["epoch"], {}).update(values)
    return [r for _, r in sorted(epochs.items()) if "val/acc_worst" in r]


def test_worst_case_is_logged_every_epoch_and_can_select_the_checkpoint(tmp_path, cifar_root):
    _, record = run_tiny(tmp_path, cifar_root, "logger=csv", "trainer.max_epochs=2",
                         "checkpoint.monitor=val/acc_worst")
    rows = epoch_rows(tmp_path)
    assert len(rows) == 2  # every epoch
    for r in rows:
        per_attack = [r["val/acc/pgd_linf"], r["val/acc/pgd_l2"], r["val/acc/pgd_l1"]]
        assert r["val/acc_worst"] <= min(per_attack) + 1e-6
        assert r["val/acc_adv"] == pytest.approx(r["val/acc/pgd_linf"])  # val_attack is the ℓ∞ member
        assert "gap/robust_worst" in r and r["train/acc_worst_fixed"] - r["val/acc_worst"] == \
            pytest.approx(r["gap/robust_worst"], abs=1e-4)
    assert record["checkpoint_monitor"] == "val/acc_worst" and record["best_val_acc_clean"] is None
    assert record["best_val_score"] == pytest.approx(max(r["val/acc_worst"] for r in rows))  # the monitor
    assert set(record["robust_gap"]["history"][-1]) >= {"train/acc_worst_fixed", "gap/robust_worst"}


def test_a_cascade_logs_only_exact_numbers(tmp_path, cifar_root):
    run_tiny(tmp_path, cifar_root, "logger=csv", "val_eval.per_attack=false")
    (row,) = epoch_rows(tmp_path)
    assert "val/acc/pgd_linf" in row and "val/acc/pgd_l2" not in row and "val/acc_worst" in row


def test_offline_wandb_run_holds_config_choices_summary_table_and_figure(tmp_path, cifar_root, monkeypatch):
    from tests.helpers.wandb_offline import read_run

    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    _, record = run_tiny(tmp_path, cifar_root, "logger=wandb", "regularizer=l1")
    (run_dir,) = (tmp_path / "wandb").glob("offline-run-*")
    run = read_run(run_dir)
    assert run["id"] == record["run_id"] and run["group"] == "vit"  # a single run: grouped by arch
    choice = run["config"]["choice"]
    assert choice["arch"] == "vit" and choice["attack"] == "pgd_linf" and choice["regularizer"] == "l1"
    assert run["config"]["regularizer"]["weight"] == pytest.approx(1e-5)
    summary = run["summary"]
    assert summary["final/acc/clean"] == pytest.approx(record["clean_acc"])
    assert summary["final/acc/worst_case"] == pytest.approx(record["worst_case_acc"])
    for name, acc in record["attack_acc"].items():
        assert summary[f"final/acc/{name}"] == pytest.approx(acc)
    assert summary["params"] == record["params"] and summary["macs"] == record["macs"] > 0
    assert summary["val/acc_worst"] >= 0  # the per-epoch curve's last value
    (table_file,) = [f for f in run["files"] if f.startswith("media/table/final/results_")]
    table = json.loads((run_dir / "files" / table_file).read_text())
    assert table["columns"] == ["kind", "name", "severity", "accuracy"]
    rows = {(r[0], r[1]): r[3] for r in table["data"]}
    assert rows[("worst_case", "worst_case")] == pytest.approx(record["worst_case_acc"])
    assert rows[("clean", "clean")] == pytest.approx(record["clean_acc"])
    (image,) = [f for f in run["files"] if f.startswith("media/images/final/accuracy_")]
    assert (run_dir / "files" / image).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (tmp_path / "accuracy.png").exists()


def test_run_group_is_the_sweep_folder_in_a_multirun_and_the_arch_otherwise():
    from tests.helpers.hydra_helpers import compose_config

    assert compose_config([]).group == "resnet"


@pytest.mark.slow  # 17 s of Optuna trials
def test_optuna_sweeper_searches_the_l1_penalty_and_maximises_the_worst_case(tmp_path, cifar_root):
    sweep_dir = tmp_path / "sweep"
    proc = run_cli("-m", "+sweep=l1_search", *TINY, f"data.root={cifar_root}", f"hydra.sweep.dir={sweep_dir}",
                   "hydra.sweeper.n_trials=3", "regularizer.scope=choice(all,mlp)",
                   cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    trials = [json.loads(p.read_text()) for p in sorted(sweep_dir.glob("*/results.json"))]
    assert len(trials) == 3
    weights = [t["regularizer"]["weight"] for t in trials]
    assert all(1e-7 <= w <= 1e-3 for w in weights) and len(set(weights)) == 3
    assert {t["regularizer"]["scope"] for t in trials} <= {"all", "mlp"}
    assert all(t["choices"]["regularizer"] == "l1" for t in trials)
    best = yaml.safe_load((sweep_dir / "optimization_results.yaml").read_text())
    assert best["best_value"] == pytest.approx(max(t["worst_case_acc"] for t in trials))
    # the W&B group of every trial is the sweep's folder
    assert all(t.get("group") == str(sweep_dir) for t in trials), [t.get("group") for t in trials]


@pytest.mark.slow  # 25 s of Optuna trials
def test_optuna_counts_a_failed_trial_and_finishes_the_study(tmp_path, cifar_root):
    """A trial refused by the regularizer (an unknown scope) is a failed trial for Optuna: the study
    goes on (max_failure_rate=1.0), writes its optimization_results.yaml, and the sweep ends with
    the summary of every planned trial and exit status 1."""
    sweep_dir = tmp_path / "sweep"
    proc = run_cli("-m", "+sweep=l1_search", *TINY, f"data.root={cifar_root}", f"hydra.sweep.dir={sweep_dir}",
                   "hydra.sweeper.n_trials=4", "hydra.sweeper.max_failure_rate=1.0",
                   "regularizer.scope=choice(all,nowhere)", cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr[-3000:]
    summary = json.loads((sweep_dir / "summary.json").read_text())
    assert summary["planned"] == 4 and len(summary["done"]) + len(summary["failed"]) == 4
    assert summary["failed"] and summary["done"] and not summary["missing"]
    best = yaml.safe_load((sweep_dir / "optimization_results.yaml").read_text())
    done = [json.loads(p.read_text()) for p in sweep_dir.glob("*/results.json")]
    assert best["best_value"] == pytest.approx(max(t["worst_case_acc"] for t in done))


def test_shortened_quickstart_beats_chance_clearly(tmp_path, cifar_root):
    """The quickstart on half its images and epochs (~30 s on 2 cores): already 27% clean and 19%
    PGD-ℓ∞ on 100 test points here. At chance (10%), 20 or more of 100 happens with p ≈ 0.002."""
    from tests.helpers.hydra_helpers import compose_config

    from robustgen.train import train

    cfg = compose_config(["experiment=quickstart", "logger=none", "progress_bar=false", f"data.root={cifar_root}",
                          "data.train_subset=1536", "trainer.max_epochs=3", "eval.n_points=100",
                          "eval.sanity.enabled=false"], output_dir=tmp_path)
    assert cfg.callbacks.sparsity.every_n_epochs == 3  # follows the epochs: measured once, at the end
    assert cfg.trainer.precision in ("bf16-mixed", "32-true")  # ${cpu_precision:}: bf16 only where native
    train(cfg)
    record = json.loads((tmp_path / "results.json").read_text())
    assert record["chance_acc"] == 10.0 and record["n_points"] == 100
    assert record["clean_acc"] >= 2 * record["chance_acc"], record["clean_acc"]
    assert record["attack_acc"]["pgd_linf"] > record["chance_acc"], record["attack_acc"]


@pytest.mark.slow  # the quickstart itself: ~2 minutes on 2 cores
def test_quickstart_learns_well_above_chance(tmp_path, cifar_root):
    """`make quickstart` as shipped: at least 35% clean and 15% PGD-ℓ∞ accuracy (chance: 10%)."""
    from tests.helpers.hydra_helpers import compose_config

    from robustgen.train import train

    cfg = compose_config(["experiment=quickstart", "logger=none", "progress_bar=false", f"data.root={cifar_root}"],
                         output_dir=tmp_path)
    assert cfg.arch.depth == 11 and cfg.arch.width == 0.5 and cfg.method._target_.endswith("FastAT")
    assert cfg.optim.schedule == "cyclic"
    train(cfg)
    record = json.loads((tmp_path / "results.json").read_text())
    assert record["chance_acc"] == 10.0 and record["n_points"] == 200
    assert record["clean_acc"] >= 35.0, record["clean_acc"]
    assert record["attack_acc"]["pgd_linf"] >= 15.0, record["attack_acc"]
