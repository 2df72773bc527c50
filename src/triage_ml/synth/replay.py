"""A production replay: a labeled history, then months of new tickets with a drift, and agents.

The replay drives the production loop end to end (tests/flows/test_production_loop.py and
benchmarks/bench_monitor.py): train a champion on :func:`history`, then for each month
ingest :func:`month`'s tickets without labels, score them, and send back what the help desk
would answer (:func:`agent_answers`). From month ``drift_from`` on, two things change:

- a new product line, a smart-home heating range the history never mentions, makes up about
  20% of the tickets (English and German, mostly behind one marketing campaign), labeled with
  a new category, ``Devices``;
- a reorganisation moves every true ``Returns`` ticket to ``Shipping``: the text stays the
  same, its final label changes meaning.

Everything is built on :func:`triage_ml.synth.generate`, so a seed gives the same data.

Example:
    >>> first = month(1, 200, seed=3)
    >>> sorted(first.truth.columns)
    ['category', 'created_at', 'priority', 'ticket_id']
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import pandas as pd

from triage_ml.store.tables import AUTO, AUTO_APPLIED, CONFIRMED, CORRECTED, TICKET_FIELDS
from triage_ml.synth.generator import SyntheticData, generate

DEVICES = "Devices"
# The reorganisation: true tickets of the first category are final-labeled with the second.
RENAMED = ("Returns", "Shipping")
DEVICE_SHARE = 0.2
LAUNCH_CAMPAIGN = "heatwise-launch"
# Share of the new product line's tickets that come through the launch campaign.
LAUNCH_SHARE = 0.7
# Share of every month's tickets that carry the monthly newsletter's campaign id.
NEWSLETTER_SHARE = 0.05
# Month 1 starts here; the history covers the HISTORY_MONTHS before it.
REPLAY_START = datetime(2026, 4, 1, tzinfo=UTC)
HISTORY_MONTHS = 3
TRUTH_COLUMNS: tuple[str, ...] = ("ticket_id", "created_at", "category", "priority")
ANSWER_COLUMNS: tuple[str, ...] = (
    "ticket_id",
    "corrected_category",
    "corrected_priority",
    "agent_id",
    "corrected_at",
    "label_source",
    "model_version",
)
_AGENTS = tuple(f"agent-{i:02d}" for i in range(1, 13))

# The new product line's text, kept here rather than in templates.json so that the standing
# generator's output for a seed does not change. None of these product words occur there.
_DEVICE_TEXT: dict[str, dict[str, tuple[str, ...]]] = {
    "en": {
        "devices": (
            "HeatWise thermostat",
            "HeatWise radiator valve",
            "HeatWise bridge",
            "HeatWise window sensor",
        ),
        "subjects": (
            "{device} will not pair",
            "{device} offline",
            "Heating schedule ignored",
            "{device} battery drains fast",
            "Thermostat shows wrong temperature",
        ),
        "problems": (
            "My {device} does not pair with the bridge, the LED keeps blinking orange.",
            "Since the last firmware the {device} ignores my heating schedule.",
            "The {device} reports 14 degrees while the room is clearly warmer.",
            "The batteries of my {device} are empty after two weeks.",
            "The radiator keeps heating although the {device} says the window is open.",
            "Geofencing does not switch the heating to eco mode when we leave.",
        ),
        "details": (
            "I already reset it twice and recalibrated the valve.",
            "The Zigbee signal looks fine in the HeatWise app.",
            "The boiler itself works normally.",
            "We installed four radiator valves last week.",
            "The heating profile was copied from the setup wizard.",
        ),
        "openings": ("Hello,", "Hi,", "Dear HeatWise team,", ""),
        "closings": ("Thanks,", "Regards,", "Best,", ""),
    },
    "de": {
        "devices": (
            "HeatWise Thermostat",
            "HeatWise Heizkörperthermostat",
            "HeatWise Bridge",
            "HeatWise Fenstersensor",
        ),
        "subjects": (
            "{device} lässt sich nicht koppeln",
            "{device} offline",
            "Heizplan wird ignoriert",
            "Batterie vom {device} leer",
            "Thermostat zeigt falsche Temperatur",
        ),
        "problems": (
            "Mein {device} lässt sich nicht mit der Bridge koppeln, die LED blinkt orange.",
            "Seit dem letzten Update ignoriert das {device} meinen Heizplan.",
            "Das {device} zeigt 14 Grad an, obwohl es im Raum deutlich wärmer ist.",
            "Die Batterien im {device} sind nach zwei Wochen leer.",
            "Die Heizung läuft weiter, obwohl der Fenstersensor ein offenes Fenster meldet.",
        ),
        "details": (
            "Ich habe es schon zweimal zurückgesetzt und das Ventil neu kalibriert.",
            "Das Zigbee-Signal in der HeatWise App ist gut.",
            "Der Heizkessel selbst funktioniert normal.",
            "Wir haben letzte Woche vier Heizkörperthermostate montiert.",
        ),
        "openings": ("Hallo,", "Guten Tag,", "Sehr geehrtes HeatWise-Team,", ""),
        "closings": ("Danke,", "Viele Grüße,", "Mit freundlichen Grüßen,", ""),
    },
}


@dataclass(frozen=True)
class Month:
    """One replayed month.

    Attributes:
        k: the month's number, from 1.
        tickets: the new tickets as a source sends them: the store's ticket fields
            without ``category`` and ``priority``.
        truth: each ticket's true final labels (``TRUTH_COLUMNS``), kept apart for the agents.
        start: the month's first moment (UTC).
        end: the moment after its last.
        drifted: the month carries the drift.
    """

    k: int
    tickets: pd.DataFrame
    truth: pd.DataFrame
    start: pd.Timestamp
    end: pd.Timestamp
    drifted: bool


def month_bounds(k: int, start: datetime = REPLAY_START) -> tuple[pd.Timestamp, pd.Timestamp]:
    """First moment of month ``k`` and the moment after its last (UTC).

    Raises:
        ValueError: ``k`` is below 1.
    """
    if k < 1:
        raise ValueError(f"months are numbered from 1, got {k}")
    first = pd.Timestamp(start).tz_convert("UTC") + pd.DateOffset(months=k - 1)
    return first, first + pd.DateOffset(months=1)


def _seed(seed: int, k: int) -> int:
    """A generator seed of month ``k`` (0: the history) independent of the others."""
    return int(np.random.SeedSequence([seed, k]).generate_state(1)[0])


def _with_campaigns(tickets: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """``tickets`` with a ``campaign_id``: the month's newsletter for a few, none for the rest."""
    newsletter = "newsletter-" + tickets["created_at"].dt.strftime("%Y-%m")
    chosen = rng.random(len(tickets)) < NEWSLETTER_SHARE
    return tickets.assign(campaign_id=newsletter.where(chosen, None))


