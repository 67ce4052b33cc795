"""An evaluation is never silent: with stderr redirected to a file (a cluster job) it writes plain
progress lines while it runs — per batch with points done, robust so far, elapsed and ETA, per
attack and AutoAttack component, per phase with durations, a heartbeat while something runs long
— and on a terminal rich draws bars instead. The summary table keeps the results path whole."""
from __future__ import annotations

import subprocess
import sys
import textwrap
import time

import pytest
import torch

from robustgen.attack import APGD, PGD, AutoAttack, Square
from robustgen.data.cifar10 import load_cifar10
from robustgen.data.datasets import IndexedTensorDataset
from robustgen.eval import EvalSettings, SanitySettings, evaluate_worst_case, run_evaluation
from robustgen.eval.progress import Reporter, duration, eta
from tests.conftest import REPO
from tests.helpers.trained_model import small_cnn

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def points(cifar_root) -> IndexedTensorDataset:
    images, labels = load_cifar10(cifar_root, "test", download=False)
    return IndexedTensorDataset(images[:48], labels[:48])


def tiny_set() -> dict:
    aa = AutoAttack("linf", 8 / 255)
    aa.components = {"apgd-ce": APGD("linf", 8 / 255, steps=2), "square": Square("linf", 8 / 255, n_queries=10)}
    return {"pgd_linf": PGD("linf", 8 / 255, steps=2, step_size=4 / 255), "aa_linf": aa}


