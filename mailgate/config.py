"""mailgate's configuration: TOML in, typed frozen settings out, validated at start.

Every key has a default, so no file at all gives a working gateway on the embedded
defaults (SQLite and a Maildir outbox under ``var/``, SMTP on 127.0.0.1:2525).
Relative paths in a config file are taken relative to that file's folder; without a file,
relative to the current folder. Secrets can come from the environment: each secret key
has a ``*_env`` sibling naming the variable to read.
"""

from __future__ import annotations

import dataclasses
import os
import re
import tomllib
from dataclasses import dataclass, field
from email.utils import parseaddr
from pathlib import Path
from typing import Any, Literal

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from mailgate.conversation.settings import ConversationSettings
from mailgate.errors import ConfigError, ConfigValueError
from mailgate.ingest.imap import ImapMailbox
from mailgate.policy.settings import PolicySettings
from mailgate.settings_loader import build, describe
from mailgate.sla.escalation import DigestSettings, EscalationSettings
from mailgate.sla.settings import SlaSettings

CONFIG_ENV = "MAILGATE_CONFIG"


def _check_address(field_name: str, value: str) -> None:
    _, addr = parseaddr(value)
    if not addr or "@" not in addr or addr != value.strip():
        raise ConfigValueError(field_name, f"not a plain e-mail address: {value!r}")


@dataclass(frozen=True)
class DatabaseSettings:
    # SQLAlchemy URL. SQLite is the embedded default; production uses PostgreSQL,
    # e.g. "postgresql+psycopg://mailgate@127.0.0.1:5432/mailgate".
    url: str = "sqlite:///var/mailgate.db"
    # Migrate the schema at start. On by default for SQLite; for a shared PostgreSQL
    # operators usually run `mailgate db upgrade` once per release instead.
    auto_migrate: bool | None = None
    echo: bool = False

    def __post_init__(self) -> None:
        try:
            url = make_url(self.url)
        except ArgumentError as exc:
            raise ConfigValueError("url", f"not a database URL: {exc}") from None
        if url.get_backend_name() not in ("sqlite", "postgresql"):
            raise ConfigValueError("url", "only sqlite and postgresql are supported")

    @property
    def is_sqlite(self) -> bool:
        return make_url(self.url).get_backend_name() == "sqlite"

    @property
    def migrate_on_start(self) -> bool:
        return self.is_sqlite if self.auto_migrate is None else self.auto_migrate

    @property
    def shareable(self) -> bool:
        """Whether other processes can open the same database (not in-memory SQLite)."""
        url = make_url(self.url)
        return not (url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:"))


@dataclass(frozen=True)
class SmtpListenerSettings:
    enabled: bool = True
    host: str = "127.0.0.1"  # loopback unless told otherwise
    port: int = 2525
    # Messages above this size are refused with 552 5.3.4 (and announced in EHLO SIZE).
    max_message_bytes: int = 25 * 1024 * 1024
    # Recipients accepted; others get 550 5.1.1. Empty: accept any recipient.
    support_addresses: tuple[str, ...] = ()
    # Name announced in the greeting.
    hostname: str = "mailgate"
    # Seconds to finish the messages in hand after SIGTERM.
    shutdown_grace: float = 30.0

    def __post_init__(self) -> None:
        if not 0 <= self.port < 65536:  # 0: any free port (the chosen one is logged)
            raise ConfigValueError("port", f"must be 0-65535, got {self.port}")
        if self.max_message_bytes < 1024:
            raise ConfigValueError("max_message_bytes", "must be at least 1024")
        for i, addr in enumerate(self.support_addresses):
            if not addr.startswith("@"):
                _check_address(f"support_addresses[{i}]", addr)


@dataclass(frozen=True)
class RelaySettings:
    host: str = "127.0.0.1"
    port: int = 587
    # starttls: upgrade a plain connection; tls: implicit TLS (port 465); none: plaintext.
    security: Literal["starttls", "tls", "none"] = "starttls"
    username: str = ""
    password: str = ""
    password_env: str | None = None
    timeout: float = 30.0
    ca_file: str | None = None  # trust this CA instead of the system store

    def __post_init__(self) -> None:
        if not 0 < self.port < 65536:
            raise ConfigValueError("port", f"must be 1-65535, got {self.port}")
        if self.password_env and self.password_env not in os.environ:
            raise ConfigValueError(
                "password_env", f"environment variable {self.password_env} is not set"
            )

    @property
    def effective_password(self) -> str:
        if self.password_env:
            return os.environ.get(self.password_env, "")
        return self.password


@dataclass(frozen=True)
class OutboxSettings:
    # maildir: write every outgoing message into a local Maildir (readable on disk);
    # smtp: deliver through the relay below.
    transport: Literal["maildir", "smtp"] = "maildir"
    maildir: str = "var/outbox"
    relay: RelaySettings = field(default_factory=RelaySettings)
    # Attempts before a message is marked failed; the wait doubles after each failure.
    max_attempts: int = 10
    backoff_initial: float = 30.0
    backoff_max: float = 3600.0
    # How often `serve` looks for due messages, in seconds.
    poll_interval: float = 1.0
    # A sender's claim on a message expires after this many seconds (crashed process).
    lease_seconds: float = 300.0
    batch_size: int = 50

    def __post_init__(self) -> None:
        for name in ("backoff_initial", "backoff_max", "poll_interval", "lease_seconds"):
            if getattr(self, name) <= 0:
                raise ConfigValueError(name, "must be greater than 0")
        if self.max_attempts < 1:
            raise ConfigValueError("max_attempts", "must be at least 1")
        if self.backoff_max < self.backoff_initial:
            raise ConfigValueError("backoff_max", "must not be below backoff_initial")


@dataclass(frozen=True)
class MailSettings:
    # The address customers write to; replies and acknowledgements come from it.
    support_address: str = "support@irex.example"
    support_name: str = "IREX Support"
    # Domain of the Message-IDs mailgate makes (default: the support address's domain).
    message_id_domain: str = ""

    def __post_init__(self) -> None:
        _check_address("support_address", self.support_address)

    @property
    def id_domain(self) -> str:
        return self.message_id_domain or self.support_address.rpartition("@")[2]


@dataclass(frozen=True)
class TicketSettings:
    id_prefix: str = "IREX-"
    id_digits: int = 6
    # Subscription IDs in subjects (R-SUB), a regular expression.
    subscription_pattern: str = r"SUB-\d{5}"

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9]*-?", self.id_prefix):
            raise ConfigValueError("id_prefix", "letters and digits, optionally ending in '-'")
        if not 3 <= self.id_digits <= 12:
            raise ConfigValueError("id_digits", "must be between 3 and 12")
        try:
            re.compile(self.subscription_pattern)
        except re.error as exc:
            raise ConfigValueError(
                "subscription_pattern", f"bad regular expression: {exc}"
            ) from None

    def public_id(self, number: int) -> str:
        return f"{self.id_prefix}{number:0{self.id_digits}d}"


