"""R-SCOPE: the out-of-scope categories as data. Each category has ``strong`` and ``weak``
patterns (regular expressions, case-insensitive, matched on the subject and the sender's
own prose). Strong evidence refuses with the category's template; weak evidence accepts
the request and tags the ticket ``triage:<category>`` for an engineer to judge.

The defaults catch the obvious cases in natural wording and are written so that ordinary
installation, upgrade, configuration, troubleshooting and bug reports (P-IN-1..6) never
match strongly. Operators replace a category's lists in ``[policy.scope.<category>]``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cached_property

from mailgate.errors import ConfigValueError

_LANGS = r"(?:java|python|c#|c\+\+|\.net|dotnet|node(?:\.js)?|javascript|typescript|go|golang|php|ruby|rust|kotlin|swift|powershell|bash)"  # noqa: E501


@dataclass(frozen=True)
class ScopeCategory:
    enabled: bool = True
    strong: tuple[str, ...] = ()
    weak: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for kind in ("strong", "weak"):
            for i, pattern in enumerate(getattr(self, kind)):
                try:
                    re.compile(pattern)
                except re.error as exc:
                    raise ConfigValueError(f"{kind}[{i}]", f"bad regular expression: {exc}")

    @cached_property
    def compiled(self) -> tuple[tuple[re.Pattern[str], ...], tuple[re.Pattern[str], ...]]:
        flags = re.IGNORECASE | re.DOTALL
        return (
            tuple(re.compile(p, flags) for p in self.strong),
            tuple(re.compile(p, flags) for p in self.weak),
        )


DEVELOPMENT = ScopeCategory(
    strong=(
        # "how do I call the REST API from our Java app"
        r"\bhow (?:do|can|should|would) (?:i|we) (?:call|invoke|use|consume|access|query)"
        r" (?:the |your |irex(?:'s)? )?(?:rest(?:ful)? |graphql |soap |web ?service )?api\b"
        r"[^.?!\n]{0,60}\b(?:from|in|with|inside) (?:our|my|a|an) ",
        rf"\b(?:our|my) {_LANGS} (?:app|application|code|client|program|script|service)\b"
        r"[^.?!\n]{0,80}\b(?:call|use|invoke|consume|integrate with|talk to) (?:the |your |irex )*"
        r"(?:rest |graphql )?api\b",
        r"\b(?:send|give|provide|share) (?:us |me )?(?:a |some )?(?:code (?:sample|example|snippet)"
        r"|sample code|example code)s?\b",
        r"\b(?:help|assist) (?:us |me )?(?:to )?(?:write|develop|debug|review|fix) (?:our|my|a|the)"
        r" (?:own |custom )?(?:code|script|program|plugin|plug-in|extension|module|application)\b",
        r"\bhow (?:do|can) (?:i|we) (?:write|develop|build|code) (?:a|an|our|my) (?:custom )?"
        r"(?:plugin|plug-in|extension|module|connector|script|client)\b",
    ),
    weak=(
        r"\b(?:sdk|client library|api client|webhooks?|api endpoint)\b",
        rf"\b(?:our|my) {_LANGS} (?:app|application|code|client|program|script)\b",
    ),
)

THIRD_PARTY = ScopeCategory(
    strong=(
        # "the community Helm chart fails"
        r"\b(?:community|unofficial|third[- ]party|3rd[- ]party|non-official)"
        r"(?:[- ](?:maintained|provided|built))? (?:helm charts?|docker images?|container images?"
        r"|images?|installers?|plug-?ins?|modules?|packages?|operators?|ansible roles?"
        r"|integrations?|connectors?|add-?ons?|extensions?|ami)\b",
        r"\b(?:helm chart|docker image|container image|installer|plug-?in|ami|snap|add-?on)"
        r" (?:from|by|made by|published by|maintained by) (?:a |the )?(?:community|third[- ]party"
        r"|vendor|partner|someone|github)\b",
    ),
    weak=(
        r"\b(?:helm charts?|docker ?hub|ansible roles?|terraform modules?|marketplace"
        r" (?:image|plugin|listing)|bitnami|chocolatey|homebrew)\b",
        r"\b(?:plug-?ins?|add-?ons?)\b",
    ),
)

REMOTE_ADMIN = ScopeCategory(
    strong=(
        # "can you connect to our server over TeamViewer and fix it"
        r"\b(?:can|could|would|will) (?:you|one of your (?:engineers|team)|someone)"
        r" (?:please )?(?:connect|log ?in|login|ssh|rdp|remote(?: in)?|dial in|jump on)"
        r"(?: in)?(?:to| on)? (?:our|my|the) (?:server|system|machine|environment|box|instance"
        r"|vm|host|cluster|infrastructure)s?\b",
        r"\b(?:teamviewer|anydesk|remote desktop|rdp|vnc|splashtop|logmein)\b[^.?!\n]{0,80}"
        r"\b(?:fix|do it|do the|install|upgrade|configure|take over|for us|sort it|repair)\b",
        r"\b(?:fix|do|perform|carry out|handle|install|upgrade|configure)\b[^.?!\n]{0,60}"
        r"\b(?:for us|on our behalf)\b[^.?!\n]{0,40}\b(?:remote(?:ly)?|access|credentials"
        r"|teamviewer|anydesk|vpn|ssh)\b",
        r"\b(?:we(?:'ll| will| can)?|i(?:'ll| will| can)?) (?:give|send|provide|share|create)"
        r" (?:you )?(?:remote access|vpn access|ssh access|admin (?:access|credentials)|an account"
        r"|the (?:login|credentials|password))\b",
    ),
    weak=(
        r"\b(?:teamviewer|anydesk|remote session|screen ?shar(?:e|ing)|remote access)\b",
    ),
)

PROFESSIONAL_SERVICES = ScopeCategory(
    strong=(
        # "please design our security architecture"
        r"\b(?:design|architect|plan|draw up|define|create)\b[^.?!\n]{0,20}\b(?:our|the|a|an)"
        r" (?:new |overall |complete )?(?:security|network|infrastructure|ha|high[- ]availability"
        r"|disaster[- ]recovery|identity) (?:architecture|design|concept|model|system|strategy"
        r"|topology|layout)\b",
        # "customise the login page look"
        r"\b(?:custom(?:i[sz]e|i[sz]ing|i[sz]ation)?|rebrand(?:ing)?|re-brand|redesign|restyle"
        r"|change|modify|make)\b[^.?!\n]{0,40}\b(?:login page|sign-in page|landing page"
        r"|look and feel|look & feel|theme|branding|colou?r scheme|user interface|ux)\b"
        r"[^.?!\n]{0,40}(?:look|style|brand|logo|colou?rs?|design|match|corporate)?",
        r"\b(?:build|develop|write|create|implement) (?:us |for us )?(?:a |an )?custom"
        r" integration\b",
        r"\b(?:configure|set up|administer|manage|design) (?:our |the )?(?:firewall|switch(?:es)?"
        r"|routers?|vlans?|load ?balancers?|network|san|storage array|raid|hardware|dns)\b"
        r"[^.?!\n]{0,40}\bfor us\b",
        r"\b(?:security (?:system )?design|security audit|penetration test(?:ing)?|pen ?test)\b"
        r"[^.?!\n]{0,40}\b(?:for us|of our|on our)\b",
    ),
    weak=(
        r"\b(?:security architecture|penetration test|pentest|custom integration|branding"
        r"|look and feel|ux customi[sz]ation)\b",
    ),
)

HARDWARE = ScopeCategory(
    strong=(
        r"\b(?:below|under|less than|short of|doesn'?t meet|does not meet|don'?t meet|do not meet"
        r"|not meet(?:ing)?|outside)\s+(?:the\s+)?(?:minimum\s+|recommended\s+|documented\s+)?"
        r"(?:hardware|system)\s+requirements\b",
        r"\b(?:raspberry pi|arm32|armv7|32-bit (?:server|os|windows|linux|machine))\b",
    ),
    weak=(
        r"\bonly (?:\d+|one|two) ?(?:gb|mb|cpus?|cores?|vcpus?)\b(?: of)?(?: ram| memory)?",
        r"\b(?:hardware requirements|minimum requirements|unsupported hardware)\b",
    ),
)


@dataclass(frozen=True)
class ScopeSettings:
    development: ScopeCategory = field(default_factory=lambda: DEVELOPMENT)
    third_party: ScopeCategory = field(default_factory=lambda: THIRD_PARTY)
    remote_admin: ScopeCategory = field(default_factory=lambda: REMOTE_ADMIN)
    professional_services: ScopeCategory = field(default_factory=lambda: PROFESSIONAL_SERVICES)
    hardware: ScopeCategory = field(default_factory=lambda: HARDWARE)
