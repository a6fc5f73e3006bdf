"""Fetch support mail from an IMAP folder into the inbox, marking it only after the commit.

The order is the whole point (DESIGN.md, "Edges only store"): a message is fetched with
``BODY.PEEK[]`` (so fetching alone never sets ``\\Seen``), committed through the sink, and
only then moved away (or flagged ``\\Seen``); after that the cursor is saved. A crash at any
point therefore leaves the message on the server, unmarked, and the next run fetches it
again: the sink's dedupe key turns that second copy into a no-op, and the message is then
marked. Nothing is lost and nothing is imported twice.

The cursor is ``(UIDVALIDITY, last UID)`` per account and folder (RFC 3501 §2.3.1.1: UIDs
are only meaningful together with the UIDVALIDITY they were issued under). When the
server's UIDVALIDITY differs from the stored one, the cursor starts again from UID 1 and the
dedupe key keeps the resync from importing anything twice.

A message the server cannot hand over, or one the sink refuses as malformed (``ValueError``),
goes to the quarantine folder so it never blocks the messages behind it. A ``StoreError``
is different: our own storage failed, so the batch stops at that message, which stays
unmarked on the server and is retried after a backoff.

``run()`` waits for new mail with IDLE (RFC 2177; re-issued before the server's 30-minute
limit) or polls, and reconnects with capped, jittered exponential backoff.
"""

from __future__ import annotations

import logging
import math
import os
import random
import re
import socket
import ssl
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal, Protocol
from urllib.parse import quote

from imapclient import IMAPClient, SocketTimeout

from mailgate.errors import ConfigError, ConfigValueError, MailgateError, StoreError

__all__ = [
    "ImapMailbox",
    "ImapPoller",
    "ImapSecurityError",
    "IntakeSink",
    "PollResult",
    "ServerClosedError",
    "blank",
]

logger = logging.getLogger(__name__)

SOURCE: Final = "imap"
BODY_PEEK: Final = b"BODY.PEEK[]"
BODY: Final = b"BODY[]"
SEEN: Final = b"\\Seen"
DELETED: Final = b"\\Deleted"
FLAGGED: Final = b"\\Flagged"

# RFC 2177: servers may log an IDLE client out after 30 minutes; renew before that.
MAX_IDLE_RENEW: Final = 29 * 60.0
# How long one idle_check() waits; it bounds how late a stop request is noticed.
IDLE_SLICE: Final = 1.0
# While polling without IDLE, a NOOP this often keeps the connection from timing out.
POLL_KEEPALIVE: Final = 5 * 60.0
# A batch's fetch is split so that no single FETCH pulls more than this many bytes.
MAX_FETCH_BYTES: Final = 32 * 1024 * 1024

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_MESSAGE_ID = re.compile(
    rb"^Message-ID:[ \t]*(?:\r?\n[ \t]+)?(<[^>\r\n]{1,300}>)", re.IGNORECASE | re.MULTILINE
)


def _positive(name: str, value: float) -> None:
    if not (math.isfinite(value) and value > 0):
        raise ConfigValueError(name, f"must be a positive number of seconds, got {value!r}")


