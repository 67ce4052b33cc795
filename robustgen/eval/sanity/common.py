"""What the checks before and after the evaluation share: running an attack on some of the points,
the reference PGD of each norm and its variants, and the final iterates that let "2× steps" pay
for the second half only."""
from __future__ import annotations

import time

import torch
from torch import Tensor, nn

from robustgen.attack import PGD, AutoAttack, Square
from robustgen.attack.base import Attack
from robustgen.eval.progress import Reporter, duration
from robustgen.eval.sanity.flags import SanityFlag


def correct(model: nn.Module, attack: Attack | None, x: Tensor, y: Tensor, ids: Tensor, batch_size: int,
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


def variant(ref: PGD, **changes) -> PGD:
    """A PGD with `ref`'s settings but for `changes` (more steps, a huge ε, no random start)."""
    settings = {"norm": ref.norm, "eps": ref.eps, "steps": ref.steps, "step_size": ref.step_size,
                "random_start": ref.random_start, "l1_variant": ref.l1_variant, "sparsity": ref.sparsity,
                "seed": ref.seed}
    return PGD(**{**settings, **changes})


class KeepingIterates(Attack):
    """`ref` exactly as the set runs it (same settings, same description, same outcomes), keeping
    the final perturbation δ of the points `ids` (:meth:`PGD.perturb_with_delta`): PGD with 2×
    steps from the same start is these iterates plus `steps` more steps (:class:`Continued`)."""

    def __init__(self, ref: PGD, ids: Tensor):
        super().__init__(ref.eps, eval_mode=ref.eval_mode, seed=ref.seed)
        self.ref, self.norm = ref, ref.norm
        self.wanted = {int(i) for i in ids.tolist()}
        self.delta: dict[int, Tensor] = {}

    def perturb(self, model: nn.Module, x: Tensor, y: Tensor, example_ids: Tensor | None) -> Tensor:
        x_adv, delta = self.ref.perturb_with_delta(model, x, y, example_ids)
        for row, i in enumerate([] if example_ids is None else example_ids.tolist()):
            if i in self.wanted:
                self.delta[int(i)] = delta[row].detach().cpu()
        return x_adv

    def describe(self) -> dict:
        return self.ref.describe()


class Continued(Attack):
    """`kept.ref` continued for `ref.steps` more steps from its kept iterates (same step, same
    projection): equal to PGD with 2× steps from the same random start."""

    def __init__(self, kept: KeepingIterates):
        super().__init__(kept.ref.eps, seed=kept.ref.seed)
        self.kept, self.norm = kept, kept.norm

    def perturb(self, model: nn.Module, x: Tensor, y: Tensor, example_ids: Tensor | None) -> Tensor:
        start = torch.stack([self.kept.delta[int(i)] for i in example_ids.tolist()]).to(x)
        return (x + self.kept.ref.iterate(model, x, y, start, self.kept.ref.steps)).clamp(0, 1)


def checked(reporter: Reporter, what: str, run):
    """(run(), seconds), shown as a running sanity check."""
    start = time.perf_counter()
    with reporter.running(f"sanity check {what}"):
        out = run()
    return out, time.perf_counter() - start


def tell(reporter: Reporter, flag: SanityFlag, seconds: float) -> SanityFlag:
    reporter.say(f"sanity {flag.name}: {'ok' if flag.passed else 'FAILED'}, {flag.message} ({duration(seconds)})")
    return flag
