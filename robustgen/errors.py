"""Errors that mean "the user asked for something impossible", as opposed to bugs.

Entry points catch :class:`RobustgenError` and print its message without a stack trace (:func:`fail`),
so every such error must say what was wrong and what would be valid.
"""
from __future__ import annotations

import sys
from typing import NoReturn

PREFIX = "robustgen: error:"


class RobustgenError(Exception):
    """Base class of all user-facing errors."""


class ConfigError(RobustgenError, ValueError):
    """A setting is out of range or inconsistent (negative ε, impossible patch size, ...)."""


class DataError(RobustgenError, FileNotFoundError):
    """A data set is missing or malformed."""


class CheckpointError(RobustgenError, ValueError):
    """A checkpoint cannot be used with the requested model."""


class TrainingDiverged(RobustgenError, FloatingPointError):
    """The loss, the gradients or the weights stopped being finite numbers."""


class SweepJobFailed(RobustgenError):
    """A job of a multirun failed; its error is recorded in its folder (job_status.json). Raised
    instead of ending the process, so that Hydra records the job as failed and runs the others,
    and Optuna counts it against `max_failure_rate`."""


def fail(message: object) -> NoReturn:
    """End the program on a user error: one line, ``robustgen: error: <message>``, exit status 2."""
    print(f"{PREFIX} {message}", file=sys.stderr)
    raise SystemExit(2)
