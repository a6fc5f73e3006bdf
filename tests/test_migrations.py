"""Alembic owns the schema: the models and the migrations do not drift (``alembic check``
on SQLite and PostgreSQL), an empty database is upgraded to every table the models
describe, and the embedded SQLite default migrates itself at start."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect, text

from mailgate.app import App
from mailgate.config import parse_settings
from mailgate.db.base import Base
from mailgate.db.engine import SCHEMA_HEAD, Database, alembic_config
from tests.conftest import PG_ADMIN_URL
from tests.support.databases import temporary_pg_database

EXPECTED = {t.name for t in Base.metadata.sorted_tables}


@pytest.fixture
def empty_pg() -> Iterator[str]:
    """A brand-new, empty PostgreSQL database, dropped afterwards."""
    with temporary_pg_database(PG_ADMIN_URL, "mailgate_mig") as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'empty.db'}"
    url: str = request.getfixturevalue("empty_pg")
    return url


def _tables(url: str) -> dict[str, set[str]]:
    engine = create_engine(url)
    try:
        insp = inspect(engine)
        return {t: {c["name"] for c in insp.get_columns(t)} for t in insp.get_table_names()}
    finally:
        engine.dispose()


def test_alembic_check_finds_no_drift(db_url: str) -> None:
    """``db_url`` is at head on SQLite and on PostgreSQL; autogenerate must find nothing."""
    command.check(alembic_config(db_url))


def test_there_is_one_head_and_the_database_is_at_it(db_url: str) -> None:
    script = ScriptDirectory.from_config(alembic_config(db_url))
    heads = script.get_heads()
    assert len(heads) == 1, f"several migration heads: {heads}"
    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            version = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    finally:
        engine.dispose()
    assert version == heads[0]
    # The constant start-up compares with, to leave a migrated database to itself.
    assert heads[0] == SCHEMA_HEAD


def test_upgrading_an_empty_database_creates_every_table(empty_url: str, tmp_path: Path) -> None:
    assert _tables(empty_url) == {}
    is_pg = empty_url.startswith("postgresql")
    default = parse_settings({"database": {"url": empty_url}}, tmp_path)
    assert default.database.migrate_on_start is not is_pg
    if is_pg:  # a shared PostgreSQL is migrated only when asked (`mailgate db upgrade`)
        App.create(default).close()
        assert _tables(empty_url) == {}
    asked = parse_settings({"database": {"url": empty_url, "auto_migrate": True}}, tmp_path)
    App.create(asked).close()
    App.create(asked).close()  # a second run is a no-op, not an error
    tables = _tables(empty_url)
    assert set(tables) == EXPECTED | {"alembic_version"}
    for table in Base.metadata.sorted_tables:
        assert tables[table.name] == {c.name for c in table.columns}, table.name
    command.check(alembic_config(empty_url))


def test_downgrade_to_base_and_back(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'roundtrip.db'}"
    cfg = alembic_config(url)
    command.upgrade(cfg, "head")
    command.downgrade(cfg, "base")
    assert set(_tables(url)) <= {"alembic_version"}
    command.upgrade(cfg, "head")
    assert set(_tables(url)) == EXPECTED | {"alembic_version"}


def test_embedded_sqlite_default_migrates_automatically(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    settings = parse_settings({"database": {"url": "sqlite:///state/gate.db"}}, tmp_path)
    assert settings.database.auto_migrate is None  # not said: the default decides
    assert settings.database.migrate_on_start
    app = App.create(settings)
    try:
        assert (tmp_path / "state" / "gate.db").is_file()
        assert set(_tables(settings.database.url)) == EXPECTED | {"alembic_version"}
    finally:
        app.close()
    # Starting again on the migrated file is fine.
    App.create(settings).close()


def test_a_database_at_the_newest_migration_is_not_handed_to_alembic(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Start-up compares the database's revision with SCHEMA_HEAD and leaves Alembic out
    when they agree; a database behind it is still upgraded (the test above)."""
    db = Database(db_url)
    try:
        assert db.schema_revision() == SCHEMA_HEAD

        def no_alembic(*args: object, **kwargs: object) -> None:
            raise AssertionError("Alembic was run on a database at the newest migration")

        monkeypatch.setattr(command, "upgrade", no_alembic)
        db.upgrade()
    finally:
        db.dispose()
