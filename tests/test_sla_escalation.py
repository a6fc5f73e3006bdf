"""Escalations stepped through a real week on SQLite and PostgreSQL (R-CLOCK, R-ACK,
P-COV-BD, P-COV-WE, P-L1..P-L4, R-NBD, R-NOTAG), and exactly once across processes.

Every expected instant below is worked out by hand from POLICY.md (Europe/Paris, CET =
UTC+1 in November 2026), never computed by the code under test.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import email
import json
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from email import policy as email_policy
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import delete, func, select, update

from mailgate.app import App
from mailgate.config import load_config
from mailgate.db.models import Escalation, OutboxMessage, Ticket
from mailgate.errors import ConfigError
from mailgate.ingest.pipeline import ingest
from mailgate.sla import escalation as escalation_module
from mailgate.sla import service
from mailgate.sla.calendar import CoverageCalendar
from mailgate.sla.escalation import periodic_jobs, tick
from tests.conftest import add_subscription
from tests.support.mailtools import make_mail, wait_until

PARIS = ZoneInfo("Europe/Paris")
STEP = dt.timedelta(minutes=15)
ONCALL, LEAD, MANAGERS = "oncall@irex.example", "support-lead@irex.example", "managers@irex.example"
RECIPIENTS = {"immediate": [MANAGERS], "50%": [ONCALL], "80%": [LEAD], "breach": [MANAGERS]}


def paris(day: int, hour: int, minute: int = 0, month: int = 11) -> dt.datetime:
    """A wall-clock time in Paris, November 2026 (Monday 23 to Monday 30) or December."""
    return dt.datetime(2026, month, day, hour, minute, tzinfo=PARIS).astimezone(dt.UTC)


def next_step(instant: dt.datetime) -> dt.datetime:
    """The first 15-minute step at or after ``instant`` (when a pass notices it)."""
    seconds = instant.timestamp()
    step = STEP.total_seconds()
    return dt.datetime.fromtimestamp(-(-seconds // step) * step, dt.UTC)


def setup_subscriptions(app: App) -> None:
    add_subscription(app, "SUB-12345", tier="standard", contacts=("@acme.example",))
    add_subscription(
        app, "SUB-54321", tier="premier", contacts=("@globex.example",), organization="Globex"
    )


def open_ticket(app: App, at: dt.datetime, tier: str, level: int, tag: str) -> str:
    """A request through the real pipeline, received at ``at``; returns its public ID."""
    sub, sender = (
        ("SUB-54321", "Max Ops <max@globex.example>")
        if tier == "premier"
        else ("SUB-12345", "Jane Admin <jane@acme.example>")
    )
    raw = make_mail(subject=f"[{sub}] [L{level}] Upgrade to 7.4.2 fails ({tag})", sender=sender)
    result = ingest(app, raw, source="pipe", now=at)
    assert result.ticket is not None, result
    with app.db.transaction() as session:
        ticket = session.scalar(select(Ticket).where(Ticket.public_id == result.ticket))
        # The pipeline scheduled it (service.schedule_ticket): due and first threshold.
        assert ticket is not None and ticket.tier == tier and ticket.severity == level
        assert ticket.due_at is not None and ticket.next_check_at is not None
    return result.ticket


def with_ticket(app: App, public_id: str, fn: Callable[[Any, Ticket], object]) -> None:
    with app.db.transaction() as session:
        ticket = session.scalar(select(Ticket).where(Ticket.public_id == public_id))
        assert ticket is not None
        fn(session, ticket)


def escalations(app: App) -> list[tuple[Escalation, OutboxMessage, Ticket]]:
    with app.db.transaction() as session:
        return list(
            session.execute(
                select(Escalation, OutboxMessage, Ticket)
                .join(OutboxMessage, OutboxMessage.id == Escalation.outbox_id)
                .join(Ticket, Ticket.id == Escalation.ticket_id)
                .order_by(Escalation.id)
            ).all()
        )


# ---------------------------------------------------------------------------------------
# A week, Monday 23 to Monday 30 November 2026, in 15-minute steps.
# ---------------------------------------------------------------------------------------

# key: (tier, level, received)
TICKETS: dict[str, tuple[str, int, dt.datetime]] = {
    "std-l1-mon": ("standard", 1, paris(23, 9)),
    "std-l2-thu": ("standard", 2, paris(26, 14)),
    "std-l3-wed": ("standard", 3, paris(25, 10)),
    "std-l4-tue-night": ("standard", 4, paris(24, 17)),
    "std-l1-fri": ("standard", 1, paris(27, 15)),
    "std-l3-fri": ("standard", 3, paris(27, 15)),
    "prem-l1-sat": ("premier", 1, paris(28, 10)),
    "prem-l2-fri": ("premier", 2, paris(27, 15, 30)),
    "prem-l1-tue-night": ("premier", 1, paris(24, 20)),
    "prem-l3-sat": ("premier", 3, paris(28, 10)),
    "answered": ("standard", 1, paris(23, 9)),
    "waiting": ("standard", 2, paris(23, 9)),
    "resolved": ("standard", 2, paris(23, 9)),
    "level-raised": ("standard", 3, paris(23, 9)),
    "reopened": ("standard", 2, paris(24, 9)),
}

# key: [(threshold, fell due at, level when sent)], by hand from POLICY.md.
EXPECTED: dict[str, list[tuple[str, dt.datetime, int]]] = {
    # P-L1 Standard 4h from Mon 09:00: 2h, 3h12m, 4h of business time.
    "std-l1-mon": [
        ("50%", paris(23, 11), 1),
        ("80%", paris(23, 12, 12), 1),
        ("breach", paris(23, 13), 1),
    ],
    # P-L2 Standard 8h from Thu 14:00: Thu 14-16 is 2h, then Friday from 08:00.
    "std-l2-thu": [
        ("50%", paris(27, 10), 2),
        ("80%", paris(27, 12, 24), 2),
        ("breach", paris(27, 14), 2),
    ],
    # P-L3 Standard 16h from Wed 10:00: Wed 6h, Thu 8h, Fri 2h.
    "std-l3-wed": [
        ("50%", paris(26, 10), 3),
        ("80%", paris(26, 14, 48), 3),
        ("breach", paris(27, 10), 3),
    ],
    # R-NBD: Tue 17:00 -> due Wed 16:00; the target is the 8 covered hours of Wednesday.
    "std-l4-tue-night": [
        ("50%", paris(25, 12), 4),
        ("80%", paris(25, 14, 24), 4),
        ("breach", paris(25, 16), 4),
    ],
    # R-CLOCK's example: Fri 15:00 -> Mon 11:00; 1h on Friday, the weekend skipped.
    "std-l1-fri": [
        ("50%", paris(30, 9), 1),
        ("80%", paris(30, 10, 12), 1),
        ("breach", paris(30, 11), 1),
    ],
    # 16h from Fri 15:00: 50% (8h) is Mon 15:00; 80% is Tuesday 11:48, after the week.
    "std-l3-fri": [("50%", paris(30, 15), 3)],
    # R-CLOCK's example: Premier L1 Sat 10:00 -> Sat 11:00 (P-COV-WE); managers at once.
    "prem-l1-sat": [
        ("immediate", paris(28, 10), 1),
        ("50%", paris(28, 10, 30), 1),
        ("80%", paris(28, 10, 48), 1),
        ("breach", paris(28, 11), 1),
    ],
    # Premier L2 2h from Fri 15:30: 30 min business time, then the weekend window.
    "prem-l2-fri": [
        ("50%", paris(27, 16, 30), 2),
        ("80%", paris(27, 17, 6), 2),
        ("breach", paris(27, 17, 30), 2),
    ],
    # Weekday nights are covered for nobody (R-CLOCK): the clock starts Wed 08:00.
    "prem-l1-tue-night": [
        ("immediate", paris(25, 8), 1),
        ("50%", paris(25, 8, 30), 1),
        ("80%", paris(25, 8, 48), 1),
        ("breach", paris(25, 9), 1),
    ],
    # Premier L3 has no weekend coverage (P-COV-WE is L1/L2): 8h from Mon 08:00.
    "prem-l3-sat": [
        ("50%", paris(30, 12), 3),
        ("80%", paris(30, 14, 24), 3),
        ("breach", paris(30, 16), 3),
    ],
    "answered": [],
    "waiting": [],
    "resolved": [],
    # Raised from L3 to L1 at Mon 10:00: due from the original receipt, Mon 09:00 + 4h.
    "level-raised": [
        ("50%", paris(23, 11), 1),
        ("80%", paris(23, 12, 12), 1),
        ("breach", paris(23, 13), 1),
    ],
    # Standard L2 Tue 09:00, waiting from 10:00 to 15:00 (unanswered: the clock ran on):
    # 50% (Tue 13:00) is sent on reopening; 80% Tue 15:24; breach Wed 09:00.
    "reopened": [
        ("50%", paris(24, 13), 2),
        ("80%", paris(24, 15, 24), 2),
        ("breach", paris(25, 9), 2),
    ],
}

SENT_LATE = {("reopened", "50%"): paris(24, 15)}


def _actions(app: App, ids: dict[str, str]) -> dict[dt.datetime, list[Callable[[], None]]]:
    """What happens to some tickets during the week, by step."""

    def do(key: str, fn: Callable[[Any, Ticket], object]) -> Callable[[], None]:
        return lambda: with_ticket(app, ids[key], fn)

    return {
        paris(23, 10): [
            do("answered", lambda s, t: service.record_first_response(s, t, paris(23, 10))),
            do("level-raised", lambda s, t: service.change_level(s, t, 1, app, paris(23, 10))),
        ],
        paris(23, 9, 30): [
            do("waiting", lambda s, t: service.set_status(s, t, "waiting", app, paris(23, 9, 30))),
            do(
                "resolved", lambda s, t: service.set_status(s, t, "resolved", app, paris(23, 9, 30))
            ),
        ],
        paris(24, 10): [
            do("reopened", lambda s, t: service.set_status(s, t, "waiting", app, paris(24, 10))),
        ],
        paris(24, 15): [
            do("reopened", lambda s, t: service.set_status(s, t, "open", app, paris(24, 15))),
        ],
    }


def _business_hours(instant: dt.datetime) -> bool:
    """P-COV-BD by hand: Monday-Friday, 08:00-16:00 Paris (16:00 itself: the day's end)."""
    local = instant.astimezone(PARIS)
    return local.weekday() < 5 and dt.time(8) <= local.time() <= dt.time(16)


def test_R_CLOCK_P_COV_WE_a_week_of_escalations_each_once_at_its_covered_instant(make_app):
    app = make_app()
    setup_subscriptions(app)
    ids: dict[str, str] = {}
    by_step: dict[dt.datetime, list[str]] = {}
    for key, (_, _, received) in TICKETS.items():
        by_step.setdefault(received, []).append(key)
    actions = _actions(app, ids)
    mails_by_step: dict[dt.datetime, list[tuple[str, str]]] = {}
    start, end = paris(23, 0), paris(1, 0, month=12)
    steps = int((end - start) / STEP)
    assert steps == 8 * 96
    for i in range(steps):
        now = start + i * STEP
        for key in by_step.get(now, []):
            tier, level, received = TICKETS[key]
            ids[key] = open_ticket(app, received, tier, level, key)
        for action in actions.get(now, []):
            action()
        result = tick(app, now)
        assert result.errors == 0 and result.skipped == 0
        if result.sent:
            mails_by_step[now] = [(s.ticket, s.threshold) for s in result.sent]
    assert set(ids) == set(TICKETS)

    key_of = {public_id: key for key, public_id in ids.items()}
    rows = escalations(app)
    got = {(key_of[t.public_id or ""], e.threshold): (e, o, t) for e, o, t in rows}
    assert len(got) == len(rows)  # each (ticket, threshold) once
    expected = {(key, label): (at, level) for key, v in EXPECTED.items() for label, at, level in v}
    assert sorted(got) == sorted(expected)
    for (key, label), (at, level) in expected.items():
        esc, out, ticket = got[(key, label)]
        sent_at = SENT_LATE.get((key, label), next_step(at))
        assert esc.due_at == at, (key, label)
        assert esc.sent_at == sent_at == out.created_at, (key, label)
        assert esc.severity == level, (key, label)
        assert esc.recipients == RECIPIENTS[label] == out.recipients, (key, label)
        assert out.kind == "escalation" and out.state == "pending"
        assert out.dedupe_key == f"escalation:{ticket.id}:{label}"
        msg = email.message_from_bytes(out.raw, policy=email_policy.default)
        assert msg["Auto-Submitted"] == "auto-generated"
        assert msg["Subject"].startswith(f"[{ticket.public_id}] SLA: ")
    # Exactly the mails the passes reported, and none for Standard at night or weekend.
    assert sum(len(v) for v in mails_by_step.values()) == len(rows)
    tiers = {ids[k]: TICKETS[k][0] for k in TICKETS}
    levels_weekend = {ids[k]: TICKETS[k][0] == "premier" and TICKETS[k][1] <= 2 for k in TICKETS}
    for step_at, mails in mails_by_step.items():
        for public_id, _label in mails:
            if not levels_weekend[public_id]:
                assert _business_hours(step_at), (public_id, step_at.astimezone(PARIS))
            if tiers[public_id] == "premier" and levels_weekend[public_id]:
                # P-COV-WE: covered on business hours or in the Fri 16:00-Mon 08:00 window.
                local = step_at.astimezone(PARIS)
                weekend = local.weekday() >= 5 or (local.weekday() == 4 and local.hour >= 16)
                assert _business_hours(step_at) or weekend, (public_id, local)
    # Nothing left to watch but the one whose 80% is next week, and the answered/stopped.
    with app.db.transaction() as session:
        watched = dict(
            session.execute(
                select(Ticket.public_id, Ticket.next_check_at).where(
                    Ticket.next_check_at.is_not(None)
                )
            ).all()
        )
        raised = session.scalar(select(Ticket).where(Ticket.public_id == ids["level-raised"]))
        assert raised is not None
        assert raised.due_at == paris(23, 13) and raised.severity_source == "engineer"
    assert watched == {ids["std-l3-fri"]: paris(1, 11, 48, month=12)}


# ---------------------------------------------------------------------------------------
# Ticket-level service functions.
# ---------------------------------------------------------------------------------------


def test_R_ACK_first_response_recorded_once_and_clock_stops(make_app):
    app = make_app()
    setup_subscriptions(app)
    public_id = open_ticket(app, paris(23, 9), "standard", 1, "ack")
    with app.db.transaction() as session:
        ticket = session.scalar(select(Ticket).where(Ticket.public_id == public_id))
        assert ticket is not None
        assert ticket.next_check_at == paris(23, 11)  # the 50% threshold
        with pytest.raises(ValueError, match="cannot precede"):
            service.record_first_response(session, ticket, paris(23, 8))
        assert service.record_first_response(session, ticket, paris(23, 9, 40)) is True
        assert service.record_first_response(session, ticket, paris(23, 10)) is False
        assert ticket.first_response_at == paris(23, 9, 40)
        assert ticket.next_check_at is None
    # Raising the level of an answered ticket recomputes the deadline, schedules nothing.
    with_ticket(app, public_id, lambda s, t: service.change_level(s, t, 2, app, paris(23, 11)))
    with app.db.transaction() as session:
        ticket = session.scalar(select(Ticket).where(Ticket.public_id == public_id))
        assert ticket is not None
        assert ticket.due_at == paris(24, 9)  # L2 8h: Mon 09-16 (7h) + Tue 08-09
        assert ticket.next_check_at is None
    assert tick(app, paris(24, 12)).sent == []


def test_R_NOTAG_lowering_the_level_keeps_sent_thresholds_and_moves_the_next(make_app):
    app = make_app()
    setup_subscriptions(app)
    public_id = open_ticket(app, paris(23, 9), "standard", 1, "lower")
    [sent] = tick(app, paris(23, 11)).sent
    assert (sent.threshold, sent.due_at) == ("50%", paris(23, 11))
    with_ticket(app, public_id, lambda s, t: service.change_level(s, t, 3, app, paris(23, 11)))
    with app.db.transaction() as session:
        ticket = session.scalar(select(Ticket).where(Ticket.public_id == public_id))
        assert ticket is not None
        # L3 16h from Mon 09:00: Mon 7h + Tue 8h + Wed 1h; its 50% (already sent) is not
        # sent again; the next look is 80% = 12h48m: Mon 7h + Tue 5h48m = Tue 13:48.
        assert ticket.due_at == paris(25, 9)
        assert ticket.next_check_at == paris(24, 13, 48)
    assert tick(app, paris(24, 13, 45)).sent == []
    [sent] = tick(app, paris(24, 13, 48)).sent
    assert (sent.threshold, sent.recipients) == ("80%", (LEAD,))


def test_P_TIER_tier_change_recomputes_due_from_received_at(make_app):
    app = make_app()
    setup_subscriptions(app)
    public_id = open_ticket(app, paris(27, 15), "standard", 1, "tier")
    with_ticket(
        app, public_id, lambda s, t: service.change_tier(s, t, "premier", app, paris(28, 9))
    )
    with app.db.transaction() as session:
        ticket = session.scalar(select(Ticket).where(Ticket.public_id == public_id))
        assert ticket is not None
        # Premier L1 1h from Fri 15:00 (business hours until 16:00): due Fri 16:00, and
        # every threshold, "managers at once" included, has fallen due.
        assert ticket.due_at == paris(27, 16)
        assert ticket.next_check_at == paris(27, 15)
    result = tick(app, paris(28, 9))
    assert [s.threshold for s in result.sent] == ["immediate", "50%", "80%", "breach"]
    with pytest.raises(ValueError):
        with_ticket(app, public_id, lambda s, t: service.change_tier(s, t, "gold", app))
    with pytest.raises(ValueError):
        with_ticket(app, public_id, lambda s, t: service.change_level(s, t, 5, app))
    with pytest.raises(ValueError):
        with_ticket(app, public_id, lambda s, t: service.set_status(s, t, "closed", app))


def test_resolved_ticket_taken_off_the_work_list_by_the_pass(make_app):
    app = make_app()
    setup_subscriptions(app)
    public_id = open_ticket(app, paris(23, 9), "standard", 1, "stale")
    # Someone resolves it without the service function (next_check_at left in place):
    # the pass notices, sends nothing, and takes it off the list.
    with app.db.transaction() as session:
        session.execute(update(Ticket).values(status="resolved"))
    result = tick(app, paris(23, 12))
    assert (result.due, result.cleared, result.sent) == (1, 1, [])
    with app.db.transaction() as session:
        assert session.scalar(select(Ticket.next_check_at)) is None
    assert public_id


def test_escalation_conflict_rolls_back_that_ticket_only(make_app, monkeypatch):
    """Another process inserted the (ticket, threshold) row between our read and our
    insert: the unique key refuses ours, that ticket's work is rolled back, the next
    ticket is still handled."""
    app = make_app()
    setup_subscriptions(app)
    first = open_ticket(app, paris(23, 9), "standard", 1, "raced")
    second = open_ticket(app, paris(23, 9, 15), "standard", 1, "clean")
    with app.db.transaction() as session:
        ticket = session.scalar(select(Ticket).where(Ticket.public_id == first))
        assert ticket is not None
        session.add(
            Escalation(
                ticket_id=ticket.id,
                threshold="50%",
                fraction=0.5,
                severity=1,
                due_at=paris(23, 11),
                sent_at=paris(23, 11),
                recipients=[ONCALL],
            )
        )
    # Our pass read "nothing sent yet" (as if before the other process committed).
    monkeypatch.setattr(escalation_module, "sent_labels", lambda session, ticket_id: set())
    result = tick(app, paris(23, 11, 15))
    assert result.skipped == 1 and result.errors == 0
    assert [(s.ticket, s.threshold) for s in result.sent] == [(second, "50%")]
    with app.db.transaction() as session:
        outbox = session.scalars(
            select(OutboxMessage.dedupe_key).where(OutboxMessage.kind == "escalation")
        ).all()
        raced = session.scalar(select(Ticket).where(Ticket.public_id == first))
        assert raced is not None
        assert len(outbox) == 1  # no mail queued for the raced ticket
        assert raced.next_check_at == paris(23, 11)  # untouched: looked at again next pass


def test_escalation_mail_says_what_who_when_and_has_no_links(make_app):
    app = make_app()
    setup_subscriptions(app)
    public_id = open_ticket(app, paris(27, 15), "standard", 1, "mail")
    result = tick(app, paris(30, 9, 30))
    assert [s.threshold for s in result.sent] == ["50%"]
    [(esc, out, _)] = escalations(app)
    msg = email.message_from_bytes(out.raw, policy=email_policy.default)
    assert msg["To"] == ONCALL
    assert msg["Auto-Submitted"] == "auto-generated"
    assert msg["X-Auto-Response-Suppress"] == "All"
    assert msg["Message-ID"] and "IREX Support SLA" in msg["From"]
    text_part = msg.get_body(("plain",))
    html_part = msg.get_body(("html",))
    assert text_part is not None and html_part is not None
    text, html = str(text_part.get_content()), str(html_part.get_content())
    for body in (text, html):
        assert public_id in body
        assert "Upgrade to 7.4.2 fails (mail)" in body
        assert "jane@acme.example" in body and "ACME Corp" in body and "SUB-12345" in body
        assert "Standard" in body and "Level 1" in body
        assert "Fri 27 Nov 2026 15:00 CET (Europe/Paris)" in body  # received, policy zone
        assert "2026-11-27 14:00 UTC" in body
        assert "Mon 30 Nov 2026 11:00 CET (Europe/Paris)" in body  # deadline
        assert "2026-11-30 10:00 UTC" in body
        assert "http" not in body.lower()
    # At Mon 09:30: 1h on Friday + 1h30 on Monday used of 4h; 1h30 left.
    assert "Covered used:  2h30" in text and "Remaining:     1h30 of covered time" in text
    assert "2h30 of 4h covered time used, 1h30 left" in html
    assert "late" in text  # fell due at 09:00, sent at 09:30
    # The next warning of the same ticket threads under the first.
    [sent] = tick(app, paris(30, 10, 15)).sent
    assert sent.threshold == "80%"
    second = escalations(app)[1][1]
    reply = email.message_from_bytes(second.raw, policy=email_policy.default)
    assert reply["In-Reply-To"] == f"<{out.message_id}>"
    assert esc.outbox_id == out.id


def test_tick_selects_only_due_tickets_by_next_check_at(make_app):
    app = make_app()
    setup_subscriptions(app)
    open_ticket(app, paris(23, 9), "standard", 1, "a")
    open_ticket(app, paris(23, 9), "standard", 4, "b")
    # Standard L4 received Mon 09:00: R-NBD due Tue 16:00 (15 covered hours); 50% at
    # 7h30: Mon 16:00 is 7h, so Tue 08:30.
    with app.db.transaction() as session:
        assert sorted(session.scalars(select(Ticket.next_check_at))) == [
            paris(23, 11),
            paris(24, 8, 30),
        ]
    assert tick(app, paris(23, 10, 59)).due == 0
    result = tick(app, paris(23, 11))
    assert (result.due, len(result.sent), result.rescheduled) == (1, 1, 1)
    result = tick(app, paris(23, 22))  # night: the L1's 80% and breach are due (13:00)
    assert [s.threshold for s in result.sent] == ["80%", "breach"]
    assert result.finished == 1


def test_escalation_rules_come_from_config(tmp_path, db_url):
    config = tmp_path / "mailgate.toml"
    config.write_text(
        textwrap.dedent(
            f"""
            [database]
            url = "{db_url}"
            [escalation]
            managers = ["boss@irex.example", "deputy@irex.example"]
            [[escalation.rules]]
            fraction = 0.25
            recipients = ["duty@irex.example"]
            tiers = ["premier"]
            levels = [1, 2]
            [[escalation.rules]]
            fraction = 1.0
            recipients = ["managers", "boss@irex.example"]
            [[escalation.rules]]
            fraction = 1.5
            recipients = ["ceo@irex.example"]
            levels = [1]
            """
        )
    )
    settings = load_config(config).settings.escalation
    steps = escalation_module.steps_for(settings, "premier", 1)
    assert steps == [
        ("25%", 0.25, ("duty@irex.example",)),
        ("breach", 1.0, ("boss@irex.example", "deputy@irex.example")),
        ("150%", 1.5, ("ceo@irex.example",)),
    ]
    assert escalation_module.steps_for(settings, "standard", 3) == [
        ("breach", 1.0, ("boss@irex.example", "deputy@irex.example"))
    ]
    # 150% of Premier L1 from Sat 10:00: 1h30 of weekend time.
    cal = CoverageCalendar.from_settings(load_config(config).settings.sla)
    plan = escalation_module.plan(paris(28, 10), "premier", 1, cal, settings)
    assert [(s.label, s.at) for s in plan] == [
        ("25%", paris(28, 10, 15)),
        ("breach", paris(28, 11)),
        ("150%", paris(28, 11, 30)),
    ]


@pytest.mark.parametrize(
    ("rule", "key"),
    [
        ("recipients = ['oncall']", "escalation.rules[0].fraction"),
        ("fraction = -0.5\nrecipients = ['oncall']", "escalation.rules[0].fraction"),
        ("fraction = 0.5", "escalation.rules[0].recipients"),
        ("fraction = 0.5\nrecipients = ['not an address']", "escalation.rules[0].recipients[0]"),
        ("fraction = 0.5\nrecipients = ['oncall']\ntiers = ['gold']", "escalation.rules[0].tiers"),
        ("fraction = 0.5\nrecipients = ['oncall']\nlevels = [5]", "escalation.rules[0].levels"),
    ],
)
def test_bad_escalation_rule_names_its_key(tmp_path, rule, key):
    config = tmp_path / "mailgate.toml"
    config.write_text(f"[[escalation.rules]]\n{rule}\n")
    with pytest.raises(ConfigError) as info:
        load_config(config)
    assert info.value.key == key


def test_periodic_jobs_run_the_pass_and_the_digest(make_app):
    app = make_app()
    setup_subscriptions(app)
    open_ticket(app, paris(23, 9), "standard", 1, "serve")
    clock = paris(25, 8, 5)
    jobs = periodic_jobs(app, clock=lambda: clock)
    assert [(name, interval) for name, interval, _ in jobs] == [
        ("sla-tick", 60.0),
        ("sla-digest", 60.0),
    ]
    for _, _, fn in jobs:
        fn()
    with app.db.transaction() as session:
        kinds = session.execute(
            select(OutboxMessage.kind, func.count()).group_by(OutboxMessage.kind)
        ).all()
        counts = dict(kinds)
    assert counts["escalation"] == 3 and counts["digest"] == 1
    off = make_app({"escalation": {"enabled": False}, "digest": {"enabled": False}})
    assert periodic_jobs(off) == []


def test_R_ACK_new_ticket_is_watched_from_its_first_threshold(make_app):
    app = make_app()
    setup_subscriptions(app)
    raw = make_mail(subject="[SUB-54321] [L1] Server down", sender="max@globex.example")
    ingest(app, raw, source="pipe", now=paris(28, 10))
    with app.db.transaction() as session:
        # Premier L1: the managers are told at once (0% of the target).
        assert session.scalar(select(Ticket.next_check_at)) == paris(28, 10)


# ---------------------------------------------------------------------------------------
# Two OS processes on one database: each (ticket, threshold) exactly once.
# ---------------------------------------------------------------------------------------

WORKER = """
import datetime as dt, json, pathlib, sys, time
from sqlalchemy import text
from mailgate.app import App
from mailgate.config import load_config
from mailgate.sla.escalation import tick

config, ready, go, now = sys.argv[1:5]
app = App.create(load_config(config).settings, migrate=False)
with app.db.transaction() as session:
    session.execute(text("SELECT 1"))  # connected before the start line
pathlib.Path(ready).touch()
deadline = time.monotonic() + 60
while not pathlib.Path(go).exists():
    if time.monotonic() > deadline:
        sys.exit(3)
    time.sleep(0.0005)
result = tick(app, dt.datetime.fromisoformat(now))
print(json.dumps({"sent": len(result.sent), "skipped": result.skipped, "errors": result.errors}))
app.close()
"""

ROUNDS = 2  # each round races two processes over 200 due tickets
TICKETS_DUE = 200


def _seed_due_tickets(app: App, count: int) -> None:
    received = paris(23, 9)
    with app.db.transaction() as session:
        for i in range(count):
            session.add(
                Ticket(
                    public_id=f"IREX-{900000 + i}",
                    subscription_id="SUB-12345",
                    tier="standard",
                    severity=1,
                    severity_source="tag",
                    status="open",
                    requester="jane@acme.example",
                    subject=f"load {i}",
                    received_at=received,
                    due_at=paris(23, 13),
                    next_check_at=paris(23, 11),
                    updated_at=received,
                )
            )


def _reset(app: App) -> None:
    with app.db.transaction() as session:
        session.execute(delete(Escalation))
        session.execute(delete(OutboxMessage))
        session.execute(update(Ticket).values(next_check_at=paris(23, 11)))


@pytest.fixture
def worker_config(tmp_path: Path, db_url: str) -> Iterator[Path]:
    path = tmp_path / "worker.toml"
    path.write_text(
        f'[database]\nurl = "{db_url}"\nauto_migrate = false\n'
        f'[outbox]\nmaildir = "{tmp_path / "outbox"}"\n[logging]\nlevel = "WARNING"\n'
    )
    yield path


def test_two_processes_send_each_threshold_exactly_once(make_app, worker_config, tmp_path):
    app = make_app()
    setup_subscriptions(app)
    _seed_due_tickets(app, TICKETS_DUE)
    now = paris(23, 12, 30).isoformat()  # 50% (11:00) and 80% (12:12) have fallen due
    reports = []
    for round_no in range(ROUNDS):
        _reset(app)
        ready = [tmp_path / f"ready-{round_no}-{n}" for n in (0, 1)]
        go = tmp_path / f"go-{round_no}"
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", WORKER, str(worker_config), str(r), str(go), now],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for r in ready
        ]
        try:
            deadline = time.monotonic() + 60
            while not all(r.exists() for r in ready):
                assert time.monotonic() < deadline, "workers did not start"
                assert all(p.poll() is None for p in procs), [p.communicate() for p in procs]
                time.sleep(0.01)
            go.touch()  # the barrier: both start their pass together
            outputs = [p.communicate(timeout=120) for p in procs]
        finally:
            for p in procs:
                if p.poll() is None:
                    p.kill()
                    p.wait()
        for p, (_, err) in zip(procs, outputs, strict=True):
            assert p.returncode == 0, err
        results = [json.loads(out) for out, _ in outputs]
        reports.append(results)
        with app.db.transaction() as session:
            rows = session.execute(select(Escalation.ticket_id, Escalation.threshold)).all()
            outbox = session.scalar(
                select(func.count())
                .select_from(OutboxMessage)
                .where(OutboxMessage.kind == "escalation")
            )
            linked = session.scalar(
                select(func.count(func.distinct(Escalation.outbox_id))).where(
                    Escalation.outbox_id.is_not(None)
                )
            )
            next_checks = session.execute(
                select(Ticket.next_check_at, func.count()).group_by(Ticket.next_check_at)
            ).all()
        assert len(rows) == len(set(rows)) == 2 * TICKETS_DUE
        assert {threshold for _, threshold in rows} == {"50%", "80%"}
        assert outbox == linked == 2 * TICKETS_DUE
        assert sum(r["sent"] for r in results) == 2 * TICKETS_DUE
        assert all(r["errors"] == 0 for r in results)
        assert [tuple(row) for row in next_checks] == [(paris(23, 13), TICKETS_DUE)]  # breach
    if app.db.dialect == "postgresql":
        # SKIP LOCKED: both processes took part (each claimed some tickets), in at least
        # one round. (SQLite has one writer at a time: the work may fall to one.)
        assert any(all(r["sent"] > 0 for r in results) for results in reports), reports


