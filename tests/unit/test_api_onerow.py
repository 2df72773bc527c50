"""The one-row fast path agrees with the ingest chain: what it accepts, the chain accepts with
the same values and content hash; what the chain refuses, it leaves to the chain."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import pandera.pandas as pa
import pytest

from triage_ml.api import onerow, service
from triage_ml.ingest import batches, chain, contracts
from triage_ml.ingest.mapping import FEEDBACK_COLUMNS, ColumnMapping, LinkedMapping, content_hash

pytestmark = pytest.mark.unit
LEVELS = ("critical", "urgent", "high", "medium", "normal", "low")
NOW = datetime.now(UTC)


def raw(**change) -> dict:
    base = {
        "ticket_id": "T-1",
        "subject": "Invoice",
        "body": "My invoice is wrong",
        "created_at": datetime(2026, 11, 2, 9, 0, tzinfo=UTC).isoformat(),
        "channel": "email",
        "customer_id": "c-1",
        "customer_tier": "gold",
        "customer_ltv": "120.5",
        "language": "en",
        "campaign_id": None,
    }
    return {**base, **change}


PLAIN = {
    "as sent": raw(),
    "nothing optional": raw(
        subject=None,
        channel=None,
        customer_id=None,
        customer_tier=None,
        customer_ltv=None,
        language=None,
    ),
    "padded": raw(subject="  Invoice\t", body="\n body \r\n", channel=" email "),
    "blank optional": raw(channel="   ", customer_tier=""),
    "unicode": raw(subject="Rechnung für März ✓", body="Grüße 你好 🙂\n\tzweite Zeile"),
    "naive time": raw(created_at="2026-11-02T09:00:00.123456"),
    "other zone": raw(created_at="2026-11-02T10:00:00+01:00"),
    "limits": raw(
        subject="s" * 2000, ticket_id="i" * 128, channel="c" * 64, customer_ltv="1000000000000.0"
    ),
    "zero ltv": raw(customer_ltv="0.0"),
    "tiny ltv": raw(customer_ltv=repr(1e-07)),
    "big ltv": raw(customer_ltv=repr(123456789.123456)),
    "integer-valued ltv": raw(customer_ltv=repr(1e11)),
    "campaign": raw(campaign_id="spring-25"),
    "no campaign column": {k: v for k, v in raw().items() if k != "campaign_id"},
}
REFUSED_OR_UNSURE = {
    "blank body": raw(body="   "),
    "long subject": raw(subject="s" * 2001),
    "long id": raw(ticket_id="i" * 129),
    "long channel": raw(channel="c" * 65),
    "control character": raw(body="bell \x07"),
    "undecodable": raw(body="bad \ufffd byte"),
    "nbsp padding": raw(subject="\u00a0Invoice"),
    "future": raw(created_at=(NOW + timedelta(days=1)).isoformat()),
    "ltv over": raw(customer_ltv="1e13"),
    "ltv negative": raw(customer_ltv="-1"),
    "ltv nan": raw(customer_ltv="nan"),
    "no id": {k: v for k, v in raw().items() if k != "ticket_id"},
}


def through_chain(values: dict) -> pd.Series | None:
    schema = contracts.load_schema("tickets", LEVELS)
    frame = pd.DataFrame([values], dtype=object)
    mapping = ColumnMapping(labeled=False, id_column="ticket_id" if "ticket_id" in values else None)
    checked = chain.check_chunk(frame, mapping, schema, "api", 0)
    if checked.rejected:
        return None
    return batches.prepare_ticket_chunk(checked).valid


@pytest.mark.parametrize("case", list(PLAIN))
def test_a_plain_ticket_takes_the_fast_path_with_the_chains_values(case: str) -> None:
    fast = onerow.check_ticket(PLAIN[case], contracts.load_schema("tickets", LEVELS))
    chained = through_chain(PLAIN[case])
    assert fast is not None and chained is not None
    slow = chained.iloc[0]
    assert set(fast) == set(slow.index)
    for name, value in fast.items():
        expected = slow[name]
        assert (value is None and pd.isna(expected)) or value == expected, name
    assert fast["content_hash"] == slow["content_hash"]
    # What the triager reads has the chain's dtypes too.
    columns = [c for c in service.TRIAGE_COLUMNS if c in chained.columns]
    assert onerow.as_frame(fast, columns).dtypes.to_dict() == chained[columns].dtypes.to_dict()


@pytest.mark.parametrize("case", list(REFUSED_OR_UNSURE))
def test_what_the_fast_path_doubts_goes_to_the_chain(case: str) -> None:
    assert (
        onerow.check_ticket(REFUSED_OR_UNSURE[case], contracts.load_schema("tickets", LEVELS))
        is None
    )


def test_a_check_the_fast_path_does_not_know_sends_every_row_to_the_chain() -> None:
    schema = contracts.load_schema("tickets", LEVELS)
    stricter = schema.update_columns(
        {"body": {"checks": [*schema.columns["body"].checks, pa.Check.str_matches(r"^\w")]}}
    )
    assert onerow.check_ticket(raw(), stricter) is None


# ---- feedback ------------------------------------------------------------------------------


def label(**change) -> dict:
    base = {
        "ticket_id": "T-1",
        "corrected_category": "Billing",
        "corrected_priority": None,
        "agent_id": "a-1",
        "corrected_at": datetime(2026, 11, 20, 12, 0, 0, 123456).isoformat(),
        "reason": None,
        "label_source": None,
        "model_version": "7",
    }
    return {**base, **change}


PLAIN_LABELS = {
    "category": label(),
    "priority": label(corrected_category=None, corrected_priority="urgent"),
    "both, with a reason": label(corrected_priority="low", reason="  customer said so\n"),
    "upper-case priority": label(corrected_priority="HIGH"),
    "a source given": label(label_source="Auto-Applied"),
    "no version, no agent": label(model_version=None, agent_id=None),
    "unicode reason": label(reason="Kunde: „falsch“ ✓"),
}
DOUBTED_LABELS = {
    "no correction": label(corrected_category=None),
    "off the scale": label(corrected_priority="P9"),
    "unknown source": label(label_source="guessed"),
    "control character": label(reason="bell \x07"),
    "future": label(corrected_at=(NOW + timedelta(days=1)).isoformat()),
    "long reason": label(reason="r" * 10_001),
    "non-ASCII priority": label(corrected_priority="hıgh"),
}


def labels_through_chain(values: dict) -> pd.Series | None:
    schema = contracts.load_schema("feedback", LEVELS)
    frame = pd.DataFrame([values], dtype=object)
    checked = chain.check_chunk(frame, LinkedMapping.of("feedback"), schema, "api", 0)
    if checked.rejected:
        return None
    valid = checked.valid
    return valid.assign(feedback_id=content_hash(valid, FEEDBACK_COLUMNS).str[:40]).iloc[0]


@pytest.mark.parametrize("case", list(PLAIN_LABELS))
def test_a_plain_label_takes_the_fast_path_with_the_chains_values(case: str) -> None:
    fast = onerow.check_feedback(PLAIN_LABELS[case], contracts.load_schema("feedback", LEVELS))
    slow = labels_through_chain(PLAIN_LABELS[case])
    assert fast is not None and slow is not None
    assert set(fast) == set(slow.index)
    for name, value in fast.items():
        expected = slow[name]
        assert (value is None and pd.isna(expected)) or value == expected, name


@pytest.mark.parametrize("case", list(DOUBTED_LABELS))
def test_what_the_fast_path_doubts_in_a_label_goes_to_the_chain(case: str) -> None:
    schema = contracts.load_schema("feedback", LEVELS)
    assert onerow.check_feedback(DOUBTED_LABELS[case], schema) is None
