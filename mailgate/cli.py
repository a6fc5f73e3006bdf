"""The ``mailgate`` command. Human-readable output by default, ``--json`` for scripts;
every command whose result depends on the time takes ``--now ISO-8601``."""

from __future__ import annotations

import argparse
import atexit
import datetime as dt
import gc
import json
import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from mailgate.app import App
from mailgate.config import LoadedConfig, effective, load_config
from mailgate.errors import ConfigError, ImportRowError, MailgateError, StoreError
from mailgate.settings_loader import mask_url
from mailgate.sla.commands import register as register_sla_commands

log = logging.getLogger("mailgate.cli")

EX_OK = 0
EX_USAGE = 64
EX_DATAERR = 65
EX_SOFTWARE = 70
EX_TEMPFAIL = 75  # sysexits.h: the mail server keeps the message and retries
EX_CONFIG = 78


def parse_now(value: str) -> dt.datetime:
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO-8601 time: {value!r}") from None
    if parsed.tzinfo is None:
        raise argparse.ArgumentTypeError(f"give a time zone, e.g. {value}Z or {value}+01:00")
    return parsed.astimezone(dt.UTC)


def _now(args: argparse.Namespace) -> dt.datetime:
    return getattr(args, "now", None) or dt.datetime.now(dt.UTC)


def _print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, default=_json_default, ensure_ascii=False))


def _json_default(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, bytes):
        return f"<{len(value)} bytes>"
    raise TypeError(type(value).__name__)


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value else None