def history(
    rows: int, seed: int, start: datetime = REPLAY_START, months: int = HISTORY_MONTHS
) -> SyntheticData:
    """The labeled history before month 1, to train the first champion on.

    Args:
        rows: number of tickets.
        seed: non-negative seed; the same arguments give the same data.
        start: month 1's first moment; the history ends there.
        months: its length in calendar months.

    Returns:
        :func:`triage_ml.synth.generate`'s tickets (with a ``campaign_id`` column),
        agent corrections and surveys, none of them dated at or after ``start``.
    """
    first = pd.Timestamp(start).tz_convert("UTC")
    data = generate(rows, months, _seed(seed, 0), start=first - pd.DateOffset(months=months))
    tickets = _with_campaigns(data.tickets, np.random.default_rng([seed, 0, 1]))
    late = (data.feedback["corrected_at"] >= first).to_numpy()
    surveys_late = (data.surveys["answered_at"] >= first).to_numpy()
    return SyntheticData(
        tickets=tickets[list(TICKET_FIELDS)],
        feedback=data.feedback[~late].reset_index(drop=True),
        surveys=data.surveys[~surveys_late].reset_index(drop=True),
    )


def _renamed(data: SyntheticData, prefix: str) -> SyntheticData:
    """``data`` with its ``TCK-`` ticket ids given ``prefix``, so months never collide."""

    def rename(ids: pd.Series) -> pd.Series:
        return ids.str.replace("TCK-", prefix, regex=False)

    return SyntheticData(
        tickets=data.tickets.assign(ticket_id=rename(data.tickets["ticket_id"])),
        feedback=data.feedback.assign(ticket_id=rename(data.feedback["ticket_id"])),
        surveys=data.surveys.assign(ticket_id=rename(data.surveys["ticket_id"])),
    )


