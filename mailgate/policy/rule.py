"""The shape of a policy rule and of its verdicts."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from mailgate.model import ParsedMail
from mailgate.policy.facts import Facts

# ignore: store, answer nobody (automatic mail)     reject: refuse with the reason's template
# flag: accept, tag the ticket for triage            level: set or cap the severity level
# note: accept, but remember something for the acknowledgement (e.g. "which version?")
Action = Literal["ignore", "reject", "flag", "level", "note"]


@dataclass(frozen=True)
class Hit:
    action: Action
    reason: str | None = None  # a reason code (POLICY.md section 2) for ignore/reject/flag
    evidence: Mapping[str, Any] = field(default_factory=dict)
    level: int | None = None  # for action "level"
    level_source: str | None = None  # tag | default | capped
    tag: str | None = None  # for action "flag", e.g. "triage:development"


@dataclass(frozen=True)
class RuleResult:
    """One line of a decision's stored record."""

    rule: str
    clause: str
    verdict: Literal["hit", "pass", "not_run"]
    action: str | None = None
    reason: str | None = None
    evidence: Mapping[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "clause": self.clause,
            "verdict": self.verdict,
            "action": self.action,
            "reason": self.reason,
            "evidence": dict(self.evidence),
        }


class Rule(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def clause(self) -> str: ...

    def check(self, mail: ParsedMail, facts: Facts) -> Hit | None: ...