@dataclass(frozen=True)
class ImapMailbox:
    """One IMAP account and folder to collect mail from (a ``[[imap]]`` table)."""

    name: str = ""  # account label, used as the cursor key
    host: str = ""
    port: int = 993
    # "plaintext" must be spelled out; there is never a silent fallback to it.
    security: Literal["tls", "starttls", "plaintext"] = "tls"
    username: str = ""
    password: str = field(default="", repr=False)
    password_env: str | None = None  # e.g. "MAILGATE_IMAP_PASSWORD", read at start-up
    folder: str = "INBOX"
    after: Literal["move", "seen"] = "move"
    move_to: str = "Processed"
    quarantine_folder: str = "Quarantine"  # a message that cannot be stored goes here
    idle: bool = True
    poll_interval: float = 60.0
    idle_renew: float = 25 * 60.0  # re-issue IDLE before the 29-minute limit
    batch_size: int = 100
    tls_verify: bool = True
    ca_file: str | None = None  # a private CA to trust instead of the system store
    timeout: float = 60.0  # socket timeout for connecting and for every command
    backoff_initial: float = 1.0  # first reconnect delay; doubles per failure
    backoff_max: float = 300.0  # reconnect delays never exceed this

    def __post_init__(self) -> None:
        for name in ("name", "host", "username", "folder", "quarantine_folder"):
            if not getattr(self, name).strip():
                raise ConfigValueError(name, "must not be empty")
        if not 1 <= self.port <= 65535:
            raise ConfigValueError("port", f"must be between 1 and 65535, got {self.port}")
        if self.security not in ("tls", "starttls", "plaintext"):
            raise ConfigValueError(
                "security", f"must be 'tls', 'starttls' or 'plaintext', got {self.security!r}"
            )
        self._check_password()
        if self.after not in ("move", "seen"):
            raise ConfigValueError("after", f"must be 'move' or 'seen', got {self.after!r}")
        if self.after == "move":
            if not self.move_to.strip():
                raise ConfigValueError("move_to", "must not be empty when after = 'move'")
            if self.move_to == self.folder:
                raise ConfigValueError("move_to", "must differ from folder")
        if self.quarantine_folder == self.folder:
            raise ConfigValueError("quarantine_folder", "must differ from folder")
        for name in ("poll_interval", "timeout", "backoff_initial", "backoff_max"):
            _positive(name, getattr(self, name))
        _positive("idle_renew", self.idle_renew)
        if self.idle_renew > MAX_IDLE_RENEW:
            raise ConfigValueError(
                "idle_renew", f"must be at most {MAX_IDLE_RENEW:.0f} s (RFC 2177 30-minute limit)"
            )
        if self.backoff_max < self.backoff_initial:
            raise ConfigValueError("backoff_max", "must not be smaller than backoff_initial")
        if not 1 <= self.batch_size <= 10_000:
            raise ConfigValueError(
                "batch_size", f"must be between 1 and 10000, got {self.batch_size}"
            )
        if self.ca_file is not None:
            if self.security == "plaintext":
                raise ConfigValueError("ca_file", "has no effect with security = 'plaintext'")
            if not self.tls_verify:
                raise ConfigValueError("ca_file", "has no effect with tls_verify = false")

    def _check_password(self) -> None:
        if self.password_env is not None:
            if self.password:
                raise ConfigValueError("password_env", "set either password or password_env")
            if not _ENV_NAME.match(self.password_env):
                raise ConfigValueError(
                    "password_env", f"is not an environment variable name: {self.password_env!r}"
                )
        elif not self.password:
            raise ConfigValueError("password", "must be set (or name it with password_env)")


class IntakeSink(Protocol):
    """Where fetched messages go: the inbox table, and the poller's cursor."""

    def store(self, raw: bytes, *, source: str, origin: str) -> bool:
        """Commit raw bytes to the inbox; True if new, False if a duplicate.

        Raises ``StoreError`` if it could not store, ``ValueError`` if the message is
        unusable.
        """
        ...

    def store_batch(self, messages: Sequence[tuple[bytes, str]], *, source: str) -> list[bool]:
        """Commit ``(raw, origin)`` messages together: all of them, or none (``StoreError``,
        also when one of them is unusable; ``store`` then tells which). True for each new
        message, False for a duplicate."""
        ...

    def load_cursor(self, account: str, folder: str) -> tuple[int, int] | None:
        """The saved ``(uidvalidity, last_uid)``, or None before the first run."""
        ...

    def save_cursor(self, account: str, folder: str, uidvalidity: int, last_uid: int) -> None: ...

    def stored_batch(self, count: int) -> None:
        """Called after a batch was stored and marked, so new inbox items can be processed."""
        ...


@dataclass(frozen=True)
class PollResult:
    """What one drain of the folder did."""

    fetched: int = 0
    stored: int = 0
    duplicates: int = 0
    quarantined: int = 0

    def __add__(self, other: PollResult) -> PollResult:
        return PollResult(
            self.fetched + other.fetched,
            self.stored + other.stored,
            self.duplicates + other.duplicates,
            self.quarantined + other.quarantined,
        )


class ImapSecurityError(MailgateError):
    """The server cannot give the connection the security the settings demand."""


class ServerClosedError(ConnectionError):
    """The server ended the session (``* BYE``), e.g. because it is shutting down."""


@dataclass
class _Batch:
    """The fate of each UID of one batch, decided before anything is marked."""

    done: list[int] = field(default_factory=list)  # stored or duplicate: mark as processed
    quarantine: list[int] = field(default_factory=list)
    last_uid: int = 0  # every UID of the batch up to this one is decided
    fetched: int = 0
    stored: int = 0
    duplicates: int = 0

    def result(self) -> PollResult:
        return PollResult(self.fetched, self.stored, self.duplicates, len(self.quarantine))


