"""The IMAP poller against a real Dovecot: nothing lost, nothing repeated, nothing stuck.

Mail is put in place with IMAP APPEND (or, while the server is down, written straight
into the Maildir as a delivery agent would). The sink is mailgate's own ``InboxSink`` on
a real SQLite database (the inbox table, its dedupe key and the ``imap_cursors`` table),
instrumented by ``tests/support/imap_sink.py``; it stores only, so these tests are about
the poller. What processing makes of the mail, on SQLite and PostgreSQL, is in
``test_imap_pipeline.py``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import random
import signal
import ssl
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from mailgate.errors import ConfigError, ConfigValueError, StoreError
from mailgate.ingest.imap import (
    ImapMailbox,
    ImapPoller,
    ImapSecurityError,
    PollResult,
    _Backoff,
    blank,
)
from tests.support import dovecot as dovecot_harness
from tests.support.dovecot import (
    DovecotMissing,
    DovecotServer,
    MailboxHandle,
    message_id_of,
    sample_message,
    wait_for,
)
from tests.support.imap_sink import RecordingInboxSink, inbox_app

LOGGER = "mailgate.ingest.imap"
REPO = Path(__file__).resolve().parents[1]


class PollerKilled(BaseException):
    """Stands for the process dying: nothing in the poller may catch it."""


@pytest.fixture
def open_sink(tmp_path: Path, sqlite_url: str) -> Iterator[Callable[..., RecordingInboxSink]]:
    """Open sinks on the test's database, each with its own App as a restarted process
    would have (all closed at teardown)."""
    apps = []

    def open_(**options: Any) -> RecordingInboxSink:
        apps.append(inbox_app(sqlite_url, tmp_path))
        return RecordingInboxSink(apps[-1], **options)

    yield open_
    for app in apps:
        app.close()


@pytest.fixture
def sink(open_sink: Callable[..., RecordingInboxSink]) -> RecordingInboxSink:
    return open_sink()


def messages(count: int, tag: str) -> list[bytes]:
    return [sample_message(n, tag=tag) for n in range(1, count + 1)]


def ids(raws: list[bytes]) -> list[str]:
    return sorted(message_id_of(raw) for raw in raws)


@contextlib.contextmanager
def running(poller: ImapPoller) -> Iterator[threading.Event]:
    """Run ``poller.run`` in a thread; on exit stop it and insist that it stops promptly."""
    stop = threading.Event()
    thread = threading.Thread(target=poller.run, args=(stop,), name="imap-poller", daemon=True)
    thread.start()
    try:
        yield stop
    finally:
        stop.set()
        thread.join(timeout=10)
        assert not thread.is_alive(), "the poller did not stop within 10 s of being asked"


def settle_into_idle(caplog: pytest.LogCaptureFixture, sessions: int) -> None:
    """Wait until the poller has caught up in its n-th session, and a moment more.

    Mail appended in the instant between the poller's last search and IDLE is only seen
    with the next mail unless the poller asks first (NOOP before IDLE, tested below);
    tests about other things append once the poller is in IDLE.
    """

    def caught_up() -> bool:
        return sum("caught up" in r.getMessage() for r in caplog.records) >= sessions

    assert wait_for(caught_up, timeout=15)
    time.sleep(0.5)


# -- storing and marking ---------------------------------------------------------------


@pytest.mark.dovecot
def test_new_mail_is_stored_then_moved(
    imap_mailbox: MailboxHandle, sink: RecordingInboxSink, caplog: pytest.LogCaptureFixture
) -> None:
    raws = messages(3, "moved")
    imap_mailbox.append(*raws)
    caplog.set_level(logging.INFO, logger=LOGGER)

    result = ImapPoller(imap_mailbox.settings(), sink).poll_once()

    assert result == PollResult(fetched=3, stored=3, duplicates=0, quarantined=0)
    assert sink.message_ids() == ids(raws)
    assert [raw for raw in sink.raws()] == raws  # the bytes exactly as the server had them
    assert imap_mailbox.count() == 0
    assert imap_mailbox.message_ids(imap_mailbox.move_to) == ids(raws)  # folder was created
    assert sink.batches == [3]
    assert sink.sources() == ["imap"] * 3
    assert all(o.startswith("imap://mailgate@127.0.0.1:") for o in sink.origins())
    assert all(f"/{imap_mailbox.folder};UIDVALIDITY=" in o for o in sink.origins())
    assert len([r for r in caplog.records if "stored uid" in r.getMessage()]) == 3
    # Nothing new: a second poll fetches nothing.
    assert ImapPoller(imap_mailbox.settings(), sink).poll_once() == PollResult()


@pytest.mark.dovecot
def test_after_seen_flags_unseen_mail_and_leaves_it(
    imap_mailbox: MailboxHandle, sink: RecordingInboxSink
) -> None:
    already_read = sample_message(0, tag="read-by-a-human")
    imap_mailbox.append(already_read, flags=[r"\Seen"])
    raws = messages(2, "seen")
    imap_mailbox.append(*raws)
    settings = imap_mailbox.settings(after="seen")

    assert ImapPoller(settings, sink).poll_once() == PollResult(2, 2, 0, 0)
    assert sink.message_ids() == ids(raws)  # the message already \Seen is not ours
    flags = imap_mailbox.flags()
    assert len(flags) == 3 and all(b"\\Seen" in f for f in flags.values())
    assert imap_mailbox.count(imap_mailbox.move_to) == 0

    later = sample_message(3, tag="seen")
    imap_mailbox.append(later)
    assert ImapPoller(settings, sink).poll_once() == PollResult(1, 1, 0, 0)
    # Someone marks a processed message unread again: the cursor, not the flag, decides.
    with imap_mailbox.connect() as client:
        client.select_folder(imap_mailbox.folder)
        client.remove_flags(client.search(["ALL"]), [r"\Seen"])
    assert ImapPoller(settings, sink).poll_once() == PollResult()
    assert sink.count() == 3


@pytest.mark.dovecot
def test_copy_and_uid_expunge_when_the_server_cannot_move(
    imap_mailbox: MailboxHandle, sink: RecordingInboxSink
) -> None:
    class NoMovePoller(ImapPoller):
        def _server_can_move(self, client: Any) -> bool:
            return False

    raws = messages(4, "no-move")
    imap_mailbox.append(*raws)
    assert NoMovePoller(imap_mailbox.settings(), sink).poll_once() == PollResult(4, 4, 0, 0)
    assert imap_mailbox.count() == 0  # \Deleted and UID EXPUNGEd, not merely flagged
    assert imap_mailbox.message_ids(imap_mailbox.move_to) == ids(raws)


# -- crashes, restarts and UIDVALIDITY ---------------------------------------------------


@pytest.mark.dovecot
def test_killed_between_commit_and_mark_leaves_no_duplicate(
    imap_mailbox: MailboxHandle, open_sink: Callable[..., RecordingInboxSink]
) -> None:
    raws = messages(5, "killed")
    imap_mailbox.append(*raws)
    commits = 0

    def die_after_third_commit(raw: bytes) -> None:
        nonlocal commits
        commits += 1
        if commits == 3:
            raise PollerKilled

    settings = imap_mailbox.settings(batch_size=2)
    dying = open_sink(after_commit=die_after_third_commit)
    with pytest.raises(PollerKilled):
        ImapPoller(settings, dying).poll_once()
    # Each batch is committed in one transaction, then marked: the first batch was
    # marked, the second committed, and the process died before marking it.
    assert dying.count() == 4
    assert imap_mailbox.message_ids() == ids(raws[2:])
    cursor = dying.load_cursor(settings.name, imap_mailbox.folder)
    assert cursor is not None and cursor[1] == 2  # the last UID of the marked batch

    restarted = open_sink()
    result = ImapPoller(settings, restarted).poll_once()
    assert result == PollResult(fetched=3, stored=1, duplicates=2, quarantined=0)
    assert restarted.message_ids() == ids(raws)  # exactly one copy of each
    assert imap_mailbox.count() == 0
    assert imap_mailbox.message_ids(imap_mailbox.move_to) == ids(raws)


KILL_SCRIPT = textwrap.dedent(
    """
    import json, os, signal, sys
    from pathlib import Path
    from mailgate.ingest.imap import ImapMailbox, ImapPoller
    from tests.support.imap_sink import RecordingInboxSink, inbox_app

    commits = 0

    def die(raw):
        global commits
        commits += 1
        if commits == int(sys.argv[3]):
            os.kill(os.getpid(), signal.SIGKILL)

    settings = ImapMailbox(**json.loads(sys.argv[1]))
    app = inbox_app(sys.argv[2], Path(sys.argv[4]))
    ImapPoller(settings, RecordingInboxSink(app, after_commit=die)).poll_once()
    """
)


@pytest.mark.dovecot
def test_sigkilled_process_after_commit_leaves_no_duplicate(
    imap_mailbox: MailboxHandle,
    tmp_path: Path,
    sqlite_url: str,
    open_sink: Callable[..., RecordingInboxSink],
) -> None:
    raws = messages(4, "sigkill")
    imap_mailbox.append(*raws)
    settings = imap_mailbox.settings()
    settings_json = json.dumps(dataclasses.asdict(settings))
    done = subprocess.run(
        [sys.executable, "-c", KILL_SCRIPT, settings_json, sqlite_url, "2", str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == -signal.SIGKILL, done.stderr.decode()
    sink = open_sink()  # the database the killed process wrote to
    assert sink.count() == 4  # the four were committed together
    assert imap_mailbox.count() == 4

    assert ImapPoller(settings, sink).poll_once() == PollResult(4, 0, 4, 0)
    assert sink.message_ids() == ids(raws)
    assert imap_mailbox.count() == 0


@pytest.mark.dovecot
def test_uidvalidity_change_imports_nothing_twice(
    imap_mailbox: MailboxHandle, dovecot: DovecotServer, sink: RecordingInboxSink
) -> None:
    settings = imap_mailbox.settings(after="seen")
    first = messages(5, "validity")
    imap_mailbox.append(*first)
    assert ImapPoller(settings, sink).poll_once().stored == 5
    old_validity, _ = sink.load_cursor(settings.name, settings.folder) or (0, 0)

    new_validity = dovecot.change_uidvalidity(imap_mailbox.folder)
    # The server also "forgot" the flags (as a restore would): everything looks new again.
    with imap_mailbox.connect() as client:
        client.select_folder(imap_mailbox.folder)
        client.remove_flags(client.search(["ALL"]), [r"\Seen"])
    later = [sample_message(n, tag="validity") for n in (6, 7)]
    imap_mailbox.append(*later)

    result = ImapPoller(settings, sink).poll_once()

    assert new_validity != old_validity
    assert result == PollResult(fetched=7, stored=2, duplicates=5, quarantined=0)
    assert sink.message_ids() == ids(first + later)
    assert sink.load_cursor(settings.name, settings.folder) == (new_validity, 7)


@pytest.mark.dovecot
def test_recreated_mailbox_with_lower_uids_loses_and_repeats_nothing(
    imap_mailbox: MailboxHandle, dovecot: DovecotServer, sink: RecordingInboxSink
) -> None:
    settings = imap_mailbox.settings()
    old = messages(3, "recreated")
    imap_mailbox.append(*old)
    assert ImapPoller(settings, sink).poll_once().stored == 3
    assert sink.load_cursor(settings.name, settings.folder) is not None

    # A restore from backup brings the old mail back, and new mail arrives; under the new
    # UIDVALIDITY all of it has UIDs at or below the old cursor.
    imap_mailbox.append(*old)
    dovecot.recreate_mailbox(imap_mailbox.folder)
    new = [sample_message(n, tag="recreated") for n in (4, 5)]
    imap_mailbox.append(*new)

    result = ImapPoller(settings, sink).poll_once()

    assert result == PollResult(fetched=5, stored=2, duplicates=3, quarantined=0)
    assert sink.message_ids() == ids(old + new)
    assert imap_mailbox.count() == 0


@pytest.mark.dovecot
@pytest.mark.parametrize("security", ["tls", "plaintext"])
def test_dovecot_restart_during_idle_reconnects_and_catches_up(
    imap_mailbox: MailboxHandle,
    dovecot: DovecotServer,
    sink: RecordingInboxSink,
    caplog: pytest.LogCaptureFixture,
    security: str,
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    settings = imap_mailbox.settings(idle=True, poll_interval=3600.0)
    if security == "plaintext":
        settings = imap_mailbox.settings(
            idle=True, poll_interval=3600.0, security="plaintext", port=dovecot.port, ca_file=None
        )
    before, meanwhile, after = (sample_message(n, tag="restart") for n in (1, 2, 3))
    with running(ImapPoller(settings, sink)):
        settle_into_idle(caplog, sessions=1)
        imap_mailbox.append(before)
        assert wait_for(lambda: sink.count() == 1, timeout=15)
        time.sleep(0.5)  # let the poller settle into IDLE

        dovecot.stop()
        dovecot.deliver(imap_mailbox.folder, meanwhile)  # arrives while the server is down
        dovecot.start()
        assert wait_for(lambda: sink.count() == 2, timeout=15), sink.message_ids()
        settle_into_idle(caplog, sessions=2)
        imap_mailbox.append(after)

        assert wait_for(lambda: sink.count() == 3, timeout=15), sink.message_ids()
    assert sink.message_ids() == ids([before, meanwhile, after])
    assert imap_mailbox.count() == 0
    assert any("retrying in" in r.getMessage() for r in caplog.records)


@pytest.mark.dovecot
def test_mail_arriving_between_the_last_search_and_idle_is_not_left_waiting(
    imap_mailbox: MailboxHandle, sink: RecordingInboxSink
) -> None:
    class AppendsBeforeIdle(ImapPoller):
        armed = True

        def _search_new(self, client: Any, last_uid: int) -> list[int]:
            found = super()._search_new(client, last_uid)
            if not found and last_uid and self.armed:
                self.armed = False  # a message arrives just after the "nothing new" answer
                imap_mailbox.append(sample_message(2, tag="before-idle"))
            return found

    imap_mailbox.append(sample_message(1, tag="before-idle"))
    settings = imap_mailbox.settings(idle=True, poll_interval=3600.0)
    with running(AppendsBeforeIdle(settings, sink)):
        # (>= 1: when Dovecot tells the IDLE at once, the second can follow within the
        # 50 ms between two looks, and "== 1" was never seen.)
        assert wait_for(lambda: sink.count() >= 1, timeout=15)
        # Dovecot checks an IDLEd mailbox every second (mailbox_idle_check_interval).
        assert wait_for(lambda: sink.count() == 2, timeout=4)


@pytest.mark.dovecot
def test_session_kicked_by_the_server_is_resumed(
    imap_mailbox: MailboxHandle,
    dovecot: DovecotServer,
    sink: RecordingInboxSink,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    settings = imap_mailbox.settings(idle=True, poll_interval=3600.0)
    with running(ImapPoller(settings, sink)):
        settle_into_idle(caplog, sessions=1)
        imap_mailbox.append(sample_message(1, tag="kicked"))
        assert wait_for(lambda: sink.count() == 1, timeout=15)
        time.sleep(0.5)
        dovecot.kick()
        settle_into_idle(caplog, sessions=2)
        imap_mailbox.append(sample_message(2, tag="kicked"))
        assert wait_for(lambda: sink.count() == 2, timeout=15)
    # Dovecot says "* BYE Server shutting down." to a kicked IDLE session (RFC 3501 §7.1.5).
    assert any("closed the session" in r.getMessage() for r in caplog.records)


@pytest.mark.dovecot
def test_idle_stores_new_mail_without_waiting_for_the_poll_interval(
    imap_mailbox: MailboxHandle, sink: RecordingInboxSink
) -> None:
    settings = imap_mailbox.settings(idle=True, poll_interval=3600.0)
    with running(ImapPoller(settings, sink)) as stop:
        time.sleep(0.5)
        raws = messages(3, "idle")
        for raw in raws:
            imap_mailbox.append(raw)
        assert wait_for(lambda: sink.count() == 3, timeout=15)
        asked = time.monotonic()
        stop.set()
    assert time.monotonic() - asked < 5  # IDLE waits in one-second slices
    assert sink.message_ids() == ids(raws)


@pytest.mark.dovecot
def test_idle_is_renewed_and_keeps_working(
    imap_mailbox: MailboxHandle, sink: RecordingInboxSink, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    settings = imap_mailbox.settings(idle=True, idle_renew=1.0, poll_interval=3600.0)
    with running(ImapPoller(settings, sink)):
        assert wait_for(
            lambda: sum("renewing IDLE" in r.getMessage() for r in caplog.records) >= 2,
            timeout=15,
        )
        imap_mailbox.append(sample_message(1, tag="renewed"))
        assert wait_for(lambda: sink.count() == 1, timeout=15)


@pytest.mark.dovecot
def test_polls_at_poll_interval_when_idle_is_off(
    imap_mailbox: MailboxHandle, sink: RecordingInboxSink
) -> None:
    settings = imap_mailbox.settings(idle=False, poll_interval=0.3)
    with running(ImapPoller(settings, sink)):
        imap_mailbox.append(sample_message(1, tag="polled"))
        assert wait_for(lambda: sink.count() == 1, timeout=15)
        imap_mailbox.append(sample_message(2, tag="polled"))
        assert wait_for(lambda: sink.count() == 2, timeout=15)


@pytest.mark.dovecot
def test_run_retries_until_the_server_comes_up(
    imap_mailbox: MailboxHandle, dovecot: DovecotServer, sink: RecordingInboxSink
) -> None:
    imap_mailbox.append(sample_message(1, tag="late-server"))
    dovecot.stop()
    with running(ImapPoller(imap_mailbox.settings(), sink)):
        time.sleep(1.0)  # a few refused connections
        dovecot.start()
        assert wait_for(lambda: sink.count() == 1, timeout=15)


# -- volume -------------------------------------------------------------------------------


@pytest.mark.dovecot
def test_backlog_of_1000_messages_is_drained_exactly_once(
    imap_mailbox: MailboxHandle, sink: RecordingInboxSink
) -> None:
    raws = messages(1000, "backlog")
    imap_mailbox.append(*raws)

    result = ImapPoller(imap_mailbox.settings(batch_size=100), sink).poll_once()

    assert result == PollResult(fetched=1000, stored=1000, duplicates=0, quarantined=0)
    assert sink.message_ids() == ids(raws)
    assert sink.batches == [100] * 10
    assert imap_mailbox.count() == 0
    assert imap_mailbox.count(imap_mailbox.move_to) == 1000


# -- broken messages and failing storage --------------------------------------------------


@pytest.mark.dovecot
def test_broken_messages_are_quarantined_and_the_rest_goes_on(
    imap_mailbox: MailboxHandle,
    dovecot: DovecotServer,
    open_sink: Callable[..., RecordingInboxSink],
) -> None:
    good = messages(4, "good")
    poison = sample_message(99, tag="poison", body="X-Test: the sink refuses this one\n")
    imap_mailbox.append(good[0], poison, good[1])
    dovecot.deliver(imap_mailbox.folder, b"")  # an empty file in the Maildir
    imap_mailbox.append(good[2], good[3])
    sink = open_sink(reject=lambda raw: b"[poison]" in raw)

    result = ImapPoller(imap_mailbox.settings(batch_size=2), sink).poll_once()

    assert result == PollResult(fetched=6, stored=4, duplicates=0, quarantined=2)
    assert sink.message_ids() == ids(good)
    assert imap_mailbox.count() == 0
    assert imap_mailbox.message_ids(imap_mailbox.move_to) == ids(good)
    quarantined = imap_mailbox.messages(imap_mailbox.quarantine)
    assert sorted(quarantined.values()) == sorted([b"", poison])
    # The quarantined ones are behind the cursor: they are not fetched again.
    assert ImapPoller(imap_mailbox.settings(), sink).poll_once() == PollResult()


@pytest.mark.dovecot
def test_a_fetched_group_is_committed_in_one_transaction(
    imap_mailbox: MailboxHandle, open_sink: Callable[..., RecordingInboxSink]
) -> None:
    raws = messages(5, "together")
    imap_mailbox.append(*raws)
    committed_at_first_hook: list[int] = []

    def look(raw: bytes) -> None:
        if not committed_at_first_hook:
            committed_at_first_hook.append(sink.count())

    sink = open_sink(after_commit=look)
    assert ImapPoller(imap_mailbox.settings(), sink).poll_once() == PollResult(5, 5, 0, 0)
    assert committed_at_first_hook == [5]  # not 1: one commit for the five
    assert sink.store_calls == 1


@pytest.mark.dovecot
def test_a_batch_that_fails_is_stored_one_message_at_a_time(
    imap_mailbox: MailboxHandle,
    open_sink: Callable[..., RecordingInboxSink],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger=LOGGER)
    raws = messages(3, "one-by-one")
    imap_mailbox.append(*raws)
    sink = open_sink(failing_calls={1})  # the batch fails once; each message alone works

    assert ImapPoller(imap_mailbox.settings(), sink).poll_once() == PollResult(3, 3, 0, 0)
    assert sink.store_calls == 4
    assert sink.message_ids() == ids(raws)
    assert imap_mailbox.message_ids(imap_mailbox.move_to) == ids(raws)
    warnings = [r.getMessage() for r in caplog.records]
    assert any("storing 3 messages together failed" in m for m in warnings), warnings


@pytest.mark.dovecot
def test_store_error_marks_nothing_after_the_failure(
    imap_mailbox: MailboxHandle, open_sink: Callable[..., RecordingInboxSink]
) -> None:
    raws = messages(4, "store-error")
    imap_mailbox.append(*raws)
    # Call 1 stores the first batch of two; the second batch fails (call 2), and so does
    # its first message alone (call 3): the database is failing, not a message.
    sink = open_sink(failing_calls={2, 3})
    settings = imap_mailbox.settings(batch_size=2)

    with pytest.raises(StoreError):
        ImapPoller(settings, sink).poll_once()
    # The two committed before the failure are marked; the failed one and the rest are not.
    assert sink.message_ids() == ids(raws[:2])
    assert imap_mailbox.message_ids() == ids(raws[2:])
    assert imap_mailbox.message_ids(imap_mailbox.move_to) == ids(raws[:2])

    assert ImapPoller(settings, sink).poll_once() == PollResult(2, 2, 0, 0)
    assert sink.message_ids() == ids(raws)
    assert imap_mailbox.count() == 0


@pytest.mark.dovecot
def test_run_backs_off_after_a_store_error_and_retries(
    imap_mailbox: MailboxHandle,
    open_sink: Callable[..., RecordingInboxSink],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    raws = messages(3, "retry")
    imap_mailbox.append(*raws)
    # Each failed attempt is two calls: the batch, then its first message alone.
    sink = open_sink(failing_calls={1, 2, 3, 4})
    with running(ImapPoller(imap_mailbox.settings(), sink)):
        assert wait_for(lambda: sink.count() == 3, timeout=15)
    assert sink.message_ids() == ids(raws)
    assert sum("could not store" in r.getMessage() for r in caplog.records) == 2
    assert imap_mailbox.count() == 0


# -- transport security ---------------------------------------------------------------------


@pytest.mark.dovecot
@pytest.mark.parametrize("security", ["tls", "starttls"])
def test_tls_and_starttls_with_the_test_ca(
    imap_mailbox: MailboxHandle, dovecot: DovecotServer, sink: RecordingInboxSink, security: str
) -> None:
    port = dovecot.tls_port if security == "tls" else dovecot.port
    imap_mailbox.append(sample_message(1, tag=security))
    settings = imap_mailbox.settings(security=security, port=port)
    assert ImapPoller(settings, sink).poll_once().stored == 1


@pytest.mark.dovecot
@pytest.mark.parametrize("security", ["tls", "starttls"])
def test_an_unknown_ca_is_refused(
    imap_mailbox: MailboxHandle, dovecot: DovecotServer, sink: RecordingInboxSink, security: str
) -> None:
    port = dovecot.tls_port if security == "tls" else dovecot.port
    imap_mailbox.append(sample_message(1, tag="unknown-ca"))
    settings = imap_mailbox.settings(security=security, port=port, ca_file=None)
    with pytest.raises(ssl.SSLCertVerificationError):
        ImapPoller(settings, sink).poll_once()
    assert sink.count() == 0
    assert imap_mailbox.count() == 1


@pytest.mark.dovecot
def test_tls_verify_off_connects_to_a_self_signed_server(
    imap_mailbox: MailboxHandle, sink: RecordingInboxSink
) -> None:
    imap_mailbox.append(sample_message(1, tag="no-verify"))
    settings = imap_mailbox.settings(tls_verify=False, ca_file=None)
    assert ImapPoller(settings, sink).poll_once().stored == 1


@pytest.mark.dovecot
def test_tls_on_a_plaintext_port_fails_instead_of_falling_back(
    imap_mailbox: MailboxHandle, dovecot: DovecotServer, sink: RecordingInboxSink
) -> None:
    settings = imap_mailbox.settings(security="tls", port=dovecot.port)
    with pytest.raises(ssl.SSLError):
        ImapPoller(settings, sink).poll_once()


@pytest.mark.dovecot
def test_starttls_is_required_when_configured(sink: RecordingInboxSink) -> None:
    # A second Dovecot without TLS: it does not offer STARTTLS at all.
    with DovecotServer(ssl=False) as cleartext_only:
        settings = ImapMailbox(
            name="no-starttls", host=cleartext_only.host, port=cleartext_only.port,
            security="starttls", username="mailgate",
            password=cleartext_only.users["mailgate"],
        )  # fmt: skip
        log_before = cleartext_only.log_path.stat().st_size
        with pytest.raises(ImapSecurityError, match="does not offer STARTTLS"):
            ImapPoller(settings, sink).poll_once()
        assert wait_for(lambda: "Disconnected" in cleartext_only.log_text(since=log_before))
        assert "Login:" not in cleartext_only.log_text(since=log_before)  # no cleartext LOGIN


@pytest.mark.dovecot
def test_plaintext_works_only_when_spelled_out(
    imap_mailbox: MailboxHandle, dovecot: DovecotServer, sink: RecordingInboxSink
) -> None:
    imap_mailbox.append(sample_message(1, tag="plaintext"))
    settings = imap_mailbox.settings(security="plaintext", port=dovecot.port, ca_file=None)
    assert ImapPoller(settings, sink).poll_once().stored == 1
    for spelling in ("none", "PLAINTEXT", "", "ssl"):
        with pytest.raises(ConfigValueError, match="security"):
            imap_mailbox.settings(security=spelling, port=dovecot.port, ca_file=None)


@pytest.mark.dovecot
def test_password_from_the_environment(
    imap_mailbox: MailboxHandle, sink: RecordingInboxSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    imap_mailbox.append(sample_message(1, tag="env-password"))
    monkeypatch.setenv("MAILGATE_TEST_IMAP_PASSWORD", imap_mailbox.password)
    settings = imap_mailbox.settings(password="", password_env="MAILGATE_TEST_IMAP_PASSWORD")
    assert ImapPoller(settings, sink).poll_once().stored == 1


# -- settings and backoff (no server needed) -------------------------------------------------


def mailbox(**overrides: Any) -> ImapMailbox:
    values: dict[str, Any] = {"name": "support", "host": "imap.example.com",
                              "username": "support", "password": "x"}  # fmt: skip
    values.update(overrides)
    return ImapMailbox(**values)


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"name": ""}, "name"),
        ({"host": " "}, "host"),
        ({"port": 0}, "port"),
        ({"port": 70000}, "port"),
        ({"security": "ssl"}, "security"),
        ({"username": ""}, "username"),
        ({"password": ""}, "password"),
        ({"password_env": "MAILGATE_PW"}, "password_env"),  # and a password too
        ({"password": "", "password_env": "not a name"}, "password_env"),
        ({"after": "delete"}, "after"),
        ({"move_to": "INBOX"}, "move_to"),
        ({"quarantine_folder": "INBOX"}, "quarantine_folder"),
        ({"poll_interval": 0.0}, "poll_interval"),
        ({"poll_interval": float("nan")}, "poll_interval"),
        ({"idle_renew": 30 * 60.0}, "idle_renew"),
        ({"batch_size": 0}, "batch_size"),
        ({"timeout": -1.0}, "timeout"),
        ({"backoff_initial": 10.0, "backoff_max": 5.0}, "backoff_max"),
        ({"security": "plaintext", "ca_file": "/ca.pem"}, "ca_file"),
        ({"tls_verify": False, "ca_file": "/ca.pem"}, "ca_file"),
    ],
)
def test_impossible_settings_name_their_field(overrides: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigValueError) as caught:
        mailbox(**overrides)
    assert caught.value.field == field


def test_settings_defaults_and_secret_repr() -> None:
    settings = mailbox(password="hunter2")
    assert (settings.port, settings.security, settings.after, settings.folder) == (
        993, "tls", "move", "INBOX",
    )  # fmt: skip
    assert "hunter2" not in repr(settings)
    assert mailbox(after="seen", move_to="").move_to == ""  # move_to unused with "seen"


def test_missing_password_variable_is_a_config_error(
    monkeypatch: pytest.MonkeyPatch, sink: RecordingInboxSink
) -> None:
    monkeypatch.delenv("MAILGATE_TEST_UNSET_PASSWORD", raising=False)
    settings = mailbox(password="", password_env="MAILGATE_TEST_UNSET_PASSWORD")
    with pytest.raises(ConfigError, match="MAILGATE_TEST_UNSET_PASSWORD"):
        ImapPoller(settings, sink)


def test_backoff_doubles_is_capped_and_jittered() -> None:
    backoff = _Backoff(1.0, 30.0, random.Random(7))
    delays = [backoff.next_delay() for _ in range(10)]
    for attempt, delay in enumerate(delays):
        base = min(30.0, 2.0**attempt)
        assert base / 2 <= delay <= base
    assert len(set(delays[6:])) > 1  # capped, but still spread out
    backoff.reset()
    assert backoff.next_delay() <= 1.0


def test_missing_dovecot_says_how_it_is_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dovecot_harness.shutil, "which", lambda *args, **kwargs: None)
    with pytest.raises(DovecotMissing, match="apt-get install -y dovecot-imapd"):
        DovecotServer()


def test_blank_is_what_strip_would_leave_empty() -> None:
    singles = [bytes([b]) for b in range(256)]
    samples = [b"", b"\r\n", b" \t\r\n\x0b\x0c", b"\r\n\r\nx", b"From: a\r\n\r\nhi\r\n"]
    for raw in singles + [s * 3 for s in singles] + samples:
        assert blank(raw) is (not raw.strip()), raw
