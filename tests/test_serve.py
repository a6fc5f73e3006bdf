"""``mailgate serve`` as a real process: mail in over SMTP, acknowledgement out into the
Maildir, a clean stop on SIGTERM that loses nothing that got 250, config errors at start,
and one log line per message."""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
import signal
import smtplib
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from email import message_from_bytes
from email import policy as email_policy
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from mailgate.db.engine import Database
from mailgate.db.models import InboxItem, Subscription, SubscriptionContact, Ticket
from tests.conftest import add_subscription
from tests.support.mailtools import make_mail, wait_until, write_config

ROOT = Path(__file__).resolve().parent.parent
MAILGATE = Path(sys.executable).with_name("mailgate")
LISTENING = re.compile(r"SMTP listener on 127\.0\.0\.1:(\d+)")
PIPELINE_LINE = re.compile(
    r"mailgate\.pipeline: source=(?P<source>\S+) message_id=(?P<message_id>\S+) "
    r"outcome=(?P<outcome>\S+) ticket=(?P<ticket>\S+) .*ms=(?P<ms>[\d.]+)"
)


class Served:
    """A ``mailgate serve`` subprocess whose stderr is collected line by line."""

    def __init__(self, config: Path, cwd: Path) -> None:
        env = {k: v for k, v in os.environ.items() if k != "MAILGATE_CONFIG"}
        env["PYTHONPATH"] = str(ROOT)
        self.proc = subprocess.Popen(
            [str(MAILGATE), "-c", str(config), "serve"],
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for raw in self.proc.stderr:
            self.lines.append(raw.decode("utf-8", "replace").rstrip("\n"))

    @property
    def log(self) -> str:
        return "\n".join(self.lines)

    def wait_listening(self, timeout: float = 20) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.lines):
                m = LISTENING.search(line)
                if m:
                    return int(m.group(1))
            if self.proc.poll() is not None:
                break
            time.sleep(0.02)
        raise AssertionError(f"serve did not start listening:\n{self.log}")

    def stop(self, timeout: float = 15) -> tuple[int, float]:
        """SIGTERM; returns (exit status, seconds it took)."""
        started = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=timeout)
        return code, time.monotonic() - started

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self._reader.join(timeout=10)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()


def _seed_subscription(url: str) -> None:
    db = Database(url)
    try:
        with db.transaction() as s:
            sub = Subscription(
                id="SUB-12345",
                organization="ACME Corp",
                tier="standard",
                valid_from=dt.date(2020, 1, 1),
                valid_until=dt.date(2099, 12, 31),
                nonprod_environments=[],
                updated_at=dt.datetime.now(dt.UTC),
            )
            sub.contacts = [SubscriptionContact(pattern="@acme.example")]
            s.add(sub)
    finally:
        db.dispose()


@pytest.fixture
def site(tmp_path: Path, sqlite_url: str) -> dict[str, Any]:
    """A config for ``serve``: SQLite in tmp_path, any free port, a Maildir outbox."""
    _seed_subscription(sqlite_url)
    config = write_config(
        tmp_path / "mailgate.toml",
        {
            "database": {"url": sqlite_url, "auto_migrate": False},
            "smtp": {"host": "127.0.0.1", "port": 0, "shutdown_grace": 10.0},
            "outbox": {"transport": "maildir", "maildir": "replies", "poll_interval": 0.2},
            # The daily digest would add a file at 08:00 Paris; these tests count files.
            "digest": {"enabled": False},
            "logging": {"level": "INFO"},
        },
    )
    return {"config": config, "url": sqlite_url, "maildir": tmp_path / "replies", "cwd": tmp_path}


@pytest.fixture
def serve(site: dict[str, Any]) -> Iterator[Served]:
    served = Served(site["config"], site["cwd"])
    try:
        yield served
    finally:
        served.close()


def _files(maildir: Path) -> list[Path]:
    new = maildir / "new"
    return sorted(new.iterdir()) if new.is_dir() else []


def _tickets(url: str) -> list[Ticket]:
    db = Database(url)
    try:
        with db.transaction() as s:
            return list(s.scalars(select(Ticket).order_by(Ticket.id)))
    finally:
        db.dispose()


def _inbox(url: str) -> list[InboxItem]:
    db = Database(url)
    try:
        with db.transaction() as s:
            return list(s.scalars(select(InboxItem).order_by(InboxItem.id)))
    finally:
        db.dispose()


def _send(port: int, raw: bytes) -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        client.sendmail("jane@acme.example", ["support@irex.example"], raw)


