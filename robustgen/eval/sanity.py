"""Cheap checks for signs of a broken evaluation, run on a small subset of the test points.

A robust accuracy is only believable if the attacks behind it work on this model. These are the
checks a reviewer runs first (Carlini et al., "On Evaluating Adversarial Robustness", 2019;
AutoAttack's flags), one per norm of the attack set where it depends on the norm:

* ``huge_eps/<norm>``: PGD with ε ten times the set's (ℓ∞ capped at 1), no random start, must
  drive accuracy to about 0. If it cannot, its gradients do not lead anywhere (gradient masking).
* ``more_steps/<norm>``: PGD with twice the steps (same step size, same random starts) must not
  break more than a few of the points the set's PGD left: if it does, the set's PGD has not
  converged and its accuracy overestimates robustness (Carlini et al. 2019, §5).
* ``zero_gradients``: the share of points whose input gradient of the loss is exactly zero
  (a saturated softmax, a non-differentiable input stage); attacks cannot move such points.
* ``black_box/<norm>``: Square (score-based, no gradients) must not break points that the set's
  white-box attacks of that norm (AutoAttack without its own Square, plus the PGD runs above)
  left: if it does, the gradients mislead the attacks, or the set is too weak for this model
  (ℓ∞ and ℓ2 only: torchattacks has no ℓ1 Square). Where the set has an AutoAttack of that norm,
  its own Square (5,000 queries) already ran on exactly those points and its outcomes are read;
  otherwise a Square of ``square_queries`` runs on them.

Each check gives a :class:`SanityFlag` (name, passed, measured values, message); failed ones are
logged as warnings and all go into results.json.

No attack of the set runs twice on a point. Within an evaluation (run.py) the cheap checks —
huge ε and zero gradients — run before the attack set, so a broken evaluation shows early;
more_steps and black_box then take the set's per-point outcomes (eval_outcomes.json, with the
component of AutoAttack that broke each point) and attack only the points the set left, with
attacks that are not in the set (2× steps PGD, a Square where AutoAttack's did not run). With
the cascade schedule an attack skips points an earlier one broke; the comparisons use the points
where the outcome is known (``values["points"]``). Points misclassified clean count as wrong
without being attacked, as in the evaluation.
"""
from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field, fields

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import Dataset

from robustgen.attack import PGD, AutoAttack, Square
from robustgen.attack.base import Attack
from robustgen.errors import ConfigError
from robustgen.eval.outcomes import CLEAN, Outcomes
from robustgen.eval.progress import Reporter, duration
from robustgen.eval.worst_case import evaluate_worst_case
from robustgen.modes import eval_mode

log = logging.getLogger("robustgen")


@dataclass
class SanitySettings:
    enabled: bool = True
    n_points: int = 100                 # first test points the checks run on
    batch_size: int = 100
    huge_eps_factor: float = 10.0       # huge ε = factor × the set's ε (ℓ∞ capped at 1)
    huge_eps_steps: int = 10
    huge_eps_max_acc: float = 2.0       # % accuracy above which the huge-ε attack "failed"
    steps_tolerance: float = 2.0        # percentage points 2× steps may lower accuracy by (at least one point)
    zero_grad_max_fraction: float = 0.01
    square_queries: int = 300           # where the set has no AutoAttack (with Square) of that norm
    square_tolerance: float = 2.0       # percentage points Square may lower the white-box accuracy by (≥ 1 point)

    @classmethod
    def from_dict(cls, values: dict | None) -> SanitySettings:
        values = dict(values or {})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"eval.sanity: unknown setting(s) {unknown}; valid ones: {sorted(known)}")
        for f in fields(cls):  # a text or a number of the wrong kind fails now, not after the attack set
            value, default = values.get(f.name, f.default), f.default
            kind = bool if isinstance(default, bool) else int if isinstance(default, int) else float
            ok = isinstance(value, bool) if kind is bool else (
                not isinstance(value, bool) and isinstance(value, (int, float) if kind is float else int))
            if not ok:
                what = {bool: "true or false", int: "an integer", float: "a number"}[kind]
                raise ConfigError(f"eval.sanity.{f.name} must be {what}, got {value!r}")
        settings = cls(**values)
        if min(settings.n_points, settings.batch_size, settings.huge_eps_steps, settings.square_queries) < 1:
            raise ConfigError("eval.sanity: n_points, batch_size, huge_eps_steps and square_queries must be ≥ 1")
        return settings


