"""The subscription registry: import from CSV or TOML (all rows or none), list.

CSV columns: ``id,organization,tier,valid_from,valid_until,contacts`` and optionally
``nonprod_environments``; contacts and environments are separated by ``;``. A contact is
an address (``admin@acme.example``) or a whole domain (``@acme.example``).
TOML: one ``[[subscription]]`` table per subscription with the same keys (lists for
contacts and environments).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from mailgate.db.models import Subscription, SubscriptionContact
from mailgate.errors import ImportRowError

REQUIRED = ("id", "organization", "tier", "valid_from", "valid_until", "contacts")
OPTIONAL = ("nonprod_environments",)
TIERS = ("standard", "premier")
MAX_PREMIER_NONPROD = 2  # P-PREM-NONPROD
# Column sizes of the subscriptions tables (mailgate/db/models.py).
_MAX_LENGTH = {"id": 64, "organization": 255, "tier": 16}
_MAX_CONTACT = 320
_ADDRESS = re.compile(r"^[^@\s;,]+@[^@\s;,]+\.[^@\s;,]+$")
_DOMAIN = re.compile(r"^@[^@\s;,]+\.[^@\s;,]+$")


@dataclass(frozen=True)
class SubscriptionRow:
    line: int
    id: str
    organization: str
    tier: str
    valid_from: dt.date
    valid_until: dt.date
    contacts: tuple[str, ...]
    nonprod_environments: tuple[str, ...]


@dataclass(frozen=True)
class ImportReport:
    created: int
    updated: int


def _split(value: Any) -> list[str]:
    if isinstance(value, list | tuple):
        items = [str(v) for v in value]
    else:
        items = str(value or "").split(";")
    return [i.strip() for i in items if i.strip()]


def _date(line: int, name: str, value: Any) -> dt.date:
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value
    try:
        return dt.date.fromisoformat(str(value).strip())
    except ValueError:
        raise ImportRowError(line, f"{name} {value!r} is not an ISO date like 2026-01-31") from None


def validate_row(
    line: int, raw: dict[str, Any], id_pattern: re.Pattern[str] | None
) -> SubscriptionRow:
    missing = [c for c in REQUIRED if not str(raw.get(c) or "").strip()]
    if missing:
        raise ImportRowError(line, f"missing {', '.join(missing)}")
    unknown = sorted(set(raw) - set(REQUIRED) - set(OPTIONAL))
    if unknown:
        raise ImportRowError(line, f"unknown column {unknown[0]!r}")
    for column, limit in _MAX_LENGTH.items():
        if len(str(raw.get(column) or "")) > limit:
            raise ImportRowError(line, f"{column} is longer than {limit} characters")
    sub_id = str(raw["id"]).strip().upper()
    if id_pattern is not None and not id_pattern.fullmatch(sub_id):
        raise ImportRowError(line, f"id {sub_id!r} does not match the subscription ID pattern")
    tier = str(raw["tier"]).strip().lower()
    if tier not in TIERS:
        raise ImportRowError(line, f"tier {raw['tier']!r} must be standard or premier")
    valid_from = _date(line, "valid_from", raw["valid_from"])
    valid_until = _date(line, "valid_until", raw["valid_until"])
    if valid_until < valid_from:
        raise ImportRowError(line, "valid_until is before valid_from")
    contacts = []
    for contact in _split(raw["contacts"]):
        contact = contact.lower()
        if len(contact) > _MAX_CONTACT or not (_ADDRESS.match(contact) or _DOMAIN.match(contact)):
            raise ImportRowError(line, f"contact {contact!r} is neither an address nor @domain")
        if contact not in contacts:
            contacts.append(contact)
    if not contacts:
        raise ImportRowError(line, "contacts is empty")
    envs = _split(raw.get("nonprod_environments"))
    if envs and tier != "premier":
        raise ImportRowError(
            line, "non-production environment licences come with Premier only (P-PREM-NONPROD)"
        )
    if len(envs) > MAX_PREMIER_NONPROD:
        raise ImportRowError(
            line,
            f"{sub_id} lists {len(envs)} non-production environments; Premier includes at most "
            f"{MAX_PREMIER_NONPROD} (P-PREM-NONPROD)",
        )
    return SubscriptionRow(
        line=line,
        id=sub_id,
        organization=str(raw["organization"]).strip(),
        tier=tier,
        valid_from=valid_from,
        valid_until=valid_until,
        contacts=tuple(contacts),
        nonprod_environments=tuple(envs),
    )


def read_rows(path: Path, id_pattern: re.Pattern[str] | None = None) -> list[SubscriptionRow]:
    """Read and validate a whole file; raises ImportRowError on the first bad row."""
    data = path.read_bytes()
    if path.suffix.lower() == ".toml":
        try:
            doc = tomllib.loads(data.decode("utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ImportRowError(0, f"not valid TOML: {exc}") from None
        items = doc.get("subscription", [])
        if not isinstance(items, list):
            raise ImportRowError(0, "expected [[subscription]] tables")
        # tomllib keeps no positions: the n-th [[subscription]] header is the n-th entry.
        starts = [
            number
            for number, line in enumerate(data.decode("utf-8").splitlines(), start=1)
            if re.match(r"\s*\[\[\s*subscription\s*\]\]", line)
        ]
        raw_rows: Iterable[tuple[int, dict[str, Any]]] = (
            (starts[i] if i < len(starts) else i + 1, dict(item)) for i, item in enumerate(items)
        )
    else:
        text = data.decode("utf-8-sig")
        reader = csv.DictReader(io.StringIO(text))
        header = [h.strip() for h in (reader.fieldnames or [])]
        missing = [c for c in REQUIRED if c not in header]
        if missing:
            raise ImportRowError(1, f"header lacks column(s) {', '.join(missing)}")
        reader.fieldnames = header
        raw_rows = (
            (reader.line_num, dict(row))  # extra fields stay under None: refused below
            for row in reader
            if any((v or "").strip() for v in row.values() if isinstance(v, str))
        )
    rows: list[SubscriptionRow] = []
    seen: dict[str, int] = {}
    for line, raw in raw_rows:
        if None in raw:
            raise ImportRowError(line, "more fields than columns")
        row = validate_row(line, raw, id_pattern)
        if row.id in seen:
            raise ImportRowError(line, f"{row.id} already appears on line {seen[row.id]}")
        seen[row.id] = line
        rows.append(row)
    return rows


def apply_rows(session: Session, rows: list[SubscriptionRow], now: dt.datetime) -> ImportReport:
    """Create or update every row (contacts replaced), inside the caller's transaction."""
    existing = {
        s.id: s
        for s in session.scalars(
            select(Subscription)
            .where(Subscription.id.in_([r.id for r in rows]))
            .options(selectinload(Subscription.contacts))
        )
    }
    created = updated = 0
    for row in rows:
        sub = existing.get(row.id)
        if sub is None:
            sub = Subscription(id=row.id)
            session.add(sub)
            created += 1
        else:
            updated += 1
        sub.organization = row.organization
        sub.tier = row.tier
        sub.valid_from = row.valid_from
        sub.valid_until = row.valid_until
        sub.nonprod_environments = list(row.nonprod_environments)
        sub.updated_at = now
        current = {c.pattern: c for c in sub.contacts}
        sub.contacts[:] = [current.get(p) or SubscriptionContact(pattern=p) for p in row.contacts]
    return ImportReport(created, updated)