class _Backoff:
    """Exponential reconnect delays, capped, with "equal jitter" (half fixed, half random)."""

    def __init__(self, initial: float, maximum: float, rng: random.Random) -> None:
        self.initial = initial
        self.maximum = maximum
        self.rng = rng
        self.failures = 0

    def next_delay(self) -> float:
        base = min(self.maximum, self.initial * 2.0 ** min(self.failures, 30))
        self.failures += 1
        return base / 2 + self.rng.uniform(0, base / 2)

    def reset(self) -> None:
        self.failures = 0


def _chunks(items: Sequence[int], size: int) -> Iterator[list[int]]:
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


def blank(raw: bytes) -> bool:
    """Whether a message is empty or only white space (``not raw.strip()``, without
    copying a message of many megabytes to find out)."""
    return not raw or raw.isspace()


def _message_id(raw: bytes) -> str:
    end = raw.find(b"\r\n\r\n")
    match = _MESSAGE_ID.search(raw if end < 0 else raw[:end])
    return match.group(1).decode("ascii", "replace") if match else "(no Message-ID)"


def _is_bye(response: Any) -> bool:
    return isinstance(response, tuple) and bool(response) and response[0] == b"BYE"


def _is_new_mail(response: Any) -> bool:
    # "* 12 EXISTS" (RFC 3501 §7.3.1) is how a server announces new messages.
    return isinstance(response, tuple) and len(response) >= 2 and response[1] == b"EXISTS"