@dataclass
class SanityFlag:
    name: str
    passed: bool
    values: dict = field(default_factory=dict)
    message: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


# --- helpers -----------------------------------------------------------------------------------
def _correct(model: nn.Module, attack: Attack | None, x: Tensor, y: Tensor, ids: Tensor, batch_size: int,
             among: Tensor | None = None) -> Tensor:
    """Per point: classified correctly after `attack` (clean when None), batched. With `among`,
    only those points are attacked and the others count as not correct."""
    keep = torch.ones(len(x), dtype=torch.bool, device=x.device) if among is None else among.clone()
    idx = keep.nonzero().flatten()
    for k in range(0, len(idx), batch_size):
        at = idx[k:k + batch_size]
        xb, yb = x[at], y[at]
        if attack is not None:
            xb = attack(model, xb, yb, example_ids=ids[at.cpu()])
        with torch.no_grad():
            keep[at] = model(xb).argmax(1) == yb
    return keep


def _pct(mask: Tensor) -> float:
    return 100.0 * mask.float().mean().item() if mask.numel() else 0.0


def zero_gradient_fraction(model: nn.Module, x: Tensor, y: Tensor, batch_size: int = 100) -> float:
    """Share of points whose input gradient of the cross-entropy is exactly zero everywhere."""
    zero = []
    with eval_mode(model), torch.inference_mode(False), torch.enable_grad():
        for k in range(0, len(x), batch_size):
            xb = x[k:k + batch_size].detach().clone().requires_grad_(True)
            loss = F.cross_entropy(model(xb), y[k:k + batch_size].clone(), reduction="sum")
            (grad,) = torch.autograd.grad(loss, xb)
            zero.append((grad.flatten(1) == 0).all(1))
    return torch.cat(zero).float().mean().item()


def reference_pgds(attacks: dict[str, Attack]) -> dict[str, tuple[str, PGD]]:
    """One (name, PGD) per norm of the set: the set's first PGD of that norm, else a 10-step PGD
    at the ε of the set's first attack of that norm (the strong ℓ1 variant where ℓ1 has no PGD)."""
    refs: dict[str, tuple[str, PGD]] = {}
    for name, attack in attacks.items():
        if isinstance(attack, PGD) and attack.norm not in refs:
            refs[attack.norm] = (name, attack)
    for attack in attacks.values():
        norm = getattr(attack, "norm", None)
        if norm in ("linf", "l2", "l1") and norm not in refs:
            refs[norm] = (f"pgd_{norm} (sanity reference)",
                          PGD(norm=norm, eps=attack.eps, steps=10, step_size=2.5 * attack.eps / 10,
                              l1_variant="strong", seed=attack.seed))
    return dict(sorted(refs.items(), key=lambda kv: ("linf", "l2", "l1").index(kv[0])))


def white_box_attacks(attacks: dict[str, Attack], norm: str) -> dict[str, Attack]:
    """The set's gradient-based attacks of `norm`: AutoAttack counts with its components minus Square."""
    out: dict[str, Attack] = {}
    for name, attack in attacks.items():
        if getattr(attack, "norm", None) != norm or isinstance(attack, Square):
            continue
        if isinstance(attack, AutoAttack):
            out.update({f"{name}/{c}": a for c, a in attack.components.items() if not isinstance(a, Square)})
        else:
            out[name] = attack
    return out


