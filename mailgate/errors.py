"""Errors that mailgate raises on purpose, each carrying what an operator needs to act."""

from __future__ import annotations


class MailgateError(Exception):
    """Base of every error mailgate raises deliberately."""


class ConfigError(MailgateError):
    """The configuration cannot be used; the message names the offending key."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"config key '{key}': {message}")
        self.key = key
        self.message = message


class ConfigValueError(ValueError):
    """Raised by a settings dataclass's ``__post_init__`` for an impossible value.

    ``field`` is the field's own name (or a dotted path below it); the loader prefixes
    the section path, so the operator sees the whole key, e.g. ``sla.premier.l1``.
    """

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class StoreError(MailgateError):
    """A raw message could not be committed to the inbox (the sender should retry)."""


class ImportRowError(MailgateError):
    """A row of an import file is invalid; nothing of the file was imported."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(f"line {line}: {message}")
        self.line = line
        self.message = message
