"""The order in which the policy rules run, one line each. The first refusal wins, so the
order is itself policy: cheap, certain checks first; judgement calls last."""

from __future__ import annotations

from mailgate.policy.rule import Rule
from mailgate.policy.rules.automatic import AutomaticMail
from mailgate.policy.rules.severity import NonProductionCap, NoSeverityTag
from mailgate.policy.rules.subscription import EndUserRule, SubscriptionRule
from mailgate.policy.settings import PolicySettings


def build_chain(settings: PolicySettings) -> tuple[Rule, ...]:
    return (
        AutomaticMail(),  # RFC 3834: bounces and auto-replies are stored, never answered
        SubscriptionRule(),  # R-SUB: a valid subscription, named or found by contact
        EndUserRule(),  # R-ENDUSER: only registered administrator contacts are served
        NoSeverityTag(settings.default_level),  # R-NOTAG: no tag means Level 3
        NonProductionCap(settings.nonprod_level),  # R-NONPROD: non-production is Level 4
    )
