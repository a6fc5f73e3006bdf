"""Build realistic test messages and run real SMTP peers on loopback."""

from __future__ import annotations

import email.utils
import itertools
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email import message_from_bytes
from email import policy as email_policy
from email.message import EmailMessage
from pathlib import Path

from aiosmtpd.controller import Controller

_counter = itertools.count(1)


def run_python(code: str, timeout: float = 60) -> str:
    """Run ``code`` in a fresh interpreter (what a new process imports and starts is the
    point of such tests); its standard output, once it has exited 0."""
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make_mail(
    *,
    subject: str = "[SUB-12345] [L2] Upgrade to 7.4.2 fails",
    body: str = "Hello,\n\nThe upgrade of our IREX server from 7.3.1 to 7.4.2 fails at "
    "the database migration step.\nThe installer stops with 'schema lock timeout'.\n\n"
    "Regards,\nJane",
    sender: str = "Jane Admin <jane@acme.example>",
    to: str = "support@irex.example",
    cc: str | None = None,
    message_id: str | None = None,
    in_reply_to: str | None = None,
    references: str | None = None,
    headers: dict[str, str] | None = None,
    html: str | None = None,
) -> bytes:
    msg = EmailMessage(policy=email_policy.SMTP)
    msg["From"] = sender
    msg["To"] = to
    if cc:
        msg["Cc"] = cc
    msg["Subject"] = subject
    msg["Date"] = email.utils.format_datetime(email.utils.localtime())
    msg["Message-ID"] = f"<{message_id or f'test-{next(_counter)}-{time.time_ns()}@acme.example'}>"
    if in_reply_to:
        msg["In-Reply-To"] = in_reply_to
    if references:
        msg["References"] = references
    for name, value in (headers or {}).items():
        msg[name] = value
    msg.set_content(body)
    if html is not None:
        msg.add_alternative(html, subtype="html")
    return msg.as_bytes()


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    raw: bytes

    @property
    def message(self) -> EmailMessage:
        msg = message_from_bytes(self.raw, policy=email_policy.default)
        assert isinstance(msg, EmailMessage)
        return msg

    def text(self) -> str:
        part = self.message.get_body(("plain",))
        assert part is not None
        return str(part.get_content())


@dataclass
class RelaySink:
    """A real SMTP server (aiosmtpd) that records what it receives."""

    host: str = "127.0.0.1"
    port: int = 0
    received: list[Received] = field(default_factory=list)
    fail_next: int = 0  # answer this many DATA commands with 451 first
    _lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
        with self._lock:
            if self.fail_next > 0:
                self.fail_next -= 1
                return "451 4.3.0 try again later"
            self.received.append(
                Received(envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content)  # type: ignore[attr-defined]
            )
        return "250 OK"

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(self.received) >= count:
                return list(self.received)
            time.sleep(0.02)
        raise AssertionError(f"expected {count} message(s), got {len(self.received)}")


class RelayController(Controller):  # type: ignore[misc]
    pass


def start_relay(*, smtputf8: bool = False) -> tuple[RelaySink, Controller]:
    sink = RelaySink()
    port = free_port()
    controller = Controller(
        sink, hostname="127.0.0.1", port=port, decode_data=False, enable_SMTPUTF8=smtputf8
    )
    controller.start()
    sink.port = port
    return sink, controller


def wait_until(predicate: Callable[[], bool], timeout: float = 10.0, step: float = 0.02) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(step)
    raise AssertionError("condition not met in time")


# ---------------------------------------------------------------- config files and relays


def toml_value(value: object) -> str:
    """One TOML value: a bool, number, string or list of them."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def to_toml(data: dict[str, object], prefix: str = "") -> str:
    """A small TOML writer for test config files (scalars, arrays, nested tables)."""
    scalars = [(k, v) for k, v in data.items() if not isinstance(v, dict)]
    tables = [(k, v) for k, v in data.items() if isinstance(v, dict)]
    out = []
    if scalars:
        if prefix:
            out.append(f"[{prefix}]")
        out += [f"{k} = {toml_value(v)}" for k, v in scalars]
        out.append("")
    for key, value in tables:
        out.append(to_toml(value, f"{prefix}.{key}" if prefix else key))  # type: ignore[arg-type]
    return "\n".join(out)


def write_config(path: Path, data: dict[str, object]) -> Path:
    """Write ``data`` as a mailgate TOML config file at ``path``; returns the path."""
    path.write_text(to_toml(data), encoding="utf-8")
    return path


@dataclass
class ScriptedRelaySink(RelaySink):
    """A relay whose answers to RCPT and DATA are scripted: ``data_replies`` are used one
    per DATA command (then 250), ``refuse_rcpt`` maps an address to its RCPT answer."""

    data_replies: list[str] = field(default_factory=list)
    refuse_rcpt: dict[str, str] = field(default_factory=dict)

    async def handle_RCPT(
        self, server: object, session: object, envelope: object, address: str, options: object
    ) -> str:
        if address in self.refuse_rcpt:
            return self.refuse_rcpt[address]
        envelope.rcpt_tos.append(address)  # type: ignore[attr-defined]
        return "250 OK"

    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
        with self._lock:
            if self.data_replies:
                return self.data_replies.pop(0)
        return await super().handle_DATA(server, session, envelope)


def start_scripted_relay() -> tuple[ScriptedRelaySink, Controller]:
    sink = ScriptedRelaySink()
    port = free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port, decode_data=False)
    controller.start()
    sink.port = port
    return sink, controller
