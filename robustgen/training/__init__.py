"""The runtime of one training run: the Lightning module, the optimiser and schedule, resuming, and
the guard that stops a diverging run."""
