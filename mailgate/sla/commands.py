"""The SLA commands: ``sla due``, ``sla explain``, ``tick``, ``digest``, ``tickets respond``.

Registered through ``mailgate.cli._EXTENSIONS``. The CLI helpers are imported inside the
functions, so importing this module never imports ``mailgate.cli`` (no import cycle).
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from mailgate.sla.settings import LEVELS, TIERS

if TYPE_CHECKING:
    from mailgate.app import App
    from mailgate.db.models import Ticket
    from mailgate.sla.deadlines import Timeline


def _now(args: argparse.Namespace) -> dt.datetime:
    value: dt.datetime | None = getattr(args, "now", None)
    return value or dt.datetime.now(dt.UTC)


def _print_json(data: Any) -> None:
    from mailgate.cli import _print_json as print_json

    print_json(data)


def _at(instant: dt.datetime, app: App) -> str:
    local = instant.astimezone(app.settings.sla.zone)
    return f"{local:%a %Y-%m-%d %H:%M %Z} ({instant.astimezone(dt.UTC):%Y-%m-%d %H:%M} UTC)"


def _find_ticket(session: Any, ident: str) -> Ticket | None:
    from mailgate.db.models import Ticket
    from mailgate.db.queries import ticket_by_public_id

    ticket = ticket_by_public_id(session, ident)
    if ticket is None and ident.isdigit():
        ticket = session.get(Ticket, int(ident))
    return ticket


def _no_ticket(ident: str) -> int:
    from mailgate.cli import EX_DATAERR

    print(f"no ticket {ident}", file=sys.stderr)
    return EX_DATAERR


def _timeline_json(timeline: Timeline) -> dict[str, Any]:
    return {
        "tier": timeline.tier,
        "level": timeline.level,
        "target": timeline.target,
        "weekend": timeline.weekend,
        "timezone": timeline.timezone,
        "received": timeline.received.isoformat(),
        "clock_start": timeline.clock_start.isoformat(),
        "counted": [
            {
                "start": s.start.isoformat(),
                "end": s.end.isoformat(),
                "hours": s.duration.total_seconds() / 3600,
            }
            for s in timeline.counted
        ],
        "skipped": [
            {
                "start": g.start.isoformat(),
                "end": g.end.isoformat(),
                "hours": g.duration.total_seconds() / 3600,
                "reasons": list(g.reasons),
            }
            for g in timeline.skipped
        ],
        "covered_hours": timeline.covered_total.total_seconds() / 3600,
        "thresholds": [
            {"fraction": t.fraction, "at": t.at.isoformat()} for t in timeline.thresholds
        ],
        "deadline": timeline.deadline.isoformat(),
    }


# ---------------------------------------------------------------------------- sla due


def cmd_sla_due(args: argparse.Namespace, app: App) -> int:
    from mailgate.sla.deadlines import explain, render_text, response_due
    from mailgate.sla.escalation import plan

    received = args.received or _now(args)
    due = response_due(received, args.tier, args.level, app.calendar)
    steps = plan(received, args.tier, args.level, app.calendar, app.settings.escalation)
    timeline = (
        explain(
            received, args.tier, args.level, app.calendar, thresholds=[s.fraction for s in steps]
        )
        if args.explain
        else None
    )
    if args.json:
        data: dict[str, Any] = {
            "tier": args.tier,
            "level": args.level,
            "target": app.settings.sla.tier_targets(args.tier).text(args.level),
            "received": received.astimezone(dt.UTC).isoformat(),
            "due": due.isoformat(),
            "due_local": due.astimezone(app.settings.sla.zone).isoformat(),
            "timezone": app.settings.sla.timezone,
            "escalations": [
                {
                    "threshold": s.label,
                    "fraction": s.fraction,
                    "at": s.at.isoformat(),
                    "recipients": list(s.recipients),
                }
                for s in steps
            ],
        }
        if timeline is not None:
            data["timeline"] = _timeline_json(timeline)
        _print_json(data)
        return 0
    if timeline is not None:
        print(render_text(timeline))
        return 0
    print(f"{args.tier.capitalize()} L{args.level} received {_at(received, app)}")
    print(f"  due          {_at(due, app)}")
    for s in steps:
        print(f"  {s.label:<12} {_at(s.at, app)}  -> {', '.join(s.recipients)}")
    return 0


# ---------------------------------------------------------------------------- sla explain


def cmd_sla_explain(args: argparse.Namespace, app: App) -> int:
    from mailgate.db.models import Escalation
    from mailgate.sla.deadlines import explain, render_text
    from mailgate.sla.escalation import plan
    from mailgate.sla.service import response_time

    with app.db.transaction() as session:
        ticket = _find_ticket(session, args.id)
        if ticket is None:
            return _no_ticket(args.id)
        steps = plan(
            ticket.received_at, ticket.tier, ticket.severity, app.calendar, app.settings.escalation
        )
        timeline = explain(
            ticket.received_at,
            ticket.tier,
            ticket.severity,
            app.calendar,
            thresholds=[s.fraction for s in steps],
        )
        sent = list(
            session.scalars(
                select(Escalation).where(Escalation.ticket_id == ticket.id).order_by(Escalation.id)
            )
        )
        response = response_time(ticket, app)
        status, next_check_at = ticket.status, ticket.next_check_at
        info: dict[str, Any] = {
            "ticket": ticket.public_id,
            "subject": ticket.subject,
            "status": status,
            "tier": ticket.tier,
            "level": ticket.severity,
            "severity_source": ticket.severity_source,
            "received_at": ticket.received_at,
            "due_at": ticket.due_at,
            "next_check_at": next_check_at,
            "first_response_at": ticket.first_response_at,
        }
    escalations = [
        {
            "threshold": e.threshold,
            "fraction": e.fraction,
            "level": e.severity,
            "due_at": e.due_at,
            "sent_at": e.sent_at,
            "recipients": list(e.recipients),
        }
        for e in sent
    ]
    pending = [s for s in steps if s.label not in {e.threshold for e in sent}]
    if args.json:
        _print_json(
            info
            | {
                "timeline": _timeline_json(timeline),
                "escalations_sent": escalations,
                "escalations_pending": [
                    {
                        "threshold": s.label,
                        "fraction": s.fraction,
                        "at": s.at,
                        "recipients": list(s.recipients),
                    }
                    for s in pending
                ],
                "first_response": None
                if response is None
                else {
                    "at": response.responded_at,
                    "covered_hours": response.covered.total_seconds() / 3600,
                    "in_time": response.in_time,
                },
            }
        )
        return 0
    print(f"{info['ticket']} [{info['status']}] {info['subject']}")
    print(render_text(timeline))
    print("escalations:")
    for e in sent:
        print(
            f"  sent     {e.threshold:<10} due {_at(e.due_at, app)}, "
            f"sent {_at(e.sent_at, app)} to {', '.join(e.recipients)}"
        )
    watched = status == "open" and response is None
    for s in pending:
        state = "pending " if watched else "not sent"
        print(f"  {state} {s.label:<10} due {_at(s.at, app)} -> {', '.join(s.recipients)}")
    if not sent and not pending:
        print("  none configured for this tier and level")
    if response is not None:
        verdict = "in time" if response.in_time else "LATE"
        print(
            f"first response {_at(response.responded_at, app)}: "
            f"{_hours(response.covered)} of covered time, {verdict}"
        )
    else:
        print("first response: none yet")
    print(f"next check     {_at(next_check_at, app) if next_check_at else 'none'}")
    return 0


def _hours(value: dt.timedelta) -> str:
    minutes = int(value.total_seconds() // 60)
    return f"{minutes // 60}h{minutes % 60:02d}m"


# ---------------------------------------------------------------------------- tick


def cmd_tick(args: argparse.Namespace, app: App) -> int:
    from mailgate.sla.escalation import tick

    result = tick(app, _now(args))
    if args.json:
        _print_json(result.as_json())
        return 0
    print(
        f"tick at {_at(result.now, app)}: {result.due} ticket(s) due, "
        f"{len(result.sent)} escalation(s) queued, {result.cleared} taken off the list, "
        f"{result.skipped} left to another process, {result.errors} error(s)"
    )
    for s in result.sent:
        print(
            f"  {s.ticket} {s.threshold:<10} due {_at(s.due_at, app)} -> {', '.join(s.recipients)}"
        )
    if result.more:
        print("  more is due: run again")
    return 0


# ---------------------------------------------------------------------------- digest


def cmd_digest(args: argparse.Namespace, app: App) -> int:
    from mailgate.digest import build_digest, daily_key, render_digest, send_digest

    now = _now(args)
    if args.send:
        key = f"manual:{now.astimezone(dt.UTC).isoformat()}" if args.force else daily_key(app, now)
        sent = send_digest(app, now, key)
        if args.json:
            _print_json(
                {
                    "sent": sent is not None,
                    "period": key,
                    "outbox_id": sent.outbox_id if sent else None,
                    "digest": sent.digest.as_json() if sent else None,
                }
            )
        elif sent is None:
            print(f"the digest for {key} was sent already (use --force to send another)")
        else:
            to = ", ".join(app.settings.escalation.resolve(app.settings.digest.recipients))
            print(f"digest {key} queued as outbox #{sent.outbox_id} to {to}")
        return 0
    with app.db.transaction() as session:
        digest = build_digest(session, app, now)
    if args.json:
        _print_json(digest.as_json())
        return 0
    text, html = render_digest(app, digest)
    print(html if args.html and html is not None else text, end="")
    return 0


# ---------------------------------------------------------------------------- tickets respond


def cmd_tickets_respond(args: argparse.Namespace, app: App) -> int:
    from mailgate.sla.service import respond_by_hand, response_time

    at = _now(args)
    with app.db.transaction() as session:
        ticket = _find_ticket(session, args.id)
        if ticket is None:
            return _no_ticket(args.id)
        try:
            recorded = respond_by_hand(session, ticket, app, at, by=args.by)
        except ValueError as exc:
            from mailgate.cli import EX_DATAERR

            print(f"{ticket.public_id}: {exc}", file=sys.stderr)
            return EX_DATAERR
        response = response_time(ticket, app)
        public_id = ticket.public_id
    assert response is not None
    if args.json:
        _print_json(
            {
                "ticket": public_id,
                "recorded": recorded,
                "first_response_at": response.responded_at,
                "covered_hours": response.covered.total_seconds() / 3600,
                "due_at": response.due_at,
                "in_time": response.in_time,
            }
        )
        return 0
    verdict = "in time" if response.in_time else "late"
    if recorded:
        print(
            f"{public_id}: first response recorded at {_at(response.responded_at, app)}; "
            f"{_hours(response.covered)} of covered time, {verdict} "
            f"(due {_at(response.due_at, app)})"
        )
    else:
        print(
            f"{public_id}: the first response was already recorded at "
            f"{_at(response.responded_at, app)} ({verdict}); nothing changed"
        )
    return 0


# ---------------------------------------------------------------------------- registration


def _subcommands(parser: argparse.ArgumentParser) -> Any:
    """The sub-command action of ``parser`` (argparse offers no public accessor)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action
    raise LookupError(f"{parser.prog} has no sub-commands")


