"""The SLA commands as an operator runs them: ``sla due``, ``sla explain``, ``tick``,
``digest`` and ``tickets respond`` (R-CLOCK, R-ACK, P-COV-BD, P-COV-WE), on SQLite and
PostgreSQL."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from mailgate.app import App
from mailgate.cli import main
from mailgate.db.models import Message, OutboxMessage, Ticket
from mailgate.ingest.pipeline import ingest
from tests.conftest import add_subscription
from tests.support.mailtools import make_mail

PARIS = ZoneInfo("Europe/Paris")


def paris(day: int, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime(2026, 11, day, hour, minute, tzinfo=PARIS).astimezone(dt.UTC)


@pytest.fixture
def cli(tmp_path: Path, db_url: str, capsys: pytest.CaptureFixture[str]):
    config = tmp_path / "mailgate.toml"
    config.write_text(
        f'[database]\nurl = "{db_url}"\nauto_migrate = false\n'
        f'[outbox]\nmaildir = "{tmp_path / "outbox"}"\n[logging]\nlevel = "WARNING"\n'
    )

    def run(*argv: str, code: int = 0) -> str:
        capsys.readouterr()
        assert main(["--config", str(config), *argv]) == code
        return capsys.readouterr().out

    def run_json(*argv: str) -> Any:
        return json.loads(run(*argv, "--json"))

    run.json = run_json  # type: ignore[attr-defined]
    return run


def open_ticket(app: App, at: dt.datetime, subject: str) -> str:
    result = ingest(app, make_mail(subject=subject), source="pipe", now=at)
    assert result.ticket is not None
    return result.ticket


def test_R_CLOCK_sla_due_standard_l1_friday_1500_is_monday_1100(cli):
    out = cli(
        "sla", "due", "--tier", "standard", "--level", "1", "--received", "2026-11-27T15:00+01:00"
    )
    assert "Standard L1 received Fri 2026-11-27 15:00 CET" in out
    assert "due          Mon 2026-11-30 11:00 CET (2026-11-30 10:00 UTC)" in out
    assert "50%          Mon 2026-11-30 09:00 CET" in out and "oncall@irex.example" in out
    data = cli.json(
        "sla", "due", "--tier", "standard", "--level", "1", "--received", "2026-11-27T15:00+01:00"
    )
    assert data["due"] == "2026-11-30T10:00:00+00:00"
    assert data["due_local"] == "2026-11-30T11:00:00+01:00"
    assert [e["threshold"] for e in data["escalations"]] == ["50%", "80%", "breach"]


def test_R_CLOCK_P_COV_WE_sla_due_premier_l1_saturday_1000_is_saturday_1100(cli):
    data = cli.json(
        "sla",
        "due",
        "--tier",
        "premier",
        "--level",
        "1",
        "--received",
        "2026-11-28T10:00+01:00",
        "--explain",
    )
    assert data["due_local"] == "2026-11-28T11:00:00+01:00"
    assert data["escalations"][0] == {
        "threshold": "immediate",
        "fraction": 0.0,
        "at": "2026-11-28T09:00:00+00:00",
        "recipients": ["managers@irex.example"],
    }
    assert data["timeline"]["skipped"] == []  # the weekend window covers it all
    out = cli(
        "sla",
        "due",
        "--tier",
        "premier",
        "--level",
        "1",
        "--received",
        "2026-11-28T10:00+01:00",
        "--explain",
    )
    assert "counting business days + weekend window" in out
    assert "deadline     Sat 2026-11-28 11:00 CET (2026-11-28 10:00 UTC)" in out
    # --now stands for --received when it is left out.
    data = cli.json(
        "sla", "due", "--tier", "premier", "--level", "3", "--now", "2026-11-28T10:00+01:00"
    )
    assert data["due_local"] == "2026-11-30T16:00:00+01:00"  # P-COV-WE is L1/L2 only


def test_P_COV_BD_sla_explain_shows_skipped_night_and_weekend_and_escalations(cli, make_app):
    app = make_app()
    add_subscription(app)
    # Standard L3 (16h) on Thursday 15:00: 1h Thursday, 8h Friday, the weekend, 7h Monday.
    public_id = open_ticket(app, paris(26, 15), "[SUB-12345] [L3] Upgrade to 7.4.2 fails")
    result = cli.json("tick", "--now", "2026-11-27T16:00+01:00")
    assert [(e["ticket"], e["threshold"]) for e in result["escalations"]] == [(public_id, "50%")]
    out = cli("sla", "explain", public_id)
    assert out.startswith(f"{public_id} [open] ")
    assert "Standard L3: target 16h, counting business days only (Europe/Paris)" in out
    assert "skipped      Thu 2026-11-26 16:00 CET" in out and "night" in out
    assert (
        "skipped      Fri 2026-11-27 16:00 CET (2026-11-27 15:00 UTC) -> Mon 2026-11-30 "
        "08:00 CET (2026-11-30 07:00 UTC)  [64h00m]  weekend" in out
    )
    assert "covered      16h00m in total" in out
    assert "50%          Fri 2026-11-27 15:00 CET" in out  # 1h Thu + 7h Fri
    assert "deadline     Mon 2026-11-30 15:00 CET (2026-11-30 14:00 UTC)" in out
    assert "  sent     50%        due Fri 2026-11-27 15:00 CET" in out
    assert "sent Fri 2026-11-27 16:00 CET (2026-11-27 15:00 UTC) to oncall@irex.example" in out
    # 80% = 12h48m: 1h Thu + 8h Fri + 3h48m Mon.
    assert "  pending  80%        due Mon 2026-11-30 11:48 CET" in out
    assert "first response: none yet" in out
    assert "next check     Mon 2026-11-30 11:48 CET" in out
    data = cli.json("sla", "explain", public_id)
    reasons = [g["reasons"] for g in data["timeline"]["skipped"]]
    assert reasons == [["night"], ["weekend"]]
    assert [e["threshold"] for e in data["escalations_sent"]] == ["50%"]
    assert [e["threshold"] for e in data["escalations_pending"]] == ["80%", "breach"]
    assert cli("sla", "explain", "IREX-999999", code=65) == ""


def test_tick_json_reports_what_it_sent(cli, make_app):
    app = make_app()
    add_subscription(app)
    public_id = open_ticket(app, paris(23, 9), "[SUB-12345] [L1] Upgrade to 7.4.2 fails")
    assert cli.json("tick", "--now", "2026-11-23T10:59+01:00")["escalations"] == []
    data = cli.json("tick", "--now", "2026-11-23T12:15+01:00")
    assert data["due"] == 1 and data["rescheduled"] == 1 and data["errors"] == 0
    assert [(e["threshold"], e["due_at"], e["recipients"]) for e in data["escalations"]] == [
        ("50%", "2026-11-23T10:00:00+00:00", ["oncall@irex.example"]),
        ("80%", "2026-11-23T11:12:00+00:00", ["support-lead@irex.example"]),
    ]
    out = cli("tick", "--now", "2026-11-23T13:00+01:00")
    assert "1 ticket(s) due, 1 escalation(s) queued" in out
    assert f"{public_id} breach" in out and "managers@irex.example" in out


def test_R_ACK_tickets_respond_stops_the_clock_once(cli, make_app):
    app = make_app()
    add_subscription(app)
    public_id = open_ticket(app, paris(23, 9), "[SUB-12345] [L1] Upgrade to 7.4.2 fails")
    out = cli(
        "tickets",
        "respond",
        public_id,
        "--now",
        "2026-11-23T10:30+01:00",
        "--by",
        "eve@irex.example",
    )
    assert f"{public_id}: first response recorded at Mon 2026-11-23 10:30 CET" in out
    assert "1h30m of covered time, in time" in out
    data = cli.json("tickets", "respond", public_id, "--now", "2026-11-23T11:00+01:00")
    assert data["recorded"] is False
    assert data["first_response_at"] == "2026-11-23T09:30:00+00:00"
    assert data["covered_hours"] == 1.5 and data["in_time"] is True
    assert cli.json("tick", "--now", "2026-11-24T12:00+01:00")["escalations"] == []
    with app.db.transaction() as session:
        ticket = session.scalar(select(Ticket).where(Ticket.public_id == public_id))
        assert ticket is not None and ticket.next_check_at is None
        note = session.scalar(select(Message).where(Message.kind == "internal_note"))
        assert note is not None and not note.public and "eve@irex.example" in note.body_text
    assert cli("tickets", "respond", "IREX-999999", code=65) == ""


def test_digest_print_and_send(cli, make_app):
    app = make_app()
    add_subscription(app)
    open_ticket(app, paris(24, 10), "[SUB-12345] [L1] Upgrade to 7.4.2 fails")
    out = cli("digest", "--print", "--now", "2026-11-25T08:00+01:00")
    assert out.startswith("SLA digest Wed 25 Nov 2026\n")
    assert "BREACHED: 1 open ticket(s)" in out and "NEW: 1 ticket(s)" in out
    assert "  Standard L1       1      0%      -      -       0" in out
    html = cli("digest", "--now", "2026-11-25T08:00+01:00", "--html")
    assert html.startswith("<!DOCTYPE html>")
    data = cli.json("digest", "--now", "2026-11-25T08:00+01:00")
    assert data["breached"]["count"] == 1 and data["new"]["count"] == 1
    with app.db.transaction() as session:  # printing records nothing
        assert session.scalar(select(OutboxMessage).where(OutboxMessage.kind == "digest")) is None
    out = cli("digest", "--send", "--now", "2026-11-25T08:00+01:00")
    assert "digest daily:2026-11-25 queued as outbox #" in out
    assert "to managers@irex.example" in out
    out = cli("digest", "--send", "--now", "2026-11-25T09:00+01:00")
    assert "was sent already" in out
    sent = cli.json("digest", "--send", "--force", "--now", "2026-11-25T09:00+01:00")
    assert sent["sent"] is True and sent["period"].startswith("manual:")
    # The forced one counts from the previous digest (08:00), which saw the ticket.
    assert sent["digest"]["new"]["count"] == 0
