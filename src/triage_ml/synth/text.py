"""Ticket subjects and bodies rendered from the hidden world and the templates.

Every random choice comes from one :class:`Stream`, in a fixed order, so the
same generator state always writes the same text.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from triage_ml.synth.schema import LANGUAGES
from triage_ml.synth.templates import Templates, Topic, Vocabulary

# The columns of the hidden world one ticket's text depends on, in the order _render reads them.
WORLD_KEYS: tuple[str, ...] = (
    "category",
    "topic",
    "style",
    "second",
    "second_topic",
    "channel",
    "language",
    "anger",
    "long",
)


class Stream:
    """Sequential uniform numbers for the per-ticket Python text code.

    Draws blocks from a numpy generator, so per-call overhead stays tiny and
    the sequence depends only on the generator's seed.
    """

    __slots__ = ("_buf", "_pos", "_rng")

    def __init__(self, rng: np.random.Generator) -> None:
        self._rng = rng
        self._buf: list[float] = []
        self._pos = 0

    def u(self) -> float:
        """Next uniform number in [0, 1)."""
        if self._pos >= len(self._buf):
            self._buf = self._rng.random(65_536).tolist()
            self._pos = 0
        value = self._buf[self._pos]
        self._pos += 1
        return value

    def pick(self, options: Sequence[str]) -> str:
        """Uniformly chosen element of ``options``."""
        return options[int(self.u() * len(options))]

    def chance(self, p: float) -> bool:
        """True with probability ``p``."""
        return self.u() < p

    def randint(self, low: int, high: int) -> int:
        """Uniform integer in ``[low, high]``."""
        return low + int(self.u() * (high - low + 1))


SlotMakers = dict[str, Callable[[Stream], str]]


def _amount(s: Stream, words: Vocabulary) -> str:
    value = s.pick(words.amounts)
    return s.pick(words.currencies) + value


def _email(s: Stream, words: Vocabulary) -> str:
    last = s.pick(words.last_names).lower().replace("ü", "ue")
    first = s.pick(words.first_names).lower()
    return f"{first}.{last}{s.randint(1, 99)}@{s.pick(words.email_domains)}"


def _date(s: Stream, words: Vocabulary) -> str:
    # Both formatted dates are drawn before the pick, so every date costs the same draws.
    month_day = f"{s.pick(words.months)} {s.randint(1, 28)}"
    numeric = f"{s.randint(1, 12):02d}/{s.randint(1, 28):02d}"
    return s.pick((month_day, numeric, *words.date_words))


def _phone(s: Stream) -> str:
    return (
        f"+{s.randint(1, 49)} {s.randint(200, 999)} {s.randint(100, 999)} {s.randint(1000, 9999)}"
    )


def _word_slots(words: Vocabulary) -> SlotMakers:
    """Slots that pick one word from a vocabulary list."""
    lists = {
        "product": words.products,
        "product2": words.devices,
        "device": words.devices,
        "agent": words.first_names,
        "plan": words.plans,
        "seats": words.seats,
        "error": words.errors,
        "carrier": words.carriers,
        "os": words.operating_systems,
        "browser": words.browsers,
        "feature": words.features,
        "city": words.cities,
        "country": words.countries,
        "time": words.times,
    }
    return {slot: (lambda s, options=options: s.pick(options)) for slot, options in lists.items()}


def slot_makers(words: Vocabulary) -> SlotMakers:
    """One function per ``{slot}`` name, drawing that slot's value from a stream."""
    return _word_slots(words) | {
        "order": lambda s: f"#{s.pick('ABCDKMX')}{s.randint(10_000, 99_999)}",
        "amount": lambda s: _amount(s, words),
        "amount2": lambda s: _amount(s, words),
        "date": lambda s: _date(s, words),
        "card": lambda s: f"{s.randint(1000, 9999)}",
        "email": lambda s: _email(s, words),
        "phone": _phone,
        "name": lambda s: f"{s.pick(words.first_names)} {s.pick(words.last_names)}",
        "days": lambda s: str(s.randint(2, 21)),
        "count": lambda s: str(s.randint(2, 12)),
        "years": lambda s: str(s.randint(1, 9)),
        "invoice": lambda s: f"INV-2026-{s.randint(100, 99_999):05d}",
        "tracking": lambda s: f"1Z{s.randint(100_000, 999_999)}{s.randint(10_000_000, 99_999_999)}",
        "ref": lambda s: f"{s.randint(100_000, 999_999)}",
    }


