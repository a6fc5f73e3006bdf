"""Engineer commands: lines at the top of a reply, e.g. ``#status resolved``.

Only the leading block counts (blank lines allowed), so "#1 priority" in the middle of
a message is prose. Command lines are never relayed to the customer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_COMMAND_LINE = re.compile(r"^\s*#(?P<name>[A-Za-z][\w-]*)\b[ \t]*(?P<arg>.*?)\s*$")
STATUSES = ("open", "waiting", "resolved")


@dataclass(frozen=True)
class Command:
    name: str
    arg: str
    line: str
    error: str | None = None  # why it cannot be applied (unknown, bad argument)


@dataclass(frozen=True)
class ParsedCommands:
    commands: tuple[Command, ...]
    body: str  # the text without the command lines

    @property
    def internal(self) -> bool:
        return any(c.name == "internal" and c.error is None for c in self.commands)

    @property
    def errors(self) -> tuple[Command, ...]:
        return tuple(c for c in self.commands if c.error)


def _validate(name: str, arg: str) -> str | None:
    if name == "status":
        return None if arg.lower() in STATUSES else f"#status takes one of {', '.join(STATUSES)}"
    if name in ("severity", "level"):
        return None if arg in ("1", "2", "3", "4") else f"#{name} takes a level from 1 to 4"
    if name == "assign":
        return None if re.fullmatch(r"[^@\s]+@[^@\s]+", arg) else "#assign takes an address"
    if name == "internal":
        return None if not arg else "#internal takes no argument"
    return f"unknown command #{name} (known: #status, #severity, #assign, #internal)"


def parse_commands(text: str) -> ParsedCommands:
    lines = text.splitlines()
    commands: list[Command] = []
    index = 0
    for index, line in enumerate(lines):  # noqa: B007 (index used after the loop)
        if not line.strip():
            continue
        m = _COMMAND_LINE.match(line)
        if not m:
            break
        name = m.group("name").lower()
        arg = m.group("arg").strip()
        commands.append(Command(name, arg, line.strip(), _validate(name, arg)))
    else:
        index = len(lines)
    body = "\n".join(lines[index:]).strip() if commands else text.strip()
    return ParsedCommands(tuple(commands), body)
