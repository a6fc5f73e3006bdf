"""The outbox sender: Maildir and relay transports, backoff, permanent failures, attempts
recorded, and several senders sharing one database never sending a row twice."""

from __future__ import annotations

import contextlib
import datetime as dt
import gc
import json
import os
import random
import select as select_mod
import subprocess
import sys
import threading
import warnings
from collections import Counter
from collections.abc import Iterator
from email import message_from_bytes
from email import policy as email_policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, update

from mailgate.app import App
from mailgate.config import OutboxSettings, RelaySettings
from mailgate.db.engine import Database
from mailgate.db.models import OutboxAttempt, OutboxMessage
from mailgate.outbox import (
    DeliveryError,
    MaildirTransport,
    OutboxSender,
    SmtpTransport,
    backoff,
)
from tests.conftest import _truncate_pg
from tests.support.mailtools import (
    RelaySink,
    ScriptedRelaySink,
    free_port,
    start_relay,
    start_scripted_relay,
)

ROOT = Path(__file__).resolve().parent.parent
T0 = dt.datetime(2026, 11, 23, 8, 0, tzinfo=dt.UTC)


def _raw(i: int, tag: str) -> bytes:
    msg = EmailMessage(policy=email_policy.SMTP)
    msg["From"] = "IREX Support <support@irex.example>"
    msg["To"] = f"customer{i}@acme.example"
    msg["Subject"] = f"[IREX-{i:06d}] outbox test {tag}"
    msg["Message-ID"] = f"<{tag}-{i}@irex.example>"
    msg["Auto-Submitted"] = "auto-replied"
    msg.set_content(f"Message {i} of test {tag}.\n")
    return msg.as_bytes()


def queue_rows(db: Database, count: int, *, tag: str = "m", now: dt.datetime = T0) -> list[int]:
    """``count`` pending outbox rows, due at ``now``; returns their ids."""
    with db.transaction() as s:
        rows = [
            OutboxMessage(
                kind="ack",
                dedupe_key=f"test:{tag}:{i}",
                message_id=f"{tag}-{i}@irex.example",
                mail_from="support@irex.example",
                recipients=[f"customer{i}@acme.example"],
                subject=f"[IREX-{i:06d}] outbox test {tag}",
                raw=_raw(i, tag),
                state="pending",
                attempts=0,
                next_attempt_at=now,
                created_at=now,
            )
            for i in range(count)
        ]
        s.add_all(rows)
        s.flush()
        return [r.id for r in rows]


def row(db: Database, outbox_id: int) -> OutboxMessage:
    with db.transaction() as s:
        found = s.get(OutboxMessage, outbox_id)
        assert found is not None
        return found


def attempts_of(db: Database, outbox_id: int) -> list[OutboxAttempt]:
    with db.transaction() as s:
        return list(
            s.scalars(
                select(OutboxAttempt)
                .where(OutboxAttempt.outbox_id == outbox_id)
                .order_by(OutboxAttempt.id)
            )
        )


def received_ids(sink: RelaySink) -> list[str]:
    return [
        str(message_from_bytes(r.raw, policy=email_policy.default)["Message-ID"]).strip("<>")
        for r in sink.received
    ]


@pytest.fixture
def scripted() -> Iterator[ScriptedRelaySink]:
    sink, controller = start_scripted_relay()
    yield sink
    controller.stop()


def relay_app(make_app: Any, port: int, **outbox: Any) -> App:
    app: App = make_app(
        {
            "outbox": {
                "transport": "smtp",
                "relay": {"port": port, "security": "none", "timeout": 10.0},
                **outbox,
            }
        }
    )
    return app


# ------------------------------------------------------------------ transports


