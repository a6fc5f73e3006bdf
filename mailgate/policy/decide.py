"""``decide(mail, facts, chain) -> Decision``: pure, no database, no settings, no clock.

Rules run in the chain's order. The first ``ignore`` or ``reject`` wins and the rules
after it are recorded as not run; ``level`` and ``flag`` hits adjust the accepted
request. Every rule's verdict is kept in ``Decision.record`` and stored with the
decision, so "why?" is answered from the database.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from mailgate.model import ParsedMail
from mailgate.policy.facts import Facts
from mailgate.policy.rule import Rule, RuleResult

DEFAULT_LEVEL = 3  # R-NOTAG


@dataclass(frozen=True)
class Decision:
    outcome: Literal["accept", "reject", "ignore"]
    reason: str | None
    severity: int
    severity_source: str  # tag | default | capped
    tags: tuple[str, ...]
    notes: tuple[str, ...]  # reasons to mention in the acknowledgement
    record: tuple[RuleResult, ...]

    def evidence(self, rule: str) -> dict[str, Any]:
        for result in self.record:
            if result.rule == rule:
                return dict(result.evidence)
        return {}

    def record_json(self) -> list[dict[str, Any]]:
        return [_json_safe(r.as_json()) for r in self.record]


def _json_safe(value: Any) -> Any:
    """Evidence quotes the sender's text; NUL cannot be stored in PostgreSQL JSONB."""
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value


def decide(mail: ParsedMail, facts: Facts, chain: Sequence[Rule]) -> Decision:
    outcome: Literal["accept", "reject", "ignore"] = "accept"
    reason: str | None = None
    severity = facts.tags.severity or DEFAULT_LEVEL
    source = "tag" if facts.tags.severity else "default"
    tags: list[str] = []
    notes: list[str] = []
    record: list[RuleResult] = []
    for rule in chain:
        if outcome != "accept":
            record.append(RuleResult(rule.name, rule.clause, "not_run"))
            continue
        hit = rule.check(mail, facts)
        if hit is None:
            record.append(RuleResult(rule.name, rule.clause, "pass"))
            continue
        record.append(
            RuleResult(rule.name, rule.clause, "hit", hit.action, hit.reason, hit.evidence)
        )
        if hit.action in ("ignore", "reject"):
            outcome = "ignore" if hit.action == "ignore" else "reject"
            reason = hit.reason
        elif hit.action == "level" and hit.level is not None:
            severity, source = hit.level, hit.level_source or "tag"
            notes.append(rule.name)
        elif hit.action == "flag" and hit.tag:
            if hit.tag not in tags:
                tags.append(hit.tag)
        elif hit.action == "note":
            notes.append(rule.name)
    return Decision(outcome, reason, severity, source, tuple(tags), tuple(notes), tuple(record))