def _final_labels(data: SyntheticData) -> pd.DataFrame:
    """Each ticket's final labels: its original ones, overridden by the latest correction."""
    latest = (
        data.feedback.sort_values("corrected_at", kind="stable")
        .groupby("ticket_id")[["corrected_category", "corrected_priority"]]
        .last()  # the latest non-null value of each field
    )
    truth = data.tickets[["ticket_id", "created_at", "category", "priority"]].copy()
    for field in ("category", "priority"):
        corrected = truth["ticket_id"].map(latest[f"corrected_{field}"])
        truth[field] = corrected.where(corrected.notna(), truth[field]).astype("str")
    return truth


def _device_text(rng: np.random.Generator, language: str) -> tuple[str, str]:
    """Subject and body of one ticket about the new product line, in ``language``."""
    text = _DEVICE_TEXT[language]
    pick = {key: values[rng.integers(len(values))] for key, values in text.items()}
    second = text["details"][rng.integers(len(text["details"]))]
    details = pick["details"] if second == pick["details"] else f"{pick['details']} {second}"
    core = f"{pick['problems']} {details}".format(device=pick["devices"])
    body = "\n\n".join(part for part in (pick["openings"], core, pick["closings"]) if part)
    return pick["subjects"].format(device=pick["devices"]), body


def _add_product_line(tickets: pd.DataFrame, truth: pd.DataFrame, rng: np.random.Generator):
    """Rewrite about DEVICE_SHARE of the tickets as the new product line's (``Devices``)."""
    chosen = np.flatnonzero(rng.random(len(tickets)) < DEVICE_SHARE)
    languages = np.where(rng.random(len(chosen)) < 0.7, "en", "de")
    texts = [_device_text(rng, language) for language in languages]
    launch = rng.random(len(chosen)) < LAUNCH_SHARE
    tickets, truth = tickets.copy(), truth.copy()
    rows = tickets.index[chosen]
    tickets.loc[rows, "subject"] = [subject for subject, _ in texts]
    tickets.loc[rows, "body"] = [body for _, body in texts]
    tickets.loc[rows, "language"] = languages
    tickets.loc[rows[launch], "campaign_id"] = LAUNCH_CAMPAIGN
    truth.loc[rows, "category"] = DEVICES
    return tickets, truth