class Slots(dict[str, str]):
    """Slot values of one ticket, drawn lazily and reused within the ticket."""

    def __init__(self, stream: Stream, makers: SlotMakers) -> None:
        super().__init__()
        self._stream = stream
        self._makers = makers

    def __missing__(self, key: str) -> str:
        value = self._makers[key](self._stream)
        self[key] = value
        return value


def _topic_sentences(s: Stream, topic: Topic, k: int) -> list[str]:
    """``k`` distinct sentences of ``topic`` (fewer if it has fewer)."""
    sentences = topic.sentences
    first = int(s.u() * len(sentences))
    step = 1 + int(s.u() * (len(sentences) - 1)) if len(sentences) > 1 else 1
    picked = [sentences[(first + i * step) % len(sentences)] for i in range(min(k, len(sentences)))]
    return list(dict.fromkeys(picked))


def _core_sentences(
    s: Stream, tpl: Templates, topic: Topic, other: Topic, style: int, long: bool
) -> list[str]:
    """The content sentences of one ticket before tone and channel dressing."""
    if style == 2:
        parts = [s.pick(tpl.generic_sentences) for _ in range(s.randint(1, 3))]
        if s.chance(0.35):
            parts.append(s.pick(other.sentences))
        return list(dict.fromkeys(parts))
    parts = _topic_sentences(s, topic, 1 + s.chance(0.55) + 2 * long)
    if style == 1:
        extra = _topic_sentences(s, other, 1 + s.chance(0.45))
        parts = extra + parts if s.chance(0.4) else parts + extra
    if s.chance(0.35 + 0.4 * long):
        parts.insert(0, s.pick(tpl.context_sentences))
    if long:
        parts.insert(s.randint(1, len(parts)), s.pick(tpl.tried_sentences))
    if s.chance(0.15 + 0.3 * long):
        parts.append(s.pick(tpl.generic_sentences))
    return parts


def _tone(
    s: Stream, tpl: Templates, parts: list[str], anger: int, cues: Sequence[bool]
) -> list[str]:
    """Append sentiment and escalation sentences."""
    if anger:
        parts.append(s.pick(tpl.angry_sentences[anger]))
        if anger == 2 and s.chance(0.4):
            parts.insert(0, s.pick(tpl.angry_sentences[2]))
    elif s.chance(0.3):
        parts.append(s.pick(tpl.polite_sentences))
    for kind, present in enumerate(cues):
        if present:
            parts.append(s.pick(tpl.escalation_cues[kind]))
    return parts


def _typos(s: Stream, text: str) -> str:
    """One to three character-level slips: swaps, drops and doubled letters."""
    for _ in range(s.randint(1, 3)):
        if len(text) < 4:
            break
        i = int(s.u() * (len(text) - 2))
        kind = s.u()
        if kind < 0.4:
            text = text[:i] + text[i + 1] + text[i] + text[i + 2 :]
        elif kind < 0.75:
            text = text[:i] + text[i + 1 :]
        else:
            text = text[:i] + text[i] + text[i:]
    return text


def _join(s: Stream, parts: list[str], channel: int) -> str:
    """Join sentences as the channel would show them, sometimes as a run-on."""
    if channel == 1:
        return "\n".join(p.rstrip(".") if s.chance(0.5) else p for p in parts)
    if s.chance(0.12):
        return ", ".join(p.rstrip(".!") for p in parts[:-1]) + (
            ", and " + parts[-1].lower() if len(parts) > 1 else parts[-1]
        )
    return " ".join(parts)


def _letter(s: Stream, tpl: Templates, text: str, channel: int, language: str, slots: Slots) -> str:
    """An email, chat or web-form message: greeting, text, closing and signature."""
    greet = tpl.greetings[language] if language != "en" or s.chance(0.8) else ("",)
    greeting = s.pick(greet).format_map(slots)
    if channel == 1:
        return (greeting.rstrip(",") + "\n" + text) if greeting and s.chance(0.5) else text
    if channel == 3 and s.chance(0.3):
        text = s.pick(tpl.channels.web_openers).format_map(slots) + text
    closing = s.pick(tpl.closings[language]) if language != "en" or s.chance(0.7) else ""
    signature = slots["name"] if closing and s.chance(0.6) else ""
    tail = "\n".join(x for x in (closing, signature) if x)
    if s.chance(0.05):
        tail += "\n\n" + tpl.mobile_signature
    return "\n\n".join(x for x in (greeting, text, tail) if x)