def test_maildir_transport_writes_one_readable_file_per_message(app: App, tmp_path: Path) -> None:
    ids = queue_rows(app.db, 3)
    folder = tmp_path / "replies"
    transport = MaildirTransport(folder)
    result = OutboxSender(app.db, app.settings.outbox, transport, "t1").drain(T0)
    transport.close()
    assert (result.sent, result.retried, result.failed) == (3, 0, 0)

    files = sorted((folder / "new").iterdir())
    assert len(files) == 3
    assert not any((folder / "tmp").iterdir())  # written atomically: nothing left half-done
    seen = set()
    for f in files:
        msg = message_from_bytes(f.read_bytes(), policy=email_policy.default)
        seen.add(str(msg["Message-ID"]).strip("<>"))
        assert msg["Auto-Submitted"] == "auto-replied"
        assert msg.get_body(("plain",)).get_content().startswith("Message ")  # type: ignore[union-attr]
    assert seen == {f"m-{i}@irex.example" for i in range(3)}
    for outbox_id in ids:
        r = row(app.db, outbox_id)
        assert (r.state, r.attempts, r.last_error) == ("sent", 1, None)
        assert r.sent_at is not None and r.lease_owner is None
        [attempt] = attempts_of(app.db, outbox_id)
        assert attempt.ok and attempt.transport == "maildir" and attempt.owner == "t1"
    # A second pass finds nothing to do: no file is written twice.
    again = OutboxSender(app.db, app.settings.outbox, MaildirTransport(folder), "t1").drain(
        T0 + dt.timedelta(hours=1)
    )
    assert again.sent == 0 and len(list((folder / "new").iterdir())) == 3


def test_relay_transport_delivers_without_starttls_when_configured_so(
    lite_app: Any, relay: RelaySink
) -> None:
    app = relay_app(lite_app, relay.port)
    [outbox_id] = queue_rows(app.db, 1)
    transport = SmtpTransport(app.settings.outbox.relay)
    result = OutboxSender(app.db, app.settings.outbox, transport, "t1").drain(T0)
    transport.close()
    assert result.sent == 1
    [got] = relay.wait_for(1)
    assert got.mail_from == "support@irex.example"
    assert got.rcpt_tos == ["customer0@acme.example"]
    assert got.raw.replace(b"\r\n", b"\n") == row(app.db, outbox_id).raw.replace(b"\r\n", b"\n")
    assert attempts_of(app.db, outbox_id)[0].transport == "smtp"


@pytest.mark.filterwarnings("ignore::ResourceWarning")  # the leak: see the test below
def test_starttls_required_but_not_offered_sends_nothing_in_clear(
    lite_app: Any, relay: RelaySink
) -> None:
    app = relay_app(lite_app, relay.port, relay={"port": relay.port, "security": "starttls"})
    [outbox_id] = queue_rows(app.db, 1)
    transport = SmtpTransport(app.settings.outbox.relay)
    result = OutboxSender(app.db, app.settings.outbox, transport, "t1").drain(T0)
    transport.close()
    assert (result.sent, result.retried) == (0, 1)
    assert relay.received == []
    r = row(app.db, outbox_id)
    assert r.state == "pending" and "STARTTLS" in (r.last_error or "").upper()


def test_failed_starttls_closes_its_connection(relay: RelaySink) -> None:
    transport = SmtpTransport(RelaySettings(port=relay.port, security="starttls", timeout=10.0))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(DeliveryError):
            transport.deliver("support@irex.example", ["a@acme.example"], _raw(0, "tls"))
        gc.collect()
    transport.close()
    leaks = [w for w in caught if issubclass(w.category, ResourceWarning)]
    assert leaks == []


@contextlib.contextmanager
def _plain_relay(*, smtputf8: bool) -> Iterator[tuple[RelaySink, SmtpTransport]]:
    """An aiosmtpd relay (offering SMTPUTF8 or not) and a transport to it."""
    sink, controller = start_relay(smtputf8=smtputf8)
    transport = SmtpTransport(RelaySettings(port=sink.port, security="none", timeout=10.0))
    try:
        yield sink, transport
    finally:
        transport.close()
        controller.stop()


@pytest.mark.parametrize("smtputf8", [False, True])
def test_non_ascii_addresses_are_delivered_or_refused_for_good(smtputf8: bool) -> None:
    with _plain_relay(smtputf8=smtputf8) as (sink, transport):
        # A non-ASCII domain goes in its IDNA form, which every relay takes.
        transport.deliver("support@irex.example", ["admin@bücher.example"], _raw(0, "idna"))
        # A non-ASCII local part needs SMTPUTF8 (RFC 6531).
        if smtputf8:
            transport.deliver("support@irex.example", ["jürgen@acme.example"], _raw(1, "utf8"))
        else:
            with pytest.raises(DeliveryError, match="does not offer SMTPUTF8") as refused:
                transport.deliver("support@irex.example", ["jürgen@acme.example"], _raw(1, "u"))
            assert refused.value.permanent
        transport.deliver("support@irex.example", ["ok@acme.example"], _raw(2, "next"))
    assert [r.rcpt_tos for r in sink.received] == [
        ["admin@xn--bcher-kva.example"],
        *([["jürgen@acme.example"]] if smtputf8 else []),
        ["ok@acme.example"],
    ]


