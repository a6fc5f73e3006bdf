"""What the policy rules may know besides the mail itself, gathered before deciding."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from functools import cached_property

from mailgate.mail.subject import SubjectTags
from mailgate.policy.scope import ScopeText


@dataclass(frozen=True)
class SubscriptionInfo:
    id: str
    organization: str
    tier: str  # standard | premier
    valid_from: dt.date
    valid_until: dt.date
    contacts: tuple[str, ...]  # lower-cased addresses and "@domain" entries
    nonprod_environments: tuple[str, ...] = ()

    def status_on(self, day: dt.date) -> str:
        """ "valid", "expired" or "not_started" on ``day`` (both ends inclusive)."""
        if day < self.valid_from:
            return "not_started"
        if day > self.valid_until:
            return "expired"
        return "valid"

    def contact_match(self, address: str) -> str | None:
        """The contact entry that covers ``address`` (an address or @domain), if any."""
        address = address.lower()
        if address in self.contacts:
            return address
        domain = "@" + address.rpartition("@")[2]
        if domain in self.contacts:
            return domain
        return None


@dataclass(frozen=True)
class Facts:
    """Everything looked up before ``decide``; ``decide`` looks nothing up itself."""

    now: dt.datetime  # when the gateway received the message (R-ACK)
    today: dt.date  # ``now`` as a date in the policy time zone
    sender: str | None  # lower-cased address replies go to
    tags: SubjectTags
    # The subscription named in the subject, when the registry knows it.
    named_subscription: SubscriptionInfo | None = None
    # Subscriptions listing the sender as a contact (by address or domain).
    sender_subscriptions: tuple[SubscriptionInfo, ...] = ()
    # Subscriptions with a registered address at the sender's domain: a colleague of an
    # administrator, who is served only through that administrator (R-ENDUSER).
    domain_subscriptions: tuple[SubscriptionInfo, ...] = ()
    automatic: str | None = None  # why the message is automatic, if it is
    own_text: str = ""  # the sender's own words: quotes and signature removed
    prose: str = ""  # own_text without log, trace, prompt and config lines (scope rules)
    extra: dict[str, object] = field(default_factory=dict)

    @cached_property
    def scope_text(self) -> ScopeText:
        """The subject and the prose, as the scope and version rules search them: made
        once per mail, so the text is lower-cased, split into words and checked against
        each prefilter once for all six rules."""
        return ScopeText(self.tags.clean + "\n" + self.prose)