def _dress(s: Stream, tpl: Templates, text: str, channel: int, language: str, slots: Slots) -> str:
    """Wrap the message in greeting, closing and channel-specific framing."""
    if language != "en" and s.chance(0.3):
        text = f"{tpl.apologies[language]} {text}"
    if channel == 4:
        hashtag = s.pick(tpl.channels.social_hashtags) if s.chance(0.3) else ""
        return tpl.channels.social_mention + text + hashtag
    if channel == 2:
        return s.pick(tpl.channels.phone_openers) + text
    return _letter(s, tpl, text, channel, language, slots)


def _subject(
    s: Stream,
    tpl: Templates,
    topic: Topic,
    other: Topic,
    category: int,
    channel: int,
    language: str,
) -> str:
    """Subject line: usually the topic's, sometimes generic, empty or localized."""
    u = s.u()
    if channel in (1, 2) and u < 0.55:
        return s.pick(tpl.channels.chat_subjects if channel == 1 else tpl.channels.phone_subjects)
    if channel == 4 and u < 0.6:
        return s.pick(tpl.channels.social_subjects)
    if language != "en" and u < 0.75:
        return tpl.local_subjects[language][category]
    if u < 0.04:
        return ""
    if u < 0.16:
        return s.pick(tpl.generic_subjects)
    if u < 0.24:
        return s.pick(other.subjects)
    return s.pick(topic.subjects)


def _short_text(s: Stream, tpl: Templates, category: int) -> tuple[str, str]:
    """Subject and body of a very short ticket."""
    bodies = tpl.short_bodies[category] if s.chance(0.6) else tpl.short_generic_bodies
    body = s.pick(bodies)
    subject = s.pick((*tpl.short_subjects, body)) if s.chance(0.7) else ""
    return subject, body


def _casing(s: Stream, subject: str, body: str, anger: int, channel: int) -> tuple[str, str]:
    """Shouting for angry customers, all lowercase for sloppy chat and social."""
    if anger == 2 and s.chance(0.25):
        return subject.upper(), body.upper()
    if anger == 2 and s.chance(0.3):
        subject = subject.upper() + "!!!" if subject else subject
    if channel in (1, 4) and s.chance(0.4):
        return subject, body.lower()
    if s.chance(0.03):
        return subject.lower(), body.lower()
    return subject, body


def _render(
    s: Stream, tpl: Templates, makers: SlotMakers, row: tuple[int, ...], cues: Sequence[bool]
) -> tuple[str, str]:
    """Subject and body of one ticket from its hidden variables (``WORLD_KEYS`` order)."""
    category, topic_i, style, second, second_topic, channel, language_i, anger, long = row
    topic, other = tpl.topics[category][topic_i], tpl.topics[second][second_topic]
    language, slots = LANGUAGES[language_i], Slots(s, makers)
    if style == 3:
        subject, body = _short_text(s, tpl, category)
    else:
        core = _core_sentences(s, tpl, topic, other, style, bool(long))
        parts = _tone(s, tpl, core, anger, cues)
        if language != "en" and s.chance(0.6):
            parts.insert(0, tpl.local_subjects[language][category] + ".")
        body = _dress(s, tpl, _join(s, parts, channel), channel, language, slots)
        subject = _subject(s, tpl, topic, other, category, channel, language)
        if anger and s.chance(0.15 * anger) and subject:
            subject = tpl.urgent_subject_prefix + subject
    subject, body = subject.format_map(slots), body.format_map(slots)
    if s.chance(0.22):
        body = _typos(s, body)
    return _casing(s, subject, body, anger, channel)


def render_all(
    s: Stream, tpl: Templates, world: dict[str, np.ndarray], cues: np.ndarray
) -> tuple[list[str], list[str]]:
    """Subjects and bodies of every ticket.

    Args:
        s: the text stream; its state advances.
        tpl: the text material.
        world: the hidden per-ticket variables (at least ``WORLD_KEYS``).
        cues: boolean (n, 5) escalation cues, columns in ``CUE_KINDS`` order.

    Returns:
        The subjects and the bodies, one per ticket.
    """
    makers = slot_makers(tpl.vocabulary)
    rows = zip(*(world[k].astype(int).tolist() for k in WORLD_KEYS))
    subjects: list[str] = []
    bodies: list[str] = []
    for row, cue in zip(rows, cues.tolist()):
        subject, body = _render(s, tpl, makers, row, cue)
        subjects.append(subject)
        bodies.append(body)
    return subjects, bodies
