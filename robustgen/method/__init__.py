"""Training methods: how a batch becomes a loss (the inner maximisation and the outer loss).

* :class:`PGDAT` — PGD adversarial training (Madry et al., 2018), the study's: cross-entropy on
  the training attack's adversarial examples (the `attack` config group);
* :class:`TRADES` — Zhang et al. (2019): CE(clean) + β·KL between clean and adversarial outputs;
* :class:`MART` — Wang et al. (2020): boosted CE on adversarial examples + λ·KL weighted by
  1 − p_y(clean), so misclassified examples weigh more;
* :class:`FastAT` — Wong et al. (2020), "Fast is better than free": FGSM from a uniform random
  start with step 1.25·ε, and the cyclic learning rate (conf/method/fast_at.yaml selects it).

Catastrophic overfitting, the failure single-step methods are known for, is watched for every
method by :class:`CatastrophicOverfittingMonitor`.
"""
from robustgen.method.base import MethodLoss, TrainingMethod
from robustgen.method.monitor import CatastrophicOverfittingMonitor, catastrophic_overfitting
from robustgen.method.methods import MART, PGDAT, TRADES, FastAT, NoiseStartPGD

__all__ = ["MART", "PGDAT", "TRADES", "CatastrophicOverfittingMonitor", "FastAT", "MethodLoss", "NoiseStartPGD",
           "TrainingMethod", "catastrophic_overfitting"]
