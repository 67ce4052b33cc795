"""Your architecture in the study: a module of your own (tests/helpers/custom_nets.py) and a timm model
train through `python -m robustgen` like the zoo's, are evaluated, and are ranked in the report beside
the study's rows; weights trained elsewhere are evaluated from a state dict to the same numbers."""
from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from robustgen.report.paper import paper_table
from robustgen.report.stats import rank_among
from tests.helpers.custom_nets import build
from tests.helpers.hydra_helpers import TINY_ANY_ARCH
from tests.helpers.report_study import write_study

HERE = Path(__file__).parent
NETS = HERE / "helpers" / "custom_nets.py"
SMALL = TINY_ANY_ARCH


def run(module: str, args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True, cwd=cwd, timeout=600)


@pytest.fixture(scope="module")
def your_runs(tmp_path_factory, cifar_root) -> Path:
    """Two runs of architectures from outside the study: TinyNet (arch=custom) and timm's
    test_resnet (arch=timm)."""
    root = tmp_path_factory.mktemp("yours")
    for folder, arch in (("tinynet", ["arch=custom", f"arch.factory={NETS}:build", "arch.family=cnn",
                                      "arch.name=TinyNet"]),
                         ("test_resnet", ["arch=timm", "arch.model_name=test_resnet", "arch.family=cnn"])):
        done = run("robustgen", [*SMALL, *arch, f"data.root={cifar_root}", f"hydra.run.dir={root / folder}"], root)
        assert done.returncode == 0, done.stderr[-3000:]
    return root


def test_your_module_and_a_timm_model_train_and_record_where_they_came_from(your_runs):
    tiny = json.loads((your_runs / "tinynet" / "results.json").read_text())
    assert tiny["architecture"] | {"code": None} == {"choice": "custom", "name": "TinyNet", "family": "cnn",
                                                    "paper_row": None, "study_configuration": False,
                                                    "differs_from_study": None, "code": None, "scale": None}
    assert tiny["architecture"]["code"]["sha256"] == hashlib.sha256(NETS.read_bytes()).hexdigest()
    assert tiny["params"] == sum(p.numel() for p in build(10, 32).parameters())
    resnet = json.loads((your_runs / "test_resnet" / "results.json").read_text())
    assert resnet["architecture"]["name"] == "test_resnet" and resnet["architecture"]["code"]["source"] == "timm"
    for record in (tiny, resnet):
        assert record["n_points"] == 32 and 0 <= record["worst_case_acc"] <= record["clean_acc"] <= 100


def test_the_report_ranks_them_among_the_papers_architectures(your_runs, tmp_path):
    """Beside a synthetic study of the paper's twenty (its numbers), each of ours gets, per column,
    its rank among the paper's architectures: checked against a hand count."""
    from robustgen.report.__main__ import main as report

    study = write_study(tmp_path / "study")
    ours = json.loads((your_runs / "tinynet" / "results.json").read_text())["eval_attacks"]
    for path in study.rglob("results.json"):  # the study's rows measured with our runs' attacks: one table
        record = json.loads(path.read_text())
        record["eval_attacks"] = {k: ours.get(k, v) for k, v in record["eval_attacks"].items()}
        path.write_text(json.dumps(record))
    assert report([str(study), str(your_runs), "--compare", "paper", "--out", str(tmp_path / "report")]) == 0
    ranks = pd.read_csv(tmp_path / "report" / "ranks_among_paper.csv").to_dict(orient="records")
    paper = paper_table()
    for name, folder in (("TinyNet", "tinynet"), ("test_resnet", "test_resnet")):
        record = json.loads((your_runs / folder / "results.json").read_text())
        row = next(r for r in ranks if r["architecture"] == name and r["column"] == "worst_case")
        by_hand = 1 + sum(v > record["worst_case_acc"] for v in paper["worst_case"])
        assert (row["rank"], row["of"]) == (by_hand, 21)
        assert row["rank_low"] <= row["rank"] <= row["rank_high"]
        assert row["says"].startswith(f"{by_hand}") and "of 21 on worst_case" in row["says"]
    md = (tmp_path / "report" / "report.md").read_text()
    assert "Your architectures among the paper's" in md and "TinyNet: " in md


def test_rank_among_by_hand():
    """45% on 1,000 points among 50, 46, 44 and seventeen 30s: two higher, so 3rd of 21; the
    interval spans ±1.96·1.57 points, between 46 (2nd) and 44 (4th)."""
    result = rank_among([45.0], [1000], [50, 46, 44] + [30] * 17)
    assert (result.rank, result.of, result.ci) == (3, 21, (2, 4))


def test_weights_trained_elsewhere_evaluate_to_the_in_process_numbers(your_runs, tmp_path, cifar_root):
    """test_resnet's trained weights as a bare-network .safetensors (what a timm user would have):
    `python -m robustgen.evaluate weights=...` gives the per-point outcomes of the same weights
    evaluated at the end of training."""
    from safetensors.torch import save_file

    from robustgen.record.checkpoint import load_model

    model, _ = load_model(your_runs / "test_resnet" / "checkpoints" / "best.ckpt")
    save_file({k: v.contiguous() for k, v in model.net.state_dict().items()}, tmp_path / "resnet.safetensors")
    evaluation = [a for a in SMALL if a.startswith("eval.")]
    done = run("robustgen.evaluate", ["weights=" + str(tmp_path / "resnet.safetensors"), "arch=timm",
                                      "arch.model_name=test_resnet", "arch.family=cnn", "eval=quick", *evaluation,
                                      "progress_bar=false", f"data.root={cifar_root}",
                                      f"hydra.run.dir={tmp_path / 'eval'}"], tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    trained = json.loads((your_runs / "test_resnet" / "eval_outcomes.json").read_text())["examples"]
    now = json.loads((tmp_path / "eval" / "eval_outcomes.json").read_text())["examples"]
    assert now["id"] == trained["id"] and now["broken_by"] == trained["broken_by"]
    record = json.loads((tmp_path / "eval" / "results.json").read_text())
    assert record["loaded_into"] == "network" and record["architecture"]["name"] == "test_resnet"
