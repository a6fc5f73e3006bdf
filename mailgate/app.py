"""The gateway's long-lived parts, built once from settings and shared by every command."""

from __future__ import annotations

import os
import re
import socket
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from mailgate.config import Settings
from mailgate.conversation.tokens import ReplyTokens, load_secret
from mailgate.db.engine import Database
from mailgate.db.registry import RegistryCache
from mailgate.mail.compose import Composer
from mailgate.mail.subject import compile_subscription_pattern, ticket_tag_pattern
from mailgate.policy.chain import build_chain
from mailgate.policy.rule import Rule
from mailgate.sla.calendar import CoverageCalendar


def process_identity(pid: int | None = None) -> str:
    """Who holds a lease: ``host/pid-namespace:pid``, so an operator can tell processes
    apart, and a process can tell that a claim belongs to a dead process it could see
    (containers that share a host name have different PID namespaces)."""
    try:
        namespace = str(os.stat("/proc/self/ns/pid").st_ino)
    except OSError:  # not Linux: host and pid only
        namespace = "-"
    return f"{socket.gethostname()}/{namespace}:{os.getpid() if pid is None else pid}"


@dataclass
class App:
    settings: Settings
    db: Database
    owner: str = field(default_factory=process_identity)

    @classmethod
    def create(cls, settings: Settings, *, migrate: bool | None = None) -> App:
        if settings.database.is_sqlite:
            from sqlalchemy.engine import make_url

            path = make_url(settings.database.url).database
            if path and path != ":memory:":
                os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        db = Database(settings.database.url, echo=settings.database.echo)
        app = cls(settings=settings, db=db)
        if migrate if migrate is not None else settings.database.migrate_on_start:
            db.upgrade()
        return app

    @property
    def host(self) -> str:
        return self.owner.rpartition(":")[0]

    @cached_property
    def composer(self) -> Composer:
        mail = self.settings.mail
        return Composer(
            support_address=mail.support_address,
            support_name=mail.support_name,
            id_domain=mail.id_domain,
        )

    @cached_property
    def reply_tokens(self) -> ReplyTokens:
        conv = self.settings.conversation
        secret = load_secret(conv.hmac_secret, conv.hmac_secret_env, Path(conv.secret_file))
        return ReplyTokens(secret, self.settings.mail.support_address, conv.comment_address)

    @cached_property
    def chain(self) -> tuple[Rule, ...]:
        return build_chain(self.settings.policy)

    @cached_property
    def calendar(self) -> CoverageCalendar:
        return CoverageCalendar.from_settings(self.settings.sla)

    @cached_property
    def subscription_re(self) -> re.Pattern[str]:
        return compile_subscription_pattern(self.settings.tickets.subscription_pattern)

    @cached_property
    def registry(self) -> RegistryCache:
        return RegistryCache()

    @cached_property
    def ticket_re(self) -> re.Pattern[str]:
        t = self.settings.tickets
        return ticket_tag_pattern(t.id_prefix, t.id_digits)

    def close(self) -> None:
        self.db.dispose()
