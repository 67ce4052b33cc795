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
  (a saturated softmax, a non-differentiable input stage) or not finite (NaN weights); attacks
  cannot move such points.
* ``black_box/<norm>``: Square (score-based, no gradients) must not break points that the set's
  white-box attacks of that norm (AutoAttack without its own Square, plus the PGD runs above)
  left: if it does, the gradients mislead the attacks, or the set is too weak for this model
  (ℓ∞ and ℓ2 only: torchattacks has no ℓ1 Square). Where the set has an AutoAttack of that norm,
  its own Square (5,000 queries) already ran on exactly those points and its outcomes are read;
  otherwise a Square of ``square_queries`` runs on them.

Each check gives a :class:`SanityFlag` (name, passed, measured values, message); failed ones are
logged as warnings and all go into results.json.

No attack of the set runs twice on a point. Within an evaluation (run.py) the cheap checks —
huge ε and zero gradients — run before the attack set (before.py), so a broken evaluation shows early;
more_steps and black_box then take the set's per-point outcomes (eval_outcomes.json, with the
component of AutoAttack that broke each point) and attack only the points the set left (after.py), with
attacks that are not in the set (2× steps PGD, a Square where AutoAttack's did not run). With
the cascade schedule an attack skips points an earlier one broke; the comparisons use the points
where the outcome is known (``values["points"]``). Points misclassified clean count as wrong
without being attacked, as in the evaluation.
"""
from robustgen.eval.sanity.after import checks_after, run_sanity_checks
from robustgen.eval.sanity.before import PreChecks, checks_before, zero_gradient_fraction
from robustgen.eval.sanity.common import reference_pgds, white_box_attacks
from robustgen.eval.sanity.flags import SanityFlag, SanitySettings, allowed_points, ordered, report_flags

__all__ = ["PreChecks", "SanityFlag", "SanitySettings", "allowed_points", "checks_after", "checks_before", "ordered",
           "reference_pgds", "report_flags", "run_sanity_checks", "white_box_attacks", "zero_gradient_fraction"]