def month(
    k: int, rows: int, seed: int, drift_from: int = 2, start: datetime = REPLAY_START
) -> Month:
    """Month ``k``'s new tickets, without labels, and their true final labels kept apart.

    Args:
        k: the month, from 1; it spans ``month_bounds(k, start)``.
        rows: number of tickets.
        seed: non-negative seed; the same arguments give the same data.
        drift_from: the first month with the drift (the new product line and the
            reorganisation of ``Returns`` into ``Shipping``).
        start: month 1's first moment.

    Returns:
        The month's tickets (ids ``R<k>-0000001`` ...) and truth.

    Raises:
        ValueError: ``k`` is below 1, or ``rows`` below 1.
    """
    first, end = month_bounds(k, start)
    data = generate(rows, 1, _seed(seed, k), start=first.to_pydatetime(), now=end.to_pydatetime())
    data = _renamed(data, f"R{k}-")
    rng = np.random.default_rng([seed, k, 1])
    tickets, truth = _with_campaigns(data.tickets, rng), _final_labels(data)
    drifted = k >= drift_from
    if drifted:
        truth.loc[truth["category"] == RENAMED[0], "category"] = RENAMED[1]
        tickets, truth = _add_product_line(tickets, truth, rng)
    fields = [name for name in TICKET_FIELDS if name not in ("category", "priority")]
    return Month(k, tickets[fields], truth[list(TRUTH_COLUMNS)], first, end, drifted)


def agent_answers(
    served: pd.DataFrame,
    truth: pd.DataFrame,
    seed: int,
    audit_share: float = 0.3,
    now: datetime | None = None,
) -> pd.DataFrame:
    """Feedback rows as the help desk sends them back for the served answers.

    Tickets in tier ``review`` or ``suggest`` are answered by an agent: ``agent-confirmed``
    when the served category and priority were both right, else ``agent-corrected`` with the
    truth. Tickets in tier ``auto`` get the model's answer, ``auto-applied`` with nobody
    looking, except an audited share that an agent answers like the others.

    Args:
        served: the served answers: ticket_id, category, priority, tier, model_version.
        truth: true final labels: ticket_id, created_at, category, priority
            (:attr:`Month.truth`); served tickets without a truth row get no answer.
        seed: non-negative seed of who answers, which auto tickets are audited, and when.
        audit_share: share of ``auto`` tickets an agent checks anyway.
        now: no answer is dated later (naive means UTC); the clock's by default.

    Returns:
        One row per answered ticket with ``ANSWER_COLUMNS``, in time order.

    Raises:
        ValueError: ``audit_share`` is outside 0..1.
    """
    if not 0.0 <= audit_share <= 1.0:
        raise ValueError(f"audit_share must be between 0 and 1, got {audit_share}")
    both = served.merge(truth, on="ticket_id", suffixes=("_served", ""), validate="one_to_one")
    rng = np.random.default_rng([seed, 2])
    looked = (both["tier"] != AUTO).to_numpy() | (rng.random(len(both)) < audit_share)
    right = (both["category_served"] == both["category"]) & (
        both["priority_served"] == both["priority"]
    )
    source = np.where(~looked, AUTO_APPLIED, np.where(right.to_numpy(), CONFIRMED, CORRECTED))
    answers = pd.DataFrame(
        {
            "ticket_id": both["ticket_id"].astype("str"),
            "corrected_category": both["category"].where(looked, both["category_served"]),
            "corrected_priority": both["priority"].where(looked, both["priority_served"]),
            "agent_id": pd.Series(rng.choice(_AGENTS, len(both)), dtype="str").where(looked),
            "corrected_at": _answered_at(both["created_at"], rng, now),
            "label_source": pd.Series(source, dtype="str"),
            "model_version": both["model_version"].astype("str"),
        }
    )
    return answers.sort_values(["corrected_at", "ticket_id"], ignore_index=True)


def _answered_at(
    created_at: pd.Series, rng: np.random.Generator, now: datetime | None
) -> pd.Series:
    """Answer times: minutes to a few days after each ticket, never after ``now``."""
    delay = pd.to_timedelta(600 + rng.exponential(12 * 3_600, len(created_at)), unit="s")
    latest = pd.Timestamp(now if now is not None else datetime.now(UTC))
    latest = latest.tz_localize("UTC") if latest.tzinfo is None else latest.tz_convert("UTC")
    answered = (pd.to_datetime(created_at, utc=True) + delay.to_numpy()).dt.floor("s")
    return answered.where(answered <= latest, latest).reset_index(drop=True)
