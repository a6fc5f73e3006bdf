"""The subscription registry held in memory, reloaded when the stored one changes.

Every incoming mail asks the registry up to three questions (the named subscription, the
sender's subscriptions, subscriptions at the sender's domain); asked of the database
that was four to six SELECTs a message. The registry changes only on import, so each
process keeps a snapshot and checks one cheap stamp (row counts and the newest
``updated_at``) before each batch of mail it processes. ``mailgate subscriptions
import`` sets ``updated_at`` on every row it touches and replaces contacts with their
subscription, so any import, in any process, changes the stamp.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Iterable

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from mailgate.db.models import Subscription, SubscriptionContact
from mailgate.policy.facts import SubscriptionInfo


def subscription_info(sub: Subscription) -> SubscriptionInfo:
    return SubscriptionInfo(
        id=sub.id,
        organization=sub.organization,
        tier=sub.tier,
        valid_from=sub.valid_from,
        valid_until=sub.valid_until,
        contacts=tuple(c.pattern for c in sub.contacts),
        nonprod_environments=tuple(sub.nonprod_environments or ()),
    )


class Registry:
    """One consistent snapshot of every subscription, indexed for the three lookups."""

    def __init__(self, subscriptions: Iterable[SubscriptionInfo]) -> None:
        self._by_id = {s.id: s for s in subscriptions}
        by_pattern: dict[str, set[str]] = defaultdict(set)
        by_domain: dict[str, set[str]] = defaultdict(set)
        for sub in self._by_id.values():
            for pattern in sub.contacts:
                by_pattern[pattern].add(sub.id)
                by_domain[pattern.rpartition("@")[2]].add(sub.id)
        self._by_pattern = {k: tuple(sorted(v)) for k, v in by_pattern.items()}
        self._by_domain = {k: tuple(sorted(v)) for k, v in by_domain.items()}

    def __len__(self) -> int:
        return len(self._by_id)

    def get(self, sub_id: str) -> SubscriptionInfo | None:
        return self._by_id.get(sub_id)

    def of_contact(self, address: str) -> tuple[SubscriptionInfo, ...]:
        """Subscriptions listing ``address`` itself or its whole domain as a contact."""
        address = address.lower()
        domain = "@" + address.rpartition("@")[2]
        ids = set(self._by_pattern.get(address, ())) | set(self._by_pattern.get(domain, ()))
        return tuple(self._by_id[i] for i in sorted(ids))

    def at_domain(self, address: str) -> tuple[SubscriptionInfo, ...]:
        """Subscriptions with any contact (an address or the domain) at ``address``'s
        domain: the colleagues of a registered administrator."""
        domain = address.lower().rpartition("@")[2]
        return tuple(self._by_id[i] for i in self._by_domain.get(domain, ()))


class RegistryCache:
    """A process's registry snapshot; ``current`` reloads it when the stamp moved.

    Safe to share between threads: a reload builds a new ``Registry`` and swaps it in.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._stamp: tuple[object, ...] | None = None
        self._registry = Registry(())
        self.loads = 0  # how many times the registry was read in full (tests, logs)

    @staticmethod
    def _read_stamp(session: Session) -> tuple[object, ...]:
        contacts = select(func.count(SubscriptionContact.id)).scalar_subquery()
        row = session.execute(
            select(func.count(Subscription.id), func.max(Subscription.updated_at), contacts)
        ).one()
        return tuple(row)

    def current(self, session: Session) -> Registry:
        stamp = self._read_stamp(session)
        if stamp == self._stamp:
            return self._registry
        with self._lock:
            if stamp != self._stamp:
                subs = session.scalars(
                    select(Subscription).options(selectinload(Subscription.contacts))
                ).all()
                self._registry = Registry(subscription_info(s) for s in subs)
                self._stamp = stamp
                self.loads += 1
            return self._registry
