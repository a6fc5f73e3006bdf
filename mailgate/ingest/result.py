"""What became of one inbound message; ``mailgate ingest`` prints it as JSON."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from mailgate.db.models import Ticket
from mailgate.model import Outcome


@dataclass(frozen=True)
class Result:
    """What became of one inbound message; ``mailgate ingest`` prints it as JSON."""

    inbox_id: int
    outcome: Outcome
    ticket: str | None = None
    reason: str | None = None
    severity: int | None = None
    tier: str | None = None
    subscription: str | None = None
    due: dt.datetime | None = None
    message_id: str | None = None
    error: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "outcome": str(self.outcome),
            "ticket": self.ticket,
            "reason": str(self.reason) if self.reason else None,
            "severity": self.severity,
            "tier": self.tier,
            "subscription": self.subscription,
            "due": self.due.isoformat() if self.due else None,
        }

    @classmethod
    def for_ticket(
        cls, inbox_id: int, outcome: Outcome, ticket: Ticket, message_id: str | None
    ) -> Result:
        return cls(
            inbox_id,
            outcome,
            ticket=ticket.public_id,
            severity=ticket.severity,
            tier=ticket.tier,
            subscription=ticket.subscription_id,
            due=ticket.due_at,
            message_id=message_id,
        )
