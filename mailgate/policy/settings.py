"""Policy settings: the readings of POLICY.md section 5 that are choices, kept in config."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from mailgate.errors import ConfigValueError
from mailgate.policy.language import LanguageSettings
from mailgate.policy.scope import ScopeSettings


@dataclass(frozen=True)
class VersionSettings:
    """R-VERSION: the latest official release; it and the previous major are supported."""

    latest: str = "7.4.2"
    # How many major versions before the latest are still supported (P-OUT-VERSION).
    previous_majors: int = 1
    # A request naming no version is accepted and the acknowledgement asks for it.
    ask_when_missing: bool = True

    def __post_init__(self) -> None:
        if not re.fullmatch(r"\d+(\.\d+){0,3}", self.latest):
            raise ConfigValueError("latest", f"not a version like 7.4.2: {self.latest!r}")
        if self.previous_majors < 0:
            raise ConfigValueError("previous_majors", "must be 0 or more")

    @property
    def latest_major(self) -> int:
        return int(self.latest.split(".")[0])

    @property
    def supported_majors(self) -> tuple[int, ...]:
        top = self.latest_major
        return tuple(range(top, max(top - self.previous_majors, 0) - 1, -1))


@dataclass(frozen=True)
class PolicySettings:
    # R-NOTAG: the level of a request with no severity tag.
    default_level: int = 3
    # R-NONPROD: the level a non-production request is capped at.
    nonprod_level: int = 4
    # Refusal mails per sender per day (policy timezone); past that they are recorded only.
    refusals_per_sender_per_day: int = 3
    versions: VersionSettings = field(default_factory=VersionSettings)
    language: LanguageSettings = field(default_factory=LanguageSettings)
    scope: ScopeSettings = field(default_factory=ScopeSettings)

    def __post_init__(self) -> None:
        for name in ("default_level", "nonprod_level"):
            if getattr(self, name) not in (1, 2, 3, 4):
                raise ConfigValueError(name, "must be a level from 1 to 4")
        if self.refusals_per_sender_per_day < 0:
            raise ConfigValueError("refusals_per_sender_per_day", "must be 0 or more")
