"""A private Dovecot IMAP server for tests and benchmarks, on 127.0.0.1 only.

Everything lives in one temporary directory: the configuration (never /etc/dovecot), a
test CA with a server certificate made by ``openssl``, a passwd-file of users, the Maildir
tree and Dovecot's own runtime and log files. ``dovecot -F -c CONF`` runs as a child
process; the mail itself is accessed as an unprivileged user (``nobody`` when we are
root), because Dovecot refuses to touch mail as root.

Two listeners are opened on free loopback ports: ``port`` speaks IMAP in the clear and
offers STARTTLS (when ``ssl`` is on), ``tls_port`` speaks implicit TLS (RFC 8314).

The server can be stopped and started again on the same ports and Maildir (``restart``),
and a mailbox's UIDVALIDITY can be changed (``change_uidvalidity`` keeps the messages and
their UIDs, ``recreate_mailbox`` gives them new UIDs, as a restore from backup would).
"""

from __future__ import annotations

import atexit
import contextlib
import datetime as dt
import itertools
import os
import pwd
import re
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from email.utils import format_datetime, make_msgid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from imapclient import IMAPClient

if TYPE_CHECKING:
    from mailgate.ingest.imap import ImapMailbox

INSTALL_HINT = (
    "Dovecot is not installed: no 'dovecot' binary on PATH or in /usr/sbin. The test command "
    "installs it (as root: apt-get update && apt-get install -y dovecot-imapd, then stops the "
    "system service the package may have started); run the tests through the test command, "
    "or install the package yourself."
)

HOST = "127.0.0.1"
DEFAULT_USER = "mailgate"
DEFAULT_PASSWORD = "mailgate-test-password"


class DovecotMissing(RuntimeError):
    """The ``dovecot`` binary is not installed."""


class DovecotError(RuntimeError):
    """The private Dovecot could not be started, stopped or changed."""


def find_binary(name: str = "dovecot") -> str:
    """The path of a Dovecot program, looking in /usr/sbin too (it is not on every PATH)."""
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/local/sbin:/sbin")
    if not found:
        raise DovecotMissing(INSTALL_HINT)
    return found


def free_port() -> int:
    """A loopback TCP port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class _Accounts:
    """Who runs what: Dovecot's own service users and the owner of the mail files."""

    internal_user: str
    login_user: str
    mail_uid: int
    mail_gid: int

    @classmethod
    def detect(cls) -> _Accounts:
        if os.geteuid() != 0:
            # Unprivileged: every process, and the mail, belongs to us.
            me = pwd.getpwuid(os.geteuid()).pw_name
            return cls(me, me, os.geteuid(), os.getegid())
        nobody = pwd.getpwnam("nobody")

        def existing(name: str) -> str:
            try:
                pwd.getpwnam(name)
            except KeyError:
                return "nobody"
            return name

        return cls(existing("dovecot"), existing("dovenull"), nobody.pw_uid, nobody.pw_gid)


def _make_certificates(directory: Path) -> tuple[Path, Path, Path]:
    """A test CA and a server certificate for localhost and 127.0.0.1 signed by it."""
    openssl = shutil.which("openssl")
    if not openssl:
        raise DovecotError("openssl makes the test certificates: apt-get install -y openssl")
    ca_key, ca_pem = directory / "ca.key", directory / "ca.pem"
    key, csr, pem = directory / "server.key", directory / "server.csr", directory / "server.pem"
    ext = directory / "server.ext"
    ext.write_text(
        "basicConstraints = critical, CA:FALSE\n"
        "keyUsage = critical, digitalSignature, keyEncipherment\n"
        "extendedKeyUsage = serverAuth\n"
        "subjectAltName = DNS:localhost, IP:127.0.0.1\n"
        "subjectKeyIdentifier = hash\n"
        "authorityKeyIdentifier = keyid, issuer\n"
    )
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    commands = [
        [openssl, "req", "-x509", *ec, "-keyout", str(ca_key), "-out", str(ca_pem),
         "-days", "7", "-subj", "/CN=mailgate test CA",
         "-addext", "basicConstraints=critical,CA:TRUE",
         "-addext", "keyUsage=critical,keyCertSign,cRLSign"],
        [openssl, "req", *ec, "-keyout", str(key), "-out", str(csr), "-subj", "/CN=localhost"],
        [openssl, "x509", "-req", "-in", str(csr), "-CA", str(ca_pem), "-CAkey", str(ca_key),
         "-CAcreateserial", "-out", str(pem), "-days", "7", "-extfile", str(ext)],
    ]  # fmt: skip
    for command in commands:
        done = subprocess.run(command, capture_output=True, text=True, check=False, timeout=60)
        if done.returncode != 0:
            raise DovecotError(f"{' '.join(command[:3])} failed: {done.stderr.strip()}")
    return ca_pem, pem, key


