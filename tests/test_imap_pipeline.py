"""IMAP intake end to end: mail in a real Dovecot becomes tickets and acknowledgements.

``mailgate poll --once`` (in process through ``poll_mailboxes``, and as the real command in
a subprocess) and ``mailgate serve`` (in process with ``attach_pollers``, and as the real
command) drain a private Dovecot into the inbox, processing what they store. Every test
runs on SQLite and on PostgreSQL unless it says otherwise. The crashes are real: a
``mailgate poll --once`` process SIGKILLed right after a commit, or right after the batch
was marked on the server, then a second pass.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import json
import logging
import re
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from mailgate import cli
from mailgate.app import App
from mailgate.config import usable_cores
from mailgate.db.models import ImapCursor, InboxItem, OutboxMessage, Ticket
from mailgate.ingest import pipeline
from mailgate.ingest.imap import ImapMailbox, PollResult
from mailgate.ingest.imap_service import InboxSink, attach_pollers, fit_origin, poll_mailboxes
from mailgate.ingest.workers import ProcessPool
from mailgate.model import ParsedMail
from mailgate.policy.facts import Facts
from mailgate.policy.rule import Hit
from tests.conftest import RunningGateway, add_subscription
from tests.support.dovecot import (
    DovecotServer,
    MailboxHandle,
    message_id_of,
    sample_message,
    wait_for,
)
from tests.support.imap_sink import inbox_app
from tests.support.mailtools import free_port, make_mail, toml_value

pytestmark = pytest.mark.dovecot

REPO = Path(__file__).resolve().parents[1]
IMAP_LOGGER = "mailgate.ingest.imap"


# -- helpers ------------------------------------------------------------------------------


def requests(count: int, tag: str) -> list[bytes]:
    """Support requests from a registered contact of SUB-12345 (each becomes a ticket)."""
    return [
        make_mail(
            subject=f"[SUB-12345] [L3] {tag} request {n}: the installer stops",
            message_id=f"{tag}-{n}-{time.time_ns()}@acme.example",
        )
        for n in range(1, count + 1)
    ]


def ids(raws: list[bytes]) -> list[str]:
    return sorted(message_id_of(raw) for raw in raws)


def count(app: App, model: Any, *where: Any) -> int:
    with app.db.transaction() as session:
        return int(session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


def acks(app: App) -> list[OutboxMessage]:
    with app.db.transaction() as session:
        return list(
            session.scalars(
                select(OutboxMessage).where(OutboxMessage.kind == "ack").order_by(OutboxMessage.id)
            )
        )


def inbox_rows(app: App) -> list[InboxItem]:
    with app.db.transaction() as session:
        return list(session.scalars(select(InboxItem).order_by(InboxItem.id)))


def stored_message_ids(app: App) -> list[str]:
    return sorted(f"<{row.message_id}>" for row in inbox_rows(app) if row.message_id)


def mailbox_config(mailbox: ImapMailbox) -> dict[str, Any]:
    return {k: v for k, v in dataclasses.asdict(mailbox).items() if v is not None}


def imap_app(make_app: Any, *mailboxes: ImapMailbox, **config: Any) -> App:
    """An App with these mailboxes configured and SUB-12345 registered for acme.example."""
    app: App = make_app({"imap": {"mailboxes": [mailbox_config(m) for m in mailboxes]}, **config})
    add_subscription(app)
    return app


def exactly_one_ticket_and_ack_each(app: App, raws: list[bytes]) -> None:
    """Each message: one inbox row, done, with one ticket and one acknowledgement."""
    rows = inbox_rows(app)
    assert stored_message_ids(app) == ids(raws)
    assert [r.status for r in rows] == ["done"] * len(raws)
    assert [r.outcome for r in rows] == ["ticket_created"] * len(raws)
    assert count(app, Ticket) == len(raws)
    sent = acks(app)
    assert len(sent) == len(raws)
    assert sorted(a.ticket_id for a in sent) == sorted(r.ticket_id for r in rows)
    assert all(a.recipients == ["jane@acme.example"] for a in sent)


def write_config(
    path: Path,
    app: App,
    *mailboxes: ImapMailbox,
    log_level: str = "INFO",
    workers: int | str = 1,
) -> Path:
    """A config file for a ``mailgate`` subprocess on the same database as ``app``."""
    lines = [
        "[processing]",
        f"workers = {toml_value(workers)}",
        "[database]",
        f"url = {toml_value(app.settings.database.url)}",
        "auto_migrate = false",
        "[smtp]",
        "port = 0",
        "[outbox]",
        f"maildir = {toml_value(app.settings.outbox.maildir)}",
        "[digest]",  # a digest falling due mid-test would add outbox rows
        "enabled = false",
        "[logging]",
        f"level = {toml_value(log_level)}",
    ]
    for mailbox in mailboxes:
        lines.append("[[imap.mailboxes]]")
        lines += [f"{k} = {toml_value(v)}" for k, v in mailbox_config(mailbox).items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def mailgate(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run the real ``mailgate`` command line in a subprocess."""
    return subprocess.run(
        [sys.executable, "-m", "mailgate", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def settle_into_idle(caplog: pytest.LogCaptureFixture, sessions: int) -> None:
    """Wait until the poller has caught up in its n-th session, and a moment more.

    The tests append once the poller is in IDLE, so that each one exercises IDLE itself
    (the NOOP that catches mail arriving just before IDLE is tested in test_imap.py).
    """

    def caught_up() -> bool:
        return sum("caught up" in r.getMessage() for r in caplog.records) >= sessions

    assert wait_for(caught_up, timeout=15)
    time.sleep(0.5)


@contextlib.contextmanager
def serving(app: App) -> Iterator[RunningGateway]:
    """The gateway (``mailgate serve``) in a thread, with its IMAP pollers attached."""
    gateway = RunningGateway(app)
    assert attach_pollers(gateway.gateway) == len(app.settings.imap.mailboxes)
    gateway.start()
    try:
        yield gateway
    finally:
        gateway.stop()


# -- new mail becomes tickets -------------------------------------------------------------


@pytest.mark.parametrize("after", ["move", "seen"])
def test_new_mail_becomes_tickets_and_acknowledgements(
    make_app: Any, imap_mailbox: MailboxHandle, after: str
) -> None:
    raws = requests(3, "new")
    imap_mailbox.append(*raws)
    app = imap_app(make_app, imap_mailbox.settings(after=after))

    report = poll_mailboxes(app)

    assert [m.result for m in report.mailboxes] == [PollResult(3, 3, 0, 0)]
    assert report.ok and report.outcomes() == {"ticket_created": 3}
    exactly_one_ticket_and_ack_each(app, raws)
    rows = inbox_rows(app)
    assert [r.source for r in rows] == ["imap"] * 3
    assert all(f"/{imap_mailbox.folder};UIDVALIDITY=" in (r.origin or "") for r in rows)
    assert [r.raw for r in rows] == raws  # the bytes exactly as the server had them
    # The acknowledgement answers the message it acknowledges.
    by_ticket = {r.ticket_id: r.message_id for r in rows}
    for ack in acks(app):
        assert f"In-Reply-To: <{by_ticket[ack.ticket_id]}>".encode() in ack.raw
    if after == "move":
        assert imap_mailbox.count() == 0
        assert imap_mailbox.message_ids(imap_mailbox.move_to) == ids(raws)
    else:
        flags = imap_mailbox.flags()
        assert len(flags) == 3 and all(b"\\Seen" in f for f in flags.values())
        assert imap_mailbox.count(imap_mailbox.move_to) == 0
    with app.db.transaction() as session:
        cursor = session.scalar(select(ImapCursor))
        assert cursor is not None and (cursor.folder, cursor.last_uid) == (imap_mailbox.folder, 3)

    # A second pass finds nothing new and changes nothing.
    again = poll_mailboxes(app)
    assert [m.result for m in again.mailboxes] == [PollResult()] and again.results == []
    exactly_one_ticket_and_ack_each(app, raws)


def test_a_poll_that_finds_no_new_mail_starts_no_worker_process(
    make_app: Any, imap_mailbox: MailboxHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Children are started with the first batch to classify: most runs of poll --once
    from cron find nothing, and paid for starting (and stopping) the pool."""
    started: list[int] = []
    real_start = ProcessPool.start

    def start(pool: ProcessPool) -> None:
        started.append(pool.size)
        real_start(pool)

    monkeypatch.setattr(ProcessPool, "start", start)
    app = imap_app(make_app, imap_mailbox.settings(), processing={"workers": 1})
    assert poll_mailboxes(app).results == [] and started == []
    imap_mailbox.append(*requests(2, "lazy"))
    assert poll_mailboxes(app).outcomes() == {"ticket_created": 2} and started == [1]


def test_poll_once_command_prints_counts(
    make_app: Any, imap_mailbox: MailboxHandle, tmp_path: Path
) -> None:
    raws = requests(2, "command")
    refused = make_mail(
        sender="Mallory <mallory@unknown.example>", message_id=f"refused-{time.time_ns()}@x.y"
    )
    imap_mailbox.append(*raws, refused)
    settings = imap_mailbox.settings()
    app = imap_app(make_app, settings)
    config = write_config(tmp_path / "mailgate.toml", app, settings)

    done = mailgate("--config", str(config), "poll", "--once", "--json",
                    "--now", "2026-11-23T08:00:00Z")  # fmt: skip

    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["mailboxes"] == [
        {"name": settings.name, "folder": settings.folder, "fetched": 3, "stored": 3,
         "duplicates": 0, "quarantined": 0, "error": None}
    ]  # fmt: skip
    assert report["processed"] == 3
    assert report["outcomes"] == {"rejected": 1, "ticket_created": 2}
    assert report["processing_errors"] == 0
    assert count(app, Ticket) == 2
    assert len(acks(app)) == 2
    assert count(app, OutboxMessage, OutboxMessage.kind == "rejection") == 1
    # --now is the time the mail counts as received (and processed).
    now = dt.datetime(2026, 11, 23, 8, 0, tzinfo=dt.UTC)
    assert {r.received_at for r in inbox_rows(app)} == {now}

    text = mailgate("--config", str(config), "poll", "--once")
    assert text.returncode == 0, text.stderr
    assert text.stdout.splitlines() == [
        f"{settings.name} ({settings.folder}): fetched 0, stored 0, duplicates 0, quarantined 0",
        "processed 0",
    ]


def test_poll_command_refuses_what_it_cannot_do(
    make_app: Any, imap_mailbox: MailboxHandle, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = imap_mailbox.settings()
    app = imap_app(make_app, settings)
    config = str(write_config(tmp_path / "mailgate.toml", app, settings))
    bare = str(write_config(tmp_path / "bare.toml", app))

    assert cli.main(["--config", config, "poll"]) == cli.EX_USAGE
    assert "give --once" in capsys.readouterr().err
    assert cli.main(["--config", config, "poll", "--once", "--mailbox", "nope"]) == cli.EX_USAGE
    assert "no mailbox named nope" in capsys.readouterr().err
    assert cli.main(["--config", bare, "poll", "--once"]) == cli.EX_CONFIG
    assert "no [[imap.mailboxes]]" in capsys.readouterr().err


def test_one_unreachable_mailbox_does_not_stop_the_others(
    make_app: Any, imap_mailbox: MailboxHandle, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    raws = requests(2, "reachable")
    imap_mailbox.append(*raws)
    down = imap_mailbox.settings(name="down", port=free_port(), timeout=5.0)
    good = imap_mailbox.settings()
    app = imap_app(make_app, down, good)
    config = str(write_config(tmp_path / "mailgate.toml", app, down, good))

    status = cli.main(["--config", config, "poll", "--once", "--json"])

    report = json.loads(capsys.readouterr().out)
    assert status == cli.EX_TEMPFAIL  # 75: the next run tries the unreachable one again
    [failed, ok] = report["mailboxes"]
    assert failed["name"] == "down" and "ConnectionRefusedError" in failed["error"]
    assert (ok["stored"], ok["error"]) == (2, None)
    exactly_one_ticket_and_ack_each(app, raws)


def test_a_missing_password_variable_is_a_config_error_before_any_poll(
    make_app: Any, imap_mailbox: MailboxHandle, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MAILGATE_TEST_NO_SUCH_PASSWORD", raising=False)
    imap_mailbox.append(*requests(1, "no-password"))
    good = imap_mailbox.settings()
    broken = imap_mailbox.settings(
        name="broken", password="", password_env="MAILGATE_TEST_NO_SUCH_PASSWORD"
    )
    app = imap_app(make_app, good, broken)
    config = str(write_config(tmp_path / "mailgate.toml", app, good, broken))

    assert cli.main(["--config", config, "poll", "--once"]) == cli.EX_CONFIG
    assert count(app, InboxItem) == 0 and imap_mailbox.count() == 1  # nothing was touched


# -- crashes -------------------------------------------------------------------------------

# `mailgate poll --once` that SIGKILLs itself at a chosen point, as a crash would:
# "after-commit": right after the fetched messages are committed (together, in one
# transaction), before anything is marked on the server; "after-mark": the batch is
# marked and claimed for processing, and the 2nd message is being classified (the 1st is
# classified, not written yet).
KILLED_POLL = textwrap.dedent(
    """
    import os, signal, sys
    from mailgate import cli
    from mailgate.ingest import imap_service, pipeline

    config, point = sys.argv[1], sys.argv[2]
    calls = 0

    def call_dies(real, n, after):
        def wrapper(*args, **kwargs):
            global calls
            calls += 1
            result = real(*args, **kwargs) if after else None
            if calls == n:
                os.kill(os.getpid(), signal.SIGKILL)
            return result if after else real(*args, **kwargs)
        return wrapper

    if point == "after-commit":
        imap_service.store_raw_batch = call_dies(imap_service.store_raw_batch, 1, after=True)
    else:
        pipeline.decide = call_dies(pipeline.decide, 2, after=False)
    sys.exit(cli.main(["--config", config, "poll", "--once"]))
    """
)


@pytest.mark.parametrize("point", ["after-commit", "after-mark"])
def test_poll_killed_mid_run_then_run_again_gives_one_ticket_and_ack_each(
    make_app: Any, imap_mailbox: MailboxHandle, tmp_path: Path, point: str
) -> None:
    raws = requests(4, f"killed-{point}")
    imap_mailbox.append(*raws)
    settings = imap_mailbox.settings()
    app = imap_app(make_app, settings)
    # Classified in the process itself, so the kill hits it mid-classification.
    config = str(write_config(tmp_path / "mailgate.toml", app, settings, workers=0))

    killed = subprocess.run(
        [sys.executable, "-c", KILLED_POLL, config, point],
        cwd=REPO, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip

    assert killed.returncode == -signal.SIGKILL, killed.stderr
    pending = count(app, InboxItem, InboxItem.status == "pending")
    if point == "after-commit":
        assert (count(app, InboxItem), pending) == (4, 4)  # committed before the kill ...
        assert imap_mailbox.count() == 4  # ... but nothing was marked on the server
        assert count(app, Ticket) == 0
    else:
        claimed = count(app, InboxItem, InboxItem.status == "processing")
        assert (count(app, InboxItem), claimed) == (4, 4)  # claimed by the dead process
        assert imap_mailbox.count() == 0  # all marked; nothing written yet
        assert count(app, Ticket) == 0 and len(acks(app)) == 0

    done = mailgate("--config", config, "poll", "--once", "--json")

    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    [mailbox] = report["mailboxes"]
    if point == "after-commit":
        assert (mailbox["fetched"], mailbox["stored"], mailbox["duplicates"]) == (4, 0, 4)
        assert report["outcomes"] == {"ticket_created": 4}
    else:
        assert mailbox["fetched"] == 0  # everything was marked before the kill
        # The dead process's claims are taken over at once, not after the lease.
        assert report["outcomes"] == {"ticket_created": 4}
    exactly_one_ticket_and_ack_each(app, raws)
    assert imap_mailbox.count() == 0
    assert imap_mailbox.message_ids(imap_mailbox.move_to) == ids(raws)


def test_uidvalidity_change_imports_nothing_twice(
    make_app: Any, imap_mailbox: MailboxHandle, dovecot: DovecotServer
) -> None:
    settings = imap_mailbox.settings(after="seen")
    app = imap_app(make_app, settings)
    with_ids = requests(4, "validity")
    # No Message-ID: the inbox dedupes it by the SHA-256 of its bytes.
    without_id = b"\r\n".join(
        line for line in requests(1, "no-id")[0].split(b"\r\n")
        if not line.lower().startswith(b"message-id:")
    )  # fmt: skip
    first = [*with_ids, without_id]
    imap_mailbox.append(*first)
    assert poll_mailboxes(app).outcomes() == {"ticket_created": 5}

    new_validity = dovecot.change_uidvalidity(imap_mailbox.folder)
    # The server also "forgot" the flags (as a restore would): everything looks new again.
    with imap_mailbox.connect() as client:
        client.select_folder(imap_mailbox.folder)
        client.remove_flags(client.search(["ALL"]), [r"\Seen"])
    later = requests(2, "validity-later")
    imap_mailbox.append(*later)

    report = poll_mailboxes(app)

    assert [m.result for m in report.mailboxes] == [PollResult(7, 2, 5, 0)]
    assert report.outcomes() == {"ticket_created": 2}
    assert count(app, InboxItem) == 7
    assert count(app, InboxItem, InboxItem.message_id.is_(None)) == 1
    assert count(app, Ticket) == 7 and len(acks(app)) == 7
    with app.db.transaction() as session:
        cursor = session.scalar(select(ImapCursor))
        assert cursor is not None and (cursor.uidvalidity, cursor.last_uid) == (new_validity, 7)


def test_mailbox_restored_from_backup_imports_nothing_twice(
    make_app: Any, imap_mailbox: MailboxHandle, dovecot: DovecotServer
) -> None:
    settings = imap_mailbox.settings()
    app = imap_app(make_app, settings)
    old = requests(3, "restored")
    imap_mailbox.append(*old)
    assert poll_mailboxes(app).outcomes() == {"ticket_created": 3}
    # The restore brings the processed mail back, under a new UIDVALIDITY and new UIDs.
    imap_mailbox.append(*old)
    dovecot.recreate_mailbox(imap_mailbox.folder)
    new = requests(2, "restored-new")
    imap_mailbox.append(*new)

    report = poll_mailboxes(app)

    assert [m.result for m in report.mailboxes] == [PollResult(5, 2, 3, 0)]
    exactly_one_ticket_and_ack_each(app, old + new)
    assert imap_mailbox.count() == 0


# -- serve ---------------------------------------------------------------------------------


def test_serve_reconnects_after_a_dovecot_restart_during_idle(
    make_app: Any,
    imap_mailbox: MailboxHandle,
    dovecot: DovecotServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger=IMAP_LOGGER)
    app = imap_app(make_app, imap_mailbox.settings(idle=True, poll_interval=3600.0))
    before, meanwhile, after = requests(3, "restart")
    with serving(app):
        settle_into_idle(caplog, sessions=1)
        imap_mailbox.append(before)
        assert wait_for(lambda: count(app, Ticket) == 1, timeout=15)
        time.sleep(0.5)  # the poller is in IDLE again

        dovecot.stop()
        dovecot.deliver(imap_mailbox.folder, meanwhile)  # arrives while the server is down
        dovecot.start()
        assert wait_for(lambda: count(app, Ticket) == 2, timeout=15), stored_message_ids(app)
        settle_into_idle(caplog, sessions=2)
        imap_mailbox.append(after)
        assert wait_for(lambda: count(app, Ticket) == 3, timeout=15), stored_message_ids(app)
        sent = OutboxMessage.state == "sent"
        assert wait_for(lambda: count(app, OutboxMessage, sent) == 3, timeout=15)
    exactly_one_ticket_and_ack_each(app, [before, meanwhile, after])
    assert imap_mailbox.count() == 0
    messages = [r.getMessage() for r in caplog.records]
    assert any("failed" in m for m in messages) and any("retrying in" in m for m in messages)


def test_serve_command_runs_one_poller_per_mailbox(
    make_app: Any, imap_mailbox: MailboxHandle, tmp_path: Path
) -> None:
    first = imap_mailbox.settings(name="first", idle=True, poll_interval=3600.0)
    second_box = MailboxHandle.create(imap_mailbox.server, "second")
    second = second_box.settings(name="second", idle=False, poll_interval=0.2)
    app = imap_app(make_app, first, second)
    config = write_config(tmp_path / "mailgate.toml", app, first, second)
    waiting = requests(1, "waiting")  # there before the gateway starts
    imap_mailbox.append(*waiting)
    process = subprocess.Popen(
        [sys.executable, "-m", "mailgate", "--config", str(config), "serve"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert wait_for(lambda: count(app, Ticket) == 1, timeout=30)
        time.sleep(1.0)  # back in IDLE (see settle_into_idle)
        later = requests(2, "later")
        imap_mailbox.append(later[0])
        second_box.append(later[1])
        assert wait_for(lambda: count(app, Ticket) == 3, timeout=15)
        sent = OutboxMessage.state == "sent"
        assert wait_for(lambda: count(app, OutboxMessage, sent) == 3, timeout=15)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            _, stderr = process.communicate(timeout=30)
        finally:
            if process.poll() is None:
                process.kill()
            second_box.remove()
    assert process.returncode == 0, stderr
    exactly_one_ticket_and_ack_each(app, waiting + later)
    assert "imap first: stopped" in stderr and "imap second: stopped" in stderr
    assert len(list((Path(app.settings.outbox.maildir) / "new").iterdir())) == 3


# -- volume --------------------------------------------------------------------------------


def test_backlog_of_1000_is_drained_by_poll_once_exactly_once(
    sqlite_url: str, imap_mailbox: MailboxHandle, tmp_path: Path
) -> None:
    """SQLite only: this one is about volume, not about the database. With the default
    ``workers = "auto"``, poll --once (one thread) forks a child per core."""
    settings = imap_mailbox.settings(batch_size=100)
    app = inbox_app(sqlite_url, tmp_path)
    try:
        add_subscription(app, contacts=("@example.com",))
        raws = [sample_message(n, tag="SUB-12345") for n in range(1, 1001)]
        imap_mailbox.append(*raws)
        config = write_config(tmp_path / "mailgate.toml", app, settings, workers="auto")

        done = mailgate("--config", str(config), "poll", "--once", "--json", timeout=600)

        assert done.returncode == 0, done.stderr[-3000:]
        started = re.findall(r"processing worker \S+ started \((\w+)\)", done.stderr)
        assert started == ["fork"] * usable_cores()
        report = json.loads(done.stdout)
        assert report["mailboxes"][0]["fetched"] == 1000
        assert report["mailboxes"][0]["stored"] == 1000
        assert report["outcomes"] == {"ticket_created": 1000}
        assert stored_message_ids(app) == ids(raws)
        assert count(app, InboxItem, InboxItem.status == "done") == 1000
        assert count(app, Ticket) == 1000
        assert len({a.ticket_id for a in acks(app)}) == 1000
        assert imap_mailbox.count() == 0
        assert imap_mailbox.count(imap_mailbox.move_to) == 1000
    finally:
        app.close()


# -- broken messages -----------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class BrokenRule:
    """A policy rule with a bug: it raises on messages whose subject says [explode]."""

    name: str = "broken_for_the_test"
    clause: str = "TEST"

    def check(self, mail: ParsedMail, facts: Facts) -> Hit | None:
        if "[explode]" in mail.subject:
            raise RuntimeError("a bug in a rule (injected by the test)")
        return None


def test_broken_messages_do_not_stop_the_rest(
    make_app: Any, imap_mailbox: MailboxHandle, dovecot: DovecotServer
) -> None:
    good = requests(3, "good")
    explodes = make_mail(subject="[SUB-12345] [explode] breaks processing",
                         message_id=f"explodes-{time.time_ns()}@acme.example")  # fmt: skip
    imap_mailbox.append(good[0], explodes)
    dovecot.deliver(imap_mailbox.folder, b"")  # an empty file in the Maildir
    imap_mailbox.append(good[1], good[2])
    app = imap_app(make_app, imap_mailbox.settings(batch_size=2))
    app.chain = (BrokenRule(), *app.chain)

    report = poll_mailboxes(app)

    assert [m.result for m in report.mailboxes] == [PollResult(5, 4, 0, 1)]
    assert report.outcomes() == {"quarantined": 1, "ticket_created": 3}
    assert imap_mailbox.count() == 0
    assert list(imap_mailbox.messages(imap_mailbox.quarantine).values()) == [b""]
    assert imap_mailbox.message_ids(imap_mailbox.move_to) == ids([*good, explodes])
    # The message that broke processing is kept in the inbox with its traceback ...
    [kept] = [r for r in inbox_rows(app) if r.status == "quarantined"]
    assert report.quarantined_inbox_ids() == [kept.id]
    assert kept.raw == explodes and kept.error and "injected by the test" in kept.error
    assert count(app, Ticket) == 3
    # ... and becomes a ticket once the bug is gone (`mailgate inbox retry`).
    app.chain = tuple(r for r in app.chain if not isinstance(r, BrokenRule))
    [retried] = pipeline.retry_quarantined(app)
    assert retried.outcome == "ticket_created"
    exactly_one_ticket_and_ack_each(app, [*good, explodes])


def test_nul_in_headers_is_stored_on_both_databases_and_empty_mail_is_refused(
    make_app: Any,
) -> None:
    """PostgreSQL text cannot hold a NUL; the string columns replace it (U+FFFD), so such a
    message is stored like any other instead of failing on every retry. Dovecot never
    sends one (RFC 3501 forbids it), other servers might. An empty message is unusable:
    the sink refuses it (ValueError: the poller quarantines it on the server)."""
    app = make_app()
    sink = InboxSink(app)
    nul = make_mail(message_id=f"nul\x00-{time.time_ns()}@acme.example")
    assert sink.store(nul, source="imap", origin="imap://test/INBOX;UIDVALIDITY=1/;UID=1")
    assert count(app, InboxItem) == 1
    assert sink.store(requests(1, "after-nul")[0], source="imap", origin="imap://test/x")
    with pytest.raises(ValueError, match="empty"):
        sink.store(b" \r\n", source="imap", origin="imap://test/x")


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_unreachable_database_leaves_the_mail_on_the_server(
    imap_mailbox: MailboxHandle, tmp_path: Path, database: str
) -> None:
    url = {
        "sqlite": f"sqlite:///{tmp_path}/missing/dir/mailgate.db",
        "postgresql": f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/mailgate",
    }[database]
    raws = requests(2, "no-database")
    imap_mailbox.append(*raws)
    settings = imap_mailbox.settings()
    app = inbox_app(url, tmp_path, imap={"mailboxes": [mailbox_config(settings)]})
    try:
        report = poll_mailboxes(app)
    finally:
        app.close()

    [mailbox] = report.mailboxes
    assert mailbox.error is not None and mailbox.error.startswith("StoreError")
    assert mailbox.result == PollResult()
    assert not report.ok
    assert imap_mailbox.message_ids() == ids(raws)  # unmarked, fetched again next time
    assert imap_mailbox.count(imap_mailbox.quarantine) == 0


def test_long_folder_names_still_fit_the_origin_column(
    make_app: Any, dovecot: DovecotServer
) -> None:
    dovecot.start()  # in case a test before stopped it (a no-op when it runs)
    folder = "Support-" + "x" * 200
    handle = MailboxHandle(dovecot, folder, f"{folder}-Done", f"{folder}-Bad")
    with dovecot.connect() as client:
        client.create_folder(folder)
    try:
        raws = requests(1, "long-folder")
        handle.append(*raws)
        app = imap_app(make_app, handle.settings(name="long-folder"))
        assert poll_mailboxes(app).outcomes() == {"ticket_created": 1}
        [row] = inbox_rows(app)
        assert row.origin is not None and len(row.origin) <= 255
        assert row.origin.startswith("imap://mailgate@127.0.0.1:")
        assert row.origin.endswith(";UID=1") and "..." in row.origin
    finally:
        handle.remove()


def test_fit_origin_keeps_the_message_part() -> None:
    short = "imap://u@h:993/INBOX;UIDVALIDITY=1/;UID=2"
    assert fit_origin(short) == short
    long = "imap://u@h:993/" + "f" * 300 + ";UIDVALIDITY=1795758331/;UID=42"
    fitted = fit_origin(long)
    assert len(fitted) == 255 and fitted.endswith("...;UIDVALIDITY=1795758331/;UID=42")
    assert len(fit_origin("x" * 400)) == 255
