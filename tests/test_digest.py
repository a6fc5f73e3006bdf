"""The managers' digest from a database built here, its numbers checked exactly, and its
once-a-business-day schedule (R-CLOCK, R-ACK, P-COV-BD, P-COV-WE, P-L1, P-L2).

Every expected number is worked out by hand below (Europe/Paris, CET = UTC+1)."""

from __future__ import annotations

import datetime as dt
import email
import hashlib
import threading
from email import policy as email_policy
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from mailgate.app import App
from mailgate.db.models import Decision, DigestRun, InboxItem, OutboxMessage, Ticket
from mailgate.digest import build_digest, render_digest, send_digest, send_scheduled_digest
from tests.conftest import add_subscription

PARIS = ZoneInfo("Europe/Paris")


def paris(month: int, day: int, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime(2026, month, day, hour, minute, tzinfo=PARIS).astimezone(dt.UTC)


NOW = paris(11, 25, 8)  # Wednesday 25 November 2026, 08:00: digest time
LAST_DIGEST = paris(11, 24, 8)  # Tuesday's digest

# (key, tier, level, received, due, first response, status, resolved)
TICKETS: list[
    tuple[str, str, int, dt.datetime, dt.datetime, dt.datetime | None, str, dt.datetime | None]
] = [
    # Standard L1 (4h): Mon 09:00 -> 13:00; answered after 1h: in time.
    ("A", "standard", 1, paris(11, 23, 9), paris(11, 23, 13), paris(11, 23, 10), "open", None),
    # Answered Mon 15:00 after 6 covered hours: late.
    ("B", "standard", 1, paris(11, 23, 9), paris(11, 23, 13), paris(11, 23, 15), "open", None),
    # Fri 15:00 -> Mon 11:00; answered Mon 09:00: 1h Friday + 1h Monday = 2h, in time.
    ("C", "standard", 1, paris(11, 20, 15), paris(11, 23, 11), paris(11, 23, 9), "open", None),
    # Tue 10:00 -> 14:00, never answered: missed, and breached (2 covered hours over).
    ("D", "standard", 1, paris(11, 24, 10), paris(11, 24, 14), None, "open", None),
    # Standard L2 (8h) Tue 09:00 -> Wed 09:00: 1 covered hour left at Wed 08:00 (at risk).
    ("E", "standard", 2, paris(11, 24, 9), paris(11, 25, 9), None, "open", None),
    # 23 days ago (30-day window only): answered after 4h, in time (due Tue 09:00).
    ("F", "standard", 2, paris(11, 2, 9), paris(11, 3, 9), paris(11, 2, 13), "open", None),
    # Standard L3 (16h) Tue 09:00 -> Thu 09:00: 9 covered hours left, not at risk.
    ("G", "standard", 3, paris(11, 24, 9), paris(11, 26, 9), None, "open", None),
    # Resolved before its deadline without a reply: no SLA outcome, left out.
    ("H", "standard", 3, paris(11, 23, 10), paris(11, 25, 10), None, "resolved", paris(11, 24, 12)),
    # Premier L1 (1h, weekend covered) Sat 10:00 -> 11:00, answered 10:30: in time.
    ("I", "premier", 1, paris(11, 21, 10), paris(11, 21, 11), paris(11, 21, 10, 30), "open", None),
    # Sat 11:00 -> 12:00, answered 13:00 after 2 covered hours: late.
    ("J", "premier", 1, paris(11, 21, 11), paris(11, 21, 12), paris(11, 21, 13), "open", None),
    # 8 days ago (30-day window only): answered after 20 minutes.
    ("K", "premier", 1, paris(11, 17, 10), paris(11, 17, 11), paris(11, 17, 10, 20), "open", None),
    # Premier L2 (2h) received Wed 07:00, a weekday night: the clock starts 08:00, due
    # 10:00; 2 covered hours left (at risk), new since the last digest.
    ("L", "premier", 2, paris(11, 25, 7), paris(11, 25, 10), None, "open", None),
    # Mon 09:00 -> 11:00, "waiting" but never answered: missed (R-ACK), not "breached"
    # (the list of open tickets).
    ("M", "premier", 2, paris(11, 23, 9), paris(11, 23, 11), None, "waiting", None),
]

# (reason, outcome, at)
DECISIONS = [
    ("non_english", "rejected", paris(11, 24, 11)),
    ("non_english", "rejected", paris(11, 24, 15)),
    ("no_subscription", "rejected", paris(11, 25, 7, 30)),
    ("end_user", "rejected", paris(11, 23, 12)),  # before the last digest
    ("automatic", "ignored", paris(11, 24, 12)),  # not a refusal
    (None, "ticket_created", paris(11, 24, 13)),  # not a refusal
]


def build_fixture(app: App) -> dict[str, str]:
    add_subscription(app, "SUB-12345", tier="standard", contacts=("@acme.example",))
    add_subscription(
        app, "SUB-54321", tier="premier", contacts=("@globex.example",), organization="Globex"
    )
    ids = {}
    with app.db.transaction() as session:
        for i, (key, tier, level, received, due, responded, status, resolved) in enumerate(
            TICKETS, start=1
        ):
            ticket = Ticket(
                public_id=f"IREX-{i:06d}",
                subscription_id="SUB-54321" if tier == "premier" else "SUB-12345",
                tier=tier,
                severity=level,
                severity_source="tag",
                status=status,
                requester="jane@acme.example",
                subject=f"Ticket {key}",
                received_at=received,
                due_at=due,
                first_response_at=responded,
                resolved_at=resolved,
                updated_at=received,
            )
            session.add(ticket)
            ids[key] = f"IREX-{i:06d}"
        for i, (reason, outcome, at) in enumerate(DECISIONS):
            raw = f"refusal {i}".encode()
            inbox = InboxItem(
                received_at=at,
                source="pipe",
                dedupe_key=f"sha256:{hashlib.sha256(raw).hexdigest()}",
                sha256=hashlib.sha256(raw).hexdigest(),
                size=len(raw),
                raw=raw,
                status="done",
            )
            session.add(inbox)
            session.flush()
            session.add(
                Decision(
                    inbox_id=inbox.id,
                    outcome=outcome,
                    reason=reason,
                    sender="someone@example.org",
                    subject="x",
                    record=[],
                    created_at=at,
                )
            )
        session.add(DigestRun(period_key="daily:2026-11-24", ran_at=LAST_DIGEST, since=None))
    return ids


def _row(data: dict[str, Any], window: str, tier: str, level: int | None) -> dict[str, Any]:
    [row] = [r for r in data["attainment"][window] if r["tier"] == tier and r["level"] == level]
    return {
        k: row[k] for k in ("decided", "in_time", "pending", "share", "median_hours", "p90_hours")
    }


def test_digest_numbers_from_a_known_database(make_app):
    app = make_app()
    ids = build_fixture(app)
    with app.db.transaction() as session:
        digest = build_digest(session, app, NOW)
    data = digest.as_json()
    assert data["since"] == LAST_DIGEST.isoformat()
    # Breached: open, unanswered, past due. Only D (M is waiting, H resolved).
    assert data["breached"]["count"] == 1
    [d] = data["breached"]["tickets"]
    assert d["ticket"] == ids["D"] and d["covered_hours_over"] == 2.0
    # At risk within 4 covered hours: E (1h left), L (2h left); G has 9h.
    assert data["at_risk"]["count"] == 2
    assert [(t["ticket"], t["covered_hours_left"]) for t in data["at_risk"]["tickets"]] == [
        (ids["E"], 1.0),
        (ids["L"], 2.0),
    ]
    # New since Tuesday 08:00: D, E, G, L.
    assert data["new"]["count"] == 4
    assert sorted(t["ticket"] for t in data["new"]["tickets"]) == sorted(ids[k] for k in "DEGL")
    # Refusals since Tuesday 08:00, by reason.
    assert data["refusals"] == {"total": 3, "by_reason": {"non_english": 2, "no_subscription": 1}}

    # 7 days: Standard L1 A (1h, in time), B (6h, late), C (2h, in time), D (missed).
    assert _row(data, "7d", "standard", 1) == {
        "decided": 4,
        "in_time": 2,
        "pending": 0,
        "share": 0.5,
        "median_hours": 2.0,
        "p90_hours": 6.0,
    }
    assert _row(data, "7d", "standard", 2) == {
        "decided": 0,
        "in_time": 0,
        "pending": 1,
        "share": None,
        "median_hours": None,
        "p90_hours": None,
    }
    assert _row(data, "7d", "standard", 3)["pending"] == 1  # G; H left out
    assert _row(data, "7d", "standard", None) == {
        "decided": 4,
        "in_time": 2,
        "pending": 2,
        "share": 0.5,
        "median_hours": 2.0,
        "p90_hours": 6.0,
    }
    # Premier L1: I (0.5h, in time), J (2h, late); K is older than 7 days.
    assert _row(data, "7d", "premier", 1) == {
        "decided": 2,
        "in_time": 1,
        "pending": 0,
        "share": 0.5,
        "median_hours": 1.25,
        "p90_hours": 2.0,
    }
    # Premier L2: M missed, L pending.
    assert _row(data, "7d", "premier", 2) == {
        "decided": 1,
        "in_time": 0,
        "pending": 1,
        "share": 0.0,
        "median_hours": None,
        "p90_hours": None,
    }
    assert _row(data, "7d", "premier", None) == {
        "decided": 3,
        "in_time": 1,
        "pending": 1,
        "share": pytest.approx(1 / 3),
        "median_hours": 1.25,
        "p90_hours": 2.0,
    }
    # 30 days adds F (Standard L2, 4h in time) and K (Premier L1, 20 minutes in time).
    assert _row(data, "30d", "standard", 2) == {
        "decided": 1,
        "in_time": 1,
        "pending": 1,
        "share": 1.0,
        "median_hours": 4.0,
        "p90_hours": 4.0,
    }
    # Standard: hours 1, 2, 4, 6 -> median 3h; p90 = 4th of 4 (nearest rank) = 6h.
    assert _row(data, "30d", "standard", None) == {
        "decided": 5,
        "in_time": 3,
        "pending": 2,
        "share": 0.6,
        "median_hours": 3.0,
        "p90_hours": 6.0,
    }
    # Premier L1: hours 1/3, 1/2, 2 -> median 0.5h; p90 = 3rd of 3 = 2h.
    row = _row(data, "30d", "premier", 1)
    assert row == {
        "decided": 3,
        "in_time": 2,
        "pending": 0,
        "share": pytest.approx(2 / 3),
        "median_hours": 0.5,
        "p90_hours": 2.0,
    }
    assert [(r["tier"], r["level"]) for r in data["attainment"]["7d"]] == [
        ("standard", 1),
        ("standard", 2),
        ("standard", 3),
        ("standard", None),
        ("premier", 1),
        ("premier", 2),
        ("premier", None),
    ]

    text, html = render_digest(app, digest)
    assert html is not None
    assert "BREACHED: 1 open ticket(s)" in text
    assert "AT RISK: 2 due within 4h of covered time" in text
    assert "NEW: 4 ticket(s)" in text and "REFUSED: 3 request(s)" in text
    assert "non_english                 2" in text
    assert "Standard L1       4     50%     2h     6h       0" in text
    assert "Premier all       3     33%   1h15     2h       1" in text
    assert "Standard L2       1    100%     4h     4h       1" in text  # 30 days
    assert f"{ids['D']}  Std L1  due Tue 24 Nov 14:00  over 2h" in text
    assert f"{ids['E']}  Std L1" not in text and f"{ids['E']}  Std L2" in text
    for body in (text, html):
        assert "http" not in body.lower()  # link-free
    assert "width:50%" in html and "width:33%" in html  # the inline bar chart
    assert "Ticket D" in html and "Globex" in html


def test_digest_sent_once_per_business_day_at_08_00(make_app):
    app = make_app()
    build_fixture(app)
    assert send_scheduled_digest(app, paris(11, 25, 7, 59)) is None  # before 08:00
    sent = send_scheduled_digest(app, NOW)
    assert sent is not None and sent.period_key == "daily:2026-11-25"
    assert send_scheduled_digest(app, paris(11, 25, 8, 1)) is None  # once a day
    assert send_scheduled_digest(app, paris(11, 25, 15)) is None
    assert send_scheduled_digest(app, paris(11, 28, 9)) is None  # Saturday
    assert send_scheduled_digest(app, paris(11, 29, 9)) is None  # Sunday
    later = send_scheduled_digest(app, paris(11, 26, 8, 30))  # Thursday, a late start
    assert later is not None and later.digest.since == NOW
    with app.db.transaction() as session:
        runs = session.execute(select(DigestRun.period_key, DigestRun.since)).all()
        outbox = session.scalars(select(OutboxMessage).where(OutboxMessage.kind == "digest")).all()
    assert sorted(key for key, _ in runs) == [
        "daily:2026-11-24",
        "daily:2026-11-25",
        "daily:2026-11-26",
    ]
    assert len(outbox) == 2
    first = outbox[0]
    assert first.recipients == ["managers@irex.example"]
    assert first.subject == "SLA digest Wed 25 Nov: 1 breached, 2 at risk, 4 new"
    msg = email.message_from_bytes(first.raw, policy=email_policy.default)
    assert msg["Auto-Submitted"] == "auto-generated"
    assert msg.get_body(("plain",)) is not None and msg.get_body(("html",)) is not None


def test_R_TZ_no_digest_on_a_configured_holiday(make_app):
    app = make_app({"sla": {"holidays": ["2026-11-26"]}, "digest": {"send_at": "09:30"}})
    build_fixture(app)
    assert send_scheduled_digest(app, paris(11, 26, 10)) is None  # Thursday: a holiday
    assert send_scheduled_digest(app, paris(11, 27, 9, 29)) is None
    assert send_scheduled_digest(app, paris(11, 27, 9, 30)) is not None


def test_digest_recipients_and_windows_from_config(make_app):
    app = make_app(
        {
            "escalation": {"managers": ["boss@irex.example"]},
            "digest": {
                "recipients": ["managers", "cfo@irex.example"],
                "windows": [1],
                "at_risk_hours": 1.0,
            },
        }
    )
    build_fixture(app)
    sent = send_digest(app, NOW, "manual:test")
    assert sent is not None
    data = sent.digest.as_json()
    assert list(data["attainment"]) == ["1d"]
    assert [t["ticket"] for t in data["at_risk"]["tickets"]] == ["IREX-000005"]  # E only
    with app.db.transaction() as session:
        row = session.get(OutboxMessage, sent.outbox_id)
        assert row is not None and row.recipients == ["boss@irex.example", "cfo@irex.example"]


def _race(apps: tuple[App, App], now: dt.datetime, key: str) -> list[object]:
    barrier = threading.Barrier(len(apps), timeout=30)
    results: list[object] = []

    def run(app: App) -> None:
        barrier.wait()
        results.append(send_digest(app, now, key))

    threads = [threading.Thread(target=run, args=(app,)) for app in apps]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results


def test_two_gateways_racing_for_the_same_digest_send_it_once(make_app, db_url):
    """Two Apps (two engines, two connections), as two processes would be, released
    together five times: the unique period key lets exactly one win each time."""
    first = make_app()
    second = make_app(url=db_url)
    build_fixture(first)
    for day in (23, 24, 25, 26, 27):
        results = _race((first, second), paris(11, day, 8), f"race:{day}")
        assert len(results) == 2
        assert sum(r is not None for r in results) == 1, results
    with first.db.transaction() as session:
        assert session.scalar(select(func.count()).select_from(OutboxMessage)) == 5
        assert (
            session.scalar(
                select(func.count())
                .select_from(DigestRun)
                .where(DigestRun.period_key.like("race:%"))
            )
            == 5
        )