def test_an_address_that_cannot_be_written_fails_alone() -> None:
    """smtplib cannot write a lone surrogate even over SMTPUTF8. The half-open transaction
    is closed: the message after it is not refused as a nested MAIL."""
    with _plain_relay(smtputf8=True) as (sink, transport):
        with pytest.raises(DeliveryError, match="cannot send to") as failed:
            transport.deliver("support@irex.example", ["a\udcff@acme.example"], _raw(0, "bad"))
        assert failed.value.permanent
        transport.deliver("support@irex.example", ["ok@acme.example"], _raw(1, "after"))
    assert [r.rcpt_tos for r in sink.received] == [["ok@acme.example"]]


# ------------------------------------------------------------------ retries


def test_backoff_grows_exponentially_and_is_capped(
    make_app: Any, scripted: ScriptedRelaySink
) -> None:
    app = relay_app(
        make_app, scripted.port, backoff_initial=10.0, backoff_max=40.0, max_attempts=10
    )
    [outbox_id] = queue_rows(app.db, 1)
    scripted.data_replies = ["451 4.3.0 try again later"] * 6
    transport = SmtpTransport(app.settings.outbox.relay)
    sender = OutboxSender(app.db, app.settings.outbox, transport, "t1")
    now = T0
    delays = []
    for attempt in range(1, 7):
        result = sender.drain(now)
        assert result.retried == 1, attempt
        r = row(app.db, outbox_id)
        assert r.attempts == attempt and r.state == "pending"
        assert r.next_attempt_at is not None
        delay = (r.next_attempt_at - now).total_seconds()
        base = min(10.0 * 2 ** (attempt - 1), 40.0)  # 10, 20, 40, 40, 40, 40
        assert 0.9 * base <= delay <= 1.1 * base, (attempt, delay)
        delays.append(delay)
        # Not due a second before its time: nothing is tried.
        assert sender.drain(r.next_attempt_at - dt.timedelta(seconds=1)).retried == 0
        assert row(app.db, outbox_id).attempts == attempt
        now = r.next_attempt_at
    assert delays[1] > delays[0] * 1.5 and delays[2] > delays[1] * 1.5  # it grows ...
    assert max(delays) <= 44.0  # ... and stops growing at the cap (+10% jitter)
    # The relay accepts now: the seventh attempt delivers.
    assert sender.drain(now).sent == 1
    transport.close()
    attempts = attempts_of(app.db, outbox_id)
    assert [a.ok for a in attempts] == [False] * 6 + [True]
    assert all("451" in (a.error or "") for a in attempts[:6]) and attempts[6].error is None
    assert row(app.db, outbox_id).state == "sent"


def test_backoff_function_bounds() -> None:
    settings = OutboxSettings(backoff_initial=30.0, backoff_max=3600.0)
    rng = random.Random(7)
    for attempts in range(1, 20):
        base = min(30.0 * 2 ** (attempts - 1), 3600.0)
        for _ in range(50):
            assert 0.9 * base <= backoff(settings, attempts, rng) <= 1.1 * base


def test_permanent_5xx_fails_at_once(lite_app: Any, scripted: ScriptedRelaySink) -> None:
    app = relay_app(lite_app, scripted.port, max_attempts=10)
    data_id, rcpt_id = queue_rows(app.db, 2)
    scripted.data_replies = ["554 5.7.1 Message rejected as spam"]
    scripted.refuse_rcpt = {"customer1@acme.example": "550 5.1.1 No such user"}
    transport = SmtpTransport(app.settings.outbox.relay)
    sender = OutboxSender(app.db, app.settings.outbox, transport, "t1")
    result = sender.drain(T0)
    assert (result.sent, result.retried, result.failed) == (0, 0, 2)
    for outbox_id, code in ((data_id, "554"), (rcpt_id, "550")):
        r = row(app.db, outbox_id)
        assert (r.state, r.attempts) == ("failed", 1)
        assert code in (r.last_error or "")
        [attempt] = attempts_of(app.db, outbox_id)
        assert not attempt.ok and code in (attempt.error or "")
    # Failed rows are never tried again.
    assert sender.drain(T0 + dt.timedelta(days=2)) == type(result)(0, 0, 0)
    transport.close()
    assert scripted.received == []


