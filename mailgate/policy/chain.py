"""The order in which the policy rules run, one line each. The first refusal wins, so the
order is itself policy: certain facts first (who, under which subscription), then the
language the request can be answered in, then judgement calls on its content, and the
level last (it only matters for a request that is accepted)."""

from __future__ import annotations

from mailgate.model import Reason
from mailgate.policy.rule import Rule
from mailgate.policy.rules.automatic import AutomaticMail
from mailgate.policy.rules.language import LanguageRule
from mailgate.policy.rules.scope import ScopeRule
from mailgate.policy.rules.severity import NonProductionCap, NoSeverityTag
from mailgate.policy.rules.subscription import EndUserRule, SubscriptionRule
from mailgate.policy.rules.version import VersionRule
from mailgate.policy.settings import PolicySettings


def build_chain(settings: PolicySettings) -> tuple[Rule, ...]:
    scope = settings.scope
    return (
        AutomaticMail(),  # RFC 3834: bounces and auto-replies are stored, never answered
        SubscriptionRule(),  # R-SUB: a valid subscription, named or found by contact
        EndUserRule(),  # R-ENDUSER: only registered administrator contacts are served
        LanguageRule(settings.language),  # R-LANG: English only, on confident evidence
        ScopeRule("remote_admin", "P-OUT-REMOTE", Reason.REMOTE_ADMIN, scope.remote_admin),
        ScopeRule("development", "P-OUT-DEV", Reason.DEVELOPMENT, scope.development),
        ScopeRule("third_party", "P-OUT-3P", Reason.THIRD_PARTY, scope.third_party),
        ScopeRule(
            "professional_services",
            "P-OUT-PS",
            Reason.PROFESSIONAL_SERVICES,
            scope.professional_services,
        ),
        ScopeRule("hardware", "P-HW", Reason.HARDWARE, scope.hardware),
        VersionRule(settings.versions),  # R-VERSION: latest release or previous major
        NoSeverityTag(settings.default_level),  # R-NOTAG: no tag means Level 3
        NonProductionCap(settings.nonprod_level),  # R-NONPROD: non-production is Level 4
    )
