"""Every registered architecture, checked the same way; and the `python -m robustgen.zoo` table.

Tests are parametrised over `list_archs()` at collection time, so an architecture added to the
registry is checked without touching this file. Heavy architectures' expensive checks (backward
at 32 px, forward at 224 px) are marked slow after measuring the default run on 2 CPU cores;
the parameter-count check always runs.
"""
from __future__ import annotations

import csv
import json
from dataclasses import replace
from pathlib import Path

import pytest
import timm
import torch
import torch.nn.functional as F

from robustgen.arch import count_parameters, create_arch, get_spec, list_archs
from robustgen.arch.layer_kinds import KINDS, parameter_kinds
from robustgen.arch.registry import ARCHS as ARCHS_BY_NAME
from robustgen.arch.registry import FAMILIES
from robustgen.errors import ConfigError
from robustgen.zoo import main as zoo_main

ARCHS = list_archs()
PAPER_TABLE = Path(__file__).resolve().parents[2] / "shared" / "reference" / "paper_table_cifar10.csv"

# Left out of the default run to keep this file near 3 minutes on 2 cores (measured with
# `OMP_NUM_THREADS=2 pytest tests/test_zoo.py --durations=30`): WRN-40-10 costs 8.1 GMACs per 32 px
# image, four times any other architecture (`python -m robustgen.zoo`), and ~25 GMACs at 224 px.
# Its parameter count, init and layer kinds are still checked by default.
SLOW_BACKWARD = {"wideresnet"}
SLOW_224 = {"wideresnet"}


def _params(names: list[str], slow: set[str] = frozenset()) -> list:
    return [pytest.param(n, marks=pytest.mark.slow) if n in slow else n for n in names]


def _build(name: str, seed: int = 0, **kwargs) -> torch.nn.Module:
    torch.manual_seed(seed)
    return create_arch(name, **kwargs)


# --- registry metadata --------------------------------------------------------------------------

@pytest.mark.parametrize("name", ARCHS)
def test_spec_is_consistent(name):
    spec = get_spec(name)
    assert spec.family in FAMILIES
    assert spec.timm_name == f"robustgen_{name}"
    assert spec.paper_params_m is not None and spec.paper_params_m > 0, "every zoo entry matches a paper row"


@pytest.mark.skipif(not PAPER_TABLE.is_file(), reason="paper table not available next to the repository")
def test_every_paper_row_is_registered_with_its_count():
    with PAPER_TABLE.open() as f:
        paper = {row["architecture"]: float(row["params_m"]) for row in csv.DictReader(f)}
    registered = {get_spec(n).paper_name: get_spec(n).paper_params_m for n in ARCHS}
    assert set(paper) <= set(registered), f"paper rows without an arch: {sorted(set(paper) - set(registered))}"
    assert {name: registered[name] for name in paper} == paper


def test_timm_registry_lists_every_arch():
    assert {f"robustgen_{n}" for n in ARCHS} <= set(timm.list_models("robustgen_*"))


def test_unknown_arch_raises_config_error_naming_the_valid_ones():
    with pytest.raises(ConfigError) as err:
        create_arch("resnet_does_not_exist")
    assert all(name in str(err.value) for name in ARCHS)


# --- size, init, layer kinds at CIFAR size ------------------------------------------------------

@pytest.mark.parametrize("name", ARCHS)
def test_parameter_count_matches_paper(name):
    spec = get_spec(name)
    count = count_parameters(_build(name))
    paper = spec.paper_params_m * 1e6
    assert abs(count / paper - 1) <= 0.01, f"{name}: {count:,} parameters vs the paper's {paper:,.0f}"
    if spec.exact_params is not None:
        assert count == spec.exact_params


@pytest.mark.parametrize("name", ARCHS)
def test_init_is_deterministic_by_seed(name):
    first, again, other = _build(name, seed=0), _build(name, seed=0), _build(name, seed=1)
    a, b, c = first.state_dict(), again.state_dict(), other.state_dict()
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert any(not torch.equal(a[k], c[k]) for k in a), "a different seed should give different weights"


@pytest.mark.parametrize("name", ARCHS)
def test_layer_kinds_match_family(name):
    model = _build(name)
    kinds = parameter_kinds(model)
    assert set(kinds) == {n for n, _ in model.named_parameters()}
    assert set(kinds.values()) <= set(KINDS)
    attention = sum(p.numel() for n, p in model.named_parameters() if kinds[n] == "attention")
    family = get_spec(name).family
    if family in ("transformer", "hybrid"):
        assert attention > 0, f"{name} is a {family} but no parameter is tagged as attention"
    else:
        assert attention == 0, f"{name} is a {family} yet has {attention:,} attention parameters"


# --- forward / backward ------------------------------------------------------------------------

@pytest.mark.parametrize("name", _params(ARCHS, SLOW_BACKWARD))
def test_forward_backward_reaches_every_parameter(name):
    model = _build(name).train()
    x = torch.rand(2, 3, 32, 32)
    logits = model(x)
    assert logits.shape == (2, 10)
    assert torch.isfinite(logits).all()
    F.cross_entropy(logits, torch.tensor([0, 1])).backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None]
    assert not missing, f"{name}: parameters outside the computation graph: {missing[:5]}"
    assert all(torch.isfinite(p.grad).all() for p in model.parameters())
    assert sum(p.grad.abs().sum() for p in model.parameters()) > 0


