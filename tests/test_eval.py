"""The evaluation on a trained CNN and real CIFAR-10 points: worst case ≤ every attack; the cascade
and every-attack-on-every-point schedules agree point by point; outcomes do not depend on the
batch size; an interrupted evaluation resumes without redoing finished batches; sanity flags
fire on a model with masked gradients and pass on a normal one."""
from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from robustgen.attack import PGD, Square
from robustgen.data.cifar10 import load_cifar10
from robustgen.data.datasets import IndexedTensorDataset
from robustgen.errors import ConfigError
from robustgen.eval import EvalSettings, SanitySettings, evaluate_worst_case, load_outcomes, run_sanity_checks
from robustgen.eval.outcomes import CLEAN, OUTCOMES_FILE

pytestmark = pytest.mark.usefixtures("one_thread")
N = 300


def cheap_attacks(steps: int = 5) -> dict:
    """One cheap PGD per norm of the `paper` set, same radii."""
    return {"pgd_linf": PGD("linf", 8 / 255, steps=steps, step_size=2.5 * (8 / 255) / steps),
            "pgd_l2": PGD("l2", 1.5, steps=steps, step_size=2.5 * 1.5 / steps),
            "pgd_l1": PGD("l1", 40.0, steps=steps, step_size=2.5 * 40.0 / steps, l1_variant="study")}


@pytest.fixture(scope="module")
def test_set(cifar_root) -> IndexedTensorDataset:
    images, labels = load_cifar10(cifar_root, "test", download=False)
    return IndexedTensorDataset(images[:N], labels[:N])


@pytest.fixture(scope="module")
def every_attack(robust_cnn, test_set):
    return evaluate_worst_case(robust_cnn, test_set, cheap_attacks(), batch_size=N, per_attack=True, progress=False)


class Counting:
    """Wraps an attack: counts the points it is asked to attack; raises on call number `fail_on`."""

    def __init__(self, attack, fail_on: int | None = None):
        self.attack, self.fail_on, self.calls, self.points = attack, fail_on, 0, 0

    def __call__(self, model, x, y, *, example_ids=None):
        self.calls += 1
        if self.calls == self.fail_on:
            raise KeyboardInterrupt("simulated interruption")
        self.points += len(x)
        return self.attack(model, x, y, example_ids=example_ids)

    def describe(self):
        return self.attack.describe()


def test_worst_case_is_at_most_every_attack(every_attack):
    r = every_attack
    assert r.n_points == N and 0 < r.worst_case_acc
    assert all(r.worst_case_acc <= acc <= r.clean_acc for acc in r.attack_acc.values())
    # The worst case is exactly the share of points no attack broke, and is below the best single attack.
    assert r.worst_case_acc == pytest.approx(100 * sum(b is None for b in r.broken_by) / N)
    assert r.worst_case_acc < min(r.attack_acc.values())
    assert r.clean_acc == pytest.approx(100 * sum(b != CLEAN for b in r.broken_by) / N)


def test_cascade_and_every_attack_agree_point_by_point(robust_cnn, test_set, every_attack):
    cascade = evaluate_worst_case(robust_cnn, test_set, cheap_attacks(), batch_size=N, per_attack=False,
                                  progress=False)
    assert cascade.broken_by == every_attack.broken_by
    assert cascade.worst_case_acc == every_attack.worst_case_acc and cascade.attack_acc == {}
    # ... while attacking fewer points: each attack only sees what the earlier ones left standing.
    n_clean = round(every_attack.clean_acc * N / 100)
    assert every_attack.attacked_points == {name: n_clean for name in cheap_attacks()}
    assert cascade.attacked_points["pgd_linf"] == n_clean
    assert cascade.attacked_points["pgd_l1"] < cascade.attacked_points["pgd_l2"] < n_clean


def test_outcomes_do_not_depend_on_batch_size(robust_cnn, test_set, every_attack):
    for batch_size in (64, 37):
        report = evaluate_worst_case(robust_cnn, test_set, cheap_attacks(), batch_size=batch_size,
                                     per_attack=False, progress=False)
        assert report.broken_by == every_attack.broken_by, batch_size