def _variant(ref: PGD, **changes) -> PGD:
    settings = {"norm": ref.norm, "eps": ref.eps, "steps": ref.steps, "step_size": ref.step_size,
                "random_start": ref.random_start, "l1_variant": ref.l1_variant, "sparsity": ref.sparsity,
                "seed": ref.seed}
    return PGD(**{**settings, **changes})


# --- the checks ----------------------------------------------------------------------------------
# Split around the evaluation, so that no attack of the set runs twice on a point: the cheap checks
# run before it (a broken evaluation still shows early), the ones that compare with the set's own
# attacks read its per-point outcomes afterwards (a cascade leaves some unknown: compared on the rest)
# and attack only the points the set could not break, which is all they need.
ORDER = ("huge_eps", "more_steps", "zero_gradients", "black_box")


class Iterates:
    """The final perturbation δ of a PGD on the points `ids`, kept as the PGD runs on them (its
    `recorder`): PGD with 2× steps from the same start is these iterates plus `steps` more steps,
    so the check pays for the second half only."""

    def __init__(self, ids: Tensor):
        self.wanted = {int(i) for i in ids.tolist()}
        self.delta: dict[int, Tensor] = {}

    def keep(self, example_ids: Tensor, delta: Tensor) -> None:
        for row, i in enumerate(example_ids.tolist()):
            if i in self.wanted:
                self.delta[int(i)] = delta[row].detach().cpu()


class _Continued(Attack):
    """`ref` PGD continued for `ref.steps` more steps from its recorded iterates (same step, same
    projection): equal to PGD with 2× steps from the same random start."""

    def __init__(self, ref: PGD, iterates: Iterates):
        super().__init__(ref.eps, seed=ref.seed)
        self.ref, self.iterates, self.norm = ref, iterates, ref.norm

    def perturb(self, model: nn.Module, x: Tensor, y: Tensor, example_ids: Tensor | None) -> Tensor:
        start = torch.stack([self.iterates.delta[int(i)] for i in example_ids.tolist()]).to(x)
        return (x + self.ref.iterate(model, x, y, start, self.ref.steps)).clamp(0, 1)


@dataclass
class PreChecks:
    """The checks run before the evaluation, and what the checks after it need from them."""

    flags: list[SanityFlag]
    clean: Tensor                           # per point: classified correctly without attack
    refs: dict[str, tuple[str, PGD]]        # norm → (name, reference PGD)
    iterates: dict[str, Iterates] = field(default_factory=dict)  # norm → the reference PGD's, as it runs

    def stop_recording(self) -> None:
        for _, ref in self.refs.values():
            ref.recorder = None


def _checked(reporter: Reporter, what: str, run):
    start = time.perf_counter()
    with reporter.running(f"sanity check {what}"):
        out = run()
    return out, time.perf_counter() - start


def _tell(reporter: Reporter, flag: SanityFlag, seconds: float) -> SanityFlag:
    reporter.say(f"sanity {flag.name}: {'ok' if flag.passed else 'FAILED'}, {flag.message} ({duration(seconds)})")
    return flag