def always_right(model: torch.nn.Module, dataset: IndexedTensorDataset) -> torch.nn.Module:
    """`model` plus a large logit on each point's own label (found as the nearest clean image, which
    an ε-ball attack does not change): every point is clean-correct and survives, so every attack
    of the set runs in every batch and prints its line, though the model is untrained."""
    images = dataset.images.float().div(255).flatten(1)

    class Cheat(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.model = model

        def forward(self, x):
            rows = torch.cdist(x.detach().flatten(1).float(), images).argmin(1)
            return 1e-3 * self.model(x) + 10.0 * torch.nn.functional.one_hot(dataset.labels[rows], 10)

    return Cheat().eval()


def test_plain_lines_per_batch_attack_and_component_when_not_a_terminal(points, capsys):
    torch.manual_seed(0)
    model = always_right(small_cnn(), points)
    report = evaluate_worst_case(model, points, tiny_set(), n_points=48, batch_size=16, progress=True)
    err = capsys.readouterr().err.splitlines()
    for k in (1, 2, 3):
        assert any(line.startswith(f"robustgen: batch {k}/3 · pgd_linf: 16 points, ") for line in err), err
        assert any(line.startswith(f"robustgen: batch {k}/3 · aa_linf/apgd-ce: 16 points, ") for line in err)
        done = [line for line in err if line.startswith(f"robustgen: batch {k}/3 done: {16 * k}/48 points, ")]
        assert len(done) == 1 and "robust so far" in done[0] and "elapsed" in done[0] and "ETA" in done[0]
    assert report.n_points == 48 and "aa_linf/apgd-ce" in report.seconds_by_component


def test_progress_lines_appear_while_a_redirected_run_goes_on(tmp_path, cifar_root):
    """A real process with stdout and stderr redirected to a file, as on a cluster: when the fourth
    of four batches starts, the file already holds the phase lines and the first three batches."""
    log, snapshot = tmp_path / "run.log", tmp_path / "during.log"
    script = textwrap.dedent(f"""
        import shutil, torch
        from robustgen.attack import PGD
        from robustgen.data.cifar10 import load_cifar10
        from robustgen.data.datasets import IndexedTensorDataset
        from robustgen.eval import EvalSettings, SanitySettings, run_evaluation
        from tests.helpers.trained_model import small_cnn

        class Watched(IndexedTensorDataset):
            def __getitem__(self, k):
                if k == 48:  # the fourth batch starts: what has the run said so far?
                    shutil.copy({str(log)!r}, {str(snapshot)!r})
                return super().__getitem__(k)

        torch.manual_seed(0)
        torch.set_num_threads(1)
        images, labels = load_cifar10({str(cifar_root)!r}, "test", download=False)
        attacks = {{"pgd_linf": PGD("linf", 8 / 255, steps=2, step_size=4 / 255)}}
        settings = EvalSettings(n_points=64, batch_size=16, sanity=SanitySettings(n_points=16, batch_size=16,
                                huge_eps_steps=2, square_queries=5))
        run_evaluation(small_cnn().eval(), Watched(images[:64], labels[:64]), attacks, settings, output_dir=None)
    """)
    with open(log, "w") as out:
        proc = subprocess.run([sys.executable, "-c", script], stdout=out, stderr=subprocess.STDOUT, cwd=REPO,
                              timeout=300, check=False)
    assert proc.returncode == 0, log.read_text()
    during = snapshot.read_text()
    assert "robustgen: sanity checks before on 16 points ..." in during
    assert "robustgen: sanity checks before: done after" in during
    assert "robustgen: attack set (pgd_linf) on 64 points, 4 batches ... (before: sanity checks before" in during
    for k in (1, 2, 3):
        assert f"robustgen: batch {k}/4 done: {16 * k}/64 points, robust so far" in during
    assert "ETA" in during and "batch 4/4 done" not in during
    after = log.read_text()
    assert "robustgen: batch 4/4 done: 64/64 points" in after
    assert "robustgen: sanity checks after ... (before: sanity checks before" in after


def test_heartbeat_says_what_is_still_running(capsys):
    with Reporter(True, terminal=False, heartbeat_s=0.2) as reporter, reporter.running("FAB-T on 37 points"):
        time.sleep(1.5)
    lines = [line for line in capsys.readouterr().err.splitlines() if "still running FAB-T on 37 points" in line]
    assert 2 <= len(lines) <= 8, lines  # one per silent interval, not one per poll
    assert lines[-1].endswith("so far")


def test_phases_say_how_long_the_earlier_ones_took(capsys):
    reporter = Reporter(True, terminal=False, heartbeat_s=None)
    with reporter.phase("first"):
        pass
    with reporter.phase("second", " on 3 points"):
        pass
    err = capsys.readouterr().err.splitlines()
    assert err[0] == "robustgen: first ..." and err[1].startswith("robustgen: first: done after ")
    assert err[2].startswith("robustgen: second on 3 points ... (before: first ")
    assert list(reporter.phases) == ["first", "second"]
    assert duration(5.04) == "5.0 s" and duration(185) == "3m05s" and duration(3720) == "1h02m"
    assert eta(10.0, 1, 4) == "30 s" and eta(1.0, 0, 4) == "?"


def test_nothing_is_said_when_progress_is_off(points, capsys):
    evaluate_worst_case(small_cnn().eval(), points, tiny_set(), n_points=32, batch_size=16, progress=False)
    assert capsys.readouterr().err == ""


def test_a_terminal_gets_bars_not_lines(points, capsys):
    model = always_right(small_cnn(), points)
    reporter = Reporter(True, terminal=True, heartbeat_s=None)
    settings = EvalSettings(n_points=32, batch_size=16, sanity=SanitySettings(enabled=False))
    result = run_evaluation(model, points, tiny_set(), settings, output_dir=None, progress=reporter)
    assert "robustgen: batch" not in capsys.readouterr().err
    assert list(result.seconds_by_phase) == ["attack set"]


def test_corruption_cells_report_lines_with_eta(capsys):
    from robustgen.eval.corruptions import _CellProgress

    cells = [("fog", 1), ("fog", 2), ("snow", 1)]
    with _CellProgress(True, cells) as advance:
        for name, severity in cells:
            advance(name, severity, 50.0)
    err = capsys.readouterr().err.splitlines()
    assert [line.split(":")[2].strip() for line in err] == ["1/3 fog s1", "2/3 fog s2", "3/3 snow s1"]
    assert all("elapsed" in line and "ETA" in line for line in err)


def test_summary_table_keeps_the_results_path_whole_at_any_width(monkeypatch, capsys, tmp_path):
    from robustgen.record.summary import print_summary

    path = tmp_path / ("a-long-folder-name-" * 6) / "results.json"
    record = {"run_name": "vit-pgd_linf-s34257", "n_points": 100, "clean_acc": 50.0,
              "attack_acc": {"pgd_linf": 30.0, "aa_linf_with_a_long_attack_name": 20.0}, "worst_case_acc": 19.0,
              "time_s": {"total": 12.0}}
    for width in (30, 60, 200):
        monkeypatch.setenv("COLUMNS", str(width))
        print_summary(record, path)
        out = capsys.readouterr().out
        assert f"results: {path}" in out.splitlines()  # one line, unbroken
        table = out[:out.index("results: ")].splitlines()
        assert all(len(line) <= width for line in table)
        assert "19.00" in out and "aa_linf" in out