def test_max_attempts_marks_failed_and_every_attempt_is_recorded(
    make_app: Any, scripted: ScriptedRelaySink
) -> None:
    app = relay_app(make_app, scripted.port, max_attempts=3, backoff_initial=1.0, backoff_max=2.0)
    [outbox_id] = queue_rows(app.db, 1)
    scripted.data_replies = ["451 4.3.0 busy (1)", "452 4.3.1 full (2)", "421 4.4.2 bye (3)"]
    transport = SmtpTransport(app.settings.outbox.relay)
    sender = OutboxSender(app.db, app.settings.outbox, transport, "t9")
    outcomes = []
    now = T0
    for _ in range(3):
        res = sender.drain(now)
        outcomes.append((res.retried, res.failed))
        now += dt.timedelta(seconds=10)
    assert outcomes == [(1, 0), (1, 0), (0, 1)]
    r = row(app.db, outbox_id)
    assert (r.state, r.attempts) == ("failed", 3)
    assert "421" in (r.last_error or "")
    attempts = attempts_of(app.db, outbox_id)
    assert [a.ok for a in attempts] == [False, False, False]
    assert [
        "(1)" in (attempts[0].error or ""),
        "(2)" in (attempts[1].error or ""),
        "(3)" in (attempts[2].error or ""),
    ] == [True, True, True]
    assert {a.owner for a in attempts} == {"t9"} and {a.transport for a in attempts} == {"smtp"}
    # Given up: the relay would accept now, but the row is not tried again.
    assert sender.drain(now + dt.timedelta(hours=1)).sent == 0
    transport.close()
    assert scripted.received == []


def test_unreachable_relay_is_a_temporary_failure(lite_app: Any) -> None:
    app = relay_app(lite_app, free_port(), max_attempts=5)
    [outbox_id] = queue_rows(app.db, 1)
    transport = SmtpTransport(app.settings.outbox.relay)
    result = OutboxSender(app.db, app.settings.outbox, transport, "t1").drain(T0)
    transport.close()
    assert result.retried == 1
    r = row(app.db, outbox_id)
    assert r.state == "pending" and r.attempts == 1 and r.last_error
    assert attempts_of(app.db, outbox_id)[0].error == r.last_error


# ------------------------------------------------------------------ leases


def test_lapsed_lease_of_a_crashed_sender_is_picked_up(app: App, tmp_path: Path) -> None:
    now = dt.datetime.now(dt.UTC)
    crashed, live = queue_rows(app.db, 2, now=now - dt.timedelta(minutes=10))
    with app.db.transaction() as s:
        s.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == crashed)
            .values(lease_owner="dead-host:4242", lease_until=now - dt.timedelta(seconds=1))
        )
        s.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == live)
            .values(lease_owner="busy-host:1", lease_until=now + dt.timedelta(minutes=5))
        )
    transport = MaildirTransport(tmp_path / "box")
    result = OutboxSender(app.db, app.settings.outbox, transport, "rescuer:1").drain(now)
    assert result.sent == 1
    r = row(app.db, crashed)
    assert r.state == "sent" and r.lease_owner is None
    assert [a.owner for a in attempts_of(app.db, crashed)] == ["rescuer:1"]
    # The row another sender holds a live lease on is left to it.
    r = row(app.db, live)
    assert (r.state, r.lease_owner, r.attempts) == ("pending", "busy-host:1", 0)
    assert len(list((tmp_path / "box" / "new").iterdir())) == 1


def test_a_rescheduled_row_is_not_claimed_from_a_stale_list(
    lite_app: Any, scripted: ScriptedRelaySink
) -> None:
    app = relay_app(lite_app, scripted.port, backoff_initial=60.0)
    [outbox_id] = queue_rows(app.db, 1)
    scripted.data_replies = ["451 4.3.0 busy"]
    ta, tb = SmtpTransport(app.settings.outbox.relay), SmtpTransport(app.settings.outbox.relay)
    a = OutboxSender(app.db, app.settings.outbox, ta, "a")
    b = OutboxSender(app.db, app.settings.outbox, tb, "b")
    stale = b._due_ids(T0, 10)  # B lists the due rows ...
    assert stale == [outbox_id]
    assert a.drain(T0).retried == 1  # ... A tries the row, fails, reschedules it 60 s on
    claimed = b._claim(stale, T0)  # ... and B goes through its list.
    ta.close()
    tb.close()
    assert claimed == []