def checks_before(model: nn.Module, x: Tensor, y: Tensor, ids: Tensor, attacks: dict[str, Attack],
                  settings: SanitySettings, reporter: Reporter | None = None) -> PreChecks:
    """huge_eps/<norm> and zero_gradients on (x, y, ids): the cheap checks, which need nothing from
    the evaluation. Points misclassified clean count as wrong without being attacked."""
    s, flags, r = settings, [], reporter or Reporter(False)
    clean = _correct(model, None, x, y, ids, s.batch_size)
    if int(clean.sum()) < 10:  # the checks attack only correctly classified points
        log.warning("only %d of the %d sanity points are classified correctly: the sanity checks can show little "
                    "(raise eval.sanity.n_points)", int(clean.sum()), len(x))
    refs = reference_pgds(attacks)
    for norm, (_, ref) in refs.items():
        eps = min(ref.eps * s.huge_eps_factor, 1.0) if norm == "linf" else ref.eps * s.huge_eps_factor
        huge = _variant(ref, eps=eps, steps=s.huge_eps_steps, step_size=2.5 * eps / s.huge_eps_steps,
                        random_start=False)
        held, seconds = _checked(r, f"huge_eps/{norm}", lambda: _correct(model, huge, x, y, ids, s.batch_size, clean))
        acc = _pct(held)
        flags.append(_tell(r, SanityFlag(
            f"huge_eps/{norm}", acc <= s.huge_eps_max_acc, {"eps": eps, "steps": s.huge_eps_steps, "acc": acc},
            f"PGD-{norm} with ε={eps:.4g} ({s.huge_eps_factor:g}× the set's) leaves {acc:.1f}% accuracy "
            f"(expected ≤ {s.huge_eps_max_acc:g}%)"), seconds))

    fraction, seconds = _checked(r, "zero_gradients", lambda: zero_gradient_fraction(model, x, y, s.batch_size))
    flags.append(_tell(r, SanityFlag(
        "zero_gradients", fraction <= s.zero_grad_max_fraction, {"fraction": fraction},
        f"{100 * fraction:.1f}% of points have an all-zero input gradient (expected ≤ "
        f"{100 * s.zero_grad_max_fraction:g}%)"), seconds))
    iterates = {norm: Iterates(ids) for norm in refs}
    for norm, (_, ref) in refs.items():  # the evaluation's run of it keeps the sanity points' iterates
        ref.recorder = iterates[norm]
    return PreChecks(flags, clean, refs, iterates)


def _verdicts(rows: Outcomes, name: str, attack: Attack) -> tuple[Tensor, Tensor]:
    """(known, holds) per point for the set's attack `name`, from the evaluation's outcomes. A point
    misclassified clean is known not to hold; one the attack did not run on (a cascade) is unknown.
    For AutoAttack, `holds` means no white-box component broke it: a break by its Square counts
    as held when every white-box component ran before Square (the `component` column says)."""
    components = getattr(attack, "components", None)
    white = [c for c, a in components.items() if not isinstance(a, Square)] if components else []
    order = list(components or ())
    breakers = rows.component.get(name)
    known, holds = [], []
    for k, (first, survived) in enumerate(zip(rows.broken_by, rows.robust[name])):
        if first == CLEAN or survived is not None and (survived or breakers is None):
            known.append(True)
            holds.append(bool(survived))
        elif survived is None or breakers[k] is None:
            known.append(False)
            holds.append(False)
        elif breakers[k] in white:
            known.append(True)
            holds.append(False)
        else:  # broken by a black-box component: held against the white-box ones that ran before it
            known.append(all(order.index(c) < order.index(breakers[k]) for c in white))
            holds.append(known[-1])
    return torch.tensor(known), torch.tensor(holds)


def allowed_points(tolerance: float, n: int) -> int:
    """`tolerance` percent of `n` points, rounded down, and at least one: counted, not compared as
    percentages, so that 2 of 100 points is 2% and not 2.0000004%."""
    return max(int(tolerance * n / 100 + 1e-9), 1)


def _subset(n: int, of: int) -> str:
    return "" if n == of else f"; on the {n} of {of} points where the set's outcome is known (cascade)"


def _set_square(attacks: dict[str, Attack], norm: str) -> tuple[str, str, Square] | None:
    """(attack name, component name, Square) of an AutoAttack of the set with a Square of `norm`
    that runs after all its white-box components, else None."""
    for name, attack in attacks.items():
        components = getattr(attack, "components", None) if isinstance(attack, AutoAttack) else None
        if not components or getattr(attack, "norm", None) != norm:
            continue
        parts = list(components.items())
        if parts and isinstance(parts[-1][1], Square) and not any(isinstance(a, Square) for _, a in parts[:-1]):
            return name, parts[-1][0], parts[-1][1]
    return None


