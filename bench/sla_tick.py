"""Benchmark: one SLA scheduler pass (``mailgate tick``) over 100,000 open tickets.

The pass reads only tickets whose indexed ``next_check_at`` has come, so its cost should
follow the due work, not the number of open tickets. For SQLite and PostgreSQL (a
database of its own, created here and dropped at the end) the bench:

1. creates the schema and 100,000 open, unanswered tickets whose next check is in the
   future (spread over the next two weeks), then ANALYZEs;
2. prints EXPLAIN of the pass's exact SELECT (captured from the driver), which must use
   ``ix_tickets_next_check_at``; on PostgreSQL EXPLAIN ANALYZE with buffers;
3. times ``tick()`` with nothing due (``--rounds`` passes: median, p95, min), and a bare
   ``SELECT 1`` transaction for scale;
4. makes ``--due`` tickets due (Standard L1 received Monday 09:00, pass at 12:00: the
   50% threshold, one escalation mail each) and times the one pass that sends them all,
   with the ratio to the nothing-due median;
5. times the nothing-due pass again afterwards.

    .venv/bin/python bench/sla_tick.py [--tickets 100000] [--due 1000] [--rounds 30]
    .venv/bin/python bench/sla_tick.py --only sqlite --json
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast
from zoneinfo import ZoneInfo

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from sqlalchemy import Table, event, func, insert, select, text, update  # noqa: E402

from mailgate.app import App  # noqa: E402
from mailgate.config import parse_settings  # noqa: E402
from mailgate.db.models import Escalation, Subscription, Ticket  # noqa: E402
from mailgate.sla.escalation import due_ticket_ids, tick  # noqa: E402
from tests.support.databases import temporary_pg_database  # noqa: E402

PARIS = ZoneInfo("Europe/Paris")
NOW = dt.datetime(2026, 11, 23, 12, 0, tzinfo=PARIS).astimezone(dt.UTC)  # Monday 12:00
RECEIVED_DUE = dt.datetime(2026, 11, 23, 9, 0, tzinfo=PARIS).astimezone(dt.UTC)
FIFTY_PERCENT = dt.datetime(2026, 11, 23, 11, 0, tzinfo=PARIS).astimezone(dt.UTC)
PG_ADMIN = os.environ.get(
    "MAILGATE_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
CHUNK = 5000


@contextlib.contextmanager
def database(kind: str) -> Iterator[str]:
    """A fresh database URL of ``kind``; removed afterwards."""
    if kind == "sqlite":
        with tempfile.TemporaryDirectory(prefix="mailgate-bench-") as folder:
            yield f"sqlite:///{folder}/bench.db"
        return
    with temporary_pg_database(PG_ADMIN, "mailgate_bench") as url:
        yield url


def make_app(url: str, folder: Path) -> App:
    settings = parse_settings(
        {
            "database": {"url": url},
            "outbox": {"maildir": str(folder / "outbox")},
            "logging": {"level": "WARNING"},
        },
        folder,
    )
    app = App.create(settings, migrate=True)
    with app.db.transaction() as session:
        session.add(
            Subscription(
                id="SUB-12345",
                organization="ACME Corp",
                tier="standard",
                valid_from=dt.date(2026, 1, 1),
                valid_until=dt.date(2027, 12, 31),
                nonprod_environments=[],
                updated_at=NOW,
            )
        )
    return app


def seed(app: App, count: int) -> float:
    """``count`` open tickets, next check between 1 hour and 14 days from NOW."""
    rng = random.Random(7)
    started = time.perf_counter()
    table = cast(Table, Ticket.__table__)
    with app.db.engine.begin() as conn:
        for first in range(0, count, CHUNK):
            rows: list[dict[str, Any]] = []
            for i in range(first, min(first + CHUNK, count)):
                received = NOW - dt.timedelta(minutes=rng.randrange(0, 60 * 24 * 20))
                rows.append(
                    {
                        "public_id": f"IREX-{i + 1:06d}",
                        "subscription_id": "SUB-12345",
                        "tier": rng.choice(("standard", "premier")),
                        "severity": rng.randint(1, 4),
                        "severity_source": "tag",
                        "production": True,
                        "status": "open",
                        "requester": "jane@acme.example",
                        "subject": f"bench ticket {i}",
                        "received_at": received,
                        "due_at": NOW + dt.timedelta(days=3),
                        "next_check_at": NOW
                        + dt.timedelta(minutes=rng.randrange(60, 60 * 24 * 14)),
                        "tags": [],
                        "updated_at": received,
                    }
                )
            conn.execute(insert(table), rows)
    with app.db.engine.begin() as conn:
        conn.execute(text("ANALYZE"))
    return time.perf_counter() - started


def captured_due_query(app: App) -> tuple[str, Any]:
    """The pass's SELECT exactly as the driver receives it, with its parameters."""
    seen: list[tuple[str, Any]] = []

    def listener(conn: Any, cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if "next_check_at" in statement and statement.lstrip().upper().startswith("SELECT"):
            seen.append((statement, parameters))

    event.listen(app.db.engine, "before_cursor_execute", listener)
    try:
        with app.db.transaction() as session:
            due_ticket_ids(session, NOW, app.settings.escalation.max_per_pass)
    finally:
        event.remove(app.db.engine, "before_cursor_execute", listener)
    return seen[-1]


def explain(app: App) -> str:
    statement, parameters = captured_due_query(app)
    prefix = (
        "EXPLAIN QUERY PLAN "
        if app.db.dialect == "sqlite"
        else "EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) "
    )
    with app.db.engine.connect() as conn:
        rows = conn.exec_driver_sql(prefix + statement, parameters).all()
    if app.db.dialect == "sqlite":
        return "\n".join(str(row[-1]) for row in rows)
    return "\n".join(str(row[0]) for row in rows)


def timed(fn: Callable[[], object], rounds: int) -> list[float]:
    out = []
    for _ in range(rounds):
        started = time.perf_counter()
        fn()
        out.append((time.perf_counter() - started) * 1000)
    return out


def summary(ms: list[float]) -> dict[str, float]:
    ordered = sorted(ms)
    return {
        "median_ms": round(statistics.median(ordered), 3),
        "p95_ms": round(ordered[max(0, int(len(ordered) * 0.95) - 1)], 3),
        "min_ms": round(ordered[0], 3),
    }


def select_one(app: App) -> None:
    with app.db.transaction() as session:
        session.execute(text("SELECT 1"))


def make_due(app: App, count: int) -> None:
    rng = random.Random(11)
    with app.db.transaction() as session:
        total = session.scalar(select(func.count()).select_from(Ticket)) or 0
        ids = rng.sample(range(1, total + 1), count)
        for first in range(0, len(ids), CHUNK):
            session.execute(
                update(Ticket)
                .where(Ticket.id.in_(ids[first : first + CHUNK]))
                .values(
                    tier="standard",
                    severity=1,
                    received_at=RECEIVED_DUE,
                    due_at=RECEIVED_DUE + dt.timedelta(hours=4),
                    next_check_at=FIFTY_PERCENT,
                )
            )


def run(kind: str, tickets: int, due: int, rounds: int) -> dict[str, Any]:
    with database(kind) as url, tempfile.TemporaryDirectory() as folder:
        app = make_app(url, Path(folder))
        try:
            seeded = seed(app, tickets)
            plan = explain(app)
            tick(app, NOW)  # warm caches: connection, statement cache, calendar
            empty = timed(lambda: tick(app, NOW), rounds)
            baseline = timed(lambda: select_one(app), rounds)
            make_due(app, due)
            if kind != "sqlite":
                with app.db.engine.begin() as conn:
                    conn.execute(text("ANALYZE tickets"))
            plan_due = explain(app)
            started = time.perf_counter()
            result = tick(app, NOW)
            due_ms = (time.perf_counter() - started) * 1000
            after = timed(lambda: tick(app, NOW), rounds)
            with app.db.transaction() as session:
                escalations = session.scalar(select(func.count()).select_from(Escalation))
        finally:
            app.close()
    empty_median = statistics.median(empty)
    return {
        "database": kind,
        "tickets": tickets,
        "seed_s": round(seeded, 1),
        "explain_nothing_due": plan,
        "explain_due": plan_due,
        "select_1": summary(baseline),
        "nothing_due": summary(empty),
        "due": {
            "tickets": due,
            "escalations": len(result.sent),
            "escalation_rows": escalations,
            "errors": result.errors,
            "ms": round(due_ms, 1),
            "ms_per_ticket": round(due_ms / max(due, 1), 3),
            "ratio_to_nothing_due": round(due_ms / empty_median, 1),
        },
        "nothing_due_after": summary(after),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tickets", type=int, default=100_000)
    parser.add_argument("--due", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--only", choices=("sqlite", "postgresql"))
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    kinds = [args.only] if args.only else ["sqlite", "postgresql"]
    reports = [run(kind, args.tickets, args.due, args.rounds) for kind in kinds]
    if args.json:
        print(json.dumps(reports, indent=2))
        return 0
    for r in reports:
        d = r["due"]
        print(f"== {r['database']}: {r['tickets']:,} open tickets (seeded in {r['seed_s']} s)")
        print("EXPLAIN, nothing due:")
        print("  " + r["explain_nothing_due"].replace("\n", "\n  "))
        print(f"EXPLAIN, {d['tickets']} due:")
        print("  " + r["explain_due"].replace("\n", "\n  "))
        for label, key in (
            ("SELECT 1 transaction", "select_1"),
            ("tick, nothing due", "nothing_due"),
            ("tick, nothing due (after)", "nothing_due_after"),
        ):
            s = r[key]
            print(
                f"  {label:<27} median {s['median_ms']:8.3f} ms   p95 {s['p95_ms']:8.3f} ms"
                f"   min {s['min_ms']:8.3f} ms"
            )
        print(
            f"  tick, {d['tickets']} due{'':<16} {d['ms']:9.1f} ms  ({d['ms_per_ticket']} ms "
            f"a ticket, {d['escalations']} escalation mails, {d['errors']} errors)  "
            f"= {d['ratio_to_nothing_due']}x the nothing-due pass"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