def _table(rows: Sequence[Sequence[Any]], headers: Sequence[str]) -> str:
    cells = [[str(h) for h in headers]] + [["-" if c is None else str(c) for c in r] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


# ------------------------------------------------------------------ commands


def cmd_check_config(args: argparse.Namespace, loaded: LoadedConfig) -> int:
    data = effective(loaded.settings)
    if args.json:
        _print_json({"source": str(loaded.source) if loaded.source else None, "config": data})
        return EX_OK
    where = loaded.source or "embedded defaults (no config file)"
    print(f"# configuration OK: {where}")
    print(_to_toml(data))
    return EX_OK


def _to_toml(data: dict[str, Any], prefix: str = "") -> str:
    scalars, tables = [], []
    for key, value in data.items():
        if isinstance(value, dict):
            tables.append((key, value))
        else:
            scalars.append(f"{key} = {_toml_value(value)}")
    out = []
    if scalars:
        if prefix:
            out.append(f"[{prefix}]")
        out.extend(scalars)
        out.append("")
    for key, value in tables:
        out.append(_to_toml(value, f"{prefix}.{key}" if prefix else key))
    return "\n".join(out)


def _toml_value(value: Any) -> str:
    if value is None:
        return '"" # unset'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{}"
    return json.dumps(str(value), ensure_ascii=False)


def cmd_db_upgrade(args: argparse.Namespace, app: App) -> int:
    app.db.upgrade()
    print("database schema is up to date")
    return EX_OK


def cmd_serve(args: argparse.Namespace, app: App) -> int:
    from mailgate.serve import serve

    return serve(app)


def cmd_ingest(args: argparse.Namespace, app: App) -> int:
    from mailgate.ingest import pipeline
    from mailgate.ingest.result import Result
    from mailgate.ingest.store import store_raw
    from mailgate.model import Outcome

    try:
        if args.file in (None, "-"):
            raw = sys.stdin.buffer.read()
            origin = "stdin"
        else:
            raw = Path(args.file).read_bytes()
            origin = str(args.file)
    except OSError as exc:
        print(f"mailgate ingest: cannot read {args.file}: {exc.strerror}", file=sys.stderr)
        return EX_TEMPFAIL
    try:
        stored = store_raw(
            app.db,
            raw,
            source="pipe",
            received_at=_now(args),
            origin=origin,
            envelope_from=args.sender,
            envelope_to=tuple(args.recipient or ()),
        )
    except StoreError as exc:
        print(f"mailgate ingest: {exc}", file=sys.stderr)
        return EX_TEMPFAIL
    # Stored: from here on the exit status is 0 whatever the outcome.
    try:
        result = pipeline.process_stored(app, stored, now=_now(args))
        data = result.as_json()
    except Exception as exc:  # processing failures were quarantined; report and exit 0
        data = Result(stored.inbox_id, Outcome.QUARANTINED).as_json()
        print(f"mailgate ingest: stored, but processing failed: {exc}", file=sys.stderr)
    print(json.dumps(data))
    return EX_OK


def cmd_subscriptions_import(args: argparse.Namespace, app: App) -> int:
    from mailgate.subscriptions import apply_rows, read_rows

    path = Path(args.file)
    try:
        rows = read_rows(path, app.subscription_re if args.check_ids else None)
    except OSError as exc:
        print(f"cannot read {path}: {exc.strerror}", file=sys.stderr)
        return EX_DATAERR
    except ImportRowError as exc:
        print(f"{path}: {exc}; nothing was imported", file=sys.stderr)
        return EX_DATAERR
    with app.db.transaction() as session:
        report = apply_rows(session, rows, _now(args))
    if args.json:
        _print_json({"created": report.created, "updated": report.updated})
    else:
        print(
            f"imported {len(rows)} subscription(s): {report.created} new, {report.updated} updated"
        )
    return EX_OK


def cmd_subscriptions_list(args: argparse.Namespace, app: App) -> int:
    from mailgate.db.models import Subscription
    from mailgate.db.registry import subscription_info

    today = _now(args).date()
    with app.db.transaction() as session:
        subs = [
            subscription_info(s)
            for s in session.scalars(
                select(Subscription)
                .options(selectinload(Subscription.contacts))
                .order_by(Subscription.id)
            )
        ]
    if args.json:
        _print_json(
            [
                {
                    "id": s.id,
                    "organization": s.organization,
                    "tier": s.tier,
                    "valid_from": s.valid_from,
                    "valid_until": s.valid_until,
                    "status": s.status_on(today),
                    "contacts": list(s.contacts),
                    "nonprod_environments": list(s.nonprod_environments),
                }
                for s in subs
            ]
        )
        return EX_OK
    rows = [
        (
            s.id,
            s.organization,
            s.tier,
            s.valid_from,
            s.valid_until,
            s.status_on(today),
            "; ".join(s.contacts),
        )
        for s in subs
    ]
    print(_table(rows, ("ID", "ORGANIZATION", "TIER", "FROM", "UNTIL", "STATUS", "CONTACTS")))
    return EX_OK


def _ticket_json(ticket: Any, decision: Any | None, with_messages: bool) -> dict[str, Any]:
    data: dict[str, Any] = {
        "ticket": ticket.public_id,
        "status": ticket.status,
        "subject": ticket.subject,
        "requester": ticket.requester,
        "subscription": ticket.subscription_id,
        "tier": ticket.tier,
        "severity": ticket.severity,
        "severity_source": ticket.severity_source,
        "environment": ticket.environment,
        "received_at": _iso(ticket.received_at),
        "due": _iso(ticket.due_at),
        "first_response_at": _iso(ticket.first_response_at),
        "resolved_at": _iso(ticket.resolved_at),
        "assignee": ticket.assignee,
        "tags": list(ticket.tags or ()),
    }
    if with_messages:
        data["messages"] = [
            {
                "id": m.id,
                "direction": m.direction,
                "kind": m.kind,
                "public": m.public,
                "author": m.author,
                "message_id": m.message_id,
                "subject": m.subject,
                "at": _iso(m.created_at),
                "text": m.body_text,
            }
            for m in ticket.messages
        ]
        data["classification"] = (
            {"outcome": decision.outcome, "reason": decision.reason, "rules": decision.record}
            if decision is not None
            else None
        )
    return data


def cmd_tickets_list(args: argparse.Namespace, app: App) -> int:
    from mailgate.db.models import Ticket

    with app.db.transaction() as session:
        stmt = select(Ticket).order_by(Ticket.id.desc()).limit(args.limit)
        if args.status:
            stmt = stmt.where(Ticket.status == args.status)
        tickets = list(session.scalars(stmt))
        data = [_ticket_json(t, None, False) for t in tickets]
    if args.json:
        _print_json(data)
        return EX_OK
    rows = [
        (
            d["ticket"],
            d["status"],
            f"L{d['severity']}",
            d["tier"],
            d["subscription"],
            (d["due"] or "")[:16],
            d["requester"],
            d["subject"][:50],
        )
        for d in data
    ]
    print(
        _table(
            rows,
            (
                "TICKET",
                "STATUS",
                "LVL",
                "TIER",
                "SUBSCRIPTION",
                "DUE (UTC)",
                "REQUESTER",
                "SUBJECT",
            ),
        )
    )
    return EX_OK


def _render_rules(record: list[dict[str, Any]]) -> list[str]:
    lines = []
    for r in record:
        mark = {"hit": "HIT ", "pass": "pass", "not_run": " -- "}.get(r["verdict"], r["verdict"])
        detail = ""
        if r.get("action"):
            detail += f" {r['action']}"
        if r.get("reason"):
            detail += f" {r['reason']}"
        if r.get("evidence"):
            detail += "  " + json.dumps(r["evidence"], ensure_ascii=False, default=str)
        lines.append(f"  [{mark}] {r['rule']} ({r['clause']}){detail}")
    return lines


def cmd_tickets_show(args: argparse.Namespace, app: App) -> int:
    from mailgate.db.models import Decision
    from mailgate.db.queries import ticket_by_public_id

    with app.db.transaction() as session:
        ticket = ticket_by_public_id(session, args.id)
        if ticket is None:
            print(f"no ticket {args.id}", file=sys.stderr)
            return EX_DATAERR
        session.refresh(ticket, attribute_names=["messages"])
        decision = session.scalar(
            select(Decision).where(Decision.ticket_id == ticket.id).order_by(Decision.id).limit(1)
        )
        data = _ticket_json(ticket, decision, True)
    if args.json:
        _print_json(data)
        return EX_OK
    print(f"{data['ticket']}  {data['subject']}")
    for key in (
        "status",
        "requester",
        "subscription",
        "tier",
        "severity",
        "severity_source",
        "environment",
        "received_at",
        "due",
        "first_response_at",
        "assignee",
        "tags",
    ):
        print(f"  {key:18} {data[key]}")
    if data["classification"]:
        print("classification:")
        print("\n".join(_render_rules(data["classification"]["rules"])))
    print("messages:")
    for m in data["messages"]:
        vis = "" if m["public"] else " (internal)"
        print(f"  #{m['id']} {m['at']} {m['direction']} {m['kind']}{vis} {m['author'] or ''}")
        for line in (m["text"] or "").splitlines()[:20]:
            print(f"      {line}")
    return EX_OK


def cmd_outbox_list(args: argparse.Namespace, app: App) -> int:
    from mailgate.db.models import OutboxMessage

    with app.db.transaction() as session:
        stmt = select(OutboxMessage).order_by(OutboxMessage.id.desc()).limit(args.limit)
        if args.state:
            stmt = stmt.where(OutboxMessage.state == args.state)
        rows: list[dict[str, Any]] = [
            {
                "id": o.id,
                "kind": o.kind,
                "state": o.state,
                "attempts": o.attempts,
                "recipients": list(o.recipients),
                "subject": o.subject,
                "created_at": _iso(o.created_at),
                "next_attempt_at": _iso(o.next_attempt_at),
                "sent_at": _iso(o.sent_at),
                "last_error": o.last_error,
            }
            for o in session.scalars(stmt)
        ]
    if args.json:
        _print_json(rows)
        return EX_OK
    print(
        _table(
            [
                (
                    r["id"],
                    r["kind"],
                    r["state"],
                    r["attempts"],
                    ", ".join(r["recipients"]),
                    r["subject"][:40],
                    (r["last_error"] or "")[:40],
                )
                for r in rows
            ],
            ("ID", "KIND", "STATE", "TRIES", "TO", "SUBJECT", "LAST ERROR"),
        )
    )
    return EX_OK


def cmd_outbox_flush(args: argparse.Namespace, app: App) -> int:
    from mailgate.outbox import OutboxSender, make_transport

    transport = make_transport(app.settings.outbox)
    try:
        result = OutboxSender(app.db, app.settings.outbox, transport, app.owner).drain(_now(args))
    finally:
        transport.close()
    if args.json:
        _print_json({"sent": result.sent, "retry_later": result.retried, "failed": result.failed})
    else:
        print(f"sent {result.sent}, to retry later {result.retried}, failed {result.failed}")
    return EX_OK


def cmd_inbox_list(args: argparse.Namespace, app: App) -> int:
    from mailgate.db.models import InboxItem

    with app.db.transaction() as session:
        stmt = (
            select(
                InboxItem.id,
                InboxItem.received_at,
                InboxItem.source,
                InboxItem.status,
                InboxItem.outcome,
                InboxItem.reason,
                InboxItem.message_id,
                InboxItem.attempts,
                InboxItem.error,
            )
            .order_by(InboxItem.id.desc())
            .limit(args.limit)
        )
        if args.status:
            stmt = stmt.where(InboxItem.status == args.status)
        rows = [
            {
                "id": r.id,
                "received_at": _iso(r.received_at),
                "source": r.source,
                "status": r.status,
                "outcome": r.outcome,
                "reason": r.reason,
                "message_id": r.message_id,
                "attempts": r.attempts,
                "error": r.error.strip().splitlines()[-1] if r.error else None,
            }
            for r in session.execute(stmt)
        ]
        counts = dict(
            session.execute(select(InboxItem.status, func.count()).group_by(InboxItem.status)).all()
        )
    if args.json:
        _print_json({"counts": counts, "items": rows})
        return EX_OK
    print("  ".join(f"{k}: {v}" for k, v in sorted(counts.items())) or "inbox is empty")
    print(
        _table(
            [
                (
                    r["id"],
                    r["received_at"][:19],
                    r["source"],
                    r["status"],
                    r["outcome"],
                    r["reason"],
                    (r["error"] or r["message_id"] or "")[:60],
                )
                for r in rows
            ],
            ("ID", "RECEIVED", "SOURCE", "STATUS", "OUTCOME", "REASON", "MESSAGE-ID / ERROR"),
        )
    )
    return EX_OK


def cmd_inbox_retry(args: argparse.Namespace, app: App) -> int:
    from mailgate.ingest.pipeline import retry_quarantined

    results = retry_quarantined(app, args.ids or None)
    if args.json:
        _print_json([{"inbox": r.inbox_id} | r.as_json() for r in results])
    else:
        for r in results:
            print(f"inbox {r.inbox_id}: {r.outcome} {r.ticket or r.reason or r.error or ''}")
        print(f"retried {len(results)} message(s)")
    return EX_OK


def _decision_json(d: Any, inbox: Any | None) -> dict[str, Any]:
    return {
        "id": d.id,
        "at": _iso(d.created_at),
        "outcome": d.outcome,
        "reason": d.reason,
        "sender": d.sender,
        "subject": d.subject,
        "subscription": d.subscription_id,
        "inbox": d.inbox_id,
        "message_id": inbox.message_id if inbox is not None else None,
        "rules": d.record,
    }


def cmd_rejections_list(args: argparse.Namespace, app: App) -> int:
    from mailgate.db.models import Decision

    with app.db.transaction() as session:
        stmt = (
            select(Decision)
            .where(Decision.outcome == "rejected")
            .order_by(Decision.id.desc())
            .limit(args.limit)
        )
        if args.reason:
            stmt = stmt.where(Decision.reason == args.reason)
        rows = [_decision_json(d, None) for d in session.scalars(stmt)]
    if args.json:
        _print_json(rows)
        return EX_OK
    print(
        _table(
            [
                (r["id"], (r["at"] or "")[:19], r["reason"], r["sender"], (r["subject"] or "")[:50])
                for r in rows
            ],
            ("ID", "AT (UTC)", "REASON", "SENDER", "SUBJECT"),
        )
    )
    return EX_OK


def cmd_rejections_show(args: argparse.Namespace, app: App) -> int:
    from mailgate.db.models import Decision, InboxItem, OutboxMessage

    with app.db.transaction() as session:
        decision = session.get(Decision, args.id)
        if decision is None or decision.outcome != "rejected":
            print(f"no rejection {args.id}", file=sys.stderr)
            return EX_DATAERR
        inbox = session.get(InboxItem, decision.inbox_id)
        data = _decision_json(decision, inbox)
        reply = session.scalar(
            select(OutboxMessage).where(OutboxMessage.decision_id == decision.id)
        )
        data["reply"] = (
            {"state": reply.state, "to": list(reply.recipients), "subject": reply.subject}
            if reply is not None
            else None
        )
    if args.json:
        _print_json(data)
        return EX_OK
    print(f"rejection {data['id']}: {data['reason']}  ({data['at']})")
    for key in ("sender", "subject", "subscription", "message_id", "inbox"):
        print(f"  {key:13} {data[key]}")
    reply_line = (
        f"{data['reply']['state']} to {', '.join(data['reply']['to'])}"
        if data["reply"]
        else "none (no sender address)"
    )
    print(f"  {'reply':13} {reply_line}")
    print("rules:")
    print("\n".join(_render_rules(data["rules"])))
    return EX_OK


# ------------------------------------------------------------------ parser

Handler = Callable[[argparse.Namespace, App], int]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mailgate",
        description="Email-driven ticketing gateway for IREX support.",
    )
    parser.add_argument(
        "--config", "-c", help="config file (default: $MAILGATE_CONFIG, else embedded defaults)"
    )
    parser.add_argument("--log-level", choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(
        name: str,
        handler: Any,
        help_: str,
        *,
        parent: Any = sub,
        json_: bool = True,
        now: bool = False,
    ) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = parent.add_parser(name, help=help_, description=help_)
        p.set_defaults(handler=handler)
        if json_:
            p.add_argument("--json", action="store_true", help="machine-readable output")
        if now:
            p.add_argument(
                "--now", type=parse_now, help="act as if it were this time (ISO-8601 with zone)"
            )
        return p

    add("serve", cmd_serve, "run the SMTP listener, processing and outbox sender", json_=False)
    p = add(
        "ingest",
        cmd_ingest,
        "store and process one message from a file or stdin "
        "(for an MTA pipe); exit 75 when it could not be stored",
        json_=False,
        now=True,
    )
    p.add_argument("file", nargs="?", default="-", help="message file, or - for stdin")
    p.add_argument("--sender", help="envelope sender (e.g. Postfix ${sender})")
    p.add_argument("--recipient", action="append", help="envelope recipient (repeatable)")
    p = add("check-config", None, "validate the configuration and print it, secrets masked")
    p.set_defaults(handler=None, config_only=True)

    db = sub.add_parser("db", help="database schema").add_subparsers(dest="db_cmd", required=True)
    add(
        "upgrade",
        cmd_db_upgrade,
        "migrate the database to the newest schema",
        parent=db,
        json_=False,
    )

    subs = sub.add_parser("subscriptions", help="the subscription registry").add_subparsers(
        dest="sub_cmd", required=True
    )
    p = add(
        "import",
        cmd_subscriptions_import,
        "import subscriptions from CSV or TOML (all rows or none); re-import updates in place",
        parent=subs,
        now=True,
    )
    p.add_argument("file")
    p.add_argument(
        "--no-check-ids",
        dest="check_ids",
        action="store_false",
        help="accept IDs that do not match tickets.subscription_pattern",
    )
    add(
        "list", cmd_subscriptions_list, "list subscriptions and their status", parent=subs, now=True
    )

    tickets = sub.add_parser("tickets", help="tickets").add_subparsers(dest="t_cmd", required=True)
    p = add("list", cmd_tickets_list, "list tickets, newest first", parent=tickets)
    p.add_argument("--status", choices=("open", "waiting", "resolved"))
    p.add_argument("--limit", type=int, default=50)
    p = add(
        "show", cmd_tickets_show, "a ticket, its messages and how it was classified", parent=tickets
    )
    p.add_argument("id")

    outbox = sub.add_parser("outbox", help="outgoing mail").add_subparsers(
        dest="o_cmd", required=True
    )
    p = add("list", cmd_outbox_list, "list outgoing mail and its delivery state", parent=outbox)
    p.add_argument("--state", choices=("pending", "sent", "failed", "suppressed"))
    p.add_argument("--limit", type=int, default=50)
    add("flush", cmd_outbox_flush, "deliver what is due now", parent=outbox, now=True)

    rejections = sub.add_parser("rejections", help="refused requests and why").add_subparsers(
        dest="r_cmd", required=True
    )
    p = add("list", cmd_rejections_list, "list refusals, newest first", parent=rejections)
    p.add_argument("--reason", help="only this reason code")
    p.add_argument("--limit", type=int, default=50)
    p = add(
        "show",
        cmd_rejections_show,
        "one refusal: every rule's verdict and evidence",
        parent=rejections,
    )
    p.add_argument("id", type=int)

    inbox = sub.add_parser("inbox", help="received raw mail").add_subparsers(
        dest="i_cmd", required=True
    )
    p = add(
        "list", cmd_inbox_list, "list received messages and their processing state", parent=inbox
    )
    p.add_argument("--status", choices=("pending", "processing", "done", "quarantined"))
    p.add_argument("--limit", type=int, default=50)
    p = add("retry", cmd_inbox_retry, "process quarantined messages again", parent=inbox)
    p.add_argument("ids", nargs="*", type=int, help="inbox IDs (default: all quarantined)")

    for extend in _EXTENSIONS:
        extend(sub, add)
    return parser


# Other modules add their commands here (SLA, policy, IMAP) without a cycle of imports.
_EXTENSIONS: list[Callable[[Any, Any], None]] = []
_EXTENSIONS.append(register_sla_commands)


def _setup_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if level != "DEBUG":  # migration chatter on every start helps nobody
        logging.getLogger("alembic").setLevel(logging.WARNING)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        loaded = load_config(args.config)
    except ConfigError as exc:
        print(f"mailgate: configuration error: {exc}", file=sys.stderr)
        return EX_CONFIG
    _setup_logging(args.log_level or loaded.settings.logging.level)
    if getattr(args, "config_only", False):
        return cmd_check_config(args, loaded)
    handler: Handler = args.handler
    try:
        app = App.create(loaded.settings)
    except Exception as exc:
        print(
            f"mailgate: cannot open the database {mask_url(loaded.settings.database.url)}: {exc}",
            file=sys.stderr,
        )
        return EX_TEMPFAIL if args.command == "ingest" else EX_SOFTWARE
    started()
    try:
        return handler(args, app)
    except MailgateError as exc:
        print(f"mailgate: {exc}", file=sys.stderr)
        return EX_SOFTWARE
    finally:
        app.close()


def started() -> None:
    """Start-up is done: if the entry point turned the cyclic garbage collector off for it
    (``mailgate.__main__``), freeze what start-up made and turn the collector back on.

    Frozen objects (modules, classes, the parser, the settings, the app) are never walked
    again by the collector, which they would outlive anyway; a processing child forked
    later inherits them frozen (and freezes the rest of what it inherits as it starts).
    """
    if not gc.isenabled():
        gc.freeze()
        gc.enable()
        frozen = gc.get_freeze_count()
        log.debug("start-up done; %d objects frozen out of the collector's way", frozen)


def run() -> NoReturn:
    """The ``mailgate`` command: ``main``, then a quick exit.

    When ``main`` returns, its work is committed, written and closed (``main`` closes the
    app, and with it the database connections). What normal exit adds is the interpreter
    freeing every module and object one by one: about 0.1 s, a sixth of a ``poll --once``
    that finds nothing, paid by every run from cron and every message piped to
    ``mailgate ingest``. Exit handlers still run (logging's flush, multiprocessing's
    clean-up) and the streams are flushed; only that teardown is skipped.
    """
    code = main()
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _imap_commands(sub: Any, add: Any) -> None:
    # Imported when the parser is built, not at import time: imap_service imports the app.
    from mailgate.ingest.imap_service import register

    register(sub, add)


_EXTENSIONS.append(_imap_commands)


if __name__ == "__main__":
    run()