def test_flush_with_a_future_now_does_not_steal_a_live_lease(lite_app: Any, tmp_path: Path) -> None:
    app = lite_app()
    real_now = dt.datetime.now(dt.UTC)
    [outbox_id] = queue_rows(app.db, 1, now=real_now)
    with app.db.transaction() as s:
        s.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == outbox_id)
            .values(lease_owner="serve:1", lease_until=real_now + dt.timedelta(minutes=5))
        )
    transport = MaildirTransport(tmp_path / "box")
    result = OutboxSender(app.db, app.settings.outbox, transport, "flush:2").drain(
        real_now + dt.timedelta(days=1)
    )
    assert result.sent == 0


# ------------------------------------------------------------------ many senders

N_ROWS = 200


def _check_each_row_sent_once(db: Database, sink: RelaySink, tag: str, n: int) -> set[str]:
    sink.wait_for(n, timeout=30)
    counts = Counter(received_ids(sink))
    twice = {mid: k for mid, k in counts.items() if k > 1}
    assert not twice, f"sent more than once: {twice}"
    assert set(counts) == {f"{tag}-{i}@irex.example" for i in range(n)}
    with db.transaction() as s:
        states = dict(
            s.execute(select(OutboxMessage.state, func.count()).group_by(OutboxMessage.state)).all()
        )
        assert states == {"sent": n}
        assert s.scalar(select(func.max(OutboxMessage.attempts))) == 1
        assert s.scalar(select(func.count()).select_from(OutboxAttempt)) == n
        owners = set(s.scalars(select(OutboxAttempt.owner).distinct()))
    return {o for o in owners if o}


def _start_threads(
    url: str, port: int, owners: list[str], go: threading.Event
) -> tuple[list[threading.Thread], list[Any]]:
    """One OutboxSender per owner, each with its own Database, waiting for ``go``."""
    settings = OutboxSettings(
        transport="smtp",
        relay=RelaySettings(port=port, security="none", timeout=10.0),
        batch_size=20,
    )
    results: list[Any] = [None] * len(owners)
    ready = threading.Barrier(len(owners) + 1)

    def work(i: int) -> None:
        db = Database(url)
        transport = SmtpTransport(settings.relay)
        try:
            with db.engine.connect():
                pass  # connect before the start signal
            ready.wait(timeout=30)
            if not go.wait(timeout=30):
                raise TimeoutError("no start signal")
            results[i] = OutboxSender(db, settings, transport, owners[i]).drain()
        except BaseException as exc:
            results[i] = exc
        finally:
            transport.close()
            db.dispose()

    threads = [threading.Thread(target=work, args=(i,), daemon=True) for i in range(len(owners))]
    for t in threads:
        t.start()
    ready.wait(timeout=30)
    return threads, results


def _join(threads: list[threading.Thread], results: list[Any]) -> int:
    for t in threads:
        t.join(timeout=60)
        assert not t.is_alive(), "a sender thread hangs"
    for r in results:
        assert not isinstance(r, BaseException), repr(r)
    return sum(r.sent for r in results)


def test_sqlite_senders_in_threads_never_send_a_row_twice(
    sqlite_url: str, relay: RelaySink
) -> None:
    db = Database(sqlite_url)
    try:
        queue_rows(db, 100, tag="lite")
        go = threading.Event()
        owners = [f"t{i}" for i in range(4)]
        threads, results = _start_threads(sqlite_url, relay.port, owners, go)
        go.set()
        assert _join(threads, results) == 100
        _check_each_row_sent_once(db, relay, "lite", 100)
    finally:
        db.dispose()


SENDER_PROCESS = r"""
import json, sys
from mailgate.config import OutboxSettings, RelaySettings, parse_settings
from mailgate.db.engine import Database
from mailgate.outbox import OutboxSender, SmtpTransport

url, port, owner = sys.argv[1], int(sys.argv[2]), sys.argv[3]
settings = OutboxSettings(
    transport="smtp", relay=RelaySettings(port=port, security="none", timeout=10.0),
    batch_size=20,
)
db = Database(url)
with db.engine.connect():
    pass
transport = SmtpTransport(settings.relay)
print("ready", flush=True)
sys.stdin.readline()
try:
    result = OutboxSender(db, settings, transport, owner).drain()
finally:
    transport.close()
    db.dispose()
print(json.dumps({"sent": result.sent, "retried": result.retried, "failed": result.failed}))
"""


