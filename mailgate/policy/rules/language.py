"""R-LANG / P-OUT-LANG: English only, judged on the sender's own prose, refusing only on
confident evidence (``mailgate.policy.language``)."""

from __future__ import annotations

from dataclasses import dataclass

from mailgate.model import ParsedMail, Reason
from mailgate.policy.facts import Facts
from mailgate.policy.language import LanguageSettings, assess_language, load_detector
from mailgate.policy.rule import Hit

LANGUAGE_NAMES = {
    "fr": "French", "de": "German", "es": "Spanish", "it": "Italian", "pt": "Portuguese",
    "nl": "Dutch", "pl": "Polish", "ja": "Japanese", "zh": "Chinese", "ru": "Russian",
    "sv": "Swedish", "da": "Danish", "no": "Norwegian", "fi": "Finnish", "cs": "Czech",
    "tr": "Turkish", "ko": "Korean", "ar": "Arabic", "uk": "Ukrainian", "hu": "Hungarian",
    "ro": "Romanian", "el": "Greek", "he": "Hebrew",
}  # fmt: skip


@dataclass(frozen=True)
class LanguageRule:
    settings: LanguageSettings
    name: str = "language"
    clause: str = "R-LANG"

    def warm_up(self) -> None:
        if self.settings.enabled:
            load_detector()

    def check(self, mail: ParsedMail, facts: Facts) -> Hit | None:
        if not self.settings.enabled:
            return None
        text = facts.own_text if facts.own_text.strip() else facts.tags.clean
        verdict = assess_language(text, self.settings)
        evidence = {
            "language": verdict.language,
            "language_name": LANGUAGE_NAMES.get(verdict.language or "", verdict.language),
            "score": round(verdict.score, 3),
            "english_score": round(verdict.english_score, 3),
            "letters": verdict.letters,
            "why": verdict.reason,
            "sample": verdict.sample,
        }
        if verdict.refuse:
            return Hit("reject", Reason.NON_ENGLISH, evidence)
        return None
