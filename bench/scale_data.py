"""The archive `make bench-scale` imports: articles and videos with NATO-news vocabulary.

Deterministic: row `i` is drawn from its own seeded generator, so the first 1,000 rows of a
10,000-row file are the 1,000-row file, and two runs write the same bytes. Every article has 5
paragraphs; every video two renditions (small real files written to storage, given by storage
key, size and SHA-256), a shot list and a transcript. The queries the bench times all find
something: `nato` is in nearly every row (a common word), `term1234` in one row of every
thousand (a rare word: the `term<n>` codes are reference numbers no other text uses), and
`missile defence treaty` (three words, every one must match) in a few percent of rows.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

COMMON_QUERY = "nato"
RARE_QUERY = "term1234"
THREE_WORD_QUERY = "missile defence treaty"
QUERIES = {"common": COMMON_QUERY, "rare": RARE_QUERY, "three words": THREE_WORD_QUERY}

START = datetime.datetime(2000, 1, 3, 8, 0, tzinfo=datetime.UTC)

SUBJECTS = (
    "NATO Allies",
    "NATO Foreign Ministers",
    "NATO Defence Ministers",
    "The NATO Secretary General",
    "The North Atlantic Council",
    "Allied leaders",
    "Allied military commanders",
    "Partner nations",
    "The NATO-Russia Council",
    "NATO Ambassadors",
    "The Military Committee",
    "Experts from Allied countries",
    "The Euro-Atlantic Partnership Council",
    "The NATO-Ukraine Commission",
    "Parliamentarians from NATO countries",
    "Chiefs of Defence",
)
VERBS = (
    "discussed",
    "welcomed progress on",
    "reviewed",
    "agreed a new approach to",
    "reaffirmed their commitment to",
    "stressed the importance of",
    "examined",
    "highlighted",
    "called for further work on",
    "assessed",
    "launched consultations on",
    "exchanged views on",
)
TOPICS = (
    "missile defence",
    "theatre missile defence",
    "the CFE Treaty",
    "the Open Skies Treaty",
    "arms control",
    "cyber defence",
    "energy security",
    "crisis management",
    "collective defence",
    "maritime security",
    "counter-terrorism",
    "the Strategic Concept",
    "enlargement",
    "capability development",
    "defence spending",
    "training missions",
    "interoperability",
    "the NATO Response Force",
    "disaster relief",
    "air policing",
    "border security",
    "nuclear deterrence",
    "partnership programmes",
    "the Science for Peace and Security Programme",
    "operations in Afghanistan",
    "the Kosovo Force",
    "counter-piracy operations",
    "defence reform",
    "civil emergency planning",
    "small arms and light weapons",
)
PLACES = (
    ("Brussels", "Belgium"),
    ("Oslo", "Norway"),
    ("Bucharest", "Romania"),
    ("Lisbon", "Portugal"),
    ("Riga", "Latvia"),
    ("Vilnius", "Lithuania"),
    ("Warsaw", "Poland"),
    ("Madrid", "Spain"),
    ("Istanbul", "Turkey"),
    ("Strasbourg", "France"),
    ("Prague", "Czech Republic"),
    ("Tallinn", "Estonia"),
    ("Chicago", "United States"),
    ("Newport", "United Kingdom"),
    ("Washington", "United States"),
    ("Ottawa", "Canada"),
    ("Rome", "Italy"),
    ("Berlin", "Germany"),
    ("Copenhagen", "Denmark"),
    ("Sofia", "Bulgaria"),
    ("Mons", "Belgium"),
    ("Naples", "Italy"),
    ("Brunssum", "Netherlands"),
    ("Kabul", "Afghanistan"),
    ("Pristina", "Kosovo"),
)
MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
TAGS = (
    "summits",
    "missile-defence",
    "arms-control",
    "cyber-defence",
    "energy-security",
    "crisis-management",
    "collective-defence",
    "maritime-security",
    "counter-terrorism",
    "enlargement",
    "partnerships",
    "exercises",
    "afghanistan",
    "kosovo",
    "foreign-ministers",
    "defence-ministers",
    "nato-russia-council",
    "science-for-peace",
    "capabilities",
    "operations",
)
SENTENCES = (
    "{subject} {verb} {topic} at a meeting in {place} on {day} {month}.",
    "The meeting took place at NATO Headquarters, where Allies {verb} {topic}.",
    "Officials said the talks on {topic} were constructive and that further work would follow "
    "in {month}.",
    "Allies agreed that {topic} remains essential to Euro-Atlantic security.",
    "{subject} also {verb} {topic2}, noting the contribution of partner countries.",
    "A joint statement on {topic} was issued after the session in {place}.",
    "The Alliance will report on {topic} to the North Atlantic Council before the next summit.",
    "Annex {rare} sets out the details of the {place} arrangements.",
    "Delegations from {count} nations took part in the discussion on {topic}.",
    "The council noted that practical cooperation on {topic} had improved since the last "
    "ministerial meeting.",
    "Ministers asked the military authorities to prepare options on {topic} by {month}.",
    "Partners contributing forces to NATO-led operations joined a session on {topic}.",
)
SHOTS = (
    "Wide shot of NATO Headquarters, {place}",
    "Medium shot, {subject} arriving for the meeting",
    "Close-up, flags of Allied nations",
    "Cutaway, delegations seated around the council table",
    "Two-shot, ministers in conversation on {topic}",
    "Exterior, press conference podium in {place}",
    "Soundbite, the NATO spokesperson on {topic}",
    "Pan across the family photo of Allied leaders",
    "Aerial view of the exercise area near {place}",
    "Tracking shot, troops boarding a transport aircraft",
)
RENDITIONS = (("1080p25 H.264 MP4", "1080p"), ("540p25 H.264 MP4", "540p"))


@dataclass(frozen=True)
class Generated:
    articles: Path
    videos: Path
    rows: int


def _rng(seed: int, kind: str, index: int) -> random.Random:
    return random.Random(f"{seed}:{kind}:{index}")


def _rare(rng: random.Random, index: int) -> str:
    # One code fixed by the row's number (so `term1234` is in exactly one row per thousand),
    # one drawn from codes the queries never ask for.
    return (
        f"Reference document term{1000 + index % 1000} and annex term{rng.randrange(2000, 10000)} "
        "set out the details."
    )


def _sentence(rng: random.Random, template: str) -> str:
    place, _ = rng.choice(PLACES)
    return template.format(
        subject=rng.choice(SUBJECTS),
        verb=rng.choice(VERBS),
        topic=rng.choice(TOPICS),
        topic2=rng.choice(TOPICS),
        place=place,
        day=rng.randint(1, 28),
        month=rng.choice(MONTHS),
        rare=f"term{rng.randrange(2000, 10000)}",
        count=rng.randint(12, 50),
    )


def _paragraph(rng: random.Random, sentences: int, extra: str = "") -> str:
    said = [_sentence(rng, rng.choice(SENTENCES)) for _ in range(sentences)]
    if extra:
        said.insert(rng.randrange(len(said) + 1), extra)
    return " ".join(said)


def _paragraphs(rng: random.Random, count: int, rare: str) -> list[str]:
    # The rare codes go in one paragraph, among its other sentences.
    with_codes = rng.randrange(count)
    return [
        _paragraph(rng, rng.randint(3, 5), rare if number == with_codes else "")
        for number in range(count)
    ]


def _published(rng: random.Random, index: int) -> str:
    moment = START + datetime.timedelta(minutes=index * 97 + rng.randint(0, 90))
    return moment.isoformat().replace("+00:00", "Z")


def _title(rng: random.Random) -> tuple[str, str, str]:
    place, country = rng.choice(PLACES)
    subject, verb, topic = rng.choice(SUBJECTS), rng.choice(VERBS), rng.choice(TOPICS)
    return f"{subject} {verb} {topic} in {place}", place, country


def article(seed: int, index: int) -> dict[str, Any]:
    rng = _rng(seed, "article", index)
    title, place, country = _title(rng)
    rare = _rare(rng, index)
    paragraphs = _paragraphs(rng, 5, rare)
    words = [word for word in title.lower().replace("-", " ").split() if word.isalnum()][:6]
    return {
        "slug": "-".join([*words, str(index)]),
        "title": title,
        "summary": _paragraph(rng, 2),
        "body": "".join(f"<p>{paragraph}</p>" for paragraph in paragraphs),
        "tags": rng.sample(TAGS, 3),
        "location": f"{place}, {country}",
        "language": "en",
        "status": "published",
        "published_at": _published(rng, index),
    }


def rendition_bytes(index: int, short: str) -> bytes:
    return f"natomedia bench-scale video {index} rendition {short}\n".encode() * 16


def video(seed: int, index: int) -> dict[str, Any]:
    rng = _rng(seed, "video", index)
    title, place, country = _title(rng)
    rare = _rare(rng, index)
    external_id = f"scale-video-{index:06d}"
    renditions = []
    for label, short in RENDITIONS:
        content = rendition_bytes(index, short)
        renditions.append(
            {
                "label": label,
                "storage_key": storage_key(index, short),
                "size_bytes": len(content),
                "sha256": hashlib.sha256(content).hexdigest(),
            }
        )
    shots = rng.sample(SHOTS, rng.randint(5, 8))
    shot_list = "\n".join(
        f"{number}. {_sentence(rng, shot)}" for number, shot in enumerate(shots, 1)
    )
    return {
        "external_id": external_id,
        "title": title,
        "description": _paragraph(rng, 2),
        "tags": rng.sample(TAGS, 3),
        "published_at": _published(rng, index),
        "language": "en",
        "credits": "NATO Multimedia",
        "copyright": "NATO",
        "location": f"{place}, {country}",
        "shot_list": shot_list,
        "transcript": "\n\n".join(_paragraphs(rng, 2, rare)),
        "renditions": renditions,
    }


def storage_key(index: int, short: str) -> str:
    return f"bench-scale/{index // 1000:04d}/scale-video-{index:06d}-{short}.mp4"


def _write_array(path: Path, items: Iterator[dict[str, Any]]) -> None:
    with path.open("w", encoding="utf-8") as handle:
        handle.write("[\n")
        for number, item in enumerate(items):
            if number:
                handle.write(",\n")
            handle.write(json.dumps(item, ensure_ascii=False))
        handle.write("\n]\n")


def generate(directory: Path, storage: Path, rows: int, seed: int) -> Generated:
    """`rows` articles and `rows` videos as import files in `directory`; rendition files in
    `storage`. Files already written for these rows and this seed are kept."""
    directory.mkdir(parents=True, exist_ok=True)
    stamp = directory / "generated.json"
    articles, videos = directory / "articles.json", directory / "videos.json"
    wanted = {"rows": rows, "seed": seed}
    if stamp.exists() and json.loads(stamp.read_text()) == wanted:
        return Generated(articles, videos, rows)
    _write_array(articles, (article(seed, index) for index in range(rows)))
    _write_array(videos, (video(seed, index) for index in range(rows)))
    for index in range(rows):
        for _, short in RENDITIONS:
            target = storage / storage_key(index, short)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(rendition_bytes(index, short))
    stamp.write_text(json.dumps(wanted))
    return Generated(articles, videos, rows)
