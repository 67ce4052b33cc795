"""Attacks with one interface, ``attack(model, x, y, *, example_ids=None) -> x_adv`` (see base.py).

* :class:`PGD` — ℓ∞, ℓ2 and ℓ1 (the study's dense/rescale variant or the strong sparse/exact one)
  in one loop (pgd.py);
* :class:`APGD`, :class:`APGDT`, :class:`FAB`, :class:`Square` — AutoAttack's components, from
  torchattacks for ℓ∞ / ℓ2, hand-written for ℓ1 APGD (torchattacks_wrap.py, apgd_l1.py);
* :class:`AutoAttack` — the standard ensemble of those (autoattack.py).
"""
from robustgen.attack.autoattack import AutoAttack
from robustgen.attack.base import Attack, NoAttack
from robustgen.attack.pgd import PGD
from robustgen.attack.torchattacks_wrap import APGD, APGDT, FAB, Square

__all__ = ["APGD", "APGDT", "Attack", "AutoAttack", "FAB", "NoAttack", "PGD", "Square"]