def test_settings_sections_are_frozen_dataclasses():
    settings = load_config(None).settings
    assert dataclasses.is_dataclass(settings.escalation) and dataclasses.is_dataclass(
        settings.digest
    )
    assert settings.escalation.resolve(["managers", "oncall", "MANAGERS@irex.example"]) == (
        MANAGERS,
        ONCALL,
    )


def test_serve_runs_the_pass_and_delivers_the_escalation(make_app, relay):
    """The periodic jobs inside a running gateway: the escalation and the digest go out
    through the outbox to a real SMTP relay."""
    from tests.conftest import RunningGateway

    app = make_app(
        {
            "outbox": {
                "transport": "smtp",
                "relay": {"port": relay.port, "security": "none"},
                "poll_interval": 0.05,
            },
            "escalation": {"interval": 0.2},
            "digest": {"check_interval": 0.2},
        }
    )
    setup_subscriptions(app)
    # In the past, so the outbox (which runs on the real clock) finds everything due.
    public_id = open_ticket(app, paris(21, 10), "premier", 1, "serve")
    gateway = RunningGateway(app)
    gateway.gateway.periodic.extend(periodic_jobs(app, clock=lambda: paris(23, 8, 30)))
    gateway.start()

    def subjects(rcpt: str) -> list[str]:
        return [str(m.message["Subject"]) for m in list(relay.received) if rcpt in m.rcpt_tos]

    try:
        wait_until(
            lambda: len(subjects(MANAGERS)) >= 3 and subjects(ONCALL) and subjects(LEAD),
            timeout=30,
        )
    finally:
        gateway.stop()
    # Premier L1 received Sat 10:00: all four thresholds fell due by Monday 08:30.
    managers = subjects(MANAGERS)
    assert len(managers) == 3
    assert sum(f"[{public_id}] SLA: Premier L1 received - " in s for s in managers) == 1
    assert sum(f"[{public_id}] SLA: response deadline breached - " in s for s in managers) == 1
    assert sum(s.startswith("SLA digest Mon 23 Nov: 1 breached") for s in managers) == 1
    assert [s.split(" - ")[0] for s in subjects(ONCALL)] == [
        f"[{public_id}] SLA: 50% of response time used"
    ]
    assert [s.split(" - ")[0] for s in subjects(LEAD)] == [
        f"[{public_id}] SLA: 80% of response time used"
    ]
