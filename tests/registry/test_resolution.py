"""Resolution: gemeenten, participants, capabilities and contracted suppliers."""

from __future__ import annotations

import csv
from datetime import date
from pathlib import Path

import pytest

from registry.errors import (
    InvalidRegistryInput,
    MessageTypeNotSupported,
    NoContract,
    ParticipantNotEnrolled,
    ParticipantUnknown,
)
from tests.registry.conftest import (
    MESSAGE_TYPES,
    OTHER_SUPPLIER_KVK,
    OTHER_SUPPLIER_OIN,
    SUPPLIER_OIN,
    UTRECHT_OIN,
    Registry,
    enrol_gemeente,
    enrol_supplier,
)

DATA = Path(__file__).resolve().parents[2] / "registry" / "data" / "gemeenten.csv"


async def test_all_342_gemeenten_are_present_without_endpoint(registry: Registry) -> None:
    response = await registry.http.get("/v1/gemeenten")
    assert response.status_code == 200
    gemeenten = response.json()["data"]
    with DATA.open(encoding="utf-8") as source:
        expected = {row["code"]: row["name"] for row in csv.DictReader(source)}
    assert len(gemeenten) == 342 == len(expected)
    assert {item["gemeentecode"]: item["name"] for item in gemeenten} == expected
    assert not any(item["enrolled"] or item["oin"] for item in gemeenten)


async def test_enrolled_gemeente_resolves_with_endpoint_keys_and_capabilities(
    registry: Registry,
) -> None:
    enrolled = await enrol_gemeente(registry)
    participant = await registry.client().gemeente("0344")
    assert participant.oin == UTRECHT_OIN
    assert participant.kind == "gemeente"
    assert participant.name == "Utrecht"
    assert participant.endpoint == "http://agent-0344.test"
    assert participant.protocol_versions == ("1.0",)
    assert participant.message_types == MESSAGE_TYPES
    assert [key.kid for key in participant.keys] == [enrolled.private_jwk["kid"]]
    assert "d" not in participant.keys[0].jwk
    by_oin = await registry.client().participant(UTRECHT_OIN)
    assert by_oin == participant


async def test_unknown_and_not_enrolled_are_distinct_problems(registry: Registry) -> None:
    unknown = await registry.http.get("/v1/gemeenten/9999")
    not_enrolled = await registry.http.get("/v1/gemeenten/0363")
    assert unknown.status_code == not_enrolled.status_code == 404
    assert unknown.json()["type"] == "urn:meeverhuizen:problem:participant-unknown"
    assert not_enrolled.json()["type"] == "urn:meeverhuizen:problem:participant-not-enrolled"
    assert "Amsterdam" in not_enrolled.json()["detail"]
    client = registry.client()
    with pytest.raises(ParticipantUnknown):
        await client.gemeente("9999")
    with pytest.raises(ParticipantNotEnrolled):
        await client.gemeente("0363")
    with pytest.raises(ParticipantUnknown):
        await client.participant("00000001999999999000")


async def test_message_type_not_supported_is_its_own_problem(registry: Registry) -> None:
    await enrol_gemeente(registry)
    response = await registry.http.get("/v1/gemeenten/0344", params={"messageType": "nl.x.other"})
    assert response.status_code == 409
    assert response.json()["type"] == "urn:meeverhuizen:problem:message-type-not-supported"
    client = registry.client()
    with pytest.raises(MessageTypeNotSupported):
        await client.gemeente("0344", message_type="nl.x.other")
    supported = await client.gemeente("0344", message_type=MESSAGE_TYPES[0])
    assert supported.oin == UTRECHT_OIN


async def test_malformed_codes_are_refused_before_any_request(registry: Registry) -> None:
    client = registry.client()
    for bad in ("344", "../participants", "03444"):
        with pytest.raises(InvalidRegistryInput):
            await client.gemeente(bad)
    response = await registry.http.get("/v1/gemeenten/03x4")
    assert response.status_code == 400
    assert response.json()["type"] == "urn:meeverhuizen:problem:invalid-input"


async def _two_suppliers_contracted(registry: Registry) -> None:
    await enrol_supplier(registry)
    await enrol_supplier(registry, kvk_number=OTHER_SUPPLIER_KVK, name="Zorgmobiel BV")
    await registry.operator.add_contract(
        gemeentecode="0344",
        supplier_oin=SUPPLIER_OIN,
        iso_prefixes=["12 22", "12 23 03"],
        valid_from=date(2025, 1, 1),
        valid_until=date(2025, 12, 31),
        preference=2,
    )
    await registry.operator.add_contract(
        gemeentecode="0344",
        supplier_oin=OTHER_SUPPLIER_OIN,
        iso_prefixes=["12"],
        valid_from=date(2025, 1, 1),
        preference=1,
    )


async def test_contracts_match_iso_prefix_and_come_in_preference_order(
    registry: Registry,
) -> None:
    await _two_suppliers_contracted(registry)
    client = registry.client()
    suppliers = await client.contracted_suppliers("0344", "12 22 03", date(2025, 6, 1))
    assert [(s.oin, s.preference, s.iso_prefix) for s in suppliers] == [
        (OTHER_SUPPLIER_OIN, 1, "12"),
        (SUPPLIER_OIN, 2, "12 22"),
    ]
    assert suppliers[1].valid_until == date(2025, 12, 31)
    scootmobiel = await client.contracted_suppliers("0344", "12 23 03", date(2025, 6, 1))
    assert [s.iso_prefix for s in scootmobiel] == ["12", "12 23 03"]
    # The prefix covers whole groups only: "12 22" does not cover "12 23 06".
    powered = await client.contracted_suppliers("0344", "12 23 06", date(2025, 6, 1))
    assert [s.oin for s in powered] == [OTHER_SUPPLIER_OIN]


async def test_contract_validity_period_limits_resolution(registry: Registry) -> None:
    await _two_suppliers_contracted(registry)
    client = registry.client()
    after = await client.contracted_suppliers("0344", "12 22 03", date(2026, 1, 1))
    assert [s.oin for s in after] == [OTHER_SUPPLIER_OIN]
    with pytest.raises(NoContract):
        await client.contracted_suppliers("0344", "12 22 03", date(2024, 12, 31))


async def test_no_contract_is_its_own_problem(registry: Registry) -> None:
    await _two_suppliers_contracted(registry)
    response = await registry.http.get(
        "/v1/gemeenten/0344/contracted-suppliers",
        params={"isoCode": "18 12 10", "on": "2025-06-01"},
    )
    assert response.status_code == 404
    assert response.json()["type"] == "urn:meeverhuizen:problem:no-contract"
    with pytest.raises(NoContract):
        await registry.client().contracted_suppliers("0363", "12 22 03", date(2025, 6, 1))
    digits_only = await registry.http.get(
        "/v1/gemeenten/0344/contracted-suppliers", params={"isoCode": "122203", "on": "2025-06-01"}
    )
    assert digits_only.status_code == 200
    assert len(digits_only.json()["data"]) == 2
