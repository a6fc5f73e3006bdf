"""R-SUB / P-OUT-SUB: a request needs a valid subscription, named in the subject or, if
none is named, the one subscription the sender is a registered contact of."""

from __future__ import annotations

from dataclasses import dataclass

from mailgate.model import ParsedMail, Reason
from mailgate.policy.facts import Facts, SubscriptionInfo
from mailgate.policy.rule import Hit

_STATUS_REASON = {
    "expired": Reason.EXPIRED_SUBSCRIPTION,
    "not_started": Reason.NOT_STARTED_SUBSCRIPTION,
}


def resolve_subscription(facts: Facts) -> tuple[SubscriptionInfo | None, str]:
    """The subscription a request is made under, and how it was found.

    Returns (subscription, source) with source "subject", "contact", "unknown" (an ID in
    the subject the registry does not know), "ambiguous" (the sender is a contact of
    several valid subscriptions and named none), "colleague" (not a contact, but one
    subscription registers an address at the sender's domain) or "none".
    """
    if facts.tags.subscription_id:
        if facts.named_subscription is None:
            return None, "unknown"
        return facts.named_subscription, "subject"
    candidates = facts.sender_subscriptions
    if len(candidates) == 1:
        return candidates[0], "contact"
    valid = [s for s in candidates if s.status_on(facts.today) == "valid"]
    if len(valid) == 1:
        return valid[0], "contact"
    if len(candidates) > 1:
        return None, "ambiguous"
    if len(facts.domain_subscriptions) == 1:
        return facts.domain_subscriptions[0], "colleague"
    return None, "none"


@dataclass(frozen=True)
class SubscriptionRule:
    name: str = "subscription"
    clause: str = "R-SUB"

    def check(self, mail: ParsedMail, facts: Facts) -> Hit | None:
        sub, source = resolve_subscription(facts)
        if sub is None:
            if source == "unknown":
                return Hit(
                    "reject",
                    Reason.UNKNOWN_SUBSCRIPTION,
                    {"subscription": facts.tags.subscription_id, "source": "subject"},
                )
            evidence: dict[str, object] = {"source": source, "sender": facts.sender}
            if source == "ambiguous":
                evidence["candidates"] = [s.id for s in facts.sender_subscriptions]
            return Hit("reject", Reason.NO_SUBSCRIPTION, evidence)
        status = sub.status_on(facts.today)
        evidence = {
            "subscription": sub.id,
            "source": source,
            "tier": sub.tier,
            "valid_from": sub.valid_from.isoformat(),
            "valid_until": sub.valid_until.isoformat(),
            "status": status,
        }
        if status != "valid":
            return Hit("reject", _STATUS_REASON[status], evidence)
        return None


@dataclass(frozen=True)
class EndUserRule:
    """R-ENDUSER / P-OUT-ENDUSER: only the subscription's registered administrator
    contacts (addresses, or whole domains where listed) are served."""

    name: str = "end_user"
    clause: str = "R-ENDUSER"

    def check(self, mail: ParsedMail, facts: Facts) -> Hit | None:
        sub, _ = resolve_subscription(facts)
        if sub is None:  # the subscription rule has already refused
            return None
        matched = sub.contact_match(facts.sender or "")
        if matched is None:
            return Hit(
                "reject",
                Reason.END_USER,
                {"sender": facts.sender, "subscription": sub.id, "contacts": len(sub.contacts)},
            )
        # Accepted: keep which registered entry (address or @domain) let the sender in.
        return Hit("note", evidence={"contact": matched, "subscription": sub.id})
