"""Helpers shared by the new-request and conversation paths: finishing an inbox item,
queueing outgoing mail, and the template context every reply starts from."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import bindparam, update
from sqlalchemy.orm import Session

from mailgate.app import App
from mailgate.db.models import InboxItem
from mailgate.model import Outcome, ParsedMail

LEVEL_LABELS = {1: "urgent", 2: "high", 3: "normal", 4: "low"}
TIER_LABELS = {"standard": "Standard", "premier": "Premier"}


def finish_inbox(
    session: Session,
    inbox_id: int,
    outcome: Outcome,
    now: dt.datetime,
    reason: str | None = None,
    ticket_id: int | None = None,
) -> None:
    finish_inboxes(session, [(inbox_id, outcome, now, reason, ticket_id)])


def finish_inboxes(
    session: Session,
    items: list[tuple[int, Outcome, dt.datetime, str | None, int | None]],
) -> None:
    """Mark inbox items done: (id, outcome, processed at, reason, ticket id) each, in one
    executemany statement."""
    if not items:
        return
    session.connection().execute(
        update(InboxItem)
        .where(InboxItem.id == bindparam("item_id"))
        .values(
            status="done",
            outcome=bindparam("item_outcome"),
            reason=bindparam("item_reason"),
            ticket_id=bindparam("item_ticket"),
            processed_at=bindparam("item_at"),
            error=None,
            claimed_until=None,
        ),
        [
            {
                "item_id": inbox_id,
                "item_outcome": str(outcome),
                "item_reason": reason,
                "item_ticket": ticket_id,
                "item_at": at,
            }
            for inbox_id, outcome, at, reason, ticket_id in items
        ],
    )


def greeting_name(mail: ParsedMail) -> str:
    name = (mail.sender.name if mail.sender else "") or (mail.from_.name if mail.from_ else "")
    name = " ".join(name.replace('"', "").split())
    if not name or "@" in name:
        return "there"
    return name


def format_due(due: dt.datetime, tz: ZoneInfo) -> tuple[str, str]:
    local = due.astimezone(tz)
    return (
        local.strftime("%a %d %b %Y %H:%M ") + f"{local.tzname()} ({tz.key})",
        due.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
    )


def coverage_text(app: App, tier: str, level: int) -> str:
    sla = app.settings.sla
    days = ", ".join(d.capitalize() for d in sla.business_days)
    text = (
        f"{days} {sla.business_start:%H:%M}-{sla.business_end:%H:%M} {sla.timezone},"
        " public holidays excluded"
    )
    if sla.weekend_covered(tier, level):
        text += f"; weekends from {sla.weekend_start} to {sla.weekend_end}"
    return text


def base_context(app: App, mail: ParsedMail) -> dict[str, Any]:
    versions = app.settings.policy.versions
    return {
        "greeting_name": greeting_name(mail),
        "support_name": app.settings.mail.support_name,
        "support_address": app.settings.mail.support_address,
        "original_subject": " ".join(mail.subject.split())[:200] or "(no subject)",
        "latest_version": versions.latest,
        "supported_versions": ", ".join(f"{m}.x" for m in versions.supported_majors),
        "subscription_example": subscription_example(app),
    }


def subscription_example(app: App) -> str:
    pattern = app.settings.tickets.subscription_pattern
    return "SUB-12345" if pattern == r"SUB-\d{5}" else f"your subscription ID ({pattern})"