@pytest.mark.parametrize("name", _params(ARCHS, SLOW_224))
def test_imagenette_size_works_or_is_refused(name):
    if not get_spec(name).imagenette:
        with pytest.raises(ConfigError, match="CIFAR-only"):
            create_arch(name, img_size=224)
        return
    model = _build(name, img_size=224).eval()
    with torch.no_grad():
        logits = model(torch.rand(1, 3, 224, 224))
    assert logits.shape == (1, 10)
    assert torch.isfinite(logits).all()


def test_cifar_only_variant_is_refused_at_224(monkeypatch):
    # No registered variant is CIFAR-only today; flag one as such to check the registry's refusal.
    monkeypatch.setitem(ARCHS_BY_NAME, "vgg", replace(get_spec("vgg"), imagenette=False))
    with pytest.raises(ConfigError, match="CIFAR-only"):
        create_arch("vgg", img_size=224)
    assert create_arch("vgg", img_size=32)(torch.rand(1, 3, 32, 32)).shape == (1, 10)


PATCHED = [n for n in ARCHS if get_spec(n).patch_sizes]


@pytest.mark.parametrize("name", PATCHED)
def test_patch_size_knob(name):
    for patch_size in get_spec(name).patch_sizes:
        model = _build(name, patch_size=patch_size).eval()
        with torch.no_grad():
            assert model(torch.rand(1, 3, 32, 32)).shape == (1, 10), f"{name} at patch_size={patch_size}"
    with pytest.raises(ConfigError, match="patch_size"):
        create_arch(name, patch_size=5)  # 5 tiles no 32 px image


# --- the zoo table -----------------------------------------------------------------------------

def test_zoo_json_has_a_row_per_requested_arch(capsys):
    zoo_main(["--json", "--names", "resnet,vit", "--batch", "2", "--runs", "1"])
    rows = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in rows] == ["resnet", "vit"]
    for row in rows:
        spec = get_spec(row["name"])
        assert row["family"] == spec.family and row["paper_params_m"] == spec.paper_params_m
        assert row["params"] == spec.exact_params
        assert row["diff_pct"] == pytest.approx(100 * (row["params"] / (spec.paper_params_m * 1e6) - 1), abs=1e-3)
        assert row["latency_ms"] > 0 and row["batch"] == 2
    # ViT at 32 px, patch 4: 65 tokens of width 512, 6 blocks; MACs of every matrix product by hand:
    # per block QKV (t·d·3d), attention's QKᵀ and AV (2·t²·d, counted as explicit products whatever
    # fused kernel the installed torch picks: 2.14's CPU kernel is under-counted by FlopCounterMode,
    # which gave 615,257,088 here instead), the output projection (t·d²) and the MLP (2·t·d·d, ratio 1).
    tokens, dim, blocks = 65, 512, 6
    per_block = tokens * dim * 3 * dim + 2 * tokens * tokens * dim + tokens * dim * dim + 2 * tokens * dim * dim
    patch_embed, head = 64 * (3 * 4 * 4) * dim, dim * dim + dim * 10
    assert rows[1]["macs"] == blocks * per_block + patch_embed + head


def test_zoo_rejects_unknown_names(capsys):
    with pytest.raises(SystemExit) as exit_info:
        zoo_main(["--names", "resnet,not_an_arch", "--batch", "0"])
    assert exit_info.value.code == 2
    assert "not_an_arch" in capsys.readouterr().err


def test_vgg_width_scales_every_layer_and_is_checked():
    """Half width: every convolution has half the channels, so about a quarter of the parameters
    (VGG-11-BN: 9,231,114 → 2,311,562, the quickstart's network)."""
    full, half = create_arch("vgg", depth=11), create_arch("vgg", depth=11, width=0.5)
    convs = [(m.in_channels, m.out_channels) for m in full.modules() if isinstance(m, torch.nn.Conv2d)]
    halved = [(m.in_channels, m.out_channels) for m in half.modules() if isinstance(m, torch.nn.Conv2d)]
    assert halved == [(3 if i == 3 else i // 2, o // 2) for i, o in convs]
    assert sum(p.numel() for p in full.parameters()) == 9_231_114
    assert sum(p.numel() for p in half.parameters()) == 2_311_562
    assert half(torch.rand(2, 3, 32, 32)).shape == (2, 10)
    with pytest.raises(ConfigError, match=r"width multiplies the channels; it must lie in \(0, 4\], got 0"):
        create_arch("vgg", depth=11, width=0)


def test_your_architectures_are_listed_beside_the_zoo(capsys):
    """`--timm` and `--factory` add rows for architectures from outside the study: their parameters
    and MACs beside the zoo's (no paper size)."""
    from tests.helpers.custom_nets import build

    zoo_main(["--names", "vgg", "--timm", "test_resnet", "--factory", "tests/helpers/custom_nets.py:build",
              "--batch", "0", "--json"])
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert list(rows) == ["vgg", "test_resnet", "build"]
    assert rows["test_resnet"]["params"] == sum(p.numel() for p in timm.create_model("test_resnet", num_classes=10)
                                                .parameters())
    assert rows["build"]["params"] == sum(p.numel() for p in build(10, 32).parameters())
    assert rows["build"]["paper_params_m"] is None and rows["build"]["macs"] > 0
