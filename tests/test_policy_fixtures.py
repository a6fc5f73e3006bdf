"""The policy corpus: every ``tests/fixtures/policy/*.eml`` is ingested at its own ``now``
against the shared subscription registry (``subscriptions.csv``), on SQLite and on
PostgreSQL, and must come out exactly as the JSON beside it says: outcome, reason code,
level and where the level came from, triage tags, and a stored decision record that names
the rule that decided and the evidence it decided on.

JSON keys: ``outcome``, ``reason``, ``severity``, ``severity_source``, ``tags``, ``clause``
(the POLICY.md clause the fixture illustrates), ``rule`` (the rule whose verdict decided),
``evidence`` (a subset of that rule's stored evidence), ``now`` and ``note`` (why).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from mailgate.app import App
from mailgate.db.models import Decision, OutboxMessage, Ticket
from mailgate.ingest.pipeline import ingest
from mailgate.ingest.result import Result
from mailgate.model import Reason
from mailgate.subscriptions import apply_rows, read_rows

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "policy"
REGISTRY = FIXTURES / "subscriptions.csv"
CASES = sorted(FIXTURES.glob("*.eml"))
CLAUSE_ID = re.compile(r"(?:P|R)-[A-Z0-9-]+|RFC3834")

# What a refusal's stored evidence must carry, by reason: the proof an operator reads
# when asked "why was this rejected?".
REQUIRED_EVIDENCE: dict[str, tuple[str, ...]] = {
    Reason.NON_ENGLISH: ("language", "score", "english_score", "letters"),
    Reason.END_USER: ("sender", "subscription"),
    Reason.NO_SUBSCRIPTION: ("source", "sender"),
    Reason.UNKNOWN_SUBSCRIPTION: ("subscription", "source"),
    Reason.EXPIRED_SUBSCRIPTION: ("subscription", "status", "valid_until"),
    Reason.NOT_STARTED_SUBSCRIPTION: ("subscription", "status", "valid_from"),
    Reason.DEVELOPMENT: ("matched", "pattern", "strength"),
    Reason.THIRD_PARTY: ("matched", "pattern", "strength"),
    Reason.REMOTE_ADMIN: ("matched", "pattern", "strength"),
    Reason.PROFESSIONAL_SERVICES: ("matched", "pattern", "strength"),
    Reason.HARDWARE: ("matched", "pattern", "strength"),
    Reason.UNSUPPORTED_VERSION: ("version", "how", "supported_majors"),
    Reason.AUTOMATIC: ("why",),
}


def load_expectation(eml: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(eml.with_suffix(".json").read_text(encoding="utf-8"))
    return data


def import_registry(app: App, now: dt.datetime) -> None:
    rows = read_rows(REGISTRY, app.subscription_re)
    with app.db.transaction() as session:
        apply_rows(session, rows, now)


def ingest_fixture(app: App, eml: Path) -> tuple[Result, dict[str, Any]]:
    expected = load_expectation(eml)
    now = dt.datetime.fromisoformat(expected["now"])
    import_registry(app, now)
    return ingest(app, eml.read_bytes(), source="pipe", now=now), expected


def stored_decision(app: App, inbox_id: int) -> Decision:
    with app.db.transaction() as session:
        row = session.scalar(select(Decision).where(Decision.inbox_id == inbox_id))
        assert row is not None, "no decision stored"
        session.expunge(row)
        return row


# ---------------------------------------------------------------- the corpus itself


def test_corpus_covers_every_reason_and_enough_accepts() -> None:
    expectations = [load_expectation(p) for p in CASES]
    assert len(CASES) >= 60
    reasons = Counter(e["reason"] for e in expectations if e["outcome"] != "ticket_created")
    for reason in Reason:
        assert reasons[reason] >= 1, f"no fixture for {reason}"
    assert reasons[Reason.NON_ENGLISH] >= 5
    ordinary = [e for e in expectations if re.fullmatch(r"P-IN-[1-6]", e["clause"])]
    assert len(ordinary) >= 12
    assert all(e["outcome"] == "ticket_created" for e in ordinary)
    assert {e["clause"] for e in ordinary} == {f"P-IN-{n}" for n in range(1, 7)}


@pytest.mark.parametrize("eml", CASES, ids=lambda p: p.stem)
def test_fixture_is_well_formed(eml: Path) -> None:
    expected = load_expectation(eml)
    assert set(expected) == {
        "outcome", "reason", "severity", "severity_source", "tags", "clause", "rule",
        "evidence", "now", "note",
    }  # fmt: skip
    assert expected["outcome"] in ("ticket_created", "rejected", "ignored")
    assert CLAUSE_ID.fullmatch(expected["clause"]), expected["clause"]
    assert expected["note"].strip()
    assert dt.datetime.fromisoformat(expected["now"]).tzinfo is not None
    if expected["outcome"] == "ticket_created":
        assert expected["reason"] is None
        assert expected["severity"] in (1, 2, 3, 4)
        assert expected["severity_source"] in ("tag", "default", "capped")
    else:
        assert expected["reason"] in set(Reason)
        assert expected["severity"] is None and expected["severity_source"] is None
        assert expected["tags"] == []
        assert expected["rule"]


# ---------------------------------------------------------------- each fixture, both DBs


@pytest.mark.parametrize("eml", CASES, ids=lambda p: p.stem)
def test_policy_fixture(make_app: Any, eml: Path) -> None:
    app = make_app()
    result, expected = ingest_fixture(app, eml)
    note = f"{eml.name}: {expected['note']}"

    assert str(result.outcome) == expected["outcome"], note
    assert result.reason == expected["reason"], note
    assert result.severity == expected["severity"], note

    decision = stored_decision(app, result.inbox_id)
    assert decision.outcome == expected["outcome"]
    assert decision.reason == expected["reason"]
    record = decision.record
    by_rule = {entry["rule"]: entry for entry in record}

    with app.db.transaction() as session:
        ticket = session.scalar(select(Ticket).where(Ticket.public_id == result.ticket))
        outbox = list(session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))
        source = ticket.severity_source if ticket else None
        tags = list(ticket.tags) if ticket else []
    assert source == expected["severity_source"], note
    assert tags == expected["tags"], note

    if expected["outcome"] == "ticket_created":
        assert all(e["verdict"] in ("pass", "hit") for e in record)
        assert not [e for e in record if e["action"] in ("reject", "ignore")]
        assert [o.kind for o in outbox if o.kind in ("ack", "rejection")] == ["ack"]
    else:
        # The rule that decided is the one hit that refused; every rule before it passed
        # (or only flagged) and none after it ran.
        deciding = [i for i, e in enumerate(record) if e["action"] in ("reject", "ignore")]
        assert len(deciding) == 1, record
        index = deciding[0]
        assert record[index]["rule"] == expected["rule"], note
        assert record[index]["reason"] == expected["reason"]
        assert all(e["verdict"] == "not_run" for e in record[index + 1 :])
        required = REQUIRED_EVIDENCE[expected["reason"]]
        missing = [k for k in required if k not in record[index]["evidence"]]
        assert not missing, f"{note}: evidence lacks {missing}"
        refusals = [o for o in outbox if o.kind == "rejection"]
        assert len(refusals) == (1 if expected["outcome"] == "rejected" else 0)
        assert not [o for o in outbox if o.kind == "ack"]

    if expected["rule"]:
        entry = by_rule[expected["rule"]]
        assert entry["verdict"] == "hit", f"{note}: {entry}"
        assert entry["clause"], entry
        for key, value in expected["evidence"].items():
            assert entry["evidence"].get(key) == value, (
                f"{note}: {expected['rule']} evidence {key}={entry['evidence'].get(key)!r}, "
                f"expected {value!r}"
            )
        if entry["evidence"].get("strength"):
            # A scope verdict shows the phrase it matched, and that phrase is in the mail.
            matched = entry["evidence"]["matched"]
            assert matched and matched.lower() in " ".join(
                eml.read_text(encoding="utf-8").lower().split()
            )
        if expected["rule"] == "language":
            assert entry["evidence"]["score"] >= app.settings.policy.language.min_confidence
