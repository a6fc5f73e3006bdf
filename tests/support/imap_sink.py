"""A small, real SQLite intake sink for the IMAP poller's tests and benchmark.

It implements the poller's ``IntakeSink`` protocol the way the real inbox does in spirit:
the raw bytes are committed in a transaction, and a UNIQUE dedupe key (the Message-ID, or
the SHA-256 of the raw bytes when there is none) makes a second copy a no-op that reports
``False``. One connection is shared under a lock, so a poller thread and the test thread
can use one sink at the same time. Tests can make it reject messages (``ValueError``, as a
parser would) or fail as storage (``StoreError``), or stop the poller dead after a commit.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from mailgate.errors import StoreError

# The header may be folded onto a second line (RFC 5322 §2.2.3).
_MESSAGE_ID = re.compile(
    rb"^Message-ID:[ \t]*(?:\r?\n[ \t]+)?(<[^>\r\n]+>)", re.IGNORECASE | re.MULTILINE
)

SCHEMA = """
CREATE TABLE IF NOT EXISTS inbox (
    id INTEGER PRIMARY KEY,
    dedupe_key TEXT NOT NULL UNIQUE,
    raw BLOB NOT NULL,
    source TEXT NOT NULL,
    origin TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS cursors (
    account TEXT NOT NULL,
    folder TEXT NOT NULL,
    uidvalidity INTEGER NOT NULL,
    last_uid INTEGER NOT NULL,
    PRIMARY KEY (account, folder)
);
"""


def dedupe_key(raw: bytes) -> str:
    """The Message-ID when the header section has one, else the SHA-256 of the bytes."""
    header_end = raw.find(b"\r\n\r\n")
    if header_end < 0:
        header_end = raw.find(b"\n\n")
    headers = raw if header_end < 0 else raw[:header_end]
    match = _MESSAGE_ID.search(headers)
    if match:
        return "mid:" + match.group(1).decode("ascii", "replace")
    return "sha256:" + hashlib.sha256(raw).hexdigest()


class SqliteIntakeSink:
    """``IntakeSink`` on one SQLite file; safe to share between threads."""

    def __init__(
        self,
        path: str | Path,
        *,
        reject: Callable[[bytes], bool] | None = None,
        after_commit: Callable[[bytes], None] | None = None,
    ) -> None:
        self.path = Path(path)
        self.reject = reject
        self.after_commit = after_commit
        self.batches: list[int] = []
        self._lock = threading.RLock()
        # One connection, used under the lock: opening one per call would cost more than
        # the INSERT (closing the last connection to a WAL database checkpoints it).
        self._conn = sqlite3.connect(self.path, timeout=30, check_same_thread=False)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.executescript(SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> SqliteIntakeSink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextlib.contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        """The connection inside one transaction: committed on success, else rolled back."""
        with self._lock, self._conn:
            yield self._conn

    # -- the IntakeSink protocol ------------------------------------------------------

    def store(self, raw: bytes, *, source: str, origin: str) -> bool:
        if not raw.strip():
            raise ValueError("empty message")
        if self.reject is not None and self.reject(raw):
            raise ValueError("message rejected by the test sink")
        try:
            with self._db() as db:
                cursor = db.execute(
                    "INSERT OR IGNORE INTO inbox (dedupe_key, raw, source, origin) "
                    "VALUES (?, ?, ?, ?)",
                    (dedupe_key(raw), raw, source, origin),
                )
                new = cursor.rowcount == 1
        except sqlite3.Error as exc:
            raise StoreError(f"could not store message from {origin}: {exc}") from exc
        if self.after_commit is not None:
            self.after_commit(raw)
        return new

    def load_cursor(self, account: str, folder: str) -> tuple[int, int] | None:
        with self._db() as db:
            row = db.execute(
                "SELECT uidvalidity, last_uid FROM cursors WHERE account = ? AND folder = ?",
                (account, folder),
            ).fetchone()
        return None if row is None else (int(row[0]), int(row[1]))

    def save_cursor(self, account: str, folder: str, uidvalidity: int, last_uid: int) -> None:
        with self._db() as db:
            db.execute(
                "INSERT INTO cursors (account, folder, uidvalidity, last_uid) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (account, folder) DO UPDATE"
                " SET uidvalidity = excluded.uidvalidity, last_uid = excluded.last_uid",
                (account, folder, uidvalidity, last_uid),
            )

    def stored_batch(self, count: int) -> None:
        with self._lock:
            self.batches.append(count)

    # -- what tests look at -----------------------------------------------------------

    def count(self) -> int:
        with self._db() as db:
            return int(db.execute("SELECT count(*) FROM inbox").fetchone()[0])

    def keys(self) -> list[str]:
        with self._db() as db:
            return [row[0] for row in db.execute("SELECT dedupe_key FROM inbox ORDER BY id")]

    def message_ids(self) -> list[str]:
        """Message-IDs of everything stored, sorted (rows without one are left out)."""
        return sorted(k.removeprefix("mid:") for k in self.keys() if k.startswith("mid:"))

    def raws(self) -> list[bytes]:
        with self._db() as db:
            return [bytes(row[0]) for row in db.execute("SELECT raw FROM inbox ORDER BY id")]

    def origins(self) -> list[str]:
        with self._db() as db:
            return [row[0] for row in db.execute("SELECT origin FROM inbox ORDER BY id")]


class FlakySink(SqliteIntakeSink):
    """Fails as storage (``StoreError``) on the given calls to ``store`` (1 = the first)."""

    def __init__(self, path: str | Path, *, failing_calls: Iterable[int]) -> None:
        super().__init__(path)
        self.failing_calls = set(failing_calls)
        self.store_calls = 0

    def store(self, raw: bytes, *, source: str, origin: str) -> bool:
        with self._lock:
            self.store_calls += 1
            fail = self.store_calls in self.failing_calls
        if fail:
            raise StoreError("disk full (simulated)")
        return super().store(raw, source=source, origin=origin)
