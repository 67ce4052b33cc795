"""The checks run after the attack set, from its per-point outcomes: ``more_steps/<norm>`` and
``black_box/<norm>``. Both only ask what happens to the points the set could not break, so only
those are attacked here, and only by attacks that are not in the set: PGD with 2× steps (continued
from the set's own iterates) and, where the set has no AutoAttack of that norm whose Square already
ran on them, a Square of ``square_queries``."""
from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.utils.data import Dataset

from robustgen.arch.contract import check_classifier
from robustgen.attack import AutoAttack, Square
from robustgen.attack.base import Attack
from robustgen.eval.outcomes import CLEAN, Outcomes
from robustgen.eval.progress import Reporter
from robustgen.eval.sanity import common
from robustgen.eval.sanity.before import PreChecks, checks_before
from robustgen.eval.sanity.flags import SanityFlag, SanitySettings, allowed_points, ordered, percent
from robustgen.eval.worst_case import evaluate_worst_case


def verdicts(rows: Outcomes, name: str, attack: Attack) -> tuple[Tensor, Tensor]:
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


def _once_and_twice(model, x, y, ids, attacks, settings, before: PreChecks, rows: Outcomes, norm: str):
    """(known, held 1× steps, held 2× steps) of the reference PGD of `norm` on the sanity points."""
    name, ref = before.refs[norm]
    kept = before.keeping[norm]
    evaluated = torch.tensor([b != CLEAN for b in rows.broken_by], device=x.device)
    if attacks.get(name) is ref:
        known, once = (t.to(x.device) for t in verdicts(rows, name, ref))
    else:  # the checks' own reference PGD, not in the set: run here, on these points only
        known, once = torch.ones_like(evaluated), common.correct(model, kept, x, y, ids, settings.batch_size, evaluated)
    # Same random start per point and the same step, so the first `steps` steps are the set's run:
    # continue from where it ended (points without a kept iterate, e.g. from a resumed evaluation,
    # run 2× steps afresh). A point 2× steps breaks that 1× held is one the set's PGD stopped short of.
    have = torch.tensor([int(i) in kept.delta for i in ids.tolist()], device=x.device)
    todo = known & once
    twice = common.correct(model, common.Continued(kept), x, y, ids, settings.batch_size, todo & have)
    if (todo & ~have).any():
        twice |= common.correct(model, common.variant(ref, steps=2 * ref.steps), x, y, ids, settings.batch_size,
                                todo & ~have)
    return known, once, twice


def more_steps_flag(known: Tensor, once: Tensor, twice: Tensor, ref, settings: SanitySettings, norm: str,
                    n_all: int) -> SanityFlag:
    # Carlini et al. (2019), "On Evaluating Adversarial Robustness", §5: an attack whose success
    # still grows with more iterations has not converged, and its accuracy is an overestimate.
    n = int(known.sum())
    a1, a2 = percent(once[known]), percent(twice[known])
    more = int((known & once & ~twice).sum())
    allowed = allowed_points(settings.steps_tolerance, n)
    return SanityFlag(
        f"more_steps/{norm}", more <= allowed,
        {"steps": ref.steps, "acc": a1, "steps_2x": 2 * ref.steps, "acc_2x": a2, "allowed_points": allowed,
         "broken_only_by_2x": more, "points": n},
        f"PGD-{norm}: {a1:.1f}% with {ref.steps} steps, {a2:.1f}% with {2 * ref.steps}: {more} more point(s) "
        f"broken (the set's PGD {'has converged' if more <= allowed else 'has NOT converged'}: 2× steps "
        f"may break at most {allowed} more of {n} points){_subset(n, n_all)}")


def _white_box_verdict(attacks, rows: Outcomes, ref, known: Tensor, holds: Tensor, norm: str, device):
    """(known, holds) against every white-box attack of `norm` in the set, the reference PGD's
    1× and 2× steps included."""
    for name, attack in attacks.items():  # the set's other white-box attacks of this norm
        if attack is ref or getattr(attack, "norm", None) != norm or isinstance(attack, Square):
            continue
        k2, h2 = (t.to(device) for t in verdicts(rows, name, attack))
        broken, kept = (known & ~holds) | (k2 & ~h2), known & holds & k2 & h2
        known, holds = broken | kept, kept
    return known, holds