def test_mail_over_smtp_ends_up_in_the_maildir_with_one_log_line_each(
    serve: Served, site: dict[str, Any]
) -> None:
    port = serve.wait_listening()
    _send(port, make_mail(message_id="log-ok@acme.example"))
    _send(port, make_mail(subject="[SUB-99999] [L3] who are we", message_id="log-no@acme.example"))
    _send(
        port,
        make_mail(
            subject="Automatic reply: out of office",
            message_id="log-auto@acme.example",
            headers={"Auto-Submitted": "auto-replied"},
        ),
    )
    # The acknowledgement and the refusal are files in new/; the automatic reply got none.
    wait_until(lambda: len(_files(site["maildir"])) == 2, timeout=20)
    replies = {
        str(m["In-Reply-To"]): m
        for m in (
            message_from_bytes(f.read_bytes(), policy=email_policy.default)
            for f in _files(site["maildir"])
        )
    }
    assert set(replies) == {"<log-ok@acme.example>", "<log-no@acme.example>"}
    ack = replies["<log-ok@acme.example>"]
    assert ack["Subject"].startswith("[IREX-000001] ")
    assert ack["Auto-Submitted"] == "auto-replied"
    assert "jane@acme.example" in ack["To"]
    assert "IREX-000001" in ack.get_body(("plain",)).get_content()  # type: ignore[union-attr]

    wait_until(lambda: len(PIPELINE_LINE.findall(serve.log)) >= 3, timeout=20)
    code, took = serve.stop()
    assert code == 0, serve.log
    assert took < 10
    assert [t.public_id for t in _tickets(site["url"])] == ["IREX-000001"]

    lines = [m.groupdict() for m in PIPELINE_LINE.finditer(serve.log)]
    by_id = {d["message_id"]: d for d in lines}
    assert len(lines) == 3 == len(by_id), serve.log  # one line per message
    assert by_id["log-ok@acme.example"]["outcome"] == "ticket_created"
    assert by_id["log-ok@acme.example"]["ticket"] == "IREX-000001"
    assert by_id["log-no@acme.example"]["outcome"] == "rejected"
    assert by_id["log-no@acme.example"]["ticket"] == "-"
    assert by_id["log-auto@acme.example"]["outcome"] == "ignored"
    for d in lines:
        assert d["source"] == "smtp"
        assert float(d["ms"]) >= 0


