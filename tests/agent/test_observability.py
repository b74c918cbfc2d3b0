"""Metrics, readiness, JSON log lines with trace ids and stable event names."""

from __future__ import annotations

import json
import logging
import uuid

import pytest

from protocol.logs import JsonFormatter, log_event, trace
from registry.errors import RegistryUnavailable
from tests.agent.conftest import CLIENT_BSN, Agents


async def hand_over(agents: Agents) -> str:
    dossier_id = await agents.start_dossier()
    await agents.give_consent(dossier_id)
    await agents.settle()
    return dossier_id


def metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} not in the exposition")


async def test_metrics_count_messages_per_app(agents: Agents) -> None:
    await hand_over(agents)
    sent = (await agents.http.get("http://utrecht.test/metrics")).text
    received = (await agents.http.get("http://amsterdam.test/metrics")).text
    offer = 'message_type="dossier-offer"'
    assert metric(sent, f'meeverhuizen_messages_delivered_total{{kind="message",{offer}}}') == 1
    assert metric(received, f"meeverhuizen_messages_received_total{{{offer}}}") == 1
    # One registry per app: the receiver delivered no offer, the sender received none.
    assert f'meeverhuizen_messages_delivered_total{{kind="message",{offer}}}' not in received
    assert metric(sent, 'meeverhuizen_outbox_messages{state="pending"}') == 0
    assert metric(sent, 'meeverhuizen_outbox_messages{state="delivered"}') >= 1
    assert metric(sent, "meeverhuizen_outbox_oldest_pending_age_seconds") == 0
    # The handover's own consent is counted once, by the departing side only.
    assert metric(sent, 'meeverhuizen_consent_outcomes_total{outcome="given"}') == 1
    assert "meeverhuizen_consent_outcomes_total{" not in received
    openapi = agents.departing_app.openapi()
    assert "/metrics" not in openapi["paths"]


async def test_readiness_reports_each_check(
    agents: Agents, monkeypatch: pytest.MonkeyPatch
) -> None:
    answer = await agents.http.get("http://utrecht.test/v1/health/ready")
    assert answer.status_code == 200
    assert answer.json() == {
        "status": "ready",
        "checks": {"database": "ok", "scheduler": "disabled", "registry": "ok", "clock": "ok"},
        "reasons": {},
    }

    async def unavailable(oin: str, *, message_type: str | None = None) -> None:
        raise RegistryUnavailable("registry unreachable beyond the staleness bound")

    monkeypatch.setattr(agents.directory, "participant", unavailable)
    answer = await agents.http.get("http://utrecht.test/v1/health/ready")
    assert answer.status_code == 503
    assert answer.json()["detail"] == "failing: registry"
    assert (await agents.http.get("http://utrecht.test/v1/health")).status_code == 200


async def test_log_events_have_stable_names_and_one_trace_per_message(
    agents: Agents, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    dossier_id = await hand_over(agents)
    formatter = JsonFormatter()
    lines = [json.loads(formatter.format(record)) for record in caplog.records]
    events = {line["event"] for line in lines}
    assert {"dossier_state_changed", "message_received", "message_delivered"} <= events
    offer = next(
        line
        for line in lines
        if line["event"] == "message_delivered" and line.get("message_type") == "dossier-offer"
    )
    received = next(
        line
        for line in lines
        if line["event"] == "message_received" and line["message_id"] == offer["message_id"]
    )
    # Sender and receiver log in the same trace: the message id is the trace id.
    assert offer["trace_id"] == received["trace_id"] == uuid.UUID(offer["message_id"]).hex
    assert offer["span_id"] != received["span_id"]
    changes = [line for line in lines if line["event"] == "dossier_state_changed"]
    assert {"dossier_id", "from_state", "to_state", "side"} <= set(changes[0])
    assert any(line["dossier_id"] == dossier_id for line in changes)


def test_only_whitelisted_fields_and_no_exception_text_reach_a_line() -> None:
    logger = logging.getLogger("tests.observability")
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = Keep()
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        with trace() as context:
            log_event(logger, "consent_recorded", dossier_id="d-1", bsn=CLIENT_BSN, token="x")
        try:
            raise ValueError(f"duplicate key (bsn)=({CLIENT_BSN})")
        except ValueError:
            logger.exception("import_failed")
    finally:
        logger.removeHandler(handler)
    first, second = (JsonFormatter().format(record) for record in records)
    assert json.loads(first) == json.loads(first) | {
        "event": "consent_recorded",
        "dossier_id": "d-1",
        "trace_id": context.trace_id,
    }
    assert "bsn" not in json.loads(first)
    assert "token" not in json.loads(first)
    assert CLIENT_BSN not in first + second
    assert json.loads(second)["exception_type"] == "ValueError"
