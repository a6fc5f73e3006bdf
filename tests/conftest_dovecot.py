"""pytest plugin: a private Dovecot for the session and a fresh IMAP folder for each test.

Loaded from tests/conftest.py with ``pytest_plugins = ["tests.conftest_dovecot"]``.

- ``dovecot``: one ``DovecotServer`` for the whole session (plaintext+STARTTLS port and an
  implicit-TLS port on 127.0.0.1, a test CA in ``dovecot.ca_file``). If Dovecot is not
  installed, every test that asks for it fails with a message saying how it is installed.
- ``imap_mailbox``: a ``MailboxHandle`` naming a new, empty folder (plus the names of its
  Processed and Quarantine siblings, which are left for the poller to create); its
  ``settings()`` gives matching ``ImapMailbox`` settings.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.dovecot import DovecotError, DovecotMissing, DovecotServer, MailboxHandle


@pytest.fixture(scope="session")
def dovecot() -> Iterator[DovecotServer]:
    try:
        server = DovecotServer()
    except DovecotMissing as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        server.start()
    except DovecotError as exc:
        server.close()
        pytest.fail(f"the test Dovecot did not start: {exc}", pytrace=False)
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def imap_mailbox(dovecot: DovecotServer, request: pytest.FixtureRequest) -> Iterator[MailboxHandle]:
    # A test that stopped the server (to restart it) must not break the tests after it.
    dovecot.start()
    handle = MailboxHandle.create(dovecot, request.node.name)
    yield handle
    dovecot.start()
    handle.remove()
