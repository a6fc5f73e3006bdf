"""Run the language corpus through ``assess_language`` and print the R-LANG figures.

    .venv/bin/python bench/language_corpus.py            # table
    .venv/bin/python bench/language_corpus.py --json     # the same figures as JSON
    .venv/bin/python bench/language_corpus.py --show     # also every misjudged item
    .venv/bin/python bench/language_corpus.py --dump en-013   # one item, cleaned text, verdict
    .venv/bin/python bench/language_corpus.py --own-text # first strip quotes and signature
                                                         # with mail.quotes.own_text, as the
                                                         # pipeline does

Time per message is the median of ``--repeat`` runs (default 3) of each item, so a busy
machine blurs it less; the model is loaded before timing starts and reported apart.

The corpus is ``tests/corpus/language/<lang>.txt`` (hand-written) and
``<lang>.composed.txt`` (combined from hand-written parts by ``compose.py``); items are
separated by ``%%% <id> <tags>`` lines and may embed hand-written log blocks from
``blocks.txt`` as ``{{block:<name>}}``. tests/test_language.py asserts on the figures
this module computes, so the table printed here is the one the tests check.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from mailgate.policy.language import (  # noqa: E402
    LanguageSettings,
    LanguageVerdict,
    assess_language,
    load_detector,
    prose_only,
)

CORPUS = ROOT / "tests" / "corpus" / "language"
_BLOCK = re.compile(r"\{\{block:([\w-]+)\}\}")


@dataclass(frozen=True)
class Item:
    id: str
    language: str  # the language it is written in (file name), e.g. "en", "fr"
    tags: str
    text: str
    source: str


@dataclass(frozen=True)
class Judged:
    item: Item
    verdict: LanguageVerdict
    seconds: float


def _sections(path: Path) -> list[tuple[str, str]]:
    sections: list[tuple[str, list[str]]] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("%%% "):
            sections.append((line[4:].strip(), []))
        elif sections:
            sections[-1][1].append(line)
    return [(head, "\n".join(body).strip("\n")) for head, body in sections]


def load_blocks(corpus: Path = CORPUS) -> dict[str, str]:
    return {head.split()[0]: body for head, body in _sections(corpus / "blocks.txt")}


def load_corpus(corpus: Path = CORPUS) -> list[Item]:
    """Every corpus item, blocks expanded, in file order."""
    blocks = load_blocks(corpus)
    items: list[Item] = []
    for path in sorted(corpus.glob("*.txt")):
        if path.name == "blocks.txt":
            continue
        language = path.name.split(".")[0]
        for head, body in _sections(path):
            item_id, _, tags = head.partition(" ")
            text = _BLOCK.sub(lambda m: blocks[m.group(1)], body)
            items.append(Item(item_id, language, tags, text, path.name))
    ids = [item.id for item in items]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise ValueError(f"duplicate corpus ids: {duplicates}")
    return items


def judge(items: list[Item], settings: LanguageSettings, repeat: int = 1) -> list[Judged]:
    """Assess every item; its time is the median of ``repeat`` runs."""
    results = []
    for item in items:
        times = []
        for _ in range(max(repeat, 1)):
            start = time.perf_counter()
            verdict = assess_language(item.text, settings)
            times.append(time.perf_counter() - start)
        results.append(Judged(item, verdict, statistics.median(times)))
    return results


def own_text_items(items: list[Item]) -> list[Item]:
    """The items as the pipeline hands them over: quotes and signature stripped first."""
    from mailgate.mail.quotes import own_text

    return [replace(item, text=own_text(item.text)) for item in items]


def figures(results: list[Judged], settings: LanguageSettings) -> dict[str, object]:
    """Counts per language and overall, as the tests assert them."""
    per_language: dict[str, dict[str, object]] = {}
    for lang in sorted({r.item.language for r in results}, key=lambda c: (c != "en", c)):
        mine = [r for r in results if r.item.language == lang]
        judged = [r for r in mine if r.verdict.letters >= settings.min_letters]
        short = [r for r in mine if r.verdict.letters < settings.min_letters]
        refused = [r for r in judged if r.verdict.refuse]
        per_language[lang] = {
            "items": len(mine),
            "judged": len(judged),  # >= min_letters after cleaning
            "refused": len(refused),
            "refused_pct": round(100 * len(refused) / len(judged), 1) if judged else None,
            "short": len(short),
            "short_refused": sum(r.verdict.refuse for r in short),
        }
    english = [r for r in results if r.item.language in settings.accepted]
    foreign = [r for r in results if r.item.language not in settings.accepted]
    foreign_judged = [r for r in foreign if r.verdict.letters >= settings.min_letters]
    foreign_refused = [r for r in foreign_judged if r.verdict.refuse]
    times = sorted(r.seconds for r in results)
    return {
        "english_items": len(english),
        "english_refused": sum(r.verdict.refuse for r in english),
        "non_english_items": len(foreign),
        "non_english_judged": len(foreign_judged),
        "non_english_refused": len(foreign_refused),
        "non_english_refused_pct": (
            round(100 * len(foreign_refused) / len(foreign_judged), 2) if foreign_judged else None
        ),
        "short_items": sum(r.verdict.letters < settings.min_letters for r in results),
        "short_refused": sum(
            r.verdict.refuse for r in results if r.verdict.letters < settings.min_letters
        ),
        "per_language": per_language,
        "ms_per_message_mean": round(1000 * statistics.fmean(times), 3),
        "ms_per_message_p95": round(1000 * times[max(0, int(0.95 * len(times)) - 1)], 3),
        "ms_per_message_max": round(1000 * times[-1], 3),
    }


def misjudged(results: list[Judged], settings: LanguageSettings) -> list[Judged]:
    """English refused, and non-English long enough to judge but accepted."""
    return [
        r
        for r in results
        if (r.item.language in settings.accepted and r.verdict.refuse)
        or (
            r.item.language not in settings.accepted
            and r.verdict.letters >= settings.min_letters
            and not r.verdict.refuse
        )
    ]


def _rss_kib() -> int | None:
    try:
        with open(f"/proc/{os.getpid()}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def load_model() -> dict[str, float | None]:
    """Load the detector and measure what that costs (RSS is Linux-only)."""
    before = _rss_kib()
    start = time.perf_counter()
    load_detector()
    seconds = time.perf_counter() - start
    after = _rss_kib()
    rss = (after - before) / 1024 if before is not None and after is not None else None
    return {"model_load_ms": round(1000 * seconds, 1), "model_rss_mib": rss and round(rss, 1)}


def _print_table(result: dict[str, object], model: dict[str, float | None]) -> None:
    per_language = result["per_language"]
    assert isinstance(per_language, dict)
    print(
        f"{'lang':<5} {'items':>5} {'judged':>6} {'refused':>7} {'refused%':>8} "
        f"{'short':>5} {'short refused':>13}"
    )
    for lang, row in per_language.items():
        pct = "-" if row["refused_pct"] is None else f"{row['refused_pct']:.1f}"
        print(
            f"{lang:<5} {row['items']:>5} {row['judged']:>6} {row['refused']:>7} {pct:>8} "
            f"{row['short']:>5} {row['short_refused']:>13}"
        )
    print()
    print(f"English refused:            {result['english_refused']} of {result['english_items']}")
    print(
        f"Non-English refused:        {result['non_english_refused']} of "
        f"{result['non_english_judged']} with >= min_letters "
        f"({result['non_english_refused_pct']}%); {result['non_english_items']} items in all"
    )
    print(
        f"Short (< min_letters):      {result['short_items']} items, "
        f"{result['short_refused']} refused"
    )
    print(
        f"Time per message:           mean {result['ms_per_message_mean']} ms, "
        f"p95 {result['ms_per_message_p95']} ms, max {result['ms_per_message_max']} ms"
    )
    print(
        f"Model load:                 {model['model_load_ms']} ms, "
        f"RSS +{model['model_rss_mib']} MiB"
    )


def _show(judged: Judged) -> None:
    v = judged.verdict
    print(f"--- {judged.item.id} ({judged.item.source}, {judged.item.tags})")
    print(
        f"    refuse={v.refuse} lang={v.language} score={v.score} en={v.english_score} "
        f"letters={v.letters} reason={v.reason!r}"
    )
    print(f"    sample: {v.sample!r}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--show", action="store_true", help="list misjudged items")
    parser.add_argument("--dump", metavar="ID", help="show one item, its prose and verdict")
    parser.add_argument("--own-text", action="store_true", help="apply quotes.own_text first")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per item (median)")
    args = parser.parse_args(argv)

    settings = LanguageSettings()
    model = load_model()
    items = load_corpus()
    if args.own_text:
        items = own_text_items(items)
    if args.dump:
        item = next(i for i in items if i.id == args.dump)
        print(item.text, "\n=== prose_only ===\n" + prose_only(item.text), "\n=== verdict ===")
        _show(judge([item], settings)[0])
        return 0
    results = judge(items, settings, repeat=args.repeat)
    result = figures(results, settings)
    if args.json:
        print(json.dumps({**result, **model, "settings": asdict(settings)}, indent=2))
    else:
        _print_table(result, model)
    if args.show:
        print("\nMisjudged:")
        for judged in misjudged(results, settings):
            _show(judged)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
