"""Errors that mean "the user asked for something impossible", as opposed to bugs.

Entry points catch :class:`RobustgenError` and print its message without a stack trace, so every
such error must say what was wrong and what would be valid.
"""


class RobustgenError(Exception):
    """Base class of all user-facing errors."""


class ConfigError(RobustgenError, ValueError):
    """A setting is out of range or inconsistent (negative ε, impossible patch size, ...)."""


class DataError(RobustgenError, FileNotFoundError):
    """A data set is missing or malformed."""


class CheckpointError(RobustgenError, ValueError):
    """A checkpoint cannot be used with the requested model."""
