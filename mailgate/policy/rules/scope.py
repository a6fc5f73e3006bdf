"""R-SCOPE rules: P-OUT-DEV, P-OUT-3P, P-OUT-REMOTE, P-OUT-PS and P-HW, one rule per
category, each driven by the patterns in config (``mailgate/policy/scope.py``)."""

from __future__ import annotations

from dataclasses import dataclass

from mailgate.model import ParsedMail
from mailgate.policy.facts import Facts
from mailgate.policy.rule import Hit
from mailgate.policy.scope import ScopeCategory


def _excerpt(text: str, span: tuple[int, int]) -> str:
    return " ".join(text[span[0] : span[1]].split())[:160]


@dataclass(frozen=True)
class ScopeRule:
    name: str
    clause: str
    reason: str
    category: ScopeCategory

    def warm_up(self) -> None:
        self.category.warm_up()

    def check(self, mail: ParsedMail, facts: Facts) -> Hit | None:
        if not self.category.enabled:
            return None
        text = facts.scope_text
        strong, weak = self.category.searchable
        for strength, patterns in (("strong", strong), ("weak", weak)):
            for pattern in patterns:
                m = pattern.search(text)
                if m is None:
                    continue
                evidence = {
                    "matched": _excerpt(text.text, m.span()),
                    "pattern": pattern.regex.pattern,
                    "strength": strength,
                }
                if strength == "strong":
                    return Hit("reject", self.reason, evidence)
                return Hit("flag", self.reason, evidence, tag=f"triage:{self.reason}")
        return None
