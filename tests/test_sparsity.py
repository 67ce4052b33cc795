"""ℓ1 penalty, sparsity measures, Theorem 1 norm terms and the sparsity callback in a real run."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from torch import nn

from robustgen.arch import create_arch
from robustgen.errors import ConfigError
from robustgen.regularizer import L1Penalty
from robustgen.sparsity import block_norms, bound_record, sparsity_measures, theorem1_complexity
from robustgen.sparsity.bound import block_input_fro, rademacher_norm
from robustgen.sparsity.bound import spectral_norm as spectral
from robustgen.sparsity.measures import hoyer_sparsity, near_zero_fraction
from tests.helpers.hydra_helpers import TINY, compose_config

# The weights of a 1-block ViT, by kind, written out by hand (not derived with layer_kinds).
VIT_WEIGHTS = {
    "attention": {"net.blocks.0.attn.qkv.weight", "net.blocks.0.attn.proj.weight"},
    "mlp": {"net.blocks.0.mlp.fc1.weight", "net.blocks.0.mlp.fc2.weight", "net.head.0.weight", "net.head.2.weight"},
    "conv": {"net.patch_embed.proj.weight"},
}


def tiny_vit() -> nn.Module:
    torch.manual_seed(0)
    model = create_arch("vit", embed_dim=16, depth=1, num_heads=2)
    with torch.no_grad():
        for p in model.parameters():  # no exact zeros anywhere, norms and biases included
            p.add_(torch.rand_like(p) * 0.1 + 0.01)
    return model


# --- the ℓ1 penalty ----------------------------------------------------------------------------------

@pytest.mark.parametrize("scope,kinds", [("all", ("attention", "mlp", "conv")), ("attention", ("attention",)),
                                         ("mlp", ("mlp",)), ("conv", ("conv",))])
def test_l1_gradient_is_lambda_sign_on_scope_and_zero_elsewhere(scope, kinds):
    model, lam = tiny_vit(), 0.37
    in_scope = set().union(*(VIT_WEIGHTS[k] for k in kinds))
    penalty = L1Penalty(lam, scope)(model)
    penalty.backward()
    expected_value = lam * sum(float(p.detach().abs().sum()) for n, p in model.named_parameters() if n in in_scope)
    assert float(penalty) == pytest.approx(expected_value, rel=1e-5)
    for name, p in model.named_parameters():
        grad = torch.zeros_like(p) if p.grad is None else p.grad
        if name in in_scope:
            torch.testing.assert_close(grad, lam * torch.sign(p.detach()), msg=name)
        else:  # norms, biases, position embedding, class token, other kinds
            assert not grad.any(), name


def test_l1_penalty_subgradient_is_zero_at_zero():
    layer = nn.Linear(3, 2, bias=False)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[0.0, -2.0, 1.0], [3.0, 0.0, -0.5]]))
    L1Penalty(0.5, "mlp")(layer).backward()
    torch.testing.assert_close(layer.weight.grad, torch.tensor([[0.0, -0.5, 0.5], [0.5, 0.0, -0.5]]))


@pytest.mark.parametrize("kwargs,message", [({"weight": -1e-5}, "must be ≥ 0"), ({"weight": float("nan")}, "≥ 0"),
                                            ({"weight": 1e-5, "scope": "norm"}, "choose one of: all")])
def test_bad_penalty_settings_are_refused(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        L1Penalty(**kwargs)


def test_scope_without_weights_is_a_clear_error():
    cnn = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.LazyLinear(2))
    with pytest.raises(ConfigError, match="no attention weights"):
        L1Penalty(1e-4, "attention")(cnn)


def test_penalty_is_described_for_results_json():
    assert L1Penalty(1e-4, "attention").describe() == {"type": "L1Penalty", "weight": 1e-4, "scope": "attention"}


# --- sparsity measures -------------------------------------------------------------------------------

def test_hoyer_and_near_zero_match_hand_values():
    assert hoyer_sparsity(torch.tensor([0.0, 3.0, 0.0, 0.0])) == pytest.approx(1.0)
    assert hoyer_sparsity(torch.tensor([-2.0, 2.0, 2.0, -2.0])) == pytest.approx(0.0, abs=1e-12)
    # (√4 − ‖w‖₁/‖w‖₂) / (√4 − 1) = (2 − √2) / 1
    assert hoyer_sparsity(torch.tensor([1.0, 1.0, 0.0, 0.0])) == pytest.approx(2 - math.sqrt(2))
    assert near_zero_fraction(torch.tensor([1.0, 0.005, 0.02, -0.001]), 0.01) == 0.5
    assert near_zero_fraction(torch.tensor([-4.0, 0.04, 0.05, 2.0]), 0.01) == 0.25  # threshold relative to max |w|


def test_measures_aggregate_by_parameter_count():
    model = nn.Sequential(nn.Linear(4, 1, bias=False), nn.Linear(2, 2, bias=False))  # 4 and 4 weights
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[1.0, 0.0, 0.0, 0.0]]))  # Hoyer 1, near-zero 3/4
        model[1].weight.copy_(torch.tensor([[1.0, -1.0], [1.0, 1.0]]))  # Hoyer 0, near-zero 0
    mlp = sparsity_measures(model, threshold=0.01)["mlp"]
    assert mlp["hoyer"] == pytest.approx(0.5) and mlp["near_zero"] == pytest.approx(3 / 8)
    assert mlp["l1"] == pytest.approx(5.0) and mlp["l2"] == pytest.approx(math.sqrt(5)) and mlp["params"] == 8


def test_zeroed_weights_score_full_sparsity():
    model = tiny_vit()
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
    measures = sparsity_measures(model)
    assert set(measures) == {"attention", "mlp", "conv", "overall"}
    for kind, values in measures.items():
        assert values["near_zero"] == 1.0 and values["hoyer"] == 1.0, kind
        assert values["l1"] == 0.0 and values["l2"] == 0.0
    assert all(b.record()["rademacher_norm"] == 0.0 for b in block_norms(model))


def test_fresh_network_is_far_from_sparse():
    overall = sparsity_measures(tiny_vit())["overall"]
    assert overall["near_zero"] < 0.2 and overall["hoyer"] < 0.5
    assert overall["params"] == sum(p.numel() for n, p in tiny_vit().named_parameters()
                                    if n in set().union(*VIT_WEIGHTS.values()))


# --- Theorem 1 norm terms ------------------------------------------------------------------------------

class TinyAttention(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.qkv = nn.Linear(dim, 3 * dim, bias=False)
        self.proj = nn.Linear(dim, dim)
        self.dim = dim

    def forward(self, x):
        q, k, v = self.qkv(x).split(self.dim, dim=-1)
        return self.proj(torch.softmax(q @ k.transpose(-1, -2) / self.dim ** 0.5, -1) @ v)


class TinyBlock(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.norm1, self.attn = nn.LayerNorm(dim), TinyAttention(dim)
        self.norm2, self.mlp = nn.LayerNorm(dim), nn.Sequential(nn.Linear(dim, 2 * dim), nn.GELU(),
                                                                nn.Linear(2 * dim, dim))

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class TinyTransformer(nn.Module):
    def __init__(self, dim: int = 6, depth: int = 2):
        super().__init__()
        self.embed = nn.Conv2d(3, dim, 4, stride=4)
        self.blocks = nn.Sequential(*[TinyBlock(dim) for _ in range(depth)])
        self.head = nn.Linear(dim, 10)

    def forward(self, x):
        tokens = self.embed(x).flatten(2).transpose(1, 2)
        return self.head(self.blocks(tokens).mean(1))


def _np(w: torch.Tensor) -> np.ndarray:
    return w.detach().double().numpy().reshape(w.shape[0], -1)


def test_norm_terms_match_hand_computation_on_a_tiny_transformer():
    torch.manual_seed(1)
    model = TinyTransformer()
    blocks = block_norms(model)
    assert [b.unit for b in blocks] == ["blocks.0.attn", "blocks.1.attn"]
    for i, block in enumerate(blocks):
        qkv, proj = _np(model.blocks[i].attn.qkv.weight), _np(model.blocks[i].attn.proj.weight)
        fc1 = _np(model.blocks[i].mlp[0].weight)
        s1 = max(np.linalg.norm(qkv, 2), np.linalg.norm(proj, 2))  # block-diagonal A₁ = diag(qkv, proj)
        b1 = np.abs(qkv).sum() + np.abs(proj).sum()
        s2, b2 = np.linalg.norm(fc1, 2), np.abs(fc1).sum()
        assert block.a1 == [f"blocks.{i}.attn.qkv.weight", f"blocks.{i}.attn.proj.weight"]
        assert block.w1 == f"blocks.{i}.mlp.0.weight"
        assert (block.s1, block.b1, block.s2, block.b2) == pytest.approx((s1, b1, s2, b2), rel=1e-5)
        record = block.record()
        by_hand = s1 * s2 * ((b1 / s1) ** (2 / 3) + (b2 / s2) ** (2 / 3)) ** 1.5
        assert record["rademacher_norm"] == pytest.approx(by_hand, rel=1e-5)
        assert record["adversarial_norm"] == pytest.approx(b1 * b2, rel=1e-5)
        assert block.d_max == 18  # qkv is 18 × 6
    summary = bound_record(model)
    assert summary["rademacher_norm_mean"] == pytest.approx(np.mean([b.record()["rademacher_norm"] for b in blocks]))
    assert [row["layer"] for row in summary["layers"]][:3] == ["embed.weight", "blocks.0.attn.qkv.weight",
                                                                "blocks.0.attn.proj.weight"]
    embed = _np(model.embed.weight)  # the conv kernel as a (6, 3·4·4) matrix
    assert summary["layers"][0]["s"] == pytest.approx(np.linalg.norm(embed, 2), rel=1e-5)


def test_theorem1_complexity_matches_the_slides_formula():
    s1, s2, b1, b2, n, gamma, eps, x_fro, d_max = 2.0, 3.0, 16.0, 81.0, 100, 0.5, 0.25, 10.0, 4
    c = ((16 / 2) ** (2 / 3) + (81 / 3) ** (2 / 3)) ** 1.5 * x_fro  # (4 + 9)^{3/2}·10
    expected = (4 / 100 ** 1.5 + 60 * math.log(100) * math.log(8) / 100 * s1 * s2 * c) / gamma \
        + 2 * eps * b1 * b2 / (gamma * 10)
    assert c == pytest.approx(13 ** 1.5 * 10)
    assert theorem1_complexity(s1, s2, b1, b2, n=n, margin=gamma, eps=eps, x_fro=x_fro, d_max=d_max) \
        == pytest.approx(expected)
    assert rademacher_norm(s1, s2, b1, b2) * x_fro == pytest.approx(s1 * s2 * c)


def test_sparser_weights_at_the_same_spectral_norm_lower_the_norm_term():
    dense = torch.ones(8, 8) / 8  # spectral norm 1, ℓ1 8
    sparse = torch.diag(torch.tensor([1.0, 1.0, 0, 0, 0, 0, 0, 0]))  # spectral norm 1, ℓ1 2
    w1 = torch.eye(8)
    terms = [rademacher_norm(spectral(a), spectral(w1), float(a.abs().sum()), float(w1.abs().sum()))
             for a in (sparse, dense)]
    assert spectral(sparse) == pytest.approx(spectral(dense)) and terms[0] < terms[1]


def test_attention_without_mlp_pairs_with_the_next_conv():
    class SelfAttn(nn.Module):  # BoTNet-style: attention replacing the 3×3 conv of a bottleneck
        def __init__(self):
            super().__init__()
            self.qkv = nn.Conv2d(8, 24, 1, bias=False)

    class Bottleneck(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1, self.bn1 = nn.Conv2d(16, 8, 1), nn.BatchNorm2d(8)
            self.conv2, self.bn2 = SelfAttn(), nn.BatchNorm2d(8)
            self.conv3 = nn.Conv2d(8, 16, 1)

    net = nn.Sequential(Bottleneck(), nn.Flatten(), nn.Linear(16, 2))
    (block,) = block_norms(net)
    assert (block.unit, block.a1, block.w1) == ("0.conv2", ["0.conv2.qkv.weight"], "0.conv3.weight")


def test_cnns_get_per_layer_norms_and_no_blocks():
    cnn = create_arch("resnet")
    record = bound_record(cnn)
    assert record["n_blocks"] == 0 and record["rademacher_norm_mean"] is None
    convs = [m for m in cnn.modules() if isinstance(m, nn.Conv2d)]
    assert len(record["layers"]) == len(convs) + 1  # + the classifier
    assert all(row["b"] >= row["s"] > 0 for row in record["layers"])  # ℓ1 ≥ spectral for any matrix
    assert record["layer_pair_norm_mean"] > 0


def test_block_inputs_are_measured_by_hooks():
    torch.manual_seed(2)
    model = TinyTransformer().eval()
    x = torch.rand(5, 3, 16, 16)
    fro = block_input_fro(model, ["blocks.0.attn"], [x[:2], x[2:]])
    with torch.no_grad():
        tokens = model.embed(x).flatten(2).transpose(1, 2)
        expected = model.blocks[0].norm1(tokens).norm()
    assert fro["blocks.0.attn"] == pytest.approx(float(expected), rel=1e-5)


def test_every_registered_transformer_has_blocks_with_w1():
    from robustgen.arch.registry import get_spec, list_archs

    for name in list_archs():
        if get_spec(name).family in ("transformer", "hybrid") and name not in ("mlpmixer", "poolformer"):
            blocks = block_norms(create_arch(name))
            assert blocks, name
            assert all(b.w1 is not None for b in blocks), name


# --- the callback in a short real run -----------------------------------------------------------------

def run_l1(tmp_path, cifar_root, lam: float, *extra: str) -> dict:
    from robustgen.train import train

    overrides = TINY + [f"data.root={cifar_root}", "regularizer=l1", f"regularizer.weight={lam}",
                        "trainer.max_epochs=4", "data.train_subset=128", "data.batch_size=16",
                        "callbacks.sparsity.train_points=48", *extra]
    train(compose_config(overrides, output_dir=tmp_path))
    return json.loads((tmp_path / "results.json").read_text())


@pytest.fixture(scope="module")
def l1_runs(tmp_path_factory, cifar_root):
    return (run_l1(tmp_path_factory.mktemp("l1_zero"), cifar_root, 0.0),
            run_l1(tmp_path_factory.mktemp("l1_large"), cifar_root, 0.05, "callbacks.sparsity.margin=1.0"))


def test_large_l1_weight_raises_sparsity(l1_runs):
    plain, penalised = l1_runs
    assert plain["regularizer"] == {"type": "L1Penalty", "weight": 0.0, "scope": "all"}
    before, after = plain["sparsity"]["history"][-1], penalised["sparsity"]["history"][-1]
    for measure in ("near_zero", "hoyer"):
        assert after[f"sparsity/overall/{measure}"] > before[f"sparsity/overall/{measure}"] + 0.05, measure
    assert after["sparsity/overall/l1"] < 0.8 * before["sparsity/overall/l1"]


def test_callback_records_history_gap_and_bound(l1_runs):
    for record in l1_runs:
        history = record["sparsity"]["history"]
        assert [e["epoch"] for e in history] == [0, 1, 2, 3]
        gap = record["robust_gap"]
        assert gap["train_points"] == 48 and len(gap["history"]) == 4
        for entry in gap["history"]:
            assert entry["gap/robust"] == pytest.approx(entry["train/acc_adv_fixed"] - entry["val/acc_adv_at_gap"])
            assert 0 <= entry["train/acc_adv_fixed"] <= entry["train/acc_clean_fixed"] <= 100
        assert gap["final"] == gap["history"][-1]["gap/robust"]
        assert record["bound"]["n_blocks"] == 1 and record["bound"]["rademacher_norm_mean"] > 0
        for kind in ("attention", "mlp", "conv", "overall"):
            assert 0 <= record["sparsity"][kind]["hoyer"] <= 1
    penalised = l1_runs[1]["bound"]
    (block,) = penalised["blocks"]
    assert penalised["margin"] == 1.0 and penalised["n"] == 128 and block["x_fro"] > 0
    assert block["complexity"] == pytest.approx(theorem1_complexity(
        block["s1"], block["s2"], block["b1"], block["b2"], n=128, margin=1.0, eps=8 / 255, x_fro=block["x_fro"],
        d_max=block["d_max"]))


def test_bad_callback_settings_are_refused():
    from robustgen.sparsity import SparsityMonitor

    for kwargs, message in [({"every_n_epochs": 0}, "every_n_epochs"), ({"threshold": 1.5}, "threshold"),
                            ({"margin": -1.0}, "margin"), ({"train_points": -3}, "train_points")]:
        with pytest.raises(ConfigError, match=message):
            SparsityMonitor(**kwargs)
