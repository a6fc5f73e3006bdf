"""Reply/quote/signature stripping (mailgate.mail.quotes) and HTML to text (mailgate.mail.html).

Every case under tests/fixtures/replies/ is a realistic mail body (NAME.txt or NAME.html)
with the exact text the sender wrote beside it (NAME.expected.txt). The focused tests below
pin down the documented choices (closing line, bare forward, commands) and what must never
be stripped.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailgate.mail import quotes
from mailgate.mail.html import html_to_text, strip_html_reply
from mailgate.mail.quotes import Stripped, own_text, strip_reply

FIXTURES = Path(__file__).parent / "fixtures" / "replies"


def _cases() -> list[Path]:
    sources = (p for p in FIXTURES.iterdir() if p.suffix in (".txt", ".html"))
    return sorted(p for p in sources if not p.name.endswith(".expected.txt"))


def _expected(source: Path) -> str:
    return source.with_name(source.stem + ".expected.txt").read_text(encoding="utf-8").rstrip("\n")


def _own(source: Path) -> str:
    body = source.read_text(encoding="utf-8")
    return strip_html_reply(body) if source.suffix == ".html" else own_text(body)


CASES = _cases()


def test_fixture_directory_is_complete() -> None:
    assert len(CASES) >= 40
    for source in CASES:
        assert source.with_name(source.stem + ".expected.txt").is_file(), source.name
        assert _expected(source), f"{source.name}: expected text is empty"


@pytest.mark.parametrize("source", CASES, ids=[p.name for p in CASES])
def test_fixture_own_text_is_exactly_expected(source: Path) -> None:
    assert _own(source) == _expected(source)


@pytest.mark.parametrize("source", CASES, ids=[p.name for p in CASES])
def test_fixture_own_text_is_stable_when_stripped_again(source: Path) -> None:
    # Callers may run own_text on strip_html_reply's output, or twice on the same text.
    expected = _expected(source)
    assert own_text(expected) == expected


def _strip(name: str) -> Stripped:
    return strip_reply((FIXTURES / f"{name}.txt").read_text(encoding="utf-8"))


# ------------------------------------------------------------------ plain-text replies


def test_gmail_top_post() -> None:
    result = _strip("gmail_top_post")
    assert result.text.endswith("The server is back on 5.1.4 and running.")
    # The indented log lines keep their indentation.
    assert "\n    2026-11-03 10:41:09 ERROR relation" in result.text
    attribution = "On Tue, 3 Nov 2026 at 10:02, Jane Doe <jane@example.com> wrote:"
    assert result.quoted.startswith(attribution + "\n> Hello Marc,")
    assert result.quoted.endswith("> IREX Support")
    assert result.signature == "--\nMarc Lefebvre\nInfrastructure team, Northwind Logistics"


def test_gmail_attribution_wrapped_onto_two_lines() -> None:
    result = _strip("gmail_wrapped_attribution")
    assert result.text.endswith("You can close the ticket.")
    assert result.quoted.startswith(
        "On Tue, 3 Nov 2026 at 10:02, IREX Support <support@irex.example>\nwrote:"
    )


def test_outlook_original_message_block_is_quoted() -> None:
    result = _strip("outlook_original_message")
    assert result.quoted.startswith("-----Original Message-----\nFrom: IREX Support")
    assert result.signature.startswith("Regards,\nPeter Novak\nSenior System Engineer")


def test_outlook_from_block_without_divider() -> None:
    result = _strip("outlook_from_block")
    assert result.quoted.startswith("From: Jane Doe <jane@example.com>\nSent: Monday")
    assert "Could you send the output" not in result.text


def test_outlook_underscore_divider_and_android_tagline() -> None:
    result = _strip("outlook_underscores_divider")
    assert result.text.endswith("Lars")
    assert result.signature == "Get Outlook for Android<https://aka.ms/AAb9ysg>"
    assert result.quoted.startswith("________________________________\nFrom: IREX Support")


def test_get_outlook_for_ios_tagline() -> None:
    assert _strip("outlook_ios").signature == "Get Outlook for iOS<https://aka.ms/o0ukef>"


def test_apple_mail_sent_from_my_iphone() -> None:
    result = _strip("apple_mail_iphone")
    assert result.signature == "Sent from my iPhone"
    assert result.quoted.startswith("> On 3 Nov 2026, at 10:02, Jane Doe <jane@example.com> wrote:")


def test_thunderbird_bottom_post_keeps_text_below_the_quote() -> None:
    result = _strip("thunderbird_bottom_post")
    assert result.text.startswith("IREX Server 5.1.4 on Debian 12")
    assert result.quoted.startswith("On 03/11/2026 10:02, Jane Doe wrote:\n> Hello Anna,")


def test_interleaved_answers_keep_answers_and_drop_questions() -> None:
    result = _strip("interleaved_answers")
    assert result.text == (
        "5.2.0, upgraded from 5.1.4 last Friday.\n\n"
        "Under load only, usually when more than 300 agents report at once.\n\n"
        "Yes, two of them. I attached the newest one (core.irexd.18342)."
    )
    assert "> 2. Does the crash happen at startup or under load?" in result.quoted
    assert result.signature == "Thanks,\nOmar"


def test_quote_lines_without_attribution_are_dropped_in_bottom_post() -> None:
    body = "> Which port does the console use?\n\n8443 by default.\n> And the agents?\n8444."
    result = strip_reply(body)
    assert result.text == "8443 by default.\n8444."
    assert result.quoted == "> Which port does the console use?\n> And the agents?"


@pytest.mark.parametrize(
    "attribution",
    [
        "On Tue, 3 Nov 2026 at 10:02, Jane Doe <jane@example.com> wrote:",
        "On Tue, Nov 3, 2026 at 10:02\u202fAM Jane Doe <jane@example.com> wrote:",
        "On 3 Nov 2026, at 10:02, Jane Doe <jane@example.com> wrote:",
        "On 03/11/2026 10:02, Jane Doe wrote:",
        "Le mar. 3 nov. 2026 à 10:02, Jane Doe <jane@example.com> a écrit :",
        "Le 03/11/2026 à 10:02, Jane Doe a écrit :",
        "Am Di., 3. Nov. 2026 um 10:02 Uhr schrieb Jane Doe <jane@example.com>:",
        "Am 03.11.2026 um 10:02 schrieb Jane Doe:",
        "El mar, 3 nov 2026 a las 10:02, Jane Doe (<jane@example.com>) escribió:",
        "El 03/11/2026 a las 10:02, Jane Doe escribió:",
        "Il giorno mar 3 nov 2026 alle ore 10:02 Jane Doe <jane@example.com> ha scritto:",
        "Il 03/11/2026 10:02, Jane Doe ha scritto:",
        "Op di 3 nov 2026 om 10:02 schreef Jane Doe <jane@example.com>:",
        "Op 03-11-2026 om 10:02 schreef Jane Doe:",
        "Em ter., 3 de nov. de 2026 às 10:02, Jane Doe <jane@example.com> escreveu:",
        "wt., 3 lis 2026 o 10:02 Jane Doe <jane@example.com> napisał(a):",
        "W dniu 3.11.2026 o 10:02, Jan Kowalski pisze:",
        "Dnia 3.11.2026 o 10:02 Jan Kowalski napisał(a):",
        "Den tis 3 nov. 2026 kl 10:02 skrev Jane Doe <jane@example.com>:",
        "2026-11-03 10:02 skrev Jane Doe <jane@example.com>:",
    ],
)
def test_wrote_line_in_each_language_ends_the_new_text(attribution: str) -> None:
    # Followed by unquoted history (no ">"), the attribution alone must be recognised.
    body = f"Restarting irexd fixed it.\n\n{attribution}\n\nPlease restart irexd.\n"
    result = strip_reply(body)
    assert result.text == "Restarting irexd fixed it."
    assert result.quoted == f"{attribution}\n\nPlease restart irexd."


def test_attribution_starts_on_its_own_line_not_on_the_text_above() -> None:
    body = (
        "On node 2 the agent still fails,\n"
        "On Tue, 3 Nov 2026 at 10:02, Jane Doe <jane@example.com> wrote:\n"
        "> Please restart the agent.\n"
    )
    assert own_text(body) == "On node 2 the agent still fails,"


def test_undated_wrote_line_counts_only_above_quote_lines() -> None:
    # "… wrote:" without date or address is the customer's own sentence unless ">" follows.
    body = "The installer wrote:\n\nERROR: disk full on /opt/irex\n"
    assert own_text(body) == "The installer wrote:\n\nERROR: disk full on /opt/irex"
    quoted = "Jane Doe wrote:\n> Is the disk full?\n\nYes, /opt/irex is full."
    assert own_text(quoted) == "Yes, /opt/irex is full."


@pytest.mark.parametrize(
    "body",
    [
        "On node 2 the installer 5.2.0 wrote:\n\nERROR: schema 42 exists\nFATAL: rollback",
        "Le script de mise à jour a écrit :\n\néchec de la migration 42",
        "The agent log on lnx-04 wrote:\n\n  connection refused (port 8444)",
    ],
)
def test_sentence_ending_in_wrote_without_date_keeps_the_text_below(body: str) -> None:
    assert own_text(body) == body


def test_german_outlook_header_block() -> None:
    quoted = _strip("german_outlook").quoted
    assert quoted.startswith("Von: IREX Support <support@irex.example>\nGesendet:")


def test_french_outlook_header_block_with_space_before_colon() -> None:
    result = _strip("french_outlook")
    assert result.quoted.startswith("De : Support IREX <support@irex.example>\nEnvoyé :")
    assert result.signature == "Bien cordialement,\nSophie Martin\nResponsable exploitation"


def test_french_outlook_header_with_non_breaking_spaces() -> None:
    body = (
        "C'est corrigé, merci.\n\nDe\u00a0: Support IREX <support@irex.example>\n"
        "Envoyé\u00a0: mardi 3 novembre 2026 10:02\nÀ\u00a0: Sophie\nObjet\u00a0: RE: licence\n\n"
        "Bonjour,\n"
    )
    assert own_text(body) == "C'est corrigé, merci."


def test_two_header_fields_are_not_an_outlook_block() -> None:
    # A pasted cron mail head: only From and To, so it stays the customer's text.
    body = "Our cron job sent this:\nFrom: root@node2\nTo: admin@example.com\n\nirexd restarted"
    assert own_text(body) == body


def test_upgrade_path_is_not_an_outlook_block() -> None:
    # From/To/Date without a subject or an address: the customer's own words.
    body = "Upgrade path:\nFrom: 5.1.4\nTo: 5.2.0\nDate: 2026-11-03\n\nThe schema migration fails."
    assert own_text(body) == body


# --------------------------------------------------------------------------- signatures


def test_signature_dash_delimiter() -> None:
    result = strip_reply("The agent is at 5.2.0 now.\n\n-- \nAnna Kowalczyk\nLinux team\n")
    assert result.text == "The agent is at 5.2.0 now."
    assert result.signature == "--\nAnna Kowalczyk\nLinux team"


def test_closing_line_and_contact_block_go_to_signature() -> None:
    # Choice: the closing line is removed with the contact block below it.
    result = _strip("signature_closing_contact_block")
    assert result.text.endswith("Is this a known issue?")
    assert result.signature == (
        "Best regards,\nJohn Smith\nSystem Administrator\nACME Corp\n+33 1 23 45 67 89"
    )


def test_french_signature_under_english_message_is_removed() -> None:
    result = _strip("signature_french_under_english")
    assert "Cordialement" not in result.text
    assert "Administrateur" not in result.text
    assert result.signature == "Cordialement,\nJean Dupont\nAdministrateur systèmes"


def test_disclaimer_after_contact_block_is_part_of_signature() -> None:
    result = _strip("signature_disclaimer")
    assert result.signature.startswith("Kind regards,\nMaria Rossi")
    assert result.signature.endswith("please notify the sender and delete it.")


def test_closing_alone_is_kept_when_it_is_the_whole_message() -> None:
    result = _strip("thanks_only_mobile")
    assert result.text == "Thanks!"
    assert result.signature == "Sent from my iPhone"


def test_closing_alone_keeps_the_closing_and_drops_the_name() -> None:
    result = strip_reply("Thank you,\nJohn Smith\nACME Corp")
    assert result.text == "Thank you,"
    assert result.signature == "John Smith\nACME Corp"


@pytest.mark.parametrize(
    "body",
    [
        # "Thanks!" followed by prose, not by a name.
        "Hi,\n\nThanks!\nThe patch worked on node 1 but node 2 still shows the error.",
        # A closing word opening a sentence.
        "Thanks for the quick answer, the upgrade finished.",
        "Best practice says to stop irexd first, which we did.",
        # Closing followed by short lines that are not a name.
        "It fails on two nodes.\n\nThanks,\nnode1: OK\nnode2: FAIL",
        # A P.S. after the name: the block is prose, keep everything.
        "It fails.\n\nBest regards,\nJohn\n\nP.S. the full log is attached to this mail.",
        # Hyphen lists are content, not signatures (the library would cut them).
        "Steps:\n- stop irexd\n- upgrade\n- start irexd",
        # A last line that the library's Swedish "/Name" closing would match.
        "The installer asks for the target directory. We use\n/opt",
        # A German sentence starting like the tagline "Von meinem iPhone gesendet".
        "Es geht nur im Büro.\nVon meinem Laptop zu Hause geht es nicht",
    ],
)
def test_uncertain_signatures_are_kept(body: str) -> None:
    assert own_text(body) == body


def test_no_quote_and_no_signature_keeps_everything() -> None:
    result = _strip("no_quote_conservative")
    assert result.quoted == ""
    assert result.signature == ""


# --------------------------------------------------------------------- engineer commands


def test_engineer_commands_at_top_are_preserved() -> None:
    result = _strip("engineer_commands")
    assert result.text.startswith("#status resolved\n#internal\n")
    assert result.signature == "Best regards,\nBob Martin\nIREX Support Engineering"


def test_engineer_command_alone_survives_signature_and_quote() -> None:
    body = "#status resolved\n\n-- \nBob\n\nOn 3 Nov 2026, at 10:02, A <a@example.com> wrote:\n> ok"
    assert own_text(body) == "#status resolved"


# ----------------------------------------------------------------------------- forwards


def test_forward_with_note_keeps_only_the_note() -> None:
    result = _strip("forward_with_note")
    assert result.text.startswith("Hi support,")
    assert "unreachable for 15 minutes" in result.quoted
    assert result.quoted.startswith("---------- Forwarded message ---------")


def test_bare_forward_returns_the_forwarded_body() -> None:
    # Choice: a forward with nothing written above it is the request itself.
    result = _strip("forward_bare_gmail")
    assert result.text.startswith("Hello,\n\nSince this morning the IREX agent")
    assert result.quoted == (
        "---------- Forwarded message ---------\n"
        "From: Lisa Wong <lisa.wong@example.com>\n"
        "Date: Mon, 2 Nov 2026 at 17:45\n"
        "Subject: IREX agent crashes on startup\n"
        "To: <it-helpdesk@example.com>"
    )
    assert result.signature == "Best regards,\nLisa Wong\nFinance department"


def test_bare_apple_forward_returns_the_forwarded_body() -> None:
    result = _strip("forward_bare_apple")
    assert result.text.startswith("The IREX Server installer hangs at 87%")
    assert result.quoted.startswith("Begin forwarded message:\n\nFrom: Tom Becker")


def test_bare_outlook_forward_is_recognised_by_its_fw_subject() -> None:
    result = _strip("forward_bare_outlook")
    assert result.text.startswith("The certificate of the IREX web console expired")
    assert result.quoted.endswith("Subject: FW: IREX console certificate expired")


def test_reply_without_new_text_is_empty() -> None:
    body = "\nOn Tue, 3 Nov 2026 at 10:02, Jane <jane@example.com> wrote:\n> Please restart irexd."
    result = strip_reply(body)
    assert result.text == ""
    assert result.quoted == body.strip()


def test_forward_of_a_reply_keeps_only_the_forwarded_new_text() -> None:
    body = (
        "---------- Forwarded message ---------\n"
        "From: Lisa Wong <lisa.wong@example.com>\n"
        "Date: Mon, 2 Nov 2026 at 17:45\n"
        "Subject: Re: agent\n"
        "To: <it@example.com>\n\n"
        "Still crashing after the reinstall.\n\n"
        "On Mon, 2 Nov 2026 at 09:00, IT <it@example.com> wrote:\n"
        "> Please reinstall the agent.\n"
    )
    result = strip_reply(body)
    assert result.text == "Still crashing after the reinstall."
    assert result.quoted.endswith("> Please reinstall the agent.")


def test_stripped_is_frozen() -> None:
    result = strip_reply("hello")
    assert result == Stripped(text="hello", quoted="", signature="")
    with pytest.raises(AttributeError):
        result.text = "changed"  # type: ignore[misc]


def test_windows_line_endings_and_empty_input() -> None:
    assert own_text("Fixed.\r\n\r\nOn 03/11/2026 10:02, Jane Doe wrote:\r\n> ok\r\n") == "Fixed."
    assert strip_reply("") == Stripped(text="", quoted="", signature="")
    assert own_text("\n\n   \n") == ""


# ------------------------------------------------------------------------- HTML to text


def test_html_to_text_paragraphs_breaks_and_divs() -> None:
    html = (
        "<div>Hi,</div><div><br></div><div>line one<br>line two</div>"
        "<p>First paragraph.</p><p>Second &amp; last.</p>"
    )
    assert html_to_text(html) == "Hi,\n\nline one\nline two\n\nFirst paragraph.\n\nSecond & last."


def test_html_to_text_drops_head_style_script_and_comments() -> None:
    html = (
        "<html><head><title>Ticket</title><style>p {color: red}</style></head>"
        "<body><!--[if mso]>hidden<![endif]--><script>alert('x')</script>"
        "<p>Visible</p></body></html>"
    )
    assert html_to_text(html) == "Visible"


def test_html_to_text_links_show_their_address_when_useful() -> None:
    html = (
        '<p>See <a href="https://irex.example/kb/42">the KB article</a>, '
        '<a href="https://irex.example/status">https://irex.example/status</a> and '
        '<a href="mailto:support@irex.example">support@irex.example</a> or '
        '<a href="mailto:jane@example.com">Jane</a>. '
        '<a href="https://irex.example/"><img src="cid:logo"></a><a href="#top">top</a></p>'
    )
    assert html_to_text(html) == (
        "See the KB article <https://irex.example/kb/42>, https://irex.example/status and "
        "support@irex.example or Jane <jane@example.com>. top"
    )


def test_html_to_text_lists() -> None:
    html = "<p>Steps:</p><ul><li>stop irexd</li><li>upgrade<ol><li>run</li><li>check</ol></ul>"
    assert html_to_text(html) == "Steps:\n\n- stop irexd\n- upgrade\n  1. run\n  2. check"


def test_html_to_text_keeps_preformatted_logs() -> None:
    html = "<p>Log:</p><pre>2026-11-03 10:41:09 ERROR\n    at migrate(schema.py:42)</pre>"
    assert html_to_text(html) == "Log:\n\n2026-11-03 10:41:09 ERROR\n    at migrate(schema.py:42)"


def test_html_to_text_citation_blockquote_is_quoted_but_gmail_indent_is_not() -> None:
    html = (
        '<blockquote style="margin:0 0 0 40px;border:none;padding:0px">indented by me</blockquote>'
        '<blockquote type="cite">quoted<br>history</blockquote>'
    )
    assert html_to_text(html) == "indented by me\n\n> quoted\n> history"


def test_html_to_text_outlook_mso_paragraphs_are_lines() -> None:
    html = (
        '<p class="MsoNormal">Hi,<o:p></o:p></p><p class="MsoNormal"><o:p>&nbsp;</o:p></p>'
        '<p class="MsoNormal">line one<o:p></o:p></p><p class="MsoNormal">line two<o:p></o:p></p>'
    )
    assert html_to_text(html) == "Hi,\n\nline one\nline two"


# Each marker wraps text that no plain-text rule would remove ("Old history line."), so
# these fail unless the HTML container itself is recognised.
HTML_MARKERS = {
    "gmail_quote": '<div class="gmail_quote"><div>Old history line.</div></div>',
    "blockquote_cite": '<blockquote type="cite"><div>Old history line.</div></blockquote>',
    "moz_cite_prefix": '<div class="moz-cite-prefix">Old history line.</div>',
    "yahoo_quoted": '<div id="yahoo_quoted_0815" class="yahoo_quoted">Old history line.</div>',
    "outlook_appendonsend": '<div id="appendonsend"></div><div>Old history line.</div>',
    "outlook_divrplyfwdmsg": (
        '<div id="divRplyFwdMsg"><b>Lähettäjä:</b> IREX</div><div>Old history line.</div>'
    ),
    "outlook_border_top": (
        '<div style="border:none;border-top:solid #E1E1E1 1.0pt;padding:3.0pt 0cm 0cm 0cm">'
        '<p class="MsoNormal"><b>Feladó:</b> IREX</p></div>'
        '<p class="MsoNormal">Old history line.</p>'
    ),
    "outlook_2010_border_top": (
        '<div style="border:none;border-top:solid #B5C4DF 1.0pt;padding:3.0pt 0cm 0cm 0cm">'
        "<p><b>From:</b> IREX</p></div><p>Old history line.</p>"
    ),
    "hr_then_from_sent": (
        "<hr><b>From:</b> IREX<br><b>Sent:</b> Tuesday<br><div>Old history line.</div>"
    ),
    "gmail_signature": '<div class="gmail_signature">Old history line.</div>',
    "gmail_signature_prefix": '<span class="gmail_signature_prefix">Old history line.</span>',
    "moz_signature": '<div class="moz-signature">Old history line.</div>',
    "owa_signature": '<div id="Signature"><div>Old history line.</div></div>',
}


@pytest.mark.parametrize("snippet", HTML_MARKERS.values(), ids=HTML_MARKERS.keys())
def test_html_reply_removes_marked_container(snippet: str) -> None:
    html = f"<div>The new text.</div>{snippet}"
    assert "Old history line." in html_to_text(html)
    assert strip_html_reply(html) == "The new text."


def test_html_reply_keeps_text_after_a_quote_container() -> None:
    html = (
        '<div class="moz-cite-prefix">Old history line.</div>'
        '<blockquote type="cite"><div>Question?</div></blockquote><p>The answer.</p>'
        '<div class="moz-signature">Anna</div>'
    )
    assert strip_html_reply(html) == "The answer."


def test_html_reply_keeps_gmail_indent_blockquote() -> None:
    html = (
        '<div dir="ltr">Config:<blockquote style="margin:0 0 0 40px;border:none;padding:0px">'
        "<div>max_connections = 200</div></blockquote></div>"
    )
    assert strip_html_reply(html) == "Config:\n\nmax_connections = 200"


def test_html_reply_outlook_hr_not_followed_by_header_is_kept() -> None:
    html = "<div>Before the fix:</div><hr><div>After the fix: all green.</div>"
    assert strip_html_reply(html) == "Before the fix:\n\nAfter the fix: all green."


def test_html_reply_removes_thunderbird_signature_and_quote() -> None:
    body = (FIXTURES / "thunderbird_reply.html").read_text(encoding="utf-8")
    text = strip_html_reply(body)
    assert "Anna Kowalczyk" not in text
    assert "Could you send" not in text
    assert "On 03/11/2026" not in text


# --------------------------------------------------------------------------- robustness

HTML_TOKENS = [
    *"<>/=\"' !-[]&;#x\n",
    *("div", "p", "br", "a", "href", "blockquote", "type=cite", "class=", "gmail_quote", "pre"),
    *("hr", "li", "ul", "style", "script", "head", "body", "<![", "]]>", "<!--", "-->", "&amp"),
    *("From:", "Sent:", "> ", "wrote:", "On 3 Nov 2026", "-- ", "Thanks,", "\r\n", "id="),
    *("divRplyFwdMsg", "border-top:solid #E1E1E1", "moz-signature", "<hr>"),
]
HTMLISH = st.lists(st.sampled_from(HTML_TOKENS), max_size=60).map("".join)
MAILISH = st.lists(
    st.one_of(
        st.text(max_size=40),
        st.sampled_from(
            [
                "> quoted",
                ">",
                "-- ",
                "",
                "Thanks,",
                "Best regards,",
                "John Smith",
                "From: Jane <jane@example.com>",
                "Sent: Tuesday",
                "To: Bob",
                "Subject: FW: x",
                "---------- Forwarded message ---------",
                "Begin forwarded message:",
                "> Begin forwarded message:",
                "On Tue, 3 Nov 2026 at 10:02, Jane Doe <jane@example.com> wrote:",
                "On Tue, 3 Nov 2026 at 10:02, Jane Doe <jane@example.com>",
                "wrote:",
                "________________________________",
                "-----Original Message-----",
                "Sent from my iPhone",
                "#status resolved",
            ]
        ),
    ),
    max_size=30,
).map("\n".join)


def _lines_come_from(text: str, source: str) -> None:
    for line in text.splitlines():
        assert line in source, line


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(), MAILISH))
def test_strip_reply_never_raises_and_only_reduces(body: str) -> None:
    result = strip_reply(body)
    assert result.text == result.text.strip()
    _lines_come_from(result.text, body)
    _lines_come_from(result.signature, body)
    assert own_text(body) == result.text


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(), HTMLISH))
def test_html_functions_never_raise(html: str) -> None:
    assert isinstance(html_to_text(html), str)
    assert isinstance(strip_html_reply(html), str)


def test_malformed_marked_section_does_not_raise() -> None:
    # html.parser raises AssertionError on this; we fall back to the text.
    assert html_to_text("<p>ok</p><![foo bar]>tail") == "ok tail"


def test_one_megabyte_bodies_return() -> None:
    line = "2026-11-03 10:41:09 ERROR relation license_pool already exists: retrying step 42\n"
    bodies = [
        line * (1_000_000 // len(line)),
        "x" * 1_000_000,
        "On " + "a " * 500_000 + "wrote:",
        "> quoted\n" * 110_000,
        "\n" * 1_000_000,
        ("From: a\nTo: b\n" * 70_000),
        ("On Tue, 3 Nov 2026 at 10:02, A <a@example.com> wrote:\n> q\nanswer\n" * 15_000),
        "Thanks,\n" * 125_000,
    ]
    for body in bodies:
        result = strip_reply(body)
        assert len(result.text) <= len(body)
    html = "<div>" + "<p>word &amp; <b>bold</b> <a href='https://x.example'>link</a></p>" * 15_000
    assert strip_html_reply(html).startswith("word & bold link <https://x.example>")
    assert html_to_text("<blockquote type=cite>" * 20_000 + "deep")
    assert re.fullmatch(r"(?:> )+deep", html_to_text("<blockquote type=cite>" * 2_000 + "deep"))


@settings(max_examples=400, deadline=None)
@given(data=st.data())
def test_every_line_a_closing_pattern_matches_passes_the_combined_prefilter(data: Any) -> None:
    """_is_closing tries the 121 closing patterns only on lines the one combined
    pattern matches; every line that any closing pattern matches must pass it."""
    closing = data.draw(st.sampled_from(quotes._CLOSINGS))
    line = data.draw(st.from_regex(closing, fullmatch=True))
    assert quotes._ANY_CLOSING is not None
    assert quotes._ANY_CLOSING.match(line) is not None, (closing.pattern, line)


@pytest.mark.parametrize(
    "line",
    ["Best regards, Jean", "Thanks in advance", "Mit freundlichen Grüßen", "Cordialement",
     "Thanks for the quick fix, it works", "Regardless of the patch", "/opt/irex/bin",
     "Best", "Bestätigung folgt", "Kind regards,", "Saludos cordiales Ana"],
)  # fmt: skip
def test_the_closing_prefilter_changes_no_verdict(
    line: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with_prefilter = quotes._is_closing(line)
    monkeypatch.setattr(quotes, "_ANY_CLOSING", None)
    assert quotes._is_closing(line) == with_prefilter