class ImapPoller:
    """Moves mail from one IMAP folder into an ``IntakeSink``, losing and repeating nothing.

    One poller serves one ``ImapMailbox``; call ``poll_once`` or ``run`` from one thread at
    a time. Several pollers (one per mailbox) can run in parallel threads.
    """

    def __init__(
        self,
        settings: ImapMailbox,
        sink: IntakeSink,
        *,
        log: logging.Logger | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.settings = settings
        self.sink = sink
        self.log = log or logger
        self._rng = rng or random.Random()
        self._password = self._resolve_password()
        # Built now, so a missing ca_file is reported at start-up, not at the first poll.
        self._ssl_context = self._make_ssl_context()
        self._known_folders: set[str] = set()

    # -- public API -------------------------------------------------------------------

    def poll_once(self) -> PollResult:
        """Connect, drain everything new in the folder, disconnect."""
        client = self._connect()
        graceful = False
        try:
            result = self._drain(client)
            graceful = True
            return result
        except StoreError:
            graceful = True  # the connection is fine; only our storage failed
            raise
        finally:
            self._disconnect(client, graceful=graceful)

    def run(self, stop: threading.Event) -> None:
        """Collect mail until ``stop`` is set: drain, wait (IDLE or poll), drain again.

        Network failures and storage failures are logged and retried after a backoff
        delay; the method returns within about a second of ``stop`` being set (or, at
        worst, when the command in flight finishes or reaches ``timeout``).
        """
        s = self.settings
        backoff = _Backoff(s.backoff_initial, s.backoff_max, self._rng)
        while not stop.is_set():
            client: Any = None
            graceful = False
            try:
                client = self._connect()
                result = self._drain(client, stop)
                backoff.reset()
                self.log.info(
                    "imap %s: connected to %s:%d, caught up (%d new, %d duplicate, %d quarantined)",
                    s.name, s.host, s.port, result.stored, result.duplicates, result.quarantined,
                )  # fmt: skip
                while not stop.is_set():
                    self._wait_for_mail(client, stop)
                    if stop.is_set():
                        break
                    self._drain(client, stop)
                graceful = True
            except StoreError as exc:
                graceful = True
                self.log.error(
                    "imap %s: could not store; the message stays unmarked on the server: %s",
                    s.name, exc,
                )  # fmt: skip
            except (OSError, IMAPClient.Error, ImapSecurityError) as exc:
                self.log.warning(
                    "imap %s: session with %s:%d failed: %s: %s",
                    s.name, s.host, s.port, type(exc).__name__, exc,
                )  # fmt: skip
            except Exception:
                # A bug or a server reply we do not understand: keep the thread alive.
                self.log.exception("imap %s: unexpected error", s.name)
            finally:
                if client is not None:
                    self._disconnect(client, graceful=graceful)
            if stop.is_set():
                break
            delay = backoff.next_delay()
            self.log.info("imap %s: retrying in %.1f s", s.name, delay)
            stop.wait(delay)
        self.log.info("imap %s: stopped", s.name)

    # -- connecting -------------------------------------------------------------------

    def _resolve_password(self) -> str:
        env = self.settings.password_env
        if env is None:
            return self.settings.password
        value = os.environ.get(env)
        if not value:
            raise ConfigError("password_env", f"environment variable {env} is not set or empty")
        return value

    def _make_ssl_context(self) -> ssl.SSLContext | None:
        s = self.settings
        if s.security == "plaintext":
            return None
        context = ssl.create_default_context(cafile=s.ca_file)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        if not s.tls_verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context

    def _connect(self) -> Any:
        """A logged-in client, secured exactly as the settings demand."""
        s = self.settings
        timeout = SocketTimeout(connect=s.timeout, read=s.timeout)
        implicit_tls = s.security == "tls"
        client = IMAPClient(
            s.host, s.port, ssl=implicit_tls, ssl_context=self._ssl_context, timeout=timeout
        )
        try:
            if s.security == "starttls":
                # RFC 3501 §6.2.1: without STARTTLS on offer we refuse, never log in anyway.
                if not client.has_capability("STARTTLS"):
                    raise ImapSecurityError(
                        f"{s.host}:{s.port} does not offer STARTTLS; refusing to log in "
                        "in cleartext (set security = 'plaintext' to allow that)"
                    )
                client.starttls(self._ssl_context)
            self._enable_keepalive(client.socket())
            client.login(s.username, self._password)
        except BaseException:
            self._disconnect(client, graceful=False)
            raise
        self._known_folders = set()
        return client

    @staticmethod
    def _enable_keepalive(sock: socket.socket) -> None:
        # TCP keepalive notices a silently dead peer during long IDLEs.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        for option, value in (("TCP_KEEPIDLE", 60), ("TCP_KEEPINTVL", 20), ("TCP_KEEPCNT", 3)):
            if hasattr(socket, option):
                sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, option), value)

    def _disconnect(self, client: Any, *, graceful: bool) -> None:
        try:
            if graceful:
                client.logout()
                return
        except Exception as exc:
            self.log.debug("imap %s: logout failed: %s", self.settings.name, exc)
        try:
            client.shutdown()
        except Exception as exc:
            self.log.debug("imap %s: closing the socket failed: %s", self.settings.name, exc)

    # -- draining ---------------------------------------------------------------------

    def _drain(self, client: Any, stop: threading.Event | None = None) -> PollResult:
        """Store and mark everything above the cursor, batch by batch, until nothing is new."""
        s = self.settings
        uidvalidity = int(client.select_folder(s.folder)[b"UIDVALIDITY"])
        last_uid = self._resume_point(uidvalidity)
        total = PollResult()
        while True:
            pending = self._search_new(client, last_uid)
            if not pending:
                return total
            for uids in _chunks(pending, s.batch_size):
                batch = self._process_batch(client, uidvalidity, uids)
                last_uid = batch.last_uid
                total += batch.result()
                if stop is not None and stop.is_set():
                    return total

    def _resume_point(self, uidvalidity: int) -> int:
        s = self.settings
        cursor = self.sink.load_cursor(s.name, s.folder)
        if cursor is None:
            return 0
        saved_validity, last_uid = cursor
        if saved_validity == uidvalidity:
            return last_uid
        # RFC 3501 §2.3.1.1: the old UIDs mean nothing now. Start over; dedupe in the sink
        # keeps anything already stored from being imported a second time.
        self.log.warning(
            "imap %s: UIDVALIDITY of %s changed from %d to %d; resynchronising from UID 1",
            s.name, s.folder, saved_validity, uidvalidity,
        )  # fmt: skip
        self.sink.save_cursor(s.name, s.folder, uidvalidity, 0)
        return 0

    def _search_new(self, client: Any, last_uid: int) -> list[int]:
        criteria: list[str] = ["UID", f"{last_uid + 1}:*"]
        if self.settings.after == "seen":
            criteria.insert(0, "UNSEEN")
        # "n:*" always matches the highest UID even when it is below n (RFC 3501 §6.4.8).
        return sorted(uid for uid in client.search(criteria) if uid > last_uid)

    def _process_batch(self, client: Any, uidvalidity: int, uids: list[int]) -> _Batch:
        """Store each message, then mark the batch, then save the cursor - in that order."""
        s = self.settings
        batch = _Batch()
        storage_error: StoreError | None = None
        for group in self._fetch(client, uids):
            # Our storage failed, not a message: stop here, mark only what was committed,
            # and let the caller back off. The rest stays unmarked.
            storage_error = self._store_group(uidvalidity, group, batch)
            if storage_error is not None:
                break
        if batch.last_uid:
            self._mark(client, batch)
            self.sink.save_cursor(s.name, s.folder, uidvalidity, batch.last_uid)
            if batch.stored:
                self.sink.stored_batch(batch.stored)
        if storage_error is not None:
            raise storage_error
        return batch

    def _store_group(
        self, uidvalidity: int, group: list[tuple[int, bytes | None]], batch: _Batch
    ) -> StoreError | None:
        """Store one fetched group in one transaction; if that fails, one message at a time,
        which tells a message the database refuses (quarantined) from a database that
        fails (the error is returned; the messages before it stay committed)."""
        s = self.settings
        storable = [(uid, raw) for uid, raw in group if raw is not None and not blank(raw)]
        if len(storable) > 1:
            messages = [(raw, self._origin(uidvalidity, uid)) for uid, raw in storable]
            try:
                new = self.sink.store_batch(messages, source=SOURCE)
            except StoreError as exc:
                self.log.warning(
                    "imap %s: storing %d messages together failed (%s); storing them one by one",
                    s.name, len(storable), exc,
                )  # fmt: skip
            else:
                stored = dict(zip((uid for uid, _ in storable), new, strict=True))
                for uid, raw in group:
                    self._store_one(uidvalidity, uid, raw, batch, stored.get(uid))
                    batch.last_uid = uid
                return None
        for uid, raw in group:
            try:
                self._store_one(uidvalidity, uid, raw, batch)
            except StoreError as exc:
                return exc
            batch.last_uid = uid
        return None

    def _store_one(
        self,
        uidvalidity: int,
        uid: int,
        raw: bytes | None,
        batch: _Batch,
        new: bool | None = None,
    ) -> None:
        """Store one message and record its fate; ``new`` says it is already stored with its
        group (True: it was new)."""
        s = self.settings
        if raw is None:
            self.log.warning(
                "imap %s: uid %d vanished before it was fetched (expunged by another client?)",
                s.name, uid,
            )  # fmt: skip
            return
        batch.fetched += 1
        if blank(raw):
            self.log.warning("imap %s: uid %d came back empty; quarantining it", s.name, uid)
            batch.quarantine.append(uid)
            return
        try:
            if new is None:
                new = self.sink.store(raw, source=SOURCE, origin=self._origin(uidvalidity, uid))
        except ValueError as exc:
            self.log.warning(
                "imap %s: uid %d %s refused (%s); quarantining it",
                s.name, uid, _message_id(raw), exc,
            )  # fmt: skip
            batch.quarantine.append(uid)
            return
        batch.done.append(uid)
        if new:
            batch.stored += 1
        else:
            batch.duplicates += 1
        self.log.info(
            "imap %s: %s uid %d %s (%d bytes)",
            s.name, "stored" if new else "already stored", uid, _message_id(raw), len(raw),
        )  # fmt: skip

    def _origin(self, uidvalidity: int, uid: int) -> str:
        # An IMAP URL naming the exact message (RFC 5092).
        s = self.settings
        return (
            f"imap://{quote(s.username, safe='')}@{s.host}:{s.port}/{quote(s.folder)}"
            f";UIDVALIDITY={uidvalidity}/;UID={uid}"
        )

    # -- fetching ---------------------------------------------------------------------

    def _fetch(self, client: Any, uids: list[int]) -> Iterator[list[tuple[int, bytes | None]]]:
        """Yield groups of ``(uid, raw)`` in UID order, each at most ``MAX_FETCH_BYTES`` (or
        one message); raw is b"" when the server cannot return it, None when the message
        has vanished."""
        sizes = client.fetch(uids, [b"RFC822.SIZE"])
        group: list[int] = []
        group_bytes = 0
        for uid in uids:
            size = int(sizes.get(uid, {}).get(b"RFC822.SIZE", 0) or 0)
            if group and group_bytes + size > MAX_FETCH_BYTES:
                yield list(self._fetch_group(client, group))
                group, group_bytes = [], 0
            group.append(uid)
            group_bytes += size
        if group:
            yield list(self._fetch_group(client, group))

    def _fetch_group(self, client: Any, uids: list[int]) -> Iterator[tuple[int, bytes | None]]:
        try:
            response = client.fetch(uids, [BODY_PEEK])
        except IMAPClient.AbortError:
            raise  # the connection is gone
        except IMAPClient.Error as exc:
            if len(uids) == 1:
                # The server cannot produce this message (e.g. a damaged file): quarantine.
                self.log.warning(
                    "imap %s: fetching uid %d failed: %s", self.settings.name, uids[0], exc
                )
                yield uids[0], b""
                return
            for uid in uids:  # find the one message that breaks the batch
                yield from self._fetch_group(client, [uid])
            return
        for uid in uids:
            data = response.get(uid)
            if data is None:
                yield uid, None
                continue
            body = data.get(BODY)
            yield uid, bytes(body) if body is not None else b""

    # -- marking ----------------------------------------------------------------------

    def _mark(self, client: Any, batch: _Batch) -> None:
        s = self.settings
        if batch.done:
            if s.after == "move":
                self._move(client, batch.done, s.move_to)
            else:
                client.add_flags(batch.done, [SEEN], silent=True)
        if batch.quarantine:
            self._quarantine(client, batch.quarantine)

    def _quarantine(self, client: Any, uids: list[int]) -> None:
        s = self.settings
        try:
            self._move(client, uids, s.quarantine_folder)
            return
        except IMAPClient.AbortError:
            raise
        except IMAPClient.Error as exc:
            self.log.error("imap %s: quarantining uids %s failed: %s", s.name, uids, exc)
        for uid in uids:
            try:
                self._move(client, [uid], s.quarantine_folder)
            except IMAPClient.AbortError:
                raise
            except IMAPClient.Error as exc:
                # Leave it flagged for a human; the cursor moves past it so it blocks nothing.
                self.log.error(
                    "imap %s: uid %d cannot be quarantined (%s); flagged and skipped",
                    s.name, uid, exc,
                )  # fmt: skip
                client.add_flags([uid], [FLAGGED], silent=True)

    def _server_can_move(self, client: Any) -> bool:
        return bool(client.has_capability("MOVE"))

    def _move(self, client: Any, uids: list[int], folder: str) -> None:
        self._ensure_folder(client, folder)
        if self._server_can_move(client):
            client.move(uids, folder)  # RFC 6851: atomic
            return
        client.copy(uids, folder)
        client.add_flags(uids, [DELETED], silent=True)
        if client.has_capability("UIDPLUS"):
            client.uid_expunge(uids)  # RFC 4315: expunges only these UIDs
        else:
            client.expunge()

    def _ensure_folder(self, client: Any, folder: str) -> None:
        if folder in self._known_folders:
            return
        if not client.folder_exists(folder):
            try:
                client.create_folder(folder)
                self.log.info("imap %s: created folder %s", self.settings.name, folder)
            except IMAPClient.Error:
                if not client.folder_exists(folder):  # somebody else may have just made it
                    raise
            try:
                client.subscribe_folder(folder)
            except IMAPClient.Error as exc:
                self.log.debug(
                    "imap %s: subscribing %s failed: %s", self.settings.name, folder, exc
                )
        self._known_folders.add(folder)

    # -- waiting ----------------------------------------------------------------------

    def _wait_for_mail(self, client: Any, stop: threading.Event) -> None:
        if self.settings.idle and client.has_capability("IDLE"):
            # Mail that arrived between the drain's last search and IDLE is announced only
            # at the end of the next command, not inside IDLE: ask first (RFC 3501 6.1.2).
            _, responses = client.noop()
            if any(_is_new_mail(r) for r in responses):
                return
            self._idle(client, stop)
        else:
            self._sleep_polling(client, stop)

    def _sleep_polling(self, client: Any, stop: threading.Event) -> None:
        deadline = time.monotonic() + self.settings.poll_interval
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or stop.wait(min(remaining, POLL_KEEPALIVE)):
                return
            if deadline - time.monotonic() > 0:
                client.noop()

    def _idle(self, client: Any, stop: threading.Event) -> None:
        """IDLE until new mail, a stop request, or time to renew; then leave IDLE cleanly."""
        s = self.settings
        client.idle()
        started = time.monotonic()
        while not stop.is_set():
            if time.monotonic() - started >= s.idle_renew:
                self.log.debug("imap %s: renewing IDLE", s.name)
                break
            slice_started = time.monotonic()
            responses = client.idle_check(timeout=IDLE_SLICE)
            if any(_is_bye(r) for r in responses):
                raise ServerClosedError(f"{s.host}:{s.port} closed the session: {responses}")
            if any(_is_new_mail(r) for r in responses):
                break
            if not responses and time.monotonic() - slice_started < IDLE_SLICE / 2:
                # Readable but no whole response: end of file or a partial line. Leaving
                # IDLE tells which - idle_done() raises if the connection is gone.
                break
        client.idle_done()
