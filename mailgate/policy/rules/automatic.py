"""Automatic mail (bounces, auto-replies, lists) is stored and never answered (RFC 3834)."""

from __future__ import annotations

from dataclasses import dataclass

from mailgate.model import ParsedMail, Reason
from mailgate.policy.facts import Facts
from mailgate.policy.rule import Hit


@dataclass(frozen=True)
class AutomaticMail:
    name: str = "automatic_mail"
    clause: str = "RFC3834"

    def check(self, mail: ParsedMail, facts: Facts) -> Hit | None:
        if facts.automatic is None:
            return None
        return Hit("ignore", Reason.AUTOMATIC, {"why": facts.automatic})