@dataclass(frozen=True)
class ImapSettings:
    # One [[imap.mailboxes]] table per mailbox to fetch from (none: IMAP intake is off).
    mailboxes: tuple[ImapMailbox, ...] = ()

    def __post_init__(self) -> None:
        names = [m.name for m in self.mailboxes]
        for i, name in enumerate(names):
            if name in names[:i]:
                raise ConfigValueError(f"mailboxes[{i}].name", f"{name!r} is used twice")


@dataclass(frozen=True)
class ProcessingSettings:
    # Child processes of `mailgate serve` and `mailgate poll --once` that classify stored
    # mail and queue the replies, each on its own core beside the listener, pollers and
    # outbox of the main process. 0: classify in the main process (one core in all).
    # "auto": one per core for `poll --once`, whose main process only fetches and stores;
    # one fewer for `serve`, whose listener needs a core of its own; at least one.
    workers: int | Literal["auto"] = "auto"

    def __post_init__(self) -> None:
        if self.workers != "auto" and not 0 <= self.workers <= 64:
            raise ConfigValueError("workers", f'must be 0-64 or "auto", got {self.workers}')


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity, which containers narrow)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def processing_children(settings: Settings, *, drain: bool = False) -> int:
    """How many processing children to start: ``[processing] workers`` (``drain``: for a
    one-shot ``poll --once`` rather than ``serve``), or none for an in-memory SQLite
    database, which no other process can open."""
    if not settings.database.shareable:
        return 0
    workers = settings.processing.workers
    if workers == "auto":
        cores = usable_cores()
        return max(1, cores if drain else cores - 1)
    return workers


@dataclass(frozen=True)
class LoggingSettings:
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"


@dataclass(frozen=True)
class Settings:
    database: DatabaseSettings = field(default_factory=DatabaseSettings)
    smtp: SmtpListenerSettings = field(default_factory=SmtpListenerSettings)
    outbox: OutboxSettings = field(default_factory=OutboxSettings)
    mail: MailSettings = field(default_factory=MailSettings)
    tickets: TicketSettings = field(default_factory=TicketSettings)
    policy: PolicySettings = field(default_factory=PolicySettings)
    sla: SlaSettings = field(default_factory=SlaSettings)
    escalation: EscalationSettings = field(default_factory=EscalationSettings)
    digest: DigestSettings = field(default_factory=DigestSettings)
    imap: ImapSettings = field(default_factory=ImapSettings)
    conversation: ConversationSettings = field(default_factory=ConversationSettings)
    processing: ProcessingSettings = field(default_factory=ProcessingSettings)
    logging: LoggingSettings = field(default_factory=LoggingSettings)


@dataclass(frozen=True)
class LoadedConfig:
    settings: Settings
    source: Path | None  # None: embedded defaults


def _resolve_paths(settings: Settings, base: Path) -> Settings:
    db = settings.database
    url = make_url(db.url)
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        path = Path(url.database)
        if not path.is_absolute():
            db = dataclasses.replace(db, url=str(url.set(database=str(base / path))))
    outbox = settings.outbox
    if not Path(outbox.maildir).is_absolute():
        outbox = dataclasses.replace(outbox, maildir=str(base / outbox.maildir))
    conv = settings.conversation
    if not Path(conv.secret_file).is_absolute():
        conv = dataclasses.replace(conv, secret_file=str(base / conv.secret_file))
    return dataclasses.replace(settings, database=db, outbox=outbox, conversation=conv)


def parse_settings(data: dict[str, Any], base: Path) -> Settings:
    return _resolve_paths(build(Settings, data), base)


def load_config(path: str | os.PathLike[str] | None = None) -> LoadedConfig:
    """Load the file given, else $MAILGATE_CONFIG, else embedded defaults."""
    chosen = path if path is not None else os.environ.get(CONFIG_ENV)
    if not chosen:
        return LoadedConfig(parse_settings({}, Path.cwd()), None)
    file = Path(chosen)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError("(file)", f"cannot read {file}: {exc.strerror}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError("(file)", f"{file} is not valid TOML: {exc}") from None
    return LoadedConfig(parse_settings(data, file.resolve().parent), file)


def effective(settings: Settings) -> dict[str, Any]:
    """The effective configuration with secrets masked."""
    return describe(settings)
