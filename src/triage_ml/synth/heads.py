"""What the help desk records beside category and priority: subcategory, ITIL type and team.

The three are recorded when the ticket is closed, under its final category:
the original one, or the one an agent's correction gave it (the feedback file
corrects category and priority only). A ticket that stays under a wrong
category gets one of that category's subcategories, so once the corrections
are applied, as the store resolves the labels, every subcategory has exactly
one parent category. (Paired with the original, uncorrected category of the
tickets file, a corrected ticket's subcategory belongs to another category.)

- ``subcategory``: the topic's readable label (``templates.json``), e.g.
  "Billing" -> "Duplicate charge";
- ``type``: the topic's ITIL type, a few percent of them recorded as another;
- ``team``: the category's route (settings' ``DEFAULT_ROUTES``) except where
  the help desk is organised beyond the category: Technical tickets of
  enterprise customers and outages go to second-level support, Billing tickets
  with a legal threat to billing escalations, security concerns to trust and
  safety; a few tickets end with a team by mistake.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from triage_ml.settings import DEFAULT_ROUTES
from triage_ml.synth.schema import CATEGORIES, TIERS
from triage_ml.synth.templates import CUE_KINDS, Topic
from triage_ml.synth.world import pick_rows, topic_table

TICKET_TYPES: tuple[str, ...] = ("Incident", "Service request", "Problem", "Change")
TIER2, BILLING_ESCALATIONS, TRUST_AND_SAFETY = (
    "tier2-support",
    "billing-escalations",
    "trust-and-safety",
)
TEAMS: tuple[str, ...] = (
    *sorted(set(DEFAULT_ROUTES.values())),
    TIER2,
    BILLING_ESCALATIONS,
    TRUST_AND_SAFETY,
)
TYPE_NOISE = 0.05
TEAM_NOISE = 0.02
# Technical topics second-level support takes whoever the customer is.
_TIER2_TOPICS = ("outage", "data_loss")


class Heads(NamedTuple):
    """The further labels of every ticket, as the help desk recorded them."""

    subcategory: list[str]
    ticket_type: list[str]
    team: list[str]


def recorded_topics(
    rng: np.random.Generator,
    world: dict[str, np.ndarray],
    final_category: np.ndarray,
    topics: tuple[tuple[Topic, ...], ...],
) -> np.ndarray:
    """Topic index within the final category: the true one when the category is right.

    A mixed ticket filed under its second subject gets that subject's topic;
    any other wrong category gets one of its topics, drawn by their weights.
    """
    drawn = pick_rows(rng, topic_table(topics, "weight"), final_category)
    second = (world["style"] == 1) & (final_category == world["second"])
    wrong = np.where(second, world["second_topic"], drawn)
    return np.where(final_category == world["category"], world["topic"], wrong)


def _types(rng: np.random.Generator, topics: list[Topic]) -> list[str]:
    """Each topic's ITIL type, another type on ``TYPE_NOISE`` of the rows."""
    n = len(topics)
    noisy = rng.random(n) < TYPE_NOISE
    other = rng.integers(1, len(TICKET_TYPES), size=n)
    out = []
    for topic, flip, shift in zip(topics, noisy.tolist(), other.tolist(), strict=True):
        kind = TICKET_TYPES.index(topic.ticket_type)
        out.append(TICKET_TYPES[(kind + shift) % len(TICKET_TYPES)] if flip else topic.ticket_type)
    return out


def _team(category: str, topic: str, legal: bool, enterprise: bool) -> str:
    """The team that handles a ticket, before mistakes."""
    if category == "Technical" and (enterprise or topic in _TIER2_TOPICS):
        return TIER2
    if category == "Billing" and legal:
        return BILLING_ESCALATIONS
    if category == "Account" and topic == "security":
        return TRUST_AND_SAFETY
    return DEFAULT_ROUTES[category]


def _teams(
    rng: np.random.Generator,
    categories: list[str],
    topics: list[Topic],
    cues: np.ndarray,
    tier: np.ndarray,
) -> list[str]:
    """The team per ticket; ``TEAM_NOISE`` of them a team picked by mistake."""
    n = len(categories)
    mistake = rng.random(n) < TEAM_NOISE
    picked = rng.integers(0, len(TEAMS), size=n)
    legal = cues[:, CUE_KINDS.index("legal")].tolist()
    enterprise = (tier == TIERS.index("enterprise")).tolist()
    return [
        TEAMS[p] if m else _team(c, t.name, g, e)
        for c, t, g, e, m, p in zip(
            categories, topics, legal, enterprise, mistake.tolist(), picked.tolist(), strict=True
        )
    ]


def record(
    rng: np.random.Generator,
    world: dict[str, np.ndarray],
    final_category: np.ndarray,
    cues: np.ndarray,
    tier: np.ndarray,
    topics: tuple[tuple[Topic, ...], ...],
) -> Heads:
    """Subcategory, type and team of every ticket.

    Args:
        rng: the generator for these labels alone; its state advances.
        world: the hidden per-ticket variables.
        final_category: the ticket's final category index (``CATEGORIES``).
        cues: boolean (n, 5) escalation cues, columns in ``CUE_KINDS`` order.
        tier: the customer's tier index per ticket (``TIERS``).
        topics: the topics per category, in ``CATEGORIES`` order.

    Returns:
        The three labels, one value per ticket each.
    """
    index = recorded_topics(rng, world, final_category, topics)
    chosen = [topics[c][t] for c, t in zip(final_category.tolist(), index.tolist(), strict=True)]
    categories = [CATEGORIES[c] for c in final_category.tolist()]
    return Heads(
        subcategory=[t.label for t in chosen],
        ticket_type=_types(rng, chosen),
        team=_teams(rng, categories, chosen, cues, tier),
    )
