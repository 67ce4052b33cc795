"""Attacks with one interface, ``attack(model, x, y) -> x_adv`` (see base.py)."""
from robustgen.attack.base import Attack, NoAttack
from robustgen.attack.pgd import PGD

__all__ = ["Attack", "NoAttack", "PGD"]
