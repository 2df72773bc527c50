"""Drift before labels: figures, segments, campaigns and new labels on inline frames."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from triage_ml import store
from triage_ml.monitoring import drift
from triage_ml.settings import MonitorSettings
from triage_ml.store import drift as drift_queries

pytestmark = pytest.mark.unit

MONITOR = MonitorSettings(drift_min_rows=50, drift_threshold=0.2)
WORDS = {
    "billing": ["invoice", "charge", "refund", "payment", "card"],
    "shipping": ["parcel", "delivery", "courier", "tracking", "late"],
    "account": ["password", "login", "email", "reset", "locked"],
}
FILLER = ["please", "help", "the", "my", "with", "today", "order", "thanks"]
NEW_PRODUCT = ["solar", "panel", "inverter", "battery", "mounting", "kilowatt"]
CLASSES = sorted(WORDS)


class KeywordModel:
    """A stand-in champion: the category whose words a ticket uses most, and how clearly."""

    classes = CLASSES

    def __init__(self) -> None:
        self.seen_columns: list[str] = []

    def predict(self, frame: pd.DataFrame) -> pd.DataFrame:
        self.seen_columns = list(frame.columns)
        rows = []
        for text in frame["body"]:
            tokens = text.split()
            hits = {c: sum(t in words for t in tokens) for c, words in WORDS.items()}
            best = max(CLASSES, key=lambda c: hits[c])
            rows.append((best, (1 + hits[best]) / (2 + len(tokens))))
        return pd.DataFrame(rows, columns=["category", "category_proba"])


def tickets(
    n: int,
    seed: int,
    mix: tuple[float, float, float] = (0.5, 0.3, 0.2),
    channels: tuple[float, float] = (0.6, 0.4),
    words: int = 8,
    new_product: float = 0.0,
) -> pd.DataFrame:
    """``n`` tickets: categories in ``mix``, email/chat in ``channels``, about ``words`` words."""
    rng = np.random.default_rng(seed)
    bodies = []
    for category in rng.choice(CLASSES, size=n, p=list(mix)):
        vocab = NEW_PRODUCT if rng.random() < new_product else WORDS[category]
        k = int(rng.integers(words // 2, words + words // 2 + 1))
        bodies.append(" ".join([*rng.choice(vocab, 3), *rng.choice(FILLER, k)]))
    return pd.DataFrame(
        {
            "ticket_id": [f"S{seed}-{i:04d}" for i in range(n)],
            "subject": "",
            "body": bodies,
            "channel": rng.choice(["email", "chat"], size=n, p=list(channels)),
            "language": rng.choice(["en", "de"], size=n, p=[0.7, 0.3]),
            "customer_tier": rng.choice(["gold", "basic"], size=n),
            "customer_ltv": rng.uniform(0, 100, size=n),
            "campaign_id": None,
            "repeat_contacts": 0.0,
        }
    )


def served(frame: pd.DataFrame, model: KeywordModel | None = None) -> pd.DataFrame:
    """``frame`` as recent tickets carry it: with the answer served to each."""
    answers = (model or KeywordModel()).predict(frame)
    return frame.assign(
        category=answers["category"].to_numpy(),
        category_proba=answers["category_proba"].to_numpy(),
        sentiment=0.0,
    )


def by_name(report: drift.DriftReport) -> dict[str, dict]:
    return {figure["name"]: figure for figure in report.figures}


def test_the_same_distribution_has_not_drifted() -> None:
    report = drift.measure(
        tickets(600, seed=1), served(tickets(400, seed=2)), KeywordModel(), CLASSES, {}, MONITOR
    )
    assert report.message is None and not report.drifted
    assert [f["name"] for f in report.figures] == list(drift.FIGURES)
    for figure in report.figures:
        assert figure["psi"] < MONITOR.drift_threshold, figure
        assert not figure["drifted"]
        assert figure["current_rows"] == 400
    # Half the reference learns the vocabulary; the other half measures its own unknown tokens.
    assert 200 < by_name(report)["oov_share"]["reference_rows"] < 400
    assert by_name(report)["prediction"]["reference_rows"] == 600


def test_a_new_product_line_in_chat_drifts_what_it_changes_and_nothing_else() -> None:
    shifted = tickets(400, seed=3, channels=(0.1, 0.9), words=20, new_product=0.4)
    report = drift.measure(
        tickets(600, seed=1), served(shifted), KeywordModel(), CLASSES, {}, MONITOR
    )
    figures = by_name(report)
    assert report.drifted
    for name in ("oov_share", "length", "channel", "confidence"):
        assert figures[name]["drifted"], figures[name]
        assert figures[name]["psi"] > MONITOR.drift_threshold
        assert figures[name]["p_value"] < drift.P_VALUE
    assert not figures["language"]["drifted"]


def test_the_reference_is_predicted_from_the_model_inputs_alone() -> None:
    model = KeywordModel()
    drift.measure(tickets(100, seed=1), served(tickets(60, seed=2)), model, CLASSES, {}, MONITOR)
    assert "ticket_id" not in model.seen_columns and "campaign_id" not in model.seen_columns
    assert {"body", "channel", "repeat_contacts"} <= set(model.seen_columns)


def test_a_large_shift_on_too_few_rows_is_not_called_drift() -> None:
    monitor = MonitorSettings(drift_min_rows=10)
    few = served(tickets(30, seed=3, channels=(0.0, 1.0)))
    report = drift.measure(tickets(600, seed=1), few, KeywordModel(), CLASSES, {}, monitor)
    assert by_name(report)["channel"]["drifted"]
    # The same shift, the same figures, but fewer recent rows than the settings ask for.
    figure = drift.categorical_figure("channel", pd.Series(["email"] * 40), few["channel"], MONITOR)
    assert figure["psi"] > 1 and figure["p_value"] < drift.P_VALUE and not figure["drifted"]


def test_too_few_recent_tickets_give_a_message_and_no_figure() -> None:
    current = served(tickets(12, seed=2)).assign(campaign_id="spring")
    report = drift.measure(tickets(600, seed=1), current, KeywordModel(), CLASSES, {}, MONITOR)
    assert report.message == "not enough recent tickets (12 < 50)"
    assert not report.drifted and report.figures == [] and report.segments == {}
    assert report.campaigns[0]["tickets"] == 12
    assert drift.table(report) == [
        {
            "figure": "all",
            "psi": None,
            "p_value": None,
            "drifted": False,
            "reference_rows": None,
            "current_rows": None,
            "basis": None,
            "note": "not enough recent tickets (12 < 50)",
        }
    ]


def test_an_unknown_reference_gives_its_own_message() -> None:
    report = drift.measure(
        tickets(0, seed=1), served(tickets(80, seed=2)), KeywordModel(), CLASSES, {}, MONITOR
    )
    assert report.message == "not enough reference tickets (0 < 50)" and not report.drifted


def test_new_labels_are_those_the_champion_cannot_predict() -> None:
    given = {"billing": 4, "solar": 2, "unknown": 1}
    assert drift.new_labels(given, CLASSES) == ["solar"]
    assert drift.new_labels(["account", None, "solar", "warranty"], CLASSES) == [
        "solar",
        "warranty",
    ]
    report = drift.measure(
        tickets(200, seed=1), served(tickets(100, seed=2)), KeywordModel(), CLASSES, given, MONITOR
    )
    assert report.new_labels == ["solar"] and not report.drifted
    assert drift.table(report)[-1]["note"] == "labels the champion does not know: solar"


def test_segments_break_every_figure_down_where_there_are_enough_rows() -> None:
    reference = tickets(600, seed=1)
    email = tickets(200, seed=4, channels=(1.0, 0.0))
    chat = tickets(30, seed=5, channels=(0.0, 1.0), words=20, new_product=0.5)
    current = served(pd.concat([email, chat], ignore_index=True))
    report = drift.measure(reference, current, KeywordModel(), CLASSES, {}, MONITOR)
    channel = report.segments["channel"]
    # Chat has too few recent tickets to be a segment; email's own channel is not its figure.
    assert {row["value"] for row in channel} == {"email"}
    assert {row["name"] for row in channel} == set(drift.FIGURES) - {"channel"}
    assert all(row["basis"] == "segment" for row in channel)
    assert not any(row["drifted"] for row in channel)
    counts = current["language"].value_counts()
    languages = {row["value"] for row in report.segments["language"]}
    assert languages == set(counts[counts >= MONITOR.drift_min_rows].index) and languages
    assert report.segments["campaign_id"] == []


def test_a_segment_drifts_on_its_own() -> None:
    reference = tickets(600, seed=1)
    gold = tickets(150, seed=6, words=20, new_product=0.6).assign(customer_tier="gold")
    basic = tickets(300, seed=7).assign(customer_tier="basic")
    current = served(pd.concat([gold, basic], ignore_index=True))
    report = drift.measure(reference, current, KeywordModel(), CLASSES, {}, MONITOR)
    tiers = {(r["value"], r["name"]): r for r in report.segments["customer_tier"]}
    assert tiers[("gold", "oov_share")]["drifted"] and tiers[("gold", "length")]["drifted"]
    assert not tiers[("basic", "oov_share")]["drifted"]
    rows = drift.segment_table(report)
    drifted = [row for row in rows if row["drifted"]]
    assert rows[: len(drifted)] == drifted  # the drifted rows first
    assert ("customer_tier", "gold", "oov_share") in {
        (row["segment"], row["value"], row["figure"]) for row in drifted
    }
    assert set(rows[0]) == {
        "segment", "value", "basis", "figure", "psi", "p_value", "drifted",
        "reference_rows", "current_rows",
    }  # fmt: skip


def test_a_new_campaign_is_compared_with_the_whole_reference() -> None:
    campaign = tickets(80, seed=8, new_product=0.8).assign(campaign_id="solar-launch")
    rest = tickets(320, seed=9)
    current = served(pd.concat([campaign, rest], ignore_index=True))
    report = drift.measure(tickets(600, seed=1), current, KeywordModel(), CLASSES, {}, MONITOR)
    rows = report.segments["campaign_id"]
    assert {row["value"] for row in rows} == {"solar-launch"}
    assert all(row["basis"] == "all" and row["reference_rows"] >= 250 for row in rows)
    assert {row["name"] for row in rows if row["drifted"]} >= {"oov_share"}


def test_the_campaign_summary_counts_volume_categories_and_sentiment() -> None:
    current = pd.DataFrame(
        {
            "campaign_id": ["spring"] * 5 + ["autumn"] * 2 + [None] * 3,
            "category": ["billing"] * 3 + ["shipping", "account"] + ["account"] * 2 + [None] * 3,
            "sentiment": [0.5, -0.5, 0.0, 1.0, 0.5, -1.0, -0.5, 0.0, 0.0, 0.0],
        }
    )
    summary = drift.campaign_summary(current)
    assert summary[0] == {
        "campaign_id": "spring",
        "tickets": 5,
        "share": 0.5,
        # Ties in name order.
        "top_categories": ["billing", "account", "shipping"],
        "mean_sentiment": pytest.approx(0.3),
    }
    assert summary[1]["campaign_id"] == "autumn" and summary[1]["top_categories"] == ["account"]
    assert summary[1]["mean_sentiment"] == pytest.approx(-0.75)
    assert drift.campaign_summary(current.drop(columns="campaign_id")) == []
    report = drift.DriftReport(campaigns=summary)
    assert drift.campaign_table(report)[0]["top_categories"].startswith("billing, ")


def test_the_stability_index_is_zero_for_equal_shares_and_sums_the_log_ratios() -> None:
    assert drift.stability_index(np.array([10.0, 30.0]), np.array([1.0, 3.0])) == pytest.approx(0)
    expected = (0.5 - 0.2) * np.log(0.5 / 0.2) + (0.5 - 0.8) * np.log(0.5 / 0.8)
    psi = drift.stability_index(np.array([20.0, 80.0]), np.array([50.0, 50.0]))
    assert psi == pytest.approx(expected)
    # An empty bin has a floor share, not an infinite index.
    assert np.isfinite(drift.stability_index(np.array([10.0, 0.0]), np.array([5.0, 5.0])))


def test_a_numeric_mass_point_keeps_a_bin_of_its_own() -> None:
    reference = pd.Series(np.zeros(300))
    current = pd.Series(np.r_[np.zeros(100), np.full(100, 0.3)])
    figure = drift.numeric_figure("oov_share", reference, current, MONITOR)
    assert figure["drifted"] and figure["psi"] > 1
    same = drift.numeric_figure("oov_share", reference, pd.Series(np.zeros(100)), MONITOR)
    assert same["psi"] == pytest.approx(0) and not same["drifted"]


def test_out_of_vocabulary_shares_use_the_vectorizer_analyzer() -> None:
    vectorizer = drift.CountVectorizer().fit(["refund my invoice"])
    shares = drift.oov_shares(vectorizer, ["Refund REFUND solar", "", "a"])
    assert shares[0] == pytest.approx(1 / 3)
    # No token (one-letter words are not tokens of the default analyzer): unknown, not zero.
    assert np.isnan(shares[1]) and np.isnan(shares[2])
    assert np.isnan(drift.oov_shares(None, ["refund"])[0])


def test_current_without_text_still_compares_length_from_body_length() -> None:
    current = served(tickets(100, seed=2))
    current = current.assign(body_length=current["body"].str.len()).drop(
        columns=["body", "subject"]
    )
    report = drift.measure(tickets(300, seed=1), current, KeywordModel(), CLASSES, {}, MONITOR)
    figures = by_name(report)
    assert figures["oov_share"]["current_rows"] == 0 and not figures["oov_share"]["drifted"]
    assert figures["length"]["current_rows"] == 100 and not figures["length"]["drifted"]


def test_the_reference_sample_is_fixed_and_bounded() -> None:
    ids = [f"T{i:05d}" for i in range(12_000)]
    first = drift.sample_ids(ids)
    assert len(first) == drift.REFERENCE_ROWS == len(set(first))
    assert first == drift.sample_ids(list(reversed(ids))) == sorted(first)
    assert drift.sample_ids(ids[:10]) == ids[:10]


# --- the store's drift queries ----------------------------------------------------------------


@pytest.fixture(scope="module")
def filled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[sa.Engine]:
    """A SQLite store with six tickets of two customers, two batches, answers and feedback."""
    engine = store.connect(f"sqlite:///{Path(tmp_path_factory.mktemp('drift')) / 'store.db'}")
    now = pd.Timestamp("2026-03-01T00:00:00Z")
    frame = pd.DataFrame(
        {
            "ticket_id": [f"T{i}" for i in range(6)],
            "created_at": pd.date_range("2026-02-20", periods=6, freq="D", tz="UTC"),
            "customer_id": ["c1", "c1", "c1", "c2", "c2", None],
            "channel": "email",
            "body": [f"body {i}" for i in range(6)],
            "category": ["billing", "billing", None, "account", "account", "account"],
            "campaign_id": [None, None, "spring", "spring", None, None],
            "content_hash": [f"h{i}" for i in range(6)],
            "batch_id": ["b1", "b1", "b1", "b2", "b2", "b2"],
            "ingested_at": now,
        }
    )
    answers = pd.DataFrame(
        {
            "ticket_id": ["T3", "T4", "T4"],
            "model_version": ["1", "1", "2"],
            "category": ["account", "billing", "shipping"],
            "category_proba": [0.9, 0.6, 0.7],
            "sentiment": [0.1, -0.2, 0.0],
            "scored_at": now,
        }
    )
    notes = pd.DataFrame(
        {
            "feedback_id": ["f1", "f2", "f3"],
            "ticket_id": ["T3", "T4", "T0"],
            "corrected_category": ["solar", "solar", "billing"],
            "corrected_at": pd.to_datetime(["2026-02-25", "2026-02-10", "2026-02-01"], utc=True),
            "batch_id": "fb",
            "ingested_at": now,
        }
    )
    with engine.begin() as conn:
        for batch_id in ("b1", "b2"):
            status = store.BLOCKED if batch_id == "b2" else store.ACCEPTED
            store.record_batch(conn, _batch(batch_id, status))
        store.insert_rows(conn, store.tickets, frame, ("created_at", "ingested_at"))
        store.insert_rows(conn, store.predictions, answers, ("scored_at",))
        store.insert_rows(conn, store.feedback, notes, ("corrected_at", "ingested_at"))
    yield engine
    engine.dispose()


def _batch(batch_id: str, status: str) -> dict:
    return {
        "batch_id": batch_id,
        "kind": "tickets",
        "source": "test",
        "rows_read": 3,
        "rows_stored": 3,
        "rows_quarantined": 0,
        "rows_skipped": 0,
        "status": status,
        "report": None,
    }


def test_tickets_by_id_carry_repeat_contacts_as_scoring_counts_them(filled: sa.Engine) -> None:
    with filled.connect() as conn:
        frame = drift_queries.tickets_by_ids(conn, ["T2", "T5", "T0", "gone"], 30)
        empty = drift_queries.tickets_by_ids(conn, [], 30)
    assert frame["ticket_id"].tolist() == ["T0", "T2", "T5"]
    assert frame["repeat_contacts"].iloc[:2].tolist() == [0.0, 2.0]
    assert np.isnan(frame["repeat_contacts"].iloc[2])  # no customer: unknown
    assert "customer_id" not in frame.columns and frame["category"].iloc[0] == "billing"
    assert empty.empty and "repeat_contacts" in empty.columns


def test_only_labeled_tickets_of_unblocked_batches_are_an_old_versions_reference(
    filled: sa.Engine,
) -> None:
    with filled.connect() as conn:
        assert drift_queries.labeled_ids_in_batches(conn, ["b1", "b2"]) == ["T0", "T1"]


def test_recent_tickets_carry_the_champions_answers_and_feedback_labels(filled: sa.Engine) -> None:
    now = pd.Timestamp("2026-02-26T00:00:00Z").to_pydatetime()
    current, labels = drift.recent(filled, "1", MonitorSettings(drift_days=3), now=now)
    assert current["ticket_id"].tolist() == ["T3", "T4", "T5"]
    assert current["category"].tolist()[:2] == ["account", "billing"]
    assert current["category"].isna().tolist() == [False, False, True]
    assert current["campaign_id"].tolist()[0] == "spring"
    assert labels == {"solar": 1}
    with filled.connect() as conn:
        assert drift_queries.feedback_categories(conn, None) == {"solar": 2, "billing": 1}


def test_held_out_answers_and_the_first_production_week_are_the_answer_figures_reference() -> None:
    reference, current = tickets(600, seed=1), served(tickets(400, seed=2))
    # Held-out answers that are all one class make the prediction mix drift against them ...
    held_out = pd.DataFrame(
        {"ticket_id": reference["ticket_id"], "category": "billing", "category_proba": 0.99}
    )
    report = drift.measure(reference, current, KeywordModel(), CLASSES, {}, MONITOR, held_out)
    figures = by_name(report)
    assert figures["prediction"]["drifted"] and figures["prediction"]["basis"] == "held-out answers"
    assert figures["length"]["basis"] == "training tickets"
    # ... and the champion's own first production week, served like the recent tickets, does not.
    first = served(tickets(300, seed=4))
    report = drift.measure(
        reference, current, KeywordModel(), CLASSES, {}, MONITOR, held_out, first
    )
    figures = by_name(report)
    assert not figures["prediction"]["drifted"] and not figures["confidence"]["drifted"]
    assert figures["prediction"]["basis"] == "first production week"
    assert figures["prediction"]["reference_rows"] == 300
    assert [f["name"] for f in report.figures] == list(drift.FIGURES)


def test_the_first_production_week_counts_only_once_it_is_over(filled: sa.Engine) -> None:
    trained_until = pd.Timestamp("2026-02-22T12:00:00Z")
    with filled.connect() as conn:
        first = drift_queries.first_served(conn, "1", 2, trained_until)
        assert first["category"].tolist() == ["account", "billing"]  # T3 (02-23), T4 (02-24)
        assert (
            drift_queries.first_served(conn, "1", 2, pd.Timestamp("2026-02-23T12:00Z")).shape[0]
            == 1
        )
        assert drift_queries.first_served(conn, "9", 2, trained_until).empty
    sample = pd.DataFrame({"created_at": [trained_until - pd.Timedelta(days=3), trained_until]})
    few = MonitorSettings(drift_days=2, drift_min_rows=2)
    after = pd.Timestamp("2026-03-10T00:00:00Z").to_pydatetime()
    assert len(drift.production_reference(filled, "1", few, sample, now=after)) == 2
    overlapping = pd.Timestamp("2026-02-25T12:00:00Z").to_pydatetime()
    assert drift.production_reference(filled, "1", few, sample, now=overlapping) is None
    # A first week that runs into the recent window is cut where that window starts.
    cut = drift.production_reference(
        filled, "1", MonitorSettings(drift_days=2, drift_min_rows=1), sample, now=overlapping
    )
    assert cut["category"].tolist() == ["account"]
    too_few = MonitorSettings(drift_days=2, drift_min_rows=3)
    assert drift.production_reference(filled, "1", too_few, sample, now=after) is None
    no_sample = sample.iloc[:0]
    assert drift.production_reference(filled, "1", few, no_sample, now=after) is None