def checks_after(model: nn.Module, x: Tensor, y: Tensor, ids: Tensor, attacks: dict[str, Attack],
                 settings: SanitySettings, before: PreChecks, outcomes: Outcomes,
                 reporter: Reporter | None = None) -> list[SanityFlag]:
    """more_steps/<norm> and black_box/<norm>, from the evaluation's per-point `outcomes` (which
    must hold every id of `ids`). Both only ask what happens to the points the set could not break,
    so only those are attacked here, and only by attacks that are not in the set: PGD with 2× steps
    (the set's reference PGD too, where the set has none of that norm) and, where the set has no
    AutoAttack of that norm whose Square already ran on them, a Square of `square_queries`."""
    s, flags, r = settings, [], reporter or Reporter(False)
    before.stop_recording()
    rows = outcomes.select([int(i) for i in ids.tolist()])
    evaluated = torch.tensor([b != CLEAN for b in rows.broken_by], device=x.device)
    white_box: dict[str, tuple[Tensor, Tensor]] = {}
    for norm, (name, ref) in before.refs.items():
        def compare():
            if attacks.get(name) is ref:
                known, once = (t.to(x.device) for t in _verdicts(rows, name, ref))
            else:  # the checks' own reference PGD, not in the set: run here, on these points only
                ref.recorder = before.iterates[norm]
                known, once = torch.ones_like(evaluated), _correct(model, ref, x, y, ids, s.batch_size, evaluated)
                ref.recorder = None
            # Same random start per point and the same step, so the first `steps` steps are the set's
            # run: continue from where it ended (points without a kept iterate, e.g. from a resumed
            # evaluation, run 2× steps afresh). A point 2× steps breaks that 1× held is one the
            # set's PGD stopped short of.
            kept = before.iterates[norm].delta
            have = torch.tensor([int(i) in kept for i in ids.tolist()], device=x.device)
            todo = known & once
            twice = _correct(model, _Continued(ref, before.iterates[norm]), x, y, ids, s.batch_size, todo & have)
            if (todo & ~have).any():
                twice |= _correct(model, _variant(ref, steps=2 * ref.steps), x, y, ids, s.batch_size, todo & ~have)
            return known, once, twice

        (known, once, twice), seconds = _checked(r, f"more_steps/{norm}", compare)
        white_box[norm] = (known, once & twice)
        n = int(known.sum())
        a1, a2 = _pct(once[known]), _pct(twice[known])
        more = int((known & once & ~twice).sum())
        # Carlini et al. (2019), "On Evaluating Adversarial Robustness", §5: an attack whose success
        # still grows with more iterations has not converged, and its accuracy is an overestimate.
        allowed = allowed_points(s.steps_tolerance, n)
        flags.append(_tell(r, SanityFlag(
            f"more_steps/{norm}", more <= allowed,
            {"steps": ref.steps, "acc": a1, "steps_2x": 2 * ref.steps, "acc_2x": a2, "allowed_points": allowed,
             "broken_only_by_2x": more, "points": n},
            f"PGD-{norm}: {a1:.1f}% with {ref.steps} steps, {a2:.1f}% with {2 * ref.steps}: {more} more point(s) "
            f"broken (the set's PGD {'has converged' if more <= allowed else 'has NOT converged'}: 2× steps "
            f"may break at most {allowed} more of {n} points){_subset(n, len(x))}"), seconds))

    for norm in ("linf", "l2"):  # torchattacks has no ℓ1 Square
        if norm not in before.refs:
            continue
        ref_name, ref = before.refs[norm]
        known, holds = white_box[norm]
        for name, attack in attacks.items():  # the set's other white-box attacks of this norm
            if attack is ref or getattr(attack, "norm", None) != norm or isinstance(attack, Square):
                continue
            k2, h2 = (t.to(x.device) for t in _verdicts(rows, name, attack))
            broken, kept = (known & ~holds) | (k2 & ~h2), known & holds & k2 & h2
            known, holds = broken | kept, kept
        in_set = _set_square(attacks, norm)

        def square_on_held():
            if in_set is not None:  # AutoAttack's Square ran on every point its white-box parts left
                aa_name, part, _ = in_set
                by = rows.component.get(aa_name) or [None] * len(rows.broken_by)
                return ~torch.tensor([b == part for b in by], device=x.device) & holds
            own = Square(norm=norm, eps=ref.eps, n_queries=s.square_queries, seed=ref.seed)
            return _correct(model, own, x, y, ids, s.batch_size, known & holds)

        held, seconds = _checked(r, f"black_box/{norm}", square_on_held)
        queries = in_set[2].n_queries if in_set is not None else s.square_queries
        source = f"{in_set[0]}/{in_set[1]}" if in_set is not None else "Square"
        n = int(known.sum())
        only_square = int((holds & ~held & known).sum())
        wb, both = _pct(holds[known]), _pct((holds & held)[known])
        others = [k for k, a in white_box_attacks(attacks, norm).items() if a is not ref]
        # One point Square alone breaks is noise (its random search gets lucky); masking shows as more.
        allowed = allowed_points(s.square_tolerance, n)
        flags.append(_tell(r, SanityFlag(
            f"black_box/{norm}", only_square <= allowed,
            {"square": source, "square_queries": queries, "white_box_acc": wb, "white_box_and_square_acc": both,
             "white_box": [f"{ref_name} (1× and 2× steps)", *others], "broken_only_by_square": only_square,
             "allowed_points": allowed, "points": n},
            f"{source}-{norm} ({queries} queries, on the points the white-box attacks of the set left) breaks "
            f"{only_square} of them: {wb:.1f}% → {both:.1f}% (at most {allowed} of {n} points allowed)"
            f"{_subset(n, len(x))}"), seconds))
    return flags