class DovecotServer:
    """One private Dovecot instance; use as a context manager or call start/close."""

    host = HOST

    def __init__(
        self,
        root: Path | None = None,
        *,
        users: Mapping[str, str] | None = None,
        ssl: bool = True,
        start_timeout: float = 20.0,
    ) -> None:
        self.binary = find_binary("dovecot")
        self.doveadm = find_binary("doveadm")
        self._own_root = root is None
        self.root = Path(tempfile.mkdtemp(prefix="mg-dovecot-")) if root is None else root
        self.root.mkdir(parents=True, exist_ok=True)
        # The mail processes run as nobody and must be able to walk down to their home.
        self.root.chmod(0o755)
        self.users: dict[str, str] = dict(users or {DEFAULT_USER: DEFAULT_PASSWORD})
        self.ssl = ssl
        self.start_timeout = start_timeout
        self.accounts = _Accounts.detect()
        self.conf_path = self.root / "dovecot.conf"
        self.log_path = self.root / "dovecot.log"
        self.home_root = self.root / "home"
        self.port = 0
        self.tls_port = 0
        self._proc: subprocess.Popen[bytes] | None = None
        self._delivered = itertools.count()
        if ssl:
            (self.root / "tls").mkdir(exist_ok=True)
            self.ca_file, self.cert_file, self.key_file = _make_certificates(self.root / "tls")
        self._write_users()
        self.home_root.mkdir(exist_ok=True)
        for user in self.users:
            self._make_home(user)
        atexit.register(self._stop_quietly)

    # -- configuration ----------------------------------------------------------------

    def _write_users(self) -> None:
        lines = [f"{user}:{{PLAIN}}{password}::::::\n" for user, password in self.users.items()]
        users_file = self.root / "users"
        users_file.write_text("".join(lines))
        users_file.chmod(0o644)  # read by the auth process, which is not root

    def _make_home(self, user: str) -> None:
        home = self.home_root / user
        home.mkdir(exist_ok=True)
        os.chown(home, self.accounts.mail_uid, self.accounts.mail_gid)
        home.chmod(0o700)

    def _write_config(self) -> None:
        a = self.accounts
        # Plaintext LOGIN stays allowed (and Dovecot counts 127.0.0.1 as secure anyway):
        # refusing cleartext is the poller's job, and that is what the tests check.
        tls = (
            f"ssl = yes\nssl_cert = <{self.cert_file}\nssl_key = <{self.key_file}\n"
            "ssl_min_protocol = TLSv1.2\n"
            if self.ssl
            else "ssl = no\n"
        )
        imaps = (
            f"  inet_listener imaps {{\n    address = {HOST}\n    port = {self.tls_port}\n"
            "    ssl = yes\n  }\n"
            if self.ssl
            else ""
        )
        self.conf_path.write_text(
            f"""# Private Dovecot for mailgate tests; written by tests/support/dovecot.py.
base_dir = {self.root}/run
state_dir = {self.root}/state
instance_name = mailgate-test-{self.port}
listen = {HOST}
protocols = imap
log_path = {self.log_path}
info_log_path = {self.log_path}
auth_verbose = yes
default_internal_user = {a.internal_user}
default_login_user = {a.login_user}
first_valid_uid = 1
first_valid_gid = 1
mail_location = maildir:~/Maildir
# Test data only: no fsync keeps the 1,000-message backlog quick.
mail_fsync = never
# Tell IDLE clients about new mail within a second even without inotify.
mailbox_idle_check_interval = 1 secs
disable_plaintext_auth = no
auth_mechanisms = plain login
{tls}
namespace inbox {{
  inbox = yes
  separator = /
}}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN {self.root}/users
}}
userdb {{
  driver = static
  args = uid={a.mail_uid} gid={a.mail_gid} home={self.home_root}/%u allow_all_users=yes
}}
service imap-login {{
  inet_listener imap {{
    address = {HOST}
    port = {self.port}
  }}
{imaps}}}
protocol imap {{
  mail_max_userip_connections = 1000
}}
"""
        )

    # -- life cycle -------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> None:
        """Start Dovecot; on the first start pick free ports, later reuse the same ones."""
        if self.running:
            return
        fixed = self.port != 0
        attempts = 1 if fixed else 5
        for attempt in range(attempts):
            if not fixed:
                self.port = free_port()
                self.tls_port = free_port() if self.ssl else 0
            try:
                self._start_once()
                return
            except DovecotError:
                if attempt == attempts - 1 or "Address already in use" not in self.log_text():
                    raise

    def _start_once(self) -> None:
        self._write_config()
        log_start = self.log_path.stat().st_size if self.log_path.exists() else 0
        with open(self.root / "dovecot.stderr", "ab") as stderr:
            self._proc = subprocess.Popen(
                [self.binary, "-F", "-c", str(self.conf_path)],
                stdin=subprocess.DEVNULL,
                stdout=stderr,
                stderr=stderr,
                start_new_session=True,  # its own process group, so stop() can reach children
            )
        deadline = time.monotonic() + self.start_timeout
        ports = [self.port] + ([self.tls_port] if self.ssl else [])
        while True:
            if self._proc.poll() is not None:
                self._proc = None
                raise DovecotError(
                    "dovecot exited while starting:\n" + self.log_text(since=log_start)[-3000:]
                )
            if all(self._answers(port) for port in ports) and self._can_log_in():
                return
            if time.monotonic() > deadline:
                self.stop()
                raise DovecotError(
                    f"dovecot did not answer on {ports} within {self.start_timeout}s:\n"
                    + self.log_text(since=log_start)[-3000:]
                )
            time.sleep(0.05)

    def _answers(self, port: int) -> bool:
        try:
            with socket.create_connection((HOST, port), timeout=2) as sock:
                if port == self.tls_port:
                    return True  # accepting is enough; the handshake is the client's business
                sock.settimeout(2)
                return sock.recv(64).startswith(b"* OK")
        except OSError:
            return False

    def _can_log_in(self) -> bool:
        """Ready means auth works too, not only that the listeners accept."""
        user = next(iter(self.users))
        try:
            with self.connect(user, timeout=5):
                return True
        except (OSError, IMAPClient.Error):
            return False

    def stop(self, timeout: float = 15.0) -> None:
        """Stop Dovecot (SIGTERM to the master, which ends its children and clients)."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)  # our own process group only
                proc.wait(timeout)
        # Children that outlive the master (they should not) would keep the ports busy.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)

    def restart(self) -> None:
        """Stop and start again on the same ports and Maildir."""
        self.stop()
        self.start()

    def close(self) -> None:
        """Stop the server and remove its directory (if we made it)."""
        self.stop()
        atexit.unregister(self._stop_quietly)
        if self._own_root:
            shutil.rmtree(self.root, ignore_errors=True)

    def _stop_quietly(self) -> None:
        with contextlib.suppress(Exception):
            self.stop()

    def __enter__(self) -> DovecotServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def log_text(self, since: int = 0) -> str:
        text = ""
        for path in (self.log_path, self.root / "dovecot.stderr"):
            if path.exists():
                with open(path, "rb") as f:
                    f.seek(since if path == self.log_path else 0)
                    text += f.read().decode("utf-8", "replace")
        return text

    # -- clients ----------------------------------------------------------------------

    def client_ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_file))

    @contextlib.contextmanager
    def connect(
        self, user: str = DEFAULT_USER, *, tls: bool = False, timeout: float = 30.0
    ) -> Iterator[Any]:
        """A logged-in IMAPClient (plaintext on ``port`` or implicit TLS on ``tls_port``)."""
        if tls:
            client = IMAPClient(
                HOST, self.tls_port, ssl=True, ssl_context=self.client_ssl_context(),
                timeout=timeout,
            )  # fmt: skip
        else:
            client = IMAPClient(HOST, self.port, ssl=False, timeout=timeout)
        try:
            client.login(user, self.users[user])
            yield client
        finally:
            try:
                client.logout()
            except Exception:
                with contextlib.suppress(Exception):
                    client.shutdown()

    # -- mailbox surgery for tests ----------------------------------------------------

    def maildir(self, folder: str, user: str = DEFAULT_USER) -> Path:
        """The Maildir++ directory that holds ``folder`` (separator '/' becomes '.')."""
        base = self.home_root / user / "Maildir"
        if folder.upper() == "INBOX":
            return base
        return base / ("." + folder.replace("/", "."))

    def deliver(self, folder: str, raw: bytes, user: str = DEFAULT_USER) -> Path:
        """Drop a message straight into ``folder``'s Maildir ``new/``, as an MDA would.

        Works while Dovecot is stopped: that is how mail "arrives meanwhile".
        """
        directory = self.maildir(folder, user)
        if not (directory / "cur").is_dir():
            raise DovecotError(f"folder {folder!r} of {user!r} does not exist on disk")
        name = (
            f"{int(time.time())}.M{time.time_ns() // 1000 % 1_000_000}"
            f"P{os.getpid()}Q{next(self._delivered)}.mailgate-test"
        )
        tmp = directory / "tmp" / name
        tmp.write_bytes(raw)
        os.chown(tmp, self.accounts.mail_uid, self.accounts.mail_gid)
        final = directory / "new" / name
        tmp.rename(final)
        return final

    def uidvalidity(self, folder: str, user: str = DEFAULT_USER) -> int:
        with self.connect(user) as client:
            status = client.folder_status(folder, [b"UIDVALIDITY"])
        return int(status[b"UIDVALIDITY"])

    def change_uidvalidity(
        self, folder: str, user: str = DEFAULT_USER, *, uidvalidity: int | None = None
    ) -> int:
        """Give ``folder`` a new UIDVALIDITY, keeping its messages and UIDs; returns it.

        Uses ``doveadm mailbox update --uid-validity`` against the running server.
        Clients that have the folder selected are disconnected by Dovecot.
        """
        old = self.uidvalidity(folder, user)
        new = uidvalidity if uidvalidity is not None else old + 1
        done = subprocess.run(
            [self.doveadm, "-c", str(self.conf_path), "mailbox", "update", "-u", user,
             "--uid-validity", str(new), folder],
            capture_output=True, text=True, check=False, timeout=60,
        )  # fmt: skip
        if done.returncode != 0:
            raise DovecotError(f"doveadm mailbox update failed: {done.stderr.strip()}")
        now = self.uidvalidity(folder, user)
        if now != new:
            raise DovecotError(f"UIDVALIDITY of {folder!r} is {now}, wanted {new}")
        return now

    def kick(self, user: str = DEFAULT_USER) -> None:
        """Disconnect every session of ``user`` (``doveadm kick``), as an admin would."""
        done = subprocess.run(
            [self.doveadm, "-c", str(self.conf_path), "kick", user],
            capture_output=True, text=True, check=False, timeout=60,
        )  # fmt: skip
        if done.returncode != 0:
            raise DovecotError(f"doveadm kick failed: {done.stderr.strip()}")

    def recreate_mailbox(self, folder: str, user: str = DEFAULT_USER) -> int:
        """Delete ``folder`` and create it again with the same messages (and flags).

        As after a restore from backup: a new UIDVALIDITY and new UIDs. Returns the new
        UIDVALIDITY.
        """
        old = self.uidvalidity(folder, user)
        parked = f"{folder}-parked-{time.time_ns()}"
        with self.connect(user) as client:
            client.rename_folder(folder, parked)
            # Dovecot derives a new mailbox's UIDVALIDITY from the clock; make it differ.
            deadline = time.monotonic() + 5
            while True:
                client.create_folder(folder)
                new = int(client.folder_status(folder, [b"UIDVALIDITY"])[b"UIDVALIDITY"])
                if new != old or time.monotonic() > deadline:
                    break
                client.delete_folder(folder)
                time.sleep(0.2)
            client.select_folder(parked)
            uids = client.search(["ALL"])
            if uids:
                client.copy(uids, folder)
            client.close_folder()
            client.delete_folder(parked)
        if new == old:
            raise DovecotError(f"UIDVALIDITY of {folder!r} did not change")
        return new


# -- mailboxes handed to tests --------------------------------------------------------

_folder_numbers = itertools.count(1)


@dataclass
class MailboxHandle:
    """A fresh folder (and the names of its Processed and Quarantine siblings) for a test."""

    server: DovecotServer
    folder: str
    move_to: str
    quarantine: str
    user: str = DEFAULT_USER
    created: list[str] = field(default_factory=list)

    @classmethod
    def create(cls, server: DovecotServer, label: str, user: str = DEFAULT_USER) -> MailboxHandle:
        base = re.sub(r"[^A-Za-z0-9]+", "-", label).strip("-")[:40] or "t"
        base = f"{base}-{next(_folder_numbers)}"
        handle = cls(server, base, f"{base}-Processed", f"{base}-Quarantine", user)
        with server.connect(user) as client:
            client.create_folder(base)
        return handle

    @property
    def password(self) -> str:
        return self.server.users[self.user]

    def settings(self, **overrides: Any) -> ImapMailbox:
        """Poller settings for this folder: implicit TLS with the test CA unless overridden."""
        from mailgate.ingest.imap import ImapMailbox

        values: dict[str, Any] = {
            "name": f"test-{self.folder}",
            "host": HOST,
            "port": self.server.tls_port,
            "security": "tls",
            "ca_file": str(self.server.ca_file),
            "username": self.user,
            "password": self.password,
            "folder": self.folder,
            "move_to": self.move_to,
            "quarantine_folder": self.quarantine,
            "poll_interval": 1.0,
            "timeout": 15.0,
            "backoff_initial": 0.2,
            "backoff_max": 2.0,
        }
        values.update(overrides)
        return ImapMailbox(**values)

    def connect(self) -> contextlib.AbstractContextManager[Any]:
        return self.server.connect(self.user)

    def append(self, *raws: bytes, folder: str | None = None, flags: Iterable[str] = ()) -> None:
        """APPEND messages through IMAP (MULTIAPPEND in chunks for long lists)."""
        target = folder or self.folder
        flag_list = list(flags)
        with self.connect() as client:
            if len(raws) > 1 and not flag_list and client.has_capability("MULTIAPPEND"):
                for start in range(0, len(raws), 200):
                    client.multiappend(target, list(raws[start : start + 200]))
            else:
                for raw in raws:
                    client.append(target, raw, flags=flag_list)

    def messages(self, folder: str | None = None) -> dict[int, bytes]:
        """UID -> raw bytes of every message in ``folder`` (default: the test folder)."""
        with self.connect() as client:
            target = folder or self.folder
            if not client.folder_exists(target):
                return {}
            client.select_folder(target, readonly=True)
            uids = client.search(["ALL"])
            fetched = client.fetch(uids, [b"BODY.PEEK[]"]) if uids else {}
            return {uid: bytes(data[b"BODY[]"]) for uid, data in fetched.items()}

    def flags(self, folder: str | None = None) -> dict[int, tuple[bytes, ...]]:
        with self.connect() as client:
            client.select_folder(folder or self.folder, readonly=True)
            uids = client.search(["ALL"])
            return {uid: tuple(f) for uid, f in client.get_flags(uids).items()} if uids else {}

    def message_ids(self, folder: str | None = None) -> list[str]:
        """Message-IDs of the messages in ``folder``, sorted."""
        return sorted(message_id_of(raw) for raw in self.messages(folder).values())

    def count(self, folder: str | None = None) -> int:
        with self.connect() as client:
            target = folder or self.folder
            if not client.folder_exists(target):
                return 0
            return int(client.folder_status(target, [b"MESSAGES"])[b"MESSAGES"])

    def remove(self) -> None:
        """Delete the test's folders (best effort, at teardown)."""
        with contextlib.suppress(Exception), self.connect() as client:
            for name in (self.folder, self.move_to, self.quarantine):
                if client.folder_exists(name):
                    client.delete_folder(name)