def _readline(proc: subprocess.Popen[bytes], timeout: float) -> bytes:
    assert proc.stdout is not None
    ready, _, _ = select_mod.select([proc.stdout], [], [], timeout)
    assert ready, "the sender process did not answer in time"
    line = proc.stdout.readline()
    if not line:  # it died: show why
        proc.wait(timeout=10)
        assert proc.stderr is not None
        raise AssertionError(proc.stderr.read().decode())
    return line


@pytest.mark.postgres
def test_several_senders_on_one_postgresql_never_send_a_row_twice(
    pg_url: str, relay: RelaySink
) -> None:
    """200 due rows; 4 senders in threads and 2 in separate processes, each with its own
    Database on the same PostgreSQL, started at the same instant, all delivering to one
    real SMTP sink: every row arrives exactly once and ends ``sent``."""
    _truncate_pg(pg_url)
    db = Database(pg_url)
    try:
        queue_rows(db, N_ROWS, tag="many")
        env = {k: v for k, v in os.environ.items() if k != "MAILGATE_CONFIG"}
        env["PYTHONPATH"] = str(ROOT)
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", SENDER_PROCESS, pg_url, str(relay.port), f"process-{i}"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=env,
            )
            for i in range(2)
        ]
        threads: list[threading.Thread] = []
        try:
            for p in procs:
                assert _readline(p, 30).strip() == b"ready"
            go = threading.Event()
            owners = [f"thread-{i}" for i in range(4)]
            threads, results = _start_threads(pg_url, relay.port, owners, go)
            for p in procs:  # everyone starts at once
                assert p.stdin is not None
                p.stdin.write(b"go\n")
                p.stdin.flush()
            go.set()
            outputs = [p.communicate(timeout=60) for p in procs]
        finally:
            for p in procs:
                if p.poll() is None:
                    p.kill()
                    p.communicate()
        by_threads = _join(threads, results)
        for p, (_, err) in zip(procs, outputs, strict=True):
            assert p.returncode == 0, err.decode()
        by_processes = sum(
            json.loads(out.decode().strip().splitlines()[-1])["sent"] for out, _ in outputs
        )
        assert by_threads + by_processes == N_ROWS
        used = _check_each_row_sent_once(db, relay, "many", N_ROWS)
        assert used <= {*owners, "process-0", "process-1"}
        assert len(used) >= 2, "only one sender did any work: the race was not exercised"
    finally:
        db.dispose()


class _SlowTransport:
    """Maildir delivery that takes ``seconds`` a message (a relay near its timeout)."""

    name = "slow"

    def __init__(self, folder: Path, seconds: float) -> None:
        self.inner = MaildirTransport(folder)
        self.seconds = seconds

    def deliver(self, mail_from: str, recipients: list[str], raw: bytes) -> None:
        threading.Event().wait(self.seconds)
        self.inner.deliver(mail_from, recipients, raw)

    def close(self) -> None:
        return None


def test_a_batch_never_starts_a_row_past_half_its_lease(lite_app: Any, tmp_path: Path) -> None:
    """A claimed batch is delivered one row at a time; once half the lease is gone the
    remaining rows are released untouched, so a slow relay cannot outlive the lease and
    let a second sender send a row this one is still sending."""
    app = lite_app({"outbox": {"lease_seconds": 0.4, "batch_size": 5}})
    ids = queue_rows(app.db, 5)
    sender = OutboxSender(app.db, app.settings.outbox, _SlowTransport(tmp_path / "box", 0.25), "a")
    first = sender.drain(T0, limit=5)
    assert (first.sent, first.retried, first.failed) == (1, 0, 0)
    states = [(row(app.db, i).state, row(app.db, i).lease_owner) for i in ids]
    assert states == [("sent", None)] + [("pending", None)] * 4
    assert [len(attempts_of(app.db, i)) for i in ids] == [1, 0, 0, 0, 0]
    # Released rows are due again at once: the next passes send them all.
    fast = OutboxSender(app.db, app.settings.outbox, MaildirTransport(tmp_path / "box"), "b")
    assert fast.drain(T0).sent == 4
    assert len(list((tmp_path / "box" / "new").iterdir())) == 5
