"""Behavioural tests of a trained predictor, in Made-With-ML's style.

Minimum functionality: unambiguous tickets get the obvious category.
Invariance: details that carry no meaning (names, order numbers, e-mail
addresses) do not change the category. Directional: escalation signals and a
bigger customer push the priority towards urgent, never away from it.

Only cases the synthetic generator (``synth/templates.json``) really supports
are asserted, and only on robust properties: labels and directions, no
thresholds on individual probabilities.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from triage_ml.settings import Settings
from triage_ml.training import dataset, fit
from triage_model import ngrams
from triage_model.predictor import TriagePredictor

pytestmark = pytest.mark.model

LEVELS = Settings().priority_levels
URGENT = ("critical", "high")


def tickets(rows: list[tuple[str, str]], **meta: object) -> pd.DataFrame:
    """Raw tickets from (subject, body) pairs, with shared metadata."""
    frame = pd.DataFrame(rows, columns=["subject", "body"])
    return frame.assign(
        **{"channel": "email", "customer_tier": "standard", "customer_ltv": 600.0, **meta}
    )


def priority_proba(predictor: TriagePredictor, raw: pd.DataFrame) -> pd.DataFrame:
    """Probability of every priority level, straight from the fitted parts."""
    return predictor.priority_probabilities(raw)


def urgent_mass(predictor: TriagePredictor, raw: pd.DataFrame) -> np.ndarray:
    """P(critical) + P(high) of each ticket."""
    proba = priority_proba(predictor, raw)
    return proba[[c for c in URGENT if c in proba.columns]].sum(axis=1).to_numpy()


def urgency_rank(priorities: pd.Series) -> np.ndarray:
    """Position in the configured levels: 0 is the most urgent."""
    return np.array([LEVELS.index(p) for p in priorities])


# --------------------------------------------------------------------------
# Sanity of the trained model on its own test month
# --------------------------------------------------------------------------


def test_the_trained_model_is_useful_on_the_test_month(
    trained: TriagePredictor, split: dataset.Split
) -> None:
    figures, predicted = fit.evaluate(trained, split.test, LEVELS)
    gate = Settings().gate
    assert figures["category_macro_f1"] > 0.8
    assert figures["priority_macro_f1"] > 0.45
    assert figures["priority_urgent_recall"] >= gate.urgent_recall_floor
    # Rows applied without review are the sure ones: right more often than the rest.
    correct = predicted["category"].to_numpy() == split.test["category"].to_numpy()
    automated = (predicted["tier"] == "auto").to_numpy()
    assert 0 < automated.sum() < len(automated)
    assert correct[automated].mean() > correct[~automated].mean()
    assert (predicted["needs_review"] == (predicted["tier"] == "review")).all()


def test_the_fast_n_grams_predict_what_the_library_s_transform_does(
    trained: TriagePredictor, split: dataset.Split, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The char path's features differ from the library's in their last bits only (test_ngrams.py).
    fast = trained.predict(split.test)
    monkeypatch.setattr(ngrams, "covers", lambda vectorizer: False)
    library = trained.predict(split.test)
    for column in ("category", "priority", "route", "needs_review"):
        assert fast[column].tolist() == library[column].tolist(), column
    # Sentiment is NaN where no analyzer covers the language: NaN equals NaN here.
    for column in ("category_proba", "priority_proba", "sentiment"):
        np.testing.assert_allclose(fast[column], library[column], rtol=1e-9)
    top_fast, top_library = ([json.loads(t) for t in frame["top3"]] for frame in (fast, library))
    assert [[e["category"] for e in t] for t in top_fast] == [
        [e["category"] for e in t] for t in top_library
    ]
    # Rounded to 4 places: a last-bit difference can at most move one rounding by 0.0001.
    np.testing.assert_allclose(
        [[e["proba"] for e in t] for t in top_fast],
        [[e["proba"] for e in t] for t in top_library],
        rtol=0,
        atol=1.0001e-4,
    )


# --------------------------------------------------------------------------
# Minimum functionality
# --------------------------------------------------------------------------

MINIMUM = [
    ("Charged twice", "I was charged twice for my subscription this month.", "Billing"),
    ("", "I was charged twice for my subscription", "Billing"),
    ("Invoice copy", "Could you send me a copy of my last invoice for our accounting?", "Billing"),
    (
        "Where is my order",
        "My order still hasn't arrived and the tracking number hasn't updated in 5 days.",
        "Shipping",
    ),
    ("", "Where is my package? The tracking has not updated for a week.", "Shipping"),
    (
        "Password reset not working",
        "The password reset email never arrives, I checked the spam folder.",
        "Account",
    ),
    ("", "I forgot my password and the reset link does not work", "Account"),
    (
        "Return request",
        "I would like to return the SmartCam 2, please send me a return label.",
        "Returns",
    ),
    (
        "App crashes",
        "The app crashes every time I open the settings screen on Windows 11.",
        "Technical",
    ),
    (
        "Service down",
        "The web dashboard has been down since this morning for all of our users.",
        "Technical",
    ),
    ("Quote request", "We are looking for a quote for 50 seats on the Business plan.", "Sales"),
    ("Schedule a demo", "Can we schedule a demo for our team next week?", "Sales"),
    ("Feature request", "It would be great if the mobile app had a dark mode.", "Feedback"),
    ("Thank you!", "Your agent Anna was super helpful yesterday, thank you!", "Feedback"),
]


@pytest.mark.parametrize(
    ("subject", "body", "expected"), MINIMUM, ids=[f"{m[2]}-{i}" for i, m in enumerate(MINIMUM)]
)
def test_minimum_functionality(
    trained: TriagePredictor, subject: str, body: str, expected: str
) -> None:
    out = trained.predict(tickets([(subject, body)]))
    assert out.loc[0, "category"] == expected, out.loc[0, "top3"]


def test_routes_of_clear_tickets(trained: TriagePredictor) -> None:
    out = trained.predict(tickets([(s, b) for s, b, _ in MINIMUM]))
    routes = Settings().routes
    assert out["route"].tolist() == [routes[c] for _, _, c in MINIMUM]


# --------------------------------------------------------------------------
# Invariance: names, order numbers and e-mail addresses carry no category
# --------------------------------------------------------------------------

TEMPLATES = [
    (
        "Order {order} not arrived",
        "Hi,\n\nMy order {order} still hasn't arrived. My account email is {email}."
        "\n\nBest regards,\n{name}",
    ),
    (
        "Charged twice",
        "Hello,\n\nI was charged twice for my Pro plan subscription this month. "
        "My account email is {email}.\n\nThanks,\n{name}",
    ),
    (
        "Return order {order}",
        "Hi team,\n\nI would like to return the Pulse Mesh from order {order}.\n\nCheers,\n{name}",
    ),
    (
        "Can't log in",
        "Hi,\n\nMy username is {email} but the system says the account does not exist."
        "\n\nRegards,\n{name}",
    ),
    (
        "Demo request",
        "Hello,\n\nCan we schedule a demo for our team next week? Reach me at {email}."
        "\n\nKind regards,\n{name}",
    ),
    (
        "App crashes",
        "The app crashes every time I open the settings screen. Order {order}. {email}\n{name}",
    ),
]
IDENTITIES = [
    {"order": "#A12345", "email": "anna.smith12@gmail.com", "name": "Anna Smith"},
    {"order": "#X98765", "email": "kemal.novak7@proton.me", "name": "Kemal Novak"},
    {"order": "#M55501", "email": "j.doe@example.org", "name": "Priya Haddad"},
    {"order": "9876543210", "email": "zoe@acme-corp.com", "name": "Zoe"},
]


@pytest.mark.parametrize(
    ("subject", "body"), TEMPLATES, ids=[t[0].split(" {")[0] for t in TEMPLATES]
)
def test_identity_details_do_not_change_the_category(
    trained: TriagePredictor, subject: str, body: str
) -> None:
    rows = [(subject.format(**who), body.format(**who)) for who in IDENTITIES]
    out = trained.predict(tickets(rows))
    assert out["category"].nunique() == 1, out[["category", "category_proba"]]


# --------------------------------------------------------------------------
# Directional: escalation and customer size push towards urgent
# --------------------------------------------------------------------------

ORDINARY = [
    ("Export not working", "The export button does nothing when I click it in Chrome."),
    (
        "Invoice is incorrect",
        "I was overcharged this month and nobody told me about a price change.",
    ),
    ("Tracking not updating", "Tracking number 1Z123 hasn't updated in 4 days."),
    ("Can't log in", "After I enter my password the login page just reloads."),
    ("Wrong item received", "I received the wrong item in my last order."),
    ("Question about SSO", "How do I set up SSO for my team?"),
]
ESCALATIONS = [
    "Our whole production system is down.",
    "I will contact my lawyer if this isn't resolved.",
    "Our CEO is asking me for updates every hour.",
]


@pytest.mark.parametrize("sentence", ESCALATIONS)
def test_escalation_raises_urgency(trained: TriagePredictor, sentence: str) -> None:
    base = tickets(ORDINARY)
    escalated = base.assign(body=base["body"] + " " + sentence)
    assert np.all(urgent_mass(trained, escalated) > urgent_mass(trained, base))
    before, after = trained.predict(base), trained.predict(escalated)
    assert np.all(urgency_rank(after["priority"]) <= urgency_rank(before["priority"]))


def test_a_bigger_customer_is_never_less_urgent(trained: TriagePredictor) -> None:
    free = urgent_mass(trained, tickets(ORDINARY, customer_tier="free", customer_ltv=40.0))
    enterprise = urgent_mass(
        trained, tickets(ORDINARY, customer_tier="enterprise", customer_ltv=40_000.0)
    )
    assert np.all(enterprise > free)


def test_the_tier_alone_does_not_lower_urgency(trained: TriagePredictor) -> None:
    # Same lifetime value: only the tier differs, so trees may tie but never reverse.
    free = urgent_mass(trained, tickets(ORDINARY, customer_tier="free"))
    enterprise = urgent_mass(trained, tickets(ORDINARY, customer_tier="enterprise"))
    assert np.all(enterprise >= free - 1e-9)
    assert enterprise.mean() > free.mean()
