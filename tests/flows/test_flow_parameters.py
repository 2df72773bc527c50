"""Settings as a flow parameter: the Prefect API sees its URLs masked; the flow, the real ones."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from triage_ml import store
from triage_ml.settings import Settings

pytestmark = [pytest.mark.flows, pytest.mark.slow]


def test_a_password_in_a_settings_parameter_never_reaches_the_prefect_api(
    prefect_harness, postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from prefect.client.orchestration import get_client

    from triage_ml.flows.promotion import rollback_champion

    # The test server trusts loopback connections, so it accepts the password and ignores it.
    real_url = postgres_url.replace("://postgres@", "://postgres:s3cret-pw@", 1)
    connected: list[str] = []
    connect = store.connect
    monkeypatch.setattr(store, "connect", lambda url: connected.append(url) or connect(url))

    state = rollback_champion(
        "no champion yet",
        settings=Settings(home=tmp_path / "home", database_url=real_url),
        return_state=True,
    )

    assert state.is_failed() and "has no champion to roll back" in str(state.message)
    with get_client(sync_client=True) as client:
        run = client.read_flow_run(state.state_details.flow_run_id)
    assert "s3cret-pw" not in json.dumps(run.parameters)
    assert run.parameters["settings"]["database_url"] == real_url.replace("s3cret-pw", "***")
    assert connected == [real_url]  # the flow itself got the real URL