def message_id_of(raw: bytes) -> str:
    # The header may be folded onto a second line (RFC 5322 §2.2.3).
    pattern = rb"^Message-ID:[ \t]*(?:\r?\n[ \t]+)?(<[^>\r\n]*>)"
    match = re.search(pattern, raw, re.IGNORECASE | re.MULTILINE)
    return match.group(1).decode("ascii", "replace") if match else ""


def sample_message(n: int, *, tag: str = "test", body: str | None = None, size: int = 0) -> bytes:
    """A small, well-formed support request (CRLF line ends, as on the wire).

    ``size`` pads the body to about that many bytes. Made by hand rather than with
    ``EmailMessage``, which is too slow for 1,000-message backlogs.
    """
    text = body if body is not None else f"Hello,\n\nthis is request {n} ({tag}).\n"
    if size > len(text):
        line = "The quick brown fox jumps over the lazy support engineer.\n"
        text += line * ((size - len(text)) // len(line) + 1)
    headers = (
        f"From: Customer {n} <customer{n}@example.com>\n"
        "To: support@irex.example\n"
        f"Subject: [{tag}] request number {n}\n"
        f"Date: {format_datetime(dt.datetime.now(dt.UTC))}\n"
        f"Message-ID: {make_msgid(idstring=f'{tag}.{n}', domain='example.com')}\n"
        "MIME-Version: 1.0\n"
        'Content-Type: text/plain; charset="utf-8"\n'
        "Content-Transfer-Encoding: 8bit\n"
    )
    return (headers + "\n" + text).replace("\n", "\r\n").encode("utf-8")


def wait_for(predicate: Any, timeout: float = 15.0, interval: float = 0.05) -> bool:
    """Poll ``predicate`` until it is true or ``timeout`` passes; returns its last value."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() > deadline:
            return bool(predicate())
        time.sleep(interval)