def test_interrupted_evaluation_resumes_without_redoing_batches(robust_cnn, test_set, every_attack, tmp_path):
    state = tmp_path / OUTCOMES_FILE
    flaky = {**cheap_attacks(), "pgd_linf": Counting(cheap_attacks()["pgd_linf"], fail_on=3)}
    with pytest.raises(KeyboardInterrupt):
        evaluate_worst_case(robust_cnn, test_set, flaky, batch_size=100, per_attack=True, progress=False,
                            state_path=state)
    saved = load_outcomes(tmp_path)
    assert saved.ids == list(range(200))  # two finished batches, saved; the third was lost
    assert not list(tmp_path.glob("*.tmp"))

    counting = {**cheap_attacks(), "pgd_linf": Counting(cheap_attacks()["pgd_linf"])}
    resumed = evaluate_worst_case(robust_cnn, test_set, counting, batch_size=100, per_attack=True,
                                  progress=False, state_path=state)
    assert resumed.resumed_points == 200
    assert counting["pgd_linf"].calls == 1  # only the last batch
    assert counting["pgd_linf"].points == sum(b != CLEAN for b in every_attack.broken_by[200:])
    assert resumed.broken_by == every_attack.broken_by
    assert resumed.attack_acc == every_attack.attack_acc and resumed.worst_case_acc == every_attack.worst_case_acc


def test_more_points_later_evaluates_only_the_new_ones(robust_cnn, test_set, every_attack, tmp_path):
    state = tmp_path / OUTCOMES_FILE
    first = evaluate_worst_case(robust_cnn, test_set, cheap_attacks(), n_points=100, batch_size=50,
                                per_attack=True, progress=False, state_path=state)
    assert first.n_points == 100 and first.broken_by == every_attack.broken_by[:100]
    again = evaluate_worst_case(robust_cnn, test_set, cheap_attacks(), n_points=N, batch_size=50,
                                per_attack=True, progress=False, state_path=state)
    assert again.resumed_points == 100 and again.broken_by == every_attack.broken_by
    fewer = evaluate_worst_case(robust_cnn, test_set, cheap_attacks(), n_points=50, per_attack=True,
                                progress=False, state_path=state)
    assert fewer.resumed_points == 50 and fewer.broken_by == every_attack.broken_by[:50]


def test_outcomes_of_another_evaluation_are_kept_aside_not_reused(robust_cnn, test_set, tmp_path):
    state = tmp_path / OUTCOMES_FILE
    evaluate_worst_case(robust_cnn, test_set, cheap_attacks(steps=2), n_points=40, per_attack=True,
                        progress=False, state_path=state)
    other = evaluate_worst_case(robust_cnn, test_set, cheap_attacks(steps=3), n_points=40, per_attack=True,
                                progress=False, state_path=state)
    assert other.resumed_points == 0
    assert len(list(tmp_path.glob("eval_outcomes.*.json"))) == 1  # the first run's file, renamed
    # A different schedule is another evaluation too (per-attack columns differ).
    cascade = evaluate_worst_case(robust_cnn, test_set, cheap_attacks(steps=3), n_points=40, per_attack=False,
                                  progress=False, state_path=state)
    assert cascade.resumed_points == 0


def test_outcomes_file_is_an_analysis_table(robust_cnn, test_set, tmp_path):
    report = evaluate_worst_case(robust_cnn, test_set, cheap_attacks(), n_points=64, per_attack=False,
                                 progress=False, state_path=tmp_path / OUTCOMES_FILE)
    table = json.loads((tmp_path / OUTCOMES_FILE).read_text())["examples"]
    assert set(table) == {"id", "label", "broken_by", "robust/pgd_linf", "robust/pgd_l2", "robust/pgd_l1"}
    assert all(len(col) == 64 for col in table.values())
    assert table["broken_by"] == report.broken_by and table["label"] == test_set.labels[:64].tolist()
    for k, first in enumerate(table["broken_by"]):
        column = [table[f"robust/{a}"][k] for a in ("pgd_linf", "pgd_l2", "pgd_l1")]
        if first == CLEAN:
            assert column == [None] * 3  # misclassified points are never attacked
        elif first is None:
            assert column == [True] * 3
        else:  # cascade: attacks after the breaking one did not run on the point
            at = ["pgd_linf", "pgd_l2", "pgd_l1"].index(first)
            assert column[at] is False and column[:at] == [True] * at and column[at + 1:] == [None] * (2 - at)