def register(sub: Any, add: Any) -> None:
    """Add the SLA commands to the ``mailgate`` parser (a ``cli._EXTENSIONS`` entry)."""
    from mailgate.cli import parse_now

    sla = sub.add_parser("sla", help="SLA deadlines and timelines").add_subparsers(
        dest="sla_cmd", required=True
    )
    p = add(
        "due", cmd_sla_due, "the response deadline of a request (R-CLOCK)", parent=sla, now=True
    )
    p.add_argument("--tier", choices=TIERS, required=True)
    p.add_argument("--level", type=int, choices=LEVELS, required=True)
    p.add_argument(
        "--received",
        type=parse_now,
        help="when the request was received (ISO-8601 with zone; default: now)",
    )
    p.add_argument(
        "--explain",
        action="store_true",
        help="show the whole timeline: what was counted and what was skipped",
    )
    p = add(
        "explain",
        cmd_sla_explain,
        "a ticket's SLA timeline: covered and skipped time, thresholds, escalations",
        parent=sla,
    )
    p.add_argument("id", help="ticket ID, e.g. IREX-000123")

    add("tick", cmd_tick, "run one escalation pass (what `serve` does every minute)", now=True)

    p = add(
        "digest", cmd_digest, "the managers' SLA digest: print it (default) or send it", now=True
    )
    mode = p.add_mutually_exclusive_group()
    mode.add_argument(
        "--print",
        dest="send",
        action="store_false",
        help="print the digest, record nothing (default)",
    )
    mode.add_argument(
        "--send",
        dest="send",
        action="store_true",
        help="record and queue today's digest unless it was sent already",
    )
    p.add_argument(
        "--force", action="store_true", help="with --send: send even if today's digest was sent"
    )
    p.set_defaults(send=False)  # printing is the default; --print's own default is True
    p.add_argument("--html", action="store_true", help="with --print: print the HTML body")

    tickets = _subcommands(sub.choices["tickets"])
    p = add(
        "respond",
        cmd_tickets_respond,
        "record the first response by hand (R-ACK: stops the response clock)",
        parent=tickets,
        now=True,
    )
    p.add_argument("id", help="ticket ID, e.g. IREX-000123")
    p.add_argument("--by", help="who responded (recorded in an internal note)")
