"""The request's level: R-NOTAG (no tag means Level 3) and R-NONPROD (a request about a
non-production environment is capped at Level 4, P-PROD)."""

from __future__ import annotations

from dataclasses import dataclass

from mailgate.model import ParsedMail
from mailgate.policy.facts import Facts
from mailgate.policy.rule import Hit


@dataclass(frozen=True)
class NoSeverityTag:
    default_level: int = 3
    name: str = "no_severity_tag"
    clause: str = "R-NOTAG"

    def check(self, mail: ParsedMail, facts: Facts) -> Hit | None:
        if facts.tags.severity is not None:
            return None
        return Hit(
            "level",
            evidence={"subject": facts.tags.clean, "level": self.default_level},
            level=self.default_level,
            level_source="default",
        )


@dataclass(frozen=True)
class NonProductionCap:
    cap_level: int = 4
    name: str = "non_production_cap"
    clause: str = "R-NONPROD"

    def check(self, mail: ParsedMail, facts: Facts) -> Hit | None:
        if facts.tags.production is not False:
            return None
        level = facts.tags.severity or 3
        if level >= self.cap_level:
            return None
        return Hit(
            "level",
            evidence={
                "environment": facts.tags.environment,
                "tag": facts.tags.environment_text,
                "requested_level": level,
                "level": self.cap_level,
            },
            level=self.cap_level,
            level_source="capped",
        )