# --- sanity checks --------------------------------------------------------------------------------
class RoundedInput(nn.Module):
    """Quantises its input to 8 bits first: the rounding has zero gradient, so gradient attacks are
    blind (masked gradients) while the model itself classifies as well as before."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x):
        return self.model(torch.round(x * 255) / 255)


SANITY = SanitySettings(n_points=64, batch_size=64, huge_eps_steps=10, square_queries=100)


@pytest.fixture(scope="module")
def sanity_points(test_set):
    x = torch.stack([test_set[i][0] for i in range(64)])
    return x, test_set.labels[:64], torch.arange(64)


def test_sanity_checks_pass_on_a_normal_model(robust_cnn, sanity_points):
    flags = {f.name: f for f in run_sanity_checks(robust_cnn, *sanity_points, cheap_attacks(), SANITY)}
    assert set(flags) == {"huge_eps/linf", "huge_eps/l2", "huge_eps/l1", "more_steps/linf", "more_steps/l2",
                          "more_steps/l1", "zero_gradients", "black_box/linf", "black_box/l2"}
    for name in ("huge_eps/linf", "huge_eps/l2", "huge_eps/l1"):
        assert flags[name].passed and flags[name].values["acc"] <= SANITY.huge_eps_max_acc
    assert flags["zero_gradients"].passed and flags["zero_gradients"].values["fraction"] == 0.0
    assert all(f.passed for f in flags.values()), [f.message for f in flags.values() if not f.passed]
    assert flags["huge_eps/linf"].values["clean_acc"] > 30


def test_sanity_flags_fire_on_masked_gradients(robust_cnn, sanity_points, caplog):
    from robustgen.eval.sanity import report_flags

    masked = RoundedInput(robust_cnn)
    flags = {f.name: f for f in run_sanity_checks(masked, *sanity_points, cheap_attacks(), SANITY)}
    assert not flags["zero_gradients"].passed and flags["zero_gradients"].values["fraction"] == 1.0
    for norm in ("linf", "l2", "l1"):  # no gradient, no movement: accuracy stays at the clean one
        assert not flags[f"huge_eps/{norm}"].passed
        assert flags[f"huge_eps/{norm}"].values["acc"] == flags[f"huge_eps/{norm}"].values["clean_acc"]
    for norm in ("linf", "l2"):  # Square needs no gradients and breaks what PGD cannot
        v = flags[f"black_box/{norm}"].values
        assert not flags[f"black_box/{norm}"].passed and v["broken_only_by_square"] > 0
    report_flags(list(flags.values()))
    assert "sanity check zero_gradients failed" in caplog.text


def test_tolerances_are_counted_in_points():
    from robustgen.eval.sanity import allowed_points

    assert allowed_points(2.0, 100) == 2  # 27% → 25% on 100 points is within 2 points, not 2.0000004%
    assert allowed_points(2.0, 64) == 1 and allowed_points(2.0, 10) == 1  # at least one point
    assert allowed_points(0.0, 1000) == 1 and allowed_points(5.0, 1000) == 50


def test_white_box_reference_unpacks_autoattack():
    from robustgen.attack import AutoAttack
    from robustgen.eval.sanity import reference_pgds, white_box_attacks

    attacks = {"aa": AutoAttack("linf", 8 / 255), "sq": Square("l2", 0.5, n_queries=10)}
    assert sorted(white_box_attacks(attacks, "linf")) == ["aa/apgd-ce", "aa/apgd-t", "aa/fab-t"]
    assert white_box_attacks(attacks, "l2") == {}
    refs = reference_pgds(attacks)  # no PGD in the set: a 10-step one at the set's radius per norm
    assert list(refs) == ["linf", "l2"] and refs["l2"][1].eps == 0.5 and refs["linf"][1].steps == 10


@pytest.mark.parametrize("values,message", [
    ({"n_points": 0}, "eval.n_points must be an integer ≥ 1"),
    ({"n_points": "all"}, "eval.n_points must be an integer ≥ 1"),
    ({"attacks": {}}, "eval.attacks is empty"),
    ({"corrupted": {"enabled": True, "names": ["fog", "rain"]}}, "unknown corruption(s) rain"),
    ({"corrupted": {"enabled": True, "severities": [0, 6]}}, "severities must be a non-empty list from 1..5"),
    ({"corrupted": {"enabled": True, "colour": 1}}, "unknown key(s) colour"),
    ({"sanity": {"n_point": 5}}, "unknown setting(s) ['n_point']"),
    ({"sanity": {"square_queries": 0}}, "must be ≥ 1"),
    ({"sanity": {"steps_tolerance": "abc"}}, "eval.sanity.steps_tolerance must be a number, got 'abc'"),
    ({"sanity": {"n_points": 2.5}}, "eval.sanity.n_points must be an integer"),
    ({"sanity": {"enabled": "yes"}}, "eval.sanity.enabled must be true or false"),
])
def test_bad_eval_settings_are_refused(values, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        EvalSettings.from_dict(values)


def test_outcomes_of_other_data_are_never_reused(robust_cnn, test_set, tmp_path):
    """Clean test set, then the same test set with Gaussian noise (σ = 0.1) into the same folder:
    the noisy evaluation must equal one made in a fresh folder, not reuse the clean outcomes."""
    noise = torch.randn(test_set.images[:64].shape, generator=torch.Generator().manual_seed(0)) * 0.1 * 255
    noisy_images = (test_set.images[:64].float() + noise).round().clamp(0, 255).to(torch.uint8)
    noisy = IndexedTensorDataset(noisy_images, test_set.labels[:64], test_set.ids[:64])
    attacks = cheap_attacks()
    clean = evaluate_worst_case(robust_cnn, test_set, attacks, n_points=64, progress=False,
                                state_path=tmp_path / "same" / "eval_outcomes.json")
    reused = evaluate_worst_case(robust_cnn, noisy, attacks, n_points=64, progress=False,
                                 state_path=tmp_path / "same" / "eval_outcomes.json")
    fresh = evaluate_worst_case(robust_cnn, noisy, attacks, n_points=64, progress=False,
                                state_path=tmp_path / "fresh" / "eval_outcomes.json")
    assert reused.resumed_points == 0
    assert (reused.clean_acc, reused.worst_case_acc, reused.broken_by) == \
        (fresh.clean_acc, fresh.worst_case_acc, fresh.broken_by)
    assert clean.broken_by != fresh.broken_by  # the noise does change outcomes: the check above can fail
    kept = [p.name for p in (tmp_path / "same").glob("eval_outcomes.*.json")]
    assert len(kept) == 1  # the clean outcomes were kept aside, not overwritten or mixed in


def test_data_fingerprint_sees_content_not_type(test_set):
    from robustgen.data.fingerprint import data_fingerprint

    a = IndexedTensorDataset(test_set.images[:32], test_set.labels[:32])
    changed = test_set.images[:32].clone()
    changed[5, 0, 0, 0] ^= 1  # one bit of one pixel
    b = IndexedTensorDataset(changed, test_set.labels[:32])
    relabelled = IndexedTensorDataset(test_set.images[:32], (test_set.labels[:32] + 1) % 10)
    prints = {data_fingerprint(d, 32) for d in (a, b, relabelled)}
    assert len(prints) == 3
    assert data_fingerprint(a, 32) == data_fingerprint(IndexedTensorDataset(test_set.images[:32].clone(),
                                                                            test_set.labels[:32].clone()), 32)
    # The generic path (a data set that cannot hash itself) agrees on what differs.
    assert len({data_fingerprint(torch.utils.data.Subset(d, range(32)), 32) for d in (a, b, relabelled)}) == 3


# --- issue 16: no attack runs twice on a point ----------------------------------------------------
def flags_as_before(model, x, y, ids, attacks, settings) -> list:
    """The sanity checks as defined, computed the direct way on their own points: every attack of
    the set runs again there (as before issue 16, commit 9ad02ca). The reference the flags from
    the evaluation, which reuse its outcomes, are held to."""
    from robustgen.attack import Square
    from robustgen.eval.sanity import SanityFlag, reference_pgds, white_box_attacks, zero_gradient_fraction
    from robustgen.eval.sanity.common import correct as _correct
    from robustgen.eval.sanity.common import variant as _variant
    from robustgen.eval.sanity.flags import percent as _pct

    s, flags = settings, []
    clean = _correct(model, None, x, y, ids, s.batch_size)
    refs = reference_pgds(attacks)
    for norm, (_, ref) in refs.items():
        eps = min(ref.eps * s.huge_eps_factor, 1.0) if norm == "linf" else ref.eps * s.huge_eps_factor
        huge = _variant(ref, eps=eps, steps=s.huge_eps_steps, step_size=2.5 * eps / s.huge_eps_steps,
                        random_start=False)
        acc = _pct(_correct(model, huge, x, y, ids, s.batch_size))
        flags.append(SanityFlag(
            f"huge_eps/{norm}", acc <= s.huge_eps_max_acc, {"eps": eps, "steps": s.huge_eps_steps, "acc": acc},
            f"PGD-{norm} with ε={eps:.4g} ({s.huge_eps_factor:g}× the set's) leaves {acc:.1f}% accuracy "
            f"(expected ≤ {s.huge_eps_max_acc:g}%)"))
    white_box = {}
    allowed = max(int(s.steps_tolerance * len(x) / 100), 1)  # points
    for norm, (_, ref) in refs.items():
        once = _correct(model, ref, x, y, ids, s.batch_size)
        twice = _correct(model, _variant(ref, steps=2 * ref.steps), x, y, ids, s.batch_size)
        white_box[norm] = once & twice
        a1, a2 = _pct(once), _pct(once & twice)
        more = int((once & ~twice).sum())
        flags.append(SanityFlag(
            f"more_steps/{norm}", more <= allowed,
            {"steps": ref.steps, "acc": a1, "steps_2x": 2 * ref.steps, "acc_2x": a2, "allowed_points": allowed,
             "broken_only_by_2x": more},
            f"PGD-{norm}: {a1:.1f}% with {ref.steps} steps, {a2:.1f}% with {2 * ref.steps}: {more} more point(s) "
            f"broken (the set's PGD {'has converged' if more <= allowed else 'has NOT converged'}: 2× steps "
            f"may break at most {allowed} more of {len(x)} points)"))
    fraction = zero_gradient_fraction(model, x, y, s.batch_size)
    flags.append(SanityFlag(
        "zero_gradients", fraction <= s.zero_grad_max_fraction, {"fraction": fraction},
        f"{100 * fraction:.1f}% of points have an all-zero or non-finite input gradient (expected ≤ "
        f"{100 * s.zero_grad_max_fraction:g}%)"))
    for norm in ("linf", "l2"):
        if norm not in refs:
            continue
        ref_name, ref = refs[norm]
        others = {k: a for k, a in white_box_attacks(attacks, norm).items() if a is not ref}
        for attack in others.values():
            white_box[norm] = _correct(model, attack, x, y, ids, s.batch_size, among=white_box[norm])
        square = Square(norm=norm, eps=ref.eps, n_queries=s.square_queries, seed=ref.seed)
        held = _correct(model, square, x, y, ids, s.batch_size, among=white_box[norm])
        wb, both = _pct(white_box[norm]), _pct(held)
        only_square = int((~held & white_box[norm]).sum())
        allowed = max(int(s.square_tolerance * len(x) / 100), 1)
        flags.append(SanityFlag(
            f"black_box/{norm}", only_square <= allowed,
            {"square": "Square", "square_queries": s.square_queries, "white_box_acc": wb,
             "white_box_and_square_acc": both, "white_box": [f"{ref_name} (1× and 2× steps)", *others],
             "broken_only_by_square": only_square, "allowed_points": allowed},
            f"Square-{norm} ({s.square_queries} queries, on the points the white-box attacks of the set left) breaks "
            f"{only_square} of them: {wb:.1f}% → {both:.1f}% (at most {allowed} of {len(x)} points allowed)"))
    for flag in flags:
        flag.values["clean_acc"] = _pct(clean)
    return flags


def batch_free_attacks() -> dict:
    """Attacks whose outcome per point does not depend on the batch it is in (random starts drawn
    per example id: our PGD and ℓ1-APGD), so that the evaluation (batches of 40) and the checks as
    they were (batches of 64) see the same outcome per point. torchattacks' components (APGD,
    APGD-T, FAB, Square) seed per call, so their outcomes may move with the batch composition."""
    from robustgen.attack import APGD

    return {**cheap_attacks(),  # plus another ℓ∞ white-box attack, which the black-box check must count
            "pgd_linf_small_steps": PGD("linf", 8 / 255, steps=5, step_size=1 / 255, seed=1),
            "apgd_l1": APGD("l1", 40.0, steps=10)}


def evaluation_flags(model, test_set, attacks, per_attack: bool, sanity=SANITY) -> list:
    from robustgen.eval import run_evaluation

    settings = EvalSettings(n_points=96, batch_size=40, per_attack=per_attack, sanity=sanity)
    return run_evaluation(model, test_set, attacks, settings, output_dir=None, progress=False).flags


def test_sanity_flags_from_the_evaluation_equal_todays(robust_cnn, test_set, sanity_points, monkeypatch):
    import robustgen.eval.sanity.common as sanity

    today = flags_as_before(robust_cnn, *sanity_points, batch_free_attacks(), SANITY)
    fresh_runs = []  # PGDs built by the checks; 2× steps must continue the set's iterates instead
    monkeypatch.setattr(sanity, "variant", lambda ref, **kw: fresh_runs.append(kw) or sanity.PGD(
        **{"norm": ref.norm, "eps": ref.eps, "steps": ref.steps, "step_size": ref.step_size,
           "random_start": ref.random_start, "l1_variant": ref.l1_variant, "seed": ref.seed, **kw}))
    flags = evaluation_flags(robust_cnn, test_set, batch_free_attacks(), per_attack=True)
    assert fresh_runs and all(kw.get("random_start") is False for kw in fresh_runs)  # the huge-ε PGDs alone
    assert [f.name for f in flags] == [f.name for f in today]
    for new, old in zip(flags, today):
        assert (new.passed, new.message) == (old.passed, old.message), new.name
        assert {k: new.values[k] for k in old.values} == old.values, new.name
        assert new.values.get("points", 64) == 64
    black_box = {f.name: f for f in flags}["black_box/linf"]
    assert black_box.values["white_box"][1:] == ["pgd_linf_small_steps"]  # the second ℓ∞ attack took part


def test_sanity_flags_of_a_cascade_compare_where_outcomes_are_known(robust_cnn, test_set, sanity_points):
    today = {f.name: f for f in flags_as_before(robust_cnn, *sanity_points, batch_free_attacks(), SANITY)}
    flags = {f.name: f for f in evaluation_flags(robust_cnn, test_set, batch_free_attacks(), per_attack=False)}
    assert flags.keys() == today.keys()
    # PGD-ℓ∞ comes first, so it ran on every point: its check is today's; later attacks skipped the
    # points earlier ones broke, and their checks compare on the points left.
    assert flags["more_steps/linf"].to_dict() == {**today["more_steps/linf"].to_dict(),
                                                  "values": {**today["more_steps/linf"].values, "points": 64}}
    assert flags["more_steps/l2"].values["points"] < 64
    assert "where the set's outcome is known" in flags["more_steps/l2"].message
    assert all(f.passed == today[name].passed for name, f in flags.items())


class CountingCalls:
    """Records (attack, example id) for every point an attack (or an AutoAttack component) is run
    on, by wrapping `perturb` (PGD's `perturb_with_delta`, which its `perturb` and the sanity checks
    call) on the instance: isinstance checks and AutoAttack's direct calls of its
    components' `perturb` still go through it."""

    def __init__(self, attacks: dict):
        from collections import Counter

        self.seen = Counter()
        for name, attack in attacks.items():
            self._wrap(name, attack)
            for part, component in getattr(attack, "components", {}).items():
                self._wrap(f"{name}/{part}", component)

    def _wrap(self, key, attack):
        # PGD's perturb goes through perturb_with_delta: counting that one counts each run once
        method = "perturb_with_delta" if hasattr(attack, "perturb_with_delta") else "perturb"
        setattr(attack, method, self._counting(key, getattr(attack, method)))

    def _counting(self, key, inner):
        def run(model, x, y, example_ids):
            self.seen.update((key, int(i)) for i in example_ids.tolist())
            return inner(model, x, y, example_ids)

        return run


