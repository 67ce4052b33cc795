"""Every kind of bad input ends with one `robustgen: error:` line naming the fix, exit status 2,
no traceback, and nothing already computed lost.

The entry points run in-process (their real `main()`, with sys.argv set as a shell would), so the
many cases stay fast; tests/test_multirun.py runs the same path through real subprocesses.
"""
from __future__ import annotations

import hashlib
import pickle
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from robustgen import analyze
from robustgen import evaluate as evaluate_app
from robustgen import train as train_app
from tests.helpers.hydra_helpers import TINY, compose_config

FAST = ["experiment=smoke", "logger=none", "progress_bar=false"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory, cifar_root) -> Path:
    """A real tiny training run (its folder holds checkpoints/best.ckpt, last.ckpt, results.json)."""
    out = tmp_path_factory.mktemp("trained")
    train_app.train(compose_config(TINY + [f"data.root={cifar_root}"], output_dir=out))
    return out


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory, cifar_root, trained) -> dict[str, Path]:
    """Broken data folders and checkpoints, each with one thing wrong."""
    root = tmp_path_factory.mktemp("bad")
    good = cifar_root / "cifar-10-batches-py"

    def data_folder(name: str, batch: dict | bytes | None) -> Path:
        folder = root / name / "cifar-10-batches-py"
        shutil.copytree(good, folder)
        target = folder / "data_batch_1"
        if isinstance(batch, bytes):
            target.write_bytes(batch)
        else:
            with open(target, "wb") as f:
                pickle.dump(batch, f, protocol=5)
        return root / name

    original = (good / "data_batch_1").read_bytes()
    ones = {"data": np.zeros((10, 3072), np.uint8), "labels": [0] * 10}

    class Payload:
        def __reduce__(self):
            return (open, (str(root / "pwned"), "w"))

    files = {
        "truncated_data": data_folder("truncated", original[: len(original) // 3]),
        "wrong_shape": data_folder("shape", {**ones, "data": np.zeros((10, 1024), np.uint8)}),
        "wrong_labels": data_folder("labels", {**ones, "labels": [12] * 10}),
        "code_in_data": data_folder("code", {**ones, "labels": Payload()}),
        "no_data": root / "empty",
    }
    files["no_data"].mkdir()
    ckpt = trained / "checkpoints" / "best.ckpt"
    files["truncated_ckpt"] = root / "truncated.ckpt"
    files["truncated_ckpt"].write_bytes(ckpt.read_bytes()[:5000])
    files["code_ckpt"] = root / "code.ckpt"
    torch.save({"state_dict": {}, "x": Payload()}, files["code_ckpt"])
    files["weights_only_ckpt"] = root / "weights.ckpt"
    torch.save(torch.load(ckpt, weights_only=True)["state_dict"], files["weights_only_ckpt"])
    files["not_a_run"] = root / "not-a-run"
    files["not_a_run"].mkdir()
    return files


def folder_digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


# (entry point, arguments, what the message must say). {data}, {ckpt}, {run}, {bad:<name>} are filled in.
CASES = [
    # config values
    ("train", ["attack.eps=8/255"], r"attack.eps=\${div:8,255}"),
    ("train", ["attack.eps=-0.1"], "eps must be ≥ 0"),
    ("train", ["attack.eps=2"], "did you mean 2/255"),
    ("train", ["attack.steps=0"], "steps must be an integer ≥ 1"),
    ("train", ["attack.steps=ten"], "steps must be an integer ≥ 1, got .ten."),
    ("train", ["attack.step_size=0"], "step_size must be > 0"),
    ("train", ["attack.norm=l3"], "norm must be one of"),
    ("train", ["attack=pgd_l1", "attack.l1_variant=sparse"], "l1_variant must be one of"),
    ("train", ["attack.eps=${div:8,0}"], "cannot resolve the config"),
    ("train", ["eval.n_points=0"], "eval.n_points must be an integer ≥ 1"),
    ("train", ["eval.batch_size=many"], "eval.batch_size must be an integer"),
    ("train", ["eval.attacks=null"], "eval.attacks is empty"),
    ("train", ["data.batch_size=0"], "data.batch_size must be an integer ≥ 1, got 0"),
    ("train", ["data.val_from=valid"], "data.val_from must be 'test' or 'train'"),
    ("train", ["optim.lr=-1"], "optim.lr must be > 0"),
    ("train", ["optim.lr=fast"], "optim: TypeError"),
    ("train", ["regularizer=l1", "regularizer.weight=-1"], "must be ≥ 0"),
    ("train", ["regularizer=l1", "regularizer.scope=heads"], "not a scope; choose one of"),
    ("train", ["arch=vit", "arch.patch_size=3"], "patch"),
    ("train", ["arch=coatnet", "arch.stages=CXTT"], "stages"),
    # unknown options, keys and knobs
    ("train", ["arch=nosuch"], "available options in 'arch': botnet"),
    ("train", ["attack=pgd_l5"], "available options in 'attack'"),
    ("train", ["hydra/launcher=slurmm"], "available options in 'hydra/launcher': .*slurm"),
    ("evaluate", ["checkpoint={ckpt}", "eval.shard=3/3"], "eval.shard must be 'i/n' with 0 ≤ i < n"),
    ("train", ["attack.foo=1"], r"use \+attack.foo=1"),
    ("train", ["arch=mobilevit", "+arch.patch_size=4"], "has no knob 'patch_size'; its knobs: stem_width"),
    ("train", ["arch=resnet", "+arch.heads=4"], "has no knob 'heads'"),
    # data files
    ("train", ["data.root={bad:truncated_data}"], "data_batch_1: not a readable CIFAR-10 batch"),
    ("train", ["data.root={bad:wrong_shape}"], r"must be uint8 of shape \(N, 3072\)"),
    ("train", ["data.root={bad:wrong_labels}"], r"labels must lie in 0..9"),
    ("train", ["data.root={bad:code_in_data}"], "refusing to load"),
    ("train", ["data.root={bad:no_data}", "data.download=false"], "Provide CIFAR-10 in"),
    # resuming
    ("train", ["resume={bad:missing}"], "no such checkpoint"),
    ("train", ["resume={run}/checkpoints/last.ckpt", "optim.lr=0.5"], "was trained with other settings"),
    ("train", ["resume={bad:weights_only_ckpt}"], "not a robustgen training checkpoint"),
    ("train", ["resume={bad:truncated_ckpt}"], "cannot read checkpoint"),
    # checkpoints given to evaluate
    ("evaluate", [], r"give checkpoint=PATH \(a robustgen .ckpt"),
    ("evaluate", ["weights={bad:truncated_ckpt}"], "needs arch=... : the architecture the weights are for"),
    ("evaluate", ["checkpoint={bad:missing}"], "does not exist"),
    ("evaluate", ["checkpoint={bad:truncated_ckpt}"], "cannot read checkpoint .* safely"),
    ("evaluate", ["checkpoint={bad:code_ckpt}"], "cannot read checkpoint .* safely"),
    ("evaluate", ["checkpoint={ckpt}", "arch=resnet"], "holds arch=vit, but arch=resnet was requested"),
    ("evaluate", ["checkpoint={ckpt}", "data=imagenette"], "pass the data it was trained on"),
    ("evaluate", ["checkpoint={ckpt}", "eval=nosuch"], "available options in 'eval'"),
    # a results folder without results
    ("analyze", ["sparsity", "{bad:not_a_run}"], "results.json"),
]


def fill(arg: str, files: dict, trained: Path, cifar_root: Path, tmp_path: Path) -> str:
    arg = arg.replace("{ckpt}", str(trained / "checkpoints" / "best.ckpt")).replace("{run}", str(trained))
    if "{bad:" in arg:
        name = arg.split("{bad:")[1].split("}")[0]
        arg = arg.replace(f"{{bad:{name}}}", str(files.get(name, tmp_path / "missing.ckpt")))
    return arg


def run_entry_point(entry: str, args: list[str], monkeypatch) -> int:
    if entry == "analyze":
        return analyze.main(args)
    main = {"train": train_app.main, "evaluate": evaluate_app.main}[entry]
    monkeypatch.setattr(sys, "argv", [f"robustgen.{entry}", *args])
    with pytest.raises(SystemExit) as stopped:
        main()
    return stopped.value.code


@pytest.mark.parametrize("entry, args, says", CASES, ids=[" ".join(c[1]) or c[0] for c in CASES])
def test_bad_input_ends_in_one_line_that_names_the_fix(entry, args, says, bad_files, trained, cifar_root, tmp_path,
                                                       monkeypatch, capsys):
    import re

    before = folder_digest(trained)
    args = [fill(a, bad_files, trained, cifar_root, tmp_path) for a in args]
    if entry != "analyze":
        args = [*(FAST if entry == "train" else ["progress_bar=false"]), f"hydra.run.dir={tmp_path / 'out'}",
                *([] if any(a.startswith("data.root=") for a in args) else [f"data.root={cifar_root}"]), *args]
    code = run_entry_point(entry, args, monkeypatch)
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("robustgen: error:")]
    assert code == 2, err[-2000:]
    assert len(lines) == 1 and "Traceback" not in err, err[-2000:]
    assert re.search(says, err), err[-2000:]
    assert not (tmp_path / "out" / "checkpoints").exists()  # refused before any training
    assert not (tmp_path / "out").exists()  # and no empty run folder left behind
    assert folder_digest(trained) == before  # the earlier run's results and checkpoints are untouched
    assert not (bad_files["no_data"].parent / "pwned").exists()  # no pickled code ran


# Found by trying it as a new user: each used to end in a traceback or fail only after training.
CASES_MORE = [
    ("train", ["data.train_subset=hello"], "data.train_subset must be an integer"),
    ("train", ["arch=resnet", "+arch/scale=smoke"], r"arch/scale=smoke sizes coatnet, vgg, vit, not arch=resnet: "
                                                    r"add its settings to conf/arch/scale/smoke.yaml"),
    ("train", ["arch=vgg", "arch.width=0.5", "+arch/scale=smoke"],
     r"arch.width=0.5 would be replaced by arch/scale=smoke's width=0.25: leave arch.width out, or leave the scale "
     r"out \(drop \+arch/scale=...; under experiment=paper_smoke, add arch/scale=full\)"),
    ("train", ["arch=vit", "+arch.depth=2", "+arch/scale=smoke"], r"arch.depth=2 would be replaced by arch/scale=smoke's"),
    ("train", ["arch=vgg11_half", "+arch/scale=smoke"], r"arch/scale=smoke sizes coatnet, vgg, vit, not arch=vgg11_half"),
    ("train", ["arch=timm", "arch.model_name=resnet18", "arch.name=vit", "+arch/scale=smoke"],
     r"arch/scale=smoke sizes the zoo's architectures only, not arch.source=timm models"),
    ("train", ["arch=custom", "arch.factory=tests/helpers/custom_nets.py:build", "+arch/scale=smoke"],
     r"arch/scale=smoke sizes the zoo's architectures only, not arch.source=custom models"),
    ("train", ["arch=vit", "+arch.embed_dim=33", "+arch.num_heads=2"], "arch=vit cannot be built with"),
    ("train", ["trainer.max_epochs=0"], "trainer.max_epochs must be an integer ≥ 1"),
    ("train", ["data.val_from=train", "data.val_size=60000"], "holds out every training image"),
    ("train", ["attack.steps=2.5"], "steps must be an integer ≥ 1, got 2.5"),
    ("train", ["optim.lr=abc"], r"optim.lr='abc'"),
    # architectures from outside the study (arch=timm, arch=custom; tests/helpers/custom_nets.py)
    ("train", ["arch=timm", "arch.model_name=resnet181"], r"is not a timm model; did you mean resnet18"),
    ("train", ["arch=custom", "arch.factory=no_such_pkg.nets:build"], "cannot import no_such_pkg.nets"),
    ("train", ["arch=custom", "arch.factory=tests/helpers/custom_nets.py:buld"], "has no callable 'buld'"),
    ("train", ["arch=custom", "arch.factory=tests/helpers/custom_nets.py:not_a_module"],
     "returned a str, not an nn.Module"),
    ("train", ["arch=custom", "arch.factory=tests/helpers/custom_nets.py:needs_large_images"],
     "cannot run on 32 px images"),
    ("evaluate", ["weights={ckpt}", "arch=resnet"], "do not fit this architecture"),
    ("train", ["arch=custom", "arch.factory=tests/helpers/custom_nets.py:wrong_classes"],
     "returns 12 logits per image but the data has 10 classes; build it with num_classes=10"),
    ("train", ["arch=custom", "arch.factory=tests/helpers/custom_nets.py:with_features"],
     r"returns a tuple \(Tensor, Tensor\), not one logits tensor .* robustgen.arch.LogitsOf\(model, 0\)"),
    ("train", ["arch=custom", "arch.factory=tests/helpers/custom_nets.py:build", "arch.family=CNN"],
     "arch.family='CNN'; choose one of cnn, transformer, hybrid, mlp"),
    ("train", ["data.normalization=imagenet"], r"data.normalization='imagenet'; choose one of study, dataset_stats"),
    ("train", ["eval.n_points=20000"], r"eval.n_points=20000 but the test set has 10000 images"),
    ("evaluate", ["checkpoint={ckpt}", "eval.n_points=20000"], r"eval.n_points=20000 but the test set has 10000"),
    ("evaluate", ["checkpoint={run}"], "is a folder; pass the .ckpt file, e.g. checkpoint="),
    # an attack's error names its config node: several nodes build the same class
    ("train", ["val_eval.attacks.pgd_l2.random_start=sphere"],
     r"val_eval.attacks.pgd_l2: PGD-l2: random_start must be one of \('ball', 'radius'\) or none"),
    ("train", ["attack.random_start=radius"], "attack: PGD-linf: an ℓ∞ start is uniform in the ε-box"),
]


@pytest.mark.parametrize("entry, args, says", CASES_MORE, ids=[" ".join(c[1]) for c in CASES_MORE])
def test_more_bad_inputs_end_in_one_line(entry, args, says, bad_files, trained, cifar_root, tmp_path, monkeypatch,
                                         capsys):
    test_bad_input_ends_in_one_line_that_names_the_fix(entry, args, says, bad_files, trained, cifar_root, tmp_path,
                                                       monkeypatch, capsys)
