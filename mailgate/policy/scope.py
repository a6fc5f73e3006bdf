"""R-SCOPE: the out-of-scope categories as data. Each category has ``strong`` and ``weak``
patterns (regular expressions, case-insensitive, matched on the subject and the sender's
own prose). Strong evidence refuses with the category's template; weak evidence accepts
the request and tags the ticket ``triage:<category>`` for an engineer to judge.

The defaults catch the obvious cases in natural wording and are written so that ordinary
installation, upgrade, configuration, troubleshooting and bug reports (P-IN-1..6) never
match strongly: a strong pattern needs a *request* (someone asking support to do or to
teach the out-of-scope thing), or a statement that names the out-of-scope artefact as
such ("community Helm chart", "below the minimum hardware requirements"). A bare topic
word ("plug-in", "TeamViewer", "webhook") is only weak evidence. Operators replace a
category's lists in ``[policy.scope.<category>]``.

Two conventions make patterns read like the sentences they catch:

* A space in a pattern matches any run of whitespace, line breaks included (a space
  followed by ``?``, ``*``, ``+`` or ``{`` is one whitespace character under that
  quantifier). Mail clients wrap lines anywhere, so "send us sample code" must also
  match "send\\nus sample code". (A look-behind must be fixed-width: write ``\\s`` there.)
* ``_GAP`` ("a few words in between") stops at the end of a sentence and at a blank line,
  so evidence is always taken from one sentence, never pieced together from two.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cached_property

from mailgate.errors import ConfigValueError

# Programming languages and runtimes people write their own code in (P-OUT-DEV).
_LANGS = r"(?:java|python|c#|c\+\+|\.net|dotnet|node(?:\.js)?|javascript|typescript|go|golang|php|ruby|rust|kotlin|swift|powershell|bash|perl|scala)"  # noqa: E501
# A few words within one sentence: any character but a sentence end, or a line break
# that does not start a blank line.
_GAP = r"(?:[^.?!\n]|\n(?!\s*\n))"
# Asking someone else to do it: "can you", "could one of your engineers", "please".
_YOU = (
    r"(?:can|could|would|will) (?:you|one of your (?:engineers|colleagues|team)"
    r"|someone(?: from your team)?|your (?:team|engineers?)) (?:please )?"
)
# A request addressed to support: "please", "can you", "we need you to".
_ASK = (
    rf"(?:please |{_YOU}|(?:we|i)(?: need| want| would like|'d like)"
    r" (?:you|your (?:team|engineers?)) to |(?:help us|we need help to) )"
)
# What an administrator runs: the targets of remote administration.
_SYSTEM = (
    r"(?:server|system|machine|environment|box|instance|vm|host|node|cluster"
    r"|infrastructure)s?"
)


def _whitespace_tolerant(pattern: str) -> str:
    """``pattern`` with each literal space turned into "any whitespace" (see above)."""
    out: list[str] = []
    i, in_class, class_start = 0, False, 0
    while i < len(pattern):
        char = pattern[i]
        if char == "\\":
            out.append(pattern[i : i + 2])
            i += 2
            continue
        if in_class:
            if char == "]" and i > class_start:
                in_class = False
            out.append(r"\s" if char == " " else char)
        elif char == "[":
            in_class = True
            class_start = i + 1 + (pattern[i + 1 : i + 2] == "^")
            out.append(char)
        elif char == " ":
            quantified = pattern[i + 1 : i + 2] in ("?", "*", "+", "{")
            out.append(r"\s" if quantified else r"\s+")
        else:
            out.append(char)
        i += 1
    return "".join(out)


@dataclass(frozen=True)
class ScopeCategory:
    enabled: bool = True
    strong: tuple[str, ...] = ()
    weak: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for kind in ("strong", "weak"):
            for i, pattern in enumerate(getattr(self, kind)):
                try:
                    re.compile(_whitespace_tolerant(pattern))
                except re.error as exc:
                    raise ConfigValueError(
                        f"{kind}[{i}]", f"bad regular expression: {exc}"
                    ) from None

    @cached_property
    def compiled(self) -> tuple[tuple[re.Pattern[str], ...], tuple[re.Pattern[str], ...]]:
        flags = re.IGNORECASE | re.DOTALL
        return (
            tuple(re.compile(_whitespace_tolerant(p), flags) for p in self.strong),
            tuple(re.compile(_whitespace_tolerant(p), flags) for p in self.weak),
        )


# P-OUT-DEV: development questions or requests.
DEVELOPMENT = ScopeCategory(
    strong=(
        # Asking how to program against the API from their own code:
        # "how do I call the REST API from our Java app".
        r"\bhow (?:do|can|should|would) (?:i|we) (?:call|invoke|use|consume|access|query)"
        r" (?:the |your |irex(?:'s)? )?(?:rest(?:ful)? |graphql |soap |web ?service )?api\b"
        rf"{_GAP}{{0,60}}\b(?:from|in|with|inside) (?:our|my|a|an) (?:[\w#+.-]+ ){{0,2}}?"
        r"(?:app|application|code|program|script|client|frontend|backend|portal)s?\b",
        # Their own program named with its language, then calling the API:
        # "our Python service needs to call the REST API".
        rf"\b(?:our|my) {_LANGS} (?:app|application|code|client|program|script|service)\b"
        rf"{_GAP}{{0,80}}\b(?:call|use|invoke|consume|integrate with|talk to) (?:the |your |irex )*"
        r"(?:rest |graphql )?api\b",
        # Asking for code: "could you send us sample code", "do you have example code"
        # (but not "I can share sample code that reproduces the bug").
        rf"(?:\b{_ASK}(?:send|give|provide|share|write) (?:us |me )?|\bdo you have )"
        r"(?:a |an |any |some )?(?:code (?:sample|example|snippet)|sample code|example code"
        r"|(?:working )?example program)s?\b",
        # Asking for help with their own code: "help us write a Python script".
        r"\b(?:help|assist) (?:us |me )?(?:to |with )?(?:write|writing|develop|developing|debug"
        r"|debugging|review|reviewing|fix|fixing) (?:our|my|a|an|the|some) "
        rf"(?:(?:(?:own|custom|small|simple|{_LANGS}) )*(?:code|script|program|plugin|plug-in"
        r"|extension|module|function|class|macro)s?\b"
        # "application" and "integration" only when it is clearly theirs ("our own app",
        # "a Java application"): "help us fix the application" may well mean IREX.
        rf"|(?:(?:own|custom|in-house|{_LANGS}) )+"
        r"(?:application|app|integration|client|service)s?\b)",
        # Asking support to write the code: "could you write us a script that ...".
        rf"\b{_YOU}(?:write|develop|code|program) (?:us |me |for us )?(?:a |an |some )?"
        rf"(?:(?:custom|small|simple|{_LANGS}) )*(?:script|program|code|function|class|macro)\b",
        # How to build their own extension: "how can we write a custom connector".
        r"\bhow (?:do|can) (?:i|we) (?:write|develop|build|code) (?:a|an|our|my) (?:custom |own )?"
        r"(?:plugin|plug-in|extension|module|connector|script|client)\b",
    ),
    weak=(
        # Developer-facing topics that are often, not always, development questions.
        r"\b(?:sdk|client library|api client|webhooks?|api endpoint)\b",
        # Their own program named with its language.
        rf"\b(?:our|my) {_LANGS} (?:app|application|code|client|program|script)\b",
    ),
)

# P-OUT-3P: third-party integrations, installers, images and plug-ins.
THIRD_PARTY = ScopeCategory(
    strong=(
        # An artefact qualified as not official: "the community Helm chart fails",
        # "an unofficial Docker image", "third-party plug-in".
        r"\b(?:community|unofficial|third[- ]party|3rd[- ]party|non-official)"
        r"(?:[- ](?:maintained|provided|built|made))? (?:helm charts?|docker images?"
        r"|container images?|images?|installers?|plug-?ins?|modules?|operators?"
        r"|ansible roles?|integrations?|connectors?|add-?ons?|extensions?|ami)\b",
        # An artefact attributed to someone else: "plug-in made by a third-party vendor",
        # "image from the community".
        r"\b(?:helm chart|docker image|container image|image|installer|plug-?in|ami|snap|add-?on"
        r"|package|connector)s? (?:from|by|made by|published by|maintained by|built by"
        r"|provided by) (?:a |an |the )?(?:community|third[- ]party|3rd[- ]party|github"
        r"|docker ?hub|an? (?:external|outside) (?:vendor|company|developer))\b",
    ),
    weak=(
        # Packaging and deployment tooling that is usually not IREX's own.
        r"\b(?:helm charts?|docker ?hub|ansible roles?|terraform modules?|marketplace"
        r" (?:image|plugin|listing)|bitnami|chocolatey|homebrew)\b",
        # A plug-in or add-on in use - but not "no/any/without plugins" nor IREX's own
        # plug-in directory, folder or path (an installation matter, P-IN-2).
        r"(?<!\bno\s)(?<!\bany\s)(?<!\bwithout\s)\b(?:plug-?ins?|add-?ons?)\b"
        r"(?! (?:directory|directories|dir|folder|path|location)\b)",
    ),
)

# P-OUT-REMOTE: remote administration.
REMOTE_ADMIN = ScopeCategory(
    strong=(
        # Asking support to get onto their systems: "can you connect to our server",
        # "could one of your engineers log in to our server".
        rf"\b{_YOU}(?:connect|log ?in|log ?into|login|ssh|rdp|remote(?: in)?|dial in|jump on"
        r"|access)"
        rf"(?: (?:to|in ?to|into|on|onto))? (?:our|my|the) {_SYSTEM}\b",
        # A remote-control tool plus doing the work: "over TeamViewer and fix it".
        r"\b(?:teamviewer|anydesk|remote desktop|rdp|vnc|splashtop|logmein)\b"
        rf"{_GAP}{{0,80}}\b(?:fix|do it|do the|install|upgrade|configure|take over|for us|sort it"
        r"|repair|clear|clean|restart)\b",
        # Doing the work for them with their access: "fix it for us, we can give access".
        r"\b(?:fix|do|perform|carry out|handle|install|upgrade|configure)\b"
        rf"{_GAP}{{0,60}}\b(?:for us|on our behalf)\b{_GAP}{{0,40}}\b(?:remote(?:ly)?"
        r"|(?:remote|vpn|ssh|rdp|admin|server) access|credentials|teamviewer|anydesk|vpn|ssh)\b",
        # Offering access to their systems: "we will give you VPN access".
        r"\b(?:we(?:'ll| will| can| could)?|i(?:'ll| will| can| could)?) (?:give|send|provide"
        r"|share|create|set up|grant) (?:you |your (?:team|engineers?) )?(?:(?:remote|vpn|ssh|rdp"
        r"|admin|administrator|root) (?:access|credentials|account)|access to (?:our|the)"
        r" (?:server|system|vpn|machine|network)s?)\b",
        # Handing over a login: "I can send you the TeamViewer ID", "we'll create you an
        # account" (but not "I will share the login page screenshot").
        r"\b(?:we(?:'ll| will| can| could)?|i(?:'ll| will| can| could)?) (?:give|send|provide"
        r"|share|create|set up) you (?:an? (?:admin |administrator |user )?account|the (?:login"
        r"|credentials|password|teamviewer|anydesk)(?: details| id| data)?)\b",
        # Asking support to carry out an operation on their system:
        # "please perform the upgrade for us on Saturday".
        rf"\b{_ASK}(?:perform|do|carry out|run|apply|execute|make) (?:the |this |our |an? )?"
        r"(?:upgrade|update|installation|install|patch(?:ing)?|migration|restore|maintenance)\b"
        rf"{_GAP}{{0,30}}\b(?:for us|on our behalf)\b",
    ),
    weak=(
        # Remote tools and sessions; a Premier screen-sharing session led by the
        # customer's own administrator is allowed, so these only flag for triage.
        r"\b(?:teamviewer|anydesk|remote session|screen[- ]?shar(?:e|ing)|remote access)\b",
    ),
)

# P-OUT-PS: security system design, hardware and network administration, custom
# integrations, UX customisation.
PROFESSIONAL_SERVICES = ScopeCategory(
    strong=(
        # Asking for a design: "please design our security architecture".
        rf"{_ASK}(?:design|architect|plan|draw up|define|create|write)\b{_GAP}{{0,20}}"
        r"\b(?:our|the|a|an)"
        r" (?:new |overall |complete )?(?:security|network|infrastructure|ha|high[- ]availability"
        r"|disaster[- ]recovery|identity) (?:architecture|design|concept|model|system|strategy"
        r"|topology|layout)\b",
        # UX customisation of the product itself: "customise the login page look".
        r"\b(?:customi[sz]e|rebrand|re-brand|redesign|restyle|re-?skin) (?:the |our |its )?"
        r"(?:(?:look|look and feel|appearance|layout|design|style|colou?rs|branding) of"
        r" (?:the |our )?)?"
        r"(?:(?:irex )?(?:login|log-in|sign-in|landing|start|home) (?:page|screen)|look and feel"
        r"|look & feel|appearance|branding|theme|colou?r scheme|user interface|ui|ux)\b"
        r"(?: (?:look|appearance|design|layout|style|colou?rs|logo)\b)?",
        # Changing the look to match their brand: "change the colours of the login page",
        # "make the login page match our corporate design".
        r"\b(?:change|modify|adapt|adjust|make)\b (?:the |our )?(?:look|look and feel|appearance"
        r"|layout|colou?rs|logo|branding|style|design) of (?:the |our )?(?:irex )?(?:login|log-in"
        r"|sign-in|landing|start|home) (?:page|screen)\b",
        r"\b(?:login|log-in|sign-in|landing|start|home) (?:page|screen)\b"
        rf"{_GAP}{{0,40}}\b(?:match|in line with|fit) (?:our|the) (?:new )?(?:corporate|company"
        r"|brand|house) (?:design|identity|colou?rs|branding|style|look)\b",
        # Building a custom integration for them.
        r"\b(?:build|develop|write|create|implement) (?:us |for us )?(?:a |an )?custom"
        r" integration\b",
        # Network or hardware administration on their behalf:
        # "could you configure our load balancer and the firewall rules for us".
        rf"{_ASK}(?:configure|set up|administer|manage|design|install|cable|rack) (?:our |the )?"
        r"(?:firewalls?|firewall rules|switch(?:es)?|routers?|vlans?|load ?balancers?|network"
        rf"|san|storage array|raid|hardware|dns|servers?)\b{_GAP}{{0,40}}\bfor us\b",
        # Security design or testing for them.
        rf"{_ASK}(?:do |perform |run |carry out |conduct |make )?(?:a |an |the |our )?"
        r"(?:security (?:system )?design|security audit|security review|penetration test(?:ing)?"
        r"|pen ?test)s?\b",
    ),
    weak=(
        # The topics, without a request attached.
        r"\b(?:security architecture|penetration test|pentest|custom integration|branding"
        r"|look and feel|ux customi[sz]ation|corporate design)\b",
        # Something already customised: "our custom login page broke after the upgrade".
        r"\bcustom(?:i[sz]ed)? (?:login|sign-in|landing) page|\bcustom (?:theme|css|branding)\b",
    ),
)

# P-HW: deployments that meet the documented hardware requirements.
HARDWARE = ScopeCategory(
    strong=(
        # The sender says the deployment does not meet the requirements.
        r"\b(?:below|under|less than|short of|doesn'?t meet|does not meet|don'?t meet|do not meet"
        r"|not meet(?:ing)?|outside)\s+(?:the\s+)?(?:minimum\s+|recommended\s+|documented\s+)?"
        r"(?:hardware\s+|system\s+)?requirements\b",
        # Less of a resource than required: "fewer cores than the minimum".
        r"\b(?:less|fewer) (?:ram|memory|cpus?|vcpus?|cores?|disk(?: space)?) than (?:the )?"
        r"(?:minimum|required|recommended|documented)\b",
        # Hardware classes the product documentation does not cover.
        r"\b(?:raspberry pi|arm32|armv7|32-bit (?:server|os|windows|linux|machine))\b",
    ),
    weak=(
        # Small machines and requirement talk: an engineer checks the sizing.
        r"\bonly (?:\d+|one|two) ?(?:gb|mb|cpus?|cores?|vcpus?)\b(?: of)?(?: ram| memory)?",
        r"\b(?:hardware requirements|minimum requirements|unsupported hardware)\b",
    ),
)


# One class per category, so that a config table that sets only some keys (say
# `enabled`) keeps the shipped patterns for the others.
@dataclass(frozen=True)
class DevelopmentScope(ScopeCategory):
    strong: tuple[str, ...] = DEVELOPMENT.strong
    weak: tuple[str, ...] = DEVELOPMENT.weak


@dataclass(frozen=True)
class ThirdPartyScope(ScopeCategory):
    strong: tuple[str, ...] = THIRD_PARTY.strong
    weak: tuple[str, ...] = THIRD_PARTY.weak


@dataclass(frozen=True)
class RemoteAdminScope(ScopeCategory):
    strong: tuple[str, ...] = REMOTE_ADMIN.strong
    weak: tuple[str, ...] = REMOTE_ADMIN.weak


@dataclass(frozen=True)
class ProfessionalServicesScope(ScopeCategory):
    strong: tuple[str, ...] = PROFESSIONAL_SERVICES.strong
    weak: tuple[str, ...] = PROFESSIONAL_SERVICES.weak


@dataclass(frozen=True)
class HardwareScope(ScopeCategory):
    strong: tuple[str, ...] = HARDWARE.strong
    weak: tuple[str, ...] = HARDWARE.weak


@dataclass(frozen=True)
class ScopeSettings:
    development: DevelopmentScope = field(default_factory=DevelopmentScope)
    third_party: ThirdPartyScope = field(default_factory=ThirdPartyScope)
    remote_admin: RemoteAdminScope = field(default_factory=RemoteAdminScope)
    professional_services: ProfessionalServicesScope = field(
        default_factory=ProfessionalServicesScope
    )
    hardware: HardwareScope = field(default_factory=HardwareScope)