def cheap_autoattack():
    """AutoAttack-ℓ∞ with short components (same code path: its cascade, the component column)."""
    from robustgen.attack import APGD, AutoAttack

    aa = AutoAttack("linf", 8 / 255)
    aa.components = {"apgd-ce": APGD("linf", 8 / 255, steps=3), "square": Square("linf", 8 / 255, n_queries=30)}
    return aa


@pytest.mark.parametrize("per_attack", [True, False])
def test_no_attack_runs_twice_on_a_point(robust_cnn, test_set, per_attack, tmp_path):
    from robustgen.eval import run_evaluation

    attacks = {**cheap_attacks(steps=3), "aa_linf": cheap_autoattack()}
    calls = CountingCalls(attacks)
    settings = EvalSettings(n_points=48, batch_size=16, per_attack=per_attack,
                            sanity=SanitySettings(n_points=32, batch_size=32, huge_eps_steps=3, square_queries=30))
    result = run_evaluation(robust_cnn, test_set, attacks, settings, output_dir=tmp_path, progress=False)
    assert len(result.flags) == 9 and result.sanity_points == 32  # the checks ran, every one of them
    # ℓ∞'s black-box check read AutoAttack's own Square (ℓ2 has none in the set: a Square of its own).
    black_box = {f.name: f for f in result.flags}
    assert black_box["black_box/linf"].values["square"] == "aa_linf/square"
    assert black_box["black_box/linf"].values["square_queries"] == 30
    assert black_box["black_box/l2"].values["square"] == "Square"
    twice = [key for key, n in calls.seen.items() if n > 1]
    assert twice == [], f"{len(twice)} (attack, point) pairs attacked twice, e.g. {twice[:5]}"
    assert {key for key, _ in calls.seen} == {*attacks, "aa_linf/apgd-ce", "aa_linf/square"}
    # Which component broke each point is recorded (and read back from the file), never recomputed.
    saved = load_outcomes(tmp_path)
    for held, breaker in zip(saved.robust["aa_linf"], saved.component["aa_linf"]):
        assert (breaker in ("apgd-ce", "square")) == (held is False)
    for part in ("apgd-ce", "square"):
        key = f"aa_linf/{part}"
        assert result.report.points_by_component.get(key, 0) == sum(k == key for k, _ in calls.seen)
        assert (key in result.report.seconds_by_component) == (key in result.report.points_by_component)


def test_bench_times_the_sanity_checks_and_the_share_of_each_attack(robust_cnn, cifar_root):
    from robustgen.bench.eval_bench import run_eval_bench

    lines: list[str] = []
    numbers = run_eval_bench(model=robust_cnn, eval_set="quick", data_root=str(cifar_root), parts=("sanity",),
                             sanity_points=48, log=lines.append)
    s = numbers["sanity"]
    assert s["identical_worst_case"] and s["ratio"] > 0 and s["ratio_within_run"] >= 1
    assert s["with_sanity"]["sanity_points"] == 32 and s["without_sanity"]["sanity_points"] == 0  # quick's settings
    assert list(s["with_sanity"]["seconds_by_phase"]) == ["sanity checks before", "attack set", "sanity checks after"]
    assert set(s["share_by_attack"]) == {"pgd_linf", "pgd_l2", "pgd_l1"}
    assert sum(s["share_by_attack"].values()) == pytest.approx(1.0)
    assert all(s["with_sanity"]["flags"].values())
    assert any("ratio" in line and "without sanity checks" in line for line in lines)
    assert "cascade" not in numbers and "pgd" not in numbers