def test_sigterm_while_mail_is_in_flight_exits_0_and_loses_nothing_that_got_250(
    serve: Served, site: dict[str, Any]
) -> None:
    port = serve.wait_listening()
    # B: a second client in the middle of its DATA when the signal arrives.
    late = smtplib.SMTP("127.0.0.1", port, timeout=10)
    late.ehlo("late.example")
    assert late.mail("jane@acme.example")[0] == 250
    assert late.rcpt("support@irex.example")[0] == 250
    late.putcmd("data")
    assert late.getreply()[0] == 354
    body_b = make_mail(message_id="late-b@acme.example")  # CRLF already
    late.send(body_b[: len(body_b) // 2])

    # A: fully sent, 250 received; SIGTERM at once, while it is being processed.
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        client.sendmail(
            "jane@acme.example",
            ["support@irex.example"],
            make_mail(message_id="early-a@acme.example"),
        )
    serve.proc.send_signal(signal.SIGTERM)
    started = time.monotonic()

    # B finishes its DATA after the signal.
    b_accepted = False
    try:
        late.send(body_b[len(body_b) // 2 :] + b"\r\n.\r\n")
        code, _ = late.getreply()
        b_accepted = code == 250
    except (smtplib.SMTPException, OSError):
        b_accepted = False
    finally:
        late.close()

    code = serve.proc.wait(timeout=15)
    took = time.monotonic() - started
    assert code == 0, serve.log
    assert took < 10, f"took {took:.1f}s to stop"

    stored = {i.message_id: i for i in _inbox(site["url"])}
    # A got 250 before the signal: stored, processed, ticket made, acknowledgement written.
    assert stored["early-a@acme.example"].status == "done", serve.log
    tickets = {t.id: t for t in _tickets(site["url"])}
    a_ticket = tickets[stored["early-a@acme.example"].ticket_id]
    acks = [
        message_from_bytes(f.read_bytes(), policy=email_policy.default)
        for f in _files(site["maildir"])
    ]
    assert any(m["In-Reply-To"] == "<early-a@acme.example>" for m in acks), serve.log
    assert any(str(m["Subject"]).startswith(f"[{a_ticket.public_id}]") for m in acks)
    # B: if it got 250 it must have been processed too; if not, the sender keeps it.
    if b_accepted:
        assert stored["late-b@acme.example"].status == "done", serve.log
        assert any(m["In-Reply-To"] == "<late-b@acme.example>" for m in acks)
    elif "late-b@acme.example" in stored:  # refused: the client will send it again
        assert stored["late-b@acme.example"].status in ("done", "pending")
    assert "stopped" in serve.log


def test_broken_config_at_start_exits_78_naming_the_key(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text('[smtp]\nport = "twenty-five"\n[outbox]\nmax_attempts = 0\n')
    env = {k: v for k, v in os.environ.items() if k != "MAILGATE_CONFIG"}
    env["PYTHONPATH"] = str(ROOT)
    proc = subprocess.run(
        [str(MAILGATE), "-c", str(config), "serve"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        timeout=30,
        check=False,
    )
    assert proc.returncode == 78
    assert b"config key 'smtp.port'" in proc.stderr
    assert b"must be an integer" in proc.stderr
    assert not (tmp_path / "var").exists()  # nothing was created


def test_log_line_of_a_duplicate_names_message_id_ticket_and_ms(
    lite_app: Any, run_gateway: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    app = lite_app()
    add_subscription(app)
    gw = run_gateway(app)
    raw = make_mail(message_id="log-twice@acme.example")
    _send(gw.port, raw)
    wait_until(lambda: "ticket=IREX-000001" in caplog.text, timeout=20)
    _send(gw.port, raw)
    wait_until(lambda: "outcome=duplicate" in caplog.text, timeout=20)
    [dup] = [r.getMessage() for r in caplog.records if "outcome=duplicate" in r.getMessage()]
    assert "message_id=log-twice@acme.example" in dup
    assert "ticket=IREX-000001" in dup and "ms=" in dup


def test_mail_that_gets_250_during_shutdown_is_processed_before_exit(
    lite_app: Any, run_gateway: Any
) -> None:
    app = lite_app()
    add_subscription(app)
    gw = run_gateway(app)
    in_shutdown, release = threading.Event(), threading.Event()
    late = smtplib.SMTP("127.0.0.1", gw.port, timeout=10)
    try:
        late.ehlo("late.example")
        assert late.mail("jane@acme.example")[0] == 250
        assert late.rcpt("support@irex.example")[0] == 250
        late.putcmd("data")
        assert late.getreply()[0] == 354
        body = make_mail(message_id="shutdown-b@acme.example")  # CRLF already
        assert b"\r\n" in body and b"\r\r" not in body
        late.send(body)
        # Hold the shutdown at its last outbox pass, so that the end of DATA arrives while
        # the process is stopping (what a slow client does by chance).
        drain = gw.gateway.sender.drain

        def gated(*args: Any, **kwargs: Any) -> Any:
            if gw.stop_event is not None and gw.stop_event.is_set():
                in_shutdown.set()
                release.wait(10)
            return drain(*args, **kwargs)

        gw.gateway.sender.drain = gated
        gw.loop.call_soon_threadsafe(gw.stop_event.set)
        assert in_shutdown.wait(10)
        try:
            late.send(b".\r\n")
            code, _ = late.getreply()
        except (smtplib.SMTPException, OSError):
            code = 0
    finally:
        release.set()
        late.close()
    gw.stop()
    items = {i.message_id: i.status for i in _inbox(app.settings.database.url)}
    if code == 250:
        assert items["shutdown-b@acme.example"] == "done"
    else:
        assert "shutdown-b@acme.example" not in items


def test_a_slow_periodic_job_does_not_hold_up_the_outbox(lite_app: Any, relay: Any) -> None:
    """The SLA pass over many due tickets takes seconds; acknowledgements queued meanwhile
    go out without waiting for it."""
    from tests.conftest import RunningGateway

    app = lite_app(
        {
            "processing": {"workers": 0},
            "outbox": {
                "transport": "smtp",
                "relay": {"port": relay.port, "security": "none"},
                "poll_interval": 0.05,
            },
        }
    )
    add_subscription(app)
    running, release = threading.Event(), threading.Event()

    def slow_pass() -> None:
        running.set()
        release.wait(30)

    gateway = RunningGateway(app)
    gateway.gateway.periodic.append(("slow pass", 3600.0, slow_pass))
    gateway.start()
    try:
        assert running.wait(10)
        _send(gateway.port, make_mail(message_id="while-slow@acme.example"))
        [ack] = relay.wait_for(1, timeout=20)
        assert not release.is_set()  # the pass is still running
        assert ack.rcpt_tos == ["jane@acme.example"]
    finally:
        release.set()
        gateway.stop()