def ordered(flags: list[SanityFlag], clean: Tensor) -> list[SanityFlag]:
    """In the order of the module docstring (norms in set order), each with the clean accuracy."""
    for flag in flags:
        flag.values["clean_acc"] = _pct(clean)
    return sorted(flags, key=lambda f: ORDER.index(f.name.split("/")[0]))


class _Points(Dataset):
    """(x, y, ids) as a data set for evaluate_worst_case (on the CPU, where the data loader expects it)."""

    def __init__(self, x: Tensor, y: Tensor, ids: Tensor):
        self.x, self.y, self.ids = x.cpu(), y.cpu(), [int(i) for i in ids.tolist()]

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, k: int):
        return self.x[k], self.y[k], self.ids[k]


def run_sanity_checks(model: nn.Module, x: Tensor, y: Tensor, ids: Tensor, attacks: dict[str, Attack],
                      settings: SanitySettings, reporter: Reporter | None = None) -> list[SanityFlag]:
    """All checks on the points (x, y, ids) alone, outside an evaluation: the set runs on them here
    (every attack on every point). An evaluation runs :func:`checks_before` and :func:`checks_after`
    around itself instead (run.py). The model is used in eval mode."""
    before = checks_before(model, x, y, ids, attacks, settings, reporter)
    report = evaluate_worst_case(model, _Points(x, y, ids), attacks, batch_size=settings.batch_size,
                                 per_attack=True, progress=reporter or False)
    after = checks_after(model, x, y, ids, attacks, settings, before, report.outcomes, reporter)
    return ordered(before.flags + after, before.clean)


def report_flags(flags: list[SanityFlag], console=None, title: str = "sanity checks") -> None:
    """Log failures as warnings and print a one-line summary (plus the failures) with rich."""
    failed = [f for f in flags if not f.passed]
    for flag in failed:
        log.warning("sanity check %s failed: %s", flag.name, flag.message)
    if console is None:
        from rich.console import Console

        console = Console(stderr=True)
    console.print(f"[bold]{title}[/bold]: {len(flags) - len(failed)}/{len(flags)} passed", soft_wrap=True)
    for flag in failed:
        console.print(f"  [bold yellow]warning[/bold yellow] {flag.name}: {flag.message}", soft_wrap=True,
                      highlight=False)