def black_box_check(model, x, y, ids, attacks, settings: SanitySettings, before: PreChecks, rows: Outcomes,
                    white_box: tuple[Tensor, Tensor], norm: str, reporter: Reporter) -> SanityFlag:
    """Square on the points every white-box attack of `norm` left (AutoAttack's own, where it ran)."""
    s = settings
    ref_name, ref = before.refs[norm]
    known, holds = _white_box_verdict(attacks, rows, ref, *white_box, norm, x.device)
    in_set = _set_square(attacks, norm)

    def square_on_held():
        if in_set is not None:  # AutoAttack's Square ran on every point its white-box parts left
            aa_name, part, _ = in_set
            by = rows.component.get(aa_name) or [None] * len(rows.broken_by)
            return ~torch.tensor([b == part for b in by], device=x.device) & holds
        own = Square(norm=norm, eps=ref.eps, n_queries=s.square_queries, seed=ref.seed)
        return common.correct(model, own, x, y, ids, s.batch_size, known & holds)

    held, seconds = common.checked(reporter, f"black_box/{norm}", square_on_held)
    queries = in_set[2].n_queries if in_set is not None else s.square_queries
    source = f"{in_set[0]}/{in_set[1]}" if in_set is not None else "Square"
    n = int(known.sum())
    only_square = int((holds & ~held & known).sum())
    wb, both = percent(holds[known]), percent((holds & held)[known])
    others = [k for k, a in common.white_box_attacks(attacks, norm).items() if a is not ref]
    # One point Square alone breaks is noise (its random search gets lucky); masking shows as more.
    allowed = allowed_points(s.square_tolerance, n)
    return common.tell(reporter, SanityFlag(
        f"black_box/{norm}", only_square <= allowed,
        {"square": source, "square_queries": queries, "white_box_acc": wb, "white_box_and_square_acc": both,
         "white_box": [f"{ref_name} (1× and 2× steps)", *others], "broken_only_by_square": only_square,
         "allowed_points": allowed, "points": n},
        f"{source}-{norm} ({queries} queries, on the points the white-box attacks of the set left) breaks "
        f"{only_square} of them: {wb:.1f}% → {both:.1f}% (at most {allowed} of {n} points allowed)"
        f"{_subset(n, len(x))}"), seconds)


def checks_after(model: nn.Module, x: Tensor, y: Tensor, ids: Tensor, attacks: dict[str, Attack],
                 settings: SanitySettings, before: PreChecks, outcomes: Outcomes,
                 reporter: Reporter | None = None) -> list[SanityFlag]:
    """more_steps/<norm> and black_box/<norm>, from the evaluation's per-point `outcomes` (which
    must hold every id of `ids`); `attacks` is the set as configured (not as evaluated)."""
    r = reporter or Reporter(False)
    rows = outcomes.select([int(i) for i in ids.tolist()])
    flags, white_box = [], {}
    for norm, (_, ref) in before.refs.items():
        (known, once, twice), seconds = common.checked(
            r, f"more_steps/{norm}", lambda: _once_and_twice(model, x, y, ids, attacks, settings, before, rows, norm))
        white_box[norm] = (known, once & twice)
        flags.append(common.tell(r, more_steps_flag(known, once, twice, ref, settings, norm, len(x)), seconds))
    for norm in ("linf", "l2"):  # torchattacks has no ℓ1 Square
        if norm in before.refs:
            flags.append(black_box_check(model, x, y, ids, attacks, settings, before, rows, white_box[norm], norm, r))
    return flags


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
    check_classifier(model, x[:4], "sanity checks")  # logits of the right shape, finite
    before = checks_before(model, x, y, ids, attacks, settings, reporter)
    report = evaluate_worst_case(model, _Points(x, y, ids), before.evaluated(attacks), batch_size=settings.batch_size,
                                 per_attack=True, progress=reporter or False)
    after = checks_after(model, x, y, ids, attacks, settings, before, report.outcomes, reporter)
    return ordered(before.flags + after, before.clean)
