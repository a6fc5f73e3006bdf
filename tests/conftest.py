"""Shared fixtures: an App on SQLite and on the PostgreSQL at 127.0.0.1:5432, a real relay
(aiosmtpd) and a running gateway on loopback."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import shutil
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from mailgate.app import App
from mailgate.config import Settings, parse_settings
from mailgate.db.base import Base
from mailgate.db.engine import Database
from mailgate.db.models import Subscription, SubscriptionContact
from tests.support.databases import temporary_pg_database
from tests.support.mailtools import RelaySink, free_port, start_relay

pytest_plugins = ["tests.conftest_dovecot"]

PG_ADMIN_URL = os.environ.get(
    "MAILGATE_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
MONDAY_0900 = dt.datetime(2026, 11, 23, 8, 0, tzinfo=dt.UTC)  # Mon 09:00 Europe/Paris


def deep_merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test run, dropped at the end."""
    with temporary_pg_database(PG_ADMIN_URL) as url:
        db = Database(url)
        db.upgrade()
        db.dispose()
        yield url


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file, copied for each test (migrating each time is slow)."""
    path = tmp_path_factory.mktemp("template") / "mailgate.db"
    db = Database(f"sqlite:///{path}")
    db.upgrade()
    db.dispose()
    return path


def _truncate_pg(url: str) -> None:
    db = Database(url)
    names = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with db.engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    db.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Run the test once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        path = tmp_path / "mailgate.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        return f"sqlite:///{path}"
    url: str = request.getfixturevalue("pg_url")
    _truncate_pg(url)
    return url


@pytest.fixture
def sqlite_url(tmp_path: Path, sqlite_template: Path) -> str:
    """SQLite only, for tests about the embedded default itself."""
    path = tmp_path / "mailgate.db"
    shutil.copy(sqlite_template, path)
    return f"sqlite:///{path}"


MakeApp = Callable[..., App]


def _app_factory(tmp_path: Path, db_url: str) -> tuple[MakeApp, list[App]]:
    apps: list[App] = []

    def factory(config: dict[str, Any] | None = None, *, url: str | None = None) -> App:
        data = deep_merge(
            {
                "database": {"url": url or db_url, "auto_migrate": False},
                "smtp": {"port": 0},
                "outbox": {"maildir": str(tmp_path / "outbox"), "backoff_initial": 1.0},
                "logging": {"level": "WARNING"},
                # In-thread processing: tests read results and patch the pipeline in this
                # process; tests/test_workers.py and the serve subprocess tests run children.
                "processing": {"workers": 0},
            },
            config or {},
        )
        app = App.create(parse_settings(data, tmp_path), migrate=False)
        apps.append(app)
        return app

    return factory, apps


@pytest.fixture
def make_app(tmp_path: Path, db_url: str) -> Iterator[MakeApp]:
    factory, apps = _app_factory(tmp_path, db_url)
    yield factory
    for app in apps:
        app.close()


@pytest.fixture
def lite_app(tmp_path: Path, sqlite_url: str) -> Iterator[MakeApp]:
    """Like ``make_app`` on SQLite only, for what does not depend on the database."""
    factory, apps = _app_factory(tmp_path, sqlite_url)
    yield factory
    for app in apps:
        app.close()


@pytest.fixture
def app(make_app: MakeApp) -> App:
    return make_app()


def add_subscription(
    app: App,
    sub_id: str = "SUB-12345",
    *,
    tier: str = "standard",
    contacts: tuple[str, ...] = ("@acme.example",),
    organization: str = "ACME Corp",
    valid_from: dt.date = dt.date(2026, 1, 1),
    valid_until: dt.date = dt.date(2027, 12, 31),
    nonprod: tuple[str, ...] = (),
) -> None:
    with app.db.transaction() as session:
        sub = Subscription(
            id=sub_id,
            organization=organization,
            tier=tier,
            valid_from=valid_from,
            valid_until=valid_until,
            nonprod_environments=list(nonprod),
            updated_at=dt.datetime.now(dt.UTC),
        )
        sub.contacts = [SubscriptionContact(pattern=c) for c in contacts]
        session.add(sub)


@pytest.fixture
def relay() -> Iterator[RelaySink]:
    sink, controller = start_relay()
    yield sink
    controller.stop()


class RunningGateway:
    """``mailgate serve`` in a thread with its own event loop, on a free loopback port."""

    def __init__(self, app: App, **kwargs: Any) -> None:
        from mailgate.serve import Gateway

        self.app = app
        self.gateway = Gateway(app, **kwargs)
        self.loop = asyncio.new_event_loop()
        self.stop_event: asyncio.Event | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.error: BaseException | None = None

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)

        async def main() -> None:
            self.stop_event = asyncio.Event()
            await self.gateway.run(self.stop_event)

        try:
            self.loop.run_until_complete(main())
        except BaseException as exc:  # surfaced by stop()
            self.error = exc
            self.gateway.ready.set()
        finally:
            self.loop.run_until_complete(self.loop.shutdown_asyncgens())
            self.loop.close()

    def start(self) -> RunningGateway:
        self.thread.start()
        assert self.gateway.ready.wait(15), "gateway did not start"
        if self.error:
            raise self.error
        return self

    @property
    def port(self) -> int:
        assert self.gateway.port is not None
        return self.gateway.port

    def stop(self) -> None:
        if self.stop_event is not None and self.thread.is_alive():
            self.loop.call_soon_threadsafe(self.stop_event.set)
        self.thread.join(30)
        assert not self.thread.is_alive(), "gateway did not stop"
        if self.error:
            raise self.error


@pytest.fixture
def run_gateway() -> Iterator[Callable[..., RunningGateway]]:
    running: list[RunningGateway] = []

    def start(app: App, **kwargs: Any) -> RunningGateway:
        gw = RunningGateway(app, **kwargs).start()
        running.append(gw)
        return gw

    yield start
    for gw in running:
        gw.stop()


def settings_from(data: dict[str, Any], base: Path) -> Settings:
    return parse_settings(data, base)


__all__ = ["MONDAY_0900", "add_subscription", "free_port", "settings_from"]
