"""Writes: enrolment codes, operator credential, signed self-service, bad input changes nothing."""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import date, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from protocol import canonicalize
from protocol.jwk import generate_private_jwk, public_jwk
from protocol.signing import sign_body
from registry._db import EnrolmentCode, create_engine, session_factory
from registry.errors import (
    EnrolmentCodeInvalid,
    InvalidOin,
    InvalidPublicKey,
    InvalidValidityWindow,
    OperatorCredentialRequired,
    ParticipantExists,
    PrivateKeyMaterial,
    SignedChangeRejected,
    UnknownGemeentecode,
)
from registry.operator import OperatorClient
from tests.registry.conftest import (
    BASE_URL,
    OPERATOR_TOKEN,
    START,
    SUPPLIER_KVK,
    SUPPLIER_OIN,
    UTRECHT_OIN,
    Registry,
    change_own_entry,
    enrol_gemeente,
    enrol_supplier,
)

PROBLEM = "urn:meeverhuizen:problem:"


def _enrolment(code: str, **changes: Any) -> dict[str, Any]:
    document: dict[str, Any] = {
        "code": code,
        "oin": UTRECHT_OIN,
        "endpoint": "http://agent-0344.test",
        "protocolVersions": ["1.0"],
        "messageTypes": ["nl.meeverhuizen.dossier-offer"],
        "keys": [{"jwk": public_jwk(generate_private_jwk("EdDSA"))}],
    }
    document.update(changes)
    return document


async def _refused(registry: Registry, path: str, payload: Any, code: str, status: int) -> None:
    """The request gets the problem type ``code`` and leaves no trace in the audit trail."""
    before = await registry.audit_actions()
    response = await registry.http.post(path, json=payload)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == PROBLEM + code
    assert "nlgov-adr-payload-sig" in response.headers
    assert await registry.audit_actions() == before


async def test_enrolment_code_is_one_time(registry: Registry) -> None:
    code = await registry.operator.issue_enrolment_code(gemeentecode="0344")
    response = await registry.http.post("/v1/enrolments", json=_enrolment(code))
    assert response.status_code == 201
    assert response.json()["data"]["oin"] == UTRECHT_OIN
    await _refused(registry, "/v1/enrolments", _enrolment(code), "enrolment-code-invalid", 403)


async def test_enrolment_code_expires(registry: Registry) -> None:
    code = await registry.operator.issue_enrolment_code(gemeentecode="0344")
    registry.clock.advance(timedelta(days=15))
    await _refused(registry, "/v1/enrolments", _enrolment(code), "enrolment-code-invalid", 403)


async def test_enrolment_code_is_stored_only_as_hash(registry: Registry, database_url: str) -> None:
    code = await registry.operator.issue_enrolment_code(gemeentecode="0344")
    engine = create_engine(database_url)
    try:
        async with session_factory(engine)() as session:
            stored = list(await session.scalars(select(EnrolmentCode.code_hash)))
    finally:
        await engine.dispose()
    assert stored == [hashlib.sha256(code.encode()).hexdigest()]


async def test_code_for_one_gemeente_cannot_enrol_another_oin(registry: Registry) -> None:
    await enrol_gemeente(registry)
    code = await registry.operator.issue_enrolment_code(gemeentecode="0363")
    # Utrecht's OIN already belongs to Utrecht.
    await _refused(registry, "/v1/enrolments", _enrolment(code), "participant-exists", 409)


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"oin": "0000000100222064700"}, "invalid-input"),  # 19 digits
        ({"oin": "00000003123456780000"}, "invalid-oin"),  # a company OIN for a gemeente
        ({"oin": "00000001002220648000"}, "invalid-oin"),  # RSIN fails the elfproef
        ({"keys": [{"jwk": {"kty": "OKP", "crv": "Ed25519", "x": "short"}}]}, "invalid-public-key"),
        ({"keys": [{"jwk": {"kty": "oct", "k": "c2VjcmV0"}}]}, "private-key-material"),
        ({"keys": [{"jwk": generate_private_jwk("EdDSA")}]}, "private-key-material"),
        (
            {
                "keys": [
                    {
                        "jwk": public_jwk(generate_private_jwk("EdDSA")),
                        "notBefore": "2025-04-01T00:00:00Z",
                        "notAfter": "2025-03-01T00:00:00Z",
                    }
                ]
            },
            "invalid-validity-window",
        ),
        ({"endpoint": "ftp://agent.test"}, "invalid-input"),
        ({"keys": []}, "invalid-input"),
    ],
)
async def test_bad_enrolment_is_refused_and_changes_nothing(
    registry: Registry, changes: dict[str, Any], code: str
) -> None:
    enrolment_code = await registry.operator.issue_enrolment_code(gemeentecode="0344")
    await _refused(registry, "/v1/enrolments", _enrolment(enrolment_code, **changes), code, 400)
    not_enrolled = await registry.http.get("/v1/gemeenten/0344")
    assert not_enrolled.json()["type"] == PROBLEM + "participant-not-enrolled"


async def test_operator_actions_need_the_operator_token(registry: Registry) -> None:
    for token in ("wrong-token-wrong-token", ""):
        intruder = OperatorClient(BASE_URL, token, http=registry.http)
        with pytest.raises(OperatorCredentialRequired):
            await intruder.issue_enrolment_code(gemeentecode="0344")
    response = await registry.http.post("/v1/suppliers", json={})
    assert response.status_code == 401
    assert response.json()["type"] == PROBLEM + "operator-credential-required"


async def test_bad_operator_input_is_refused(registry: Registry) -> None:
    operator = registry.operator
    with pytest.raises(UnknownGemeentecode):
        await operator.issue_enrolment_code(gemeentecode="9999")
    with pytest.raises(InvalidOin):
        await operator.onboard_supplier(oin=SUPPLIER_OIN, kvk_number="11111111", name="X")
    await operator.onboard_supplier(oin=SUPPLIER_OIN, kvk_number=SUPPLIER_KVK, name="X")
    with pytest.raises(ParticipantExists):
        await operator.onboard_supplier(oin=SUPPLIER_OIN, kvk_number=SUPPLIER_KVK, name="X")
    contract: dict[str, Any] = {
        "supplier_oin": SUPPLIER_OIN,
        "iso_prefixes": ["12 22"],
        "valid_from": date(2025, 2, 1),
    }
    with pytest.raises(InvalidValidityWindow):
        await operator.add_contract(gemeentecode="0344", valid_until=date(2025, 1, 31), **contract)
    with pytest.raises(UnknownGemeentecode):
        await operator.add_contract(gemeentecode="9999", **contract)
    assert await registry.audit_actions() == ["supplier_onboarded", "gemeenten_seeded"]
    response = await registry.http.post(
        "/v1/contracts",
        headers={"Authorization": f"Bearer {OPERATOR_TOKEN}"},
        json={
            "gemeentecode": "0344",
            "supplierOin": SUPPLIER_OIN,
            "isoPrefixes": ["12-22"],
            "validFrom": "2025-01-01",
        },
    )
    assert response.status_code == 400
    assert response.json()["type"] == PROBLEM + "invalid-input"


async def test_oversized_body_is_refused(registry: Registry) -> None:
    code = await registry.operator.issue_enrolment_code(gemeentecode="0344")
    padding = ["nl.meeverhuizen.x" + str(index) for index in range(5000)]
    await _refused(
        registry, "/v1/enrolments", _enrolment(code, messageTypes=padding), "body-too-large", 413
    )


async def test_participant_cannot_change_another_participants_entry(registry: Registry) -> None:
    utrecht = await enrol_gemeente(registry)
    supplier = await enrol_supplier(registry)
    client = registry.client()
    with pytest.raises(SignedChangeRejected):
        await client.update_own_entry(
            oin=supplier.oin, private_jwk=utrecht.private_jwk, endpoint="http://attacker.test"
        )
    # Signing a change for itself but posting it to the other participant's entry fails too.
    body = _signed_change(utrecht.private_jwk, oin=UTRECHT_OIN, endpoint="http://attacker.test")
    response = await registry.http.post(
        f"/v1/participants/{supplier.oin}/entry-changes", content=body.body, headers=body.headers()
    )
    assert response.json()["type"] == PROBLEM + "signed-change-rejected"
    resolved = await registry.client().participant(supplier.oin)
    assert resolved.endpoint == f"http://supplier-{SUPPLIER_KVK}.test"


def _signed_change(private_jwk: dict[str, Any], **fields: Any) -> Any:
    change = {"requestId": uuid.uuid4().hex, "requestedAt": "2025-03-03T09:00:00Z", **fields}
    return sign_body(canonicalize(change), private_jwk, signing_time=START)


async def test_replayed_signed_change_is_refused(registry: Registry) -> None:
    utrecht = await enrol_gemeente(registry)
    signed = _signed_change(utrecht.private_jwk, oin=UTRECHT_OIN, endpoint="http://first.test")
    path = f"/v1/participants/{UTRECHT_OIN}/entry-changes"
    first = await registry.http.post(path, content=signed.body, headers=signed.headers())
    assert first.status_code == 200, first.text
    before = await registry.audit_actions()
    again = await registry.http.post(path, content=signed.body, headers=signed.headers())
    assert again.status_code == 409
    assert again.json()["type"] == PROBLEM + "request-replayed"
    registry.clock.advance(timedelta(minutes=10))
    late = await registry.http.post(path, content=signed.body, headers=signed.headers())
    assert late.json()["type"] == PROBLEM + "request-replayed"
    assert await registry.audit_actions() == before


async def test_unsigned_or_tampered_change_is_refused(registry: Registry) -> None:
    utrecht = await enrol_gemeente(registry)
    path = f"/v1/participants/{UTRECHT_OIN}/entry-changes"
    signed = _signed_change(utrecht.private_jwk, oin=UTRECHT_OIN, endpoint="http://ok.test")
    unsigned = await registry.http.post(
        path, content=signed.body, headers={"Content-Type": "application/json"}
    )
    assert unsigned.json()["type"] == PROBLEM + "signed-change-rejected"
    tampered = signed.body.replace(b"ok.test", b"evil.test")
    response = await registry.http.post(path, content=tampered, headers=signed.headers())
    assert response.json()["type"] == PROBLEM + "signed-change-rejected"
    assert (await registry.client().participant(UTRECHT_OIN)).endpoint == "http://agent-0344.test"


@pytest.mark.parametrize(
    "body",
    [
        b'{"oin": "' + UTRECHT_OIN.encode() + b'", "requestedAt": ' + b"9" * 5000 + b"}",
        b"[" * 30_000 + b"]" * 30_000,  # within the registry's 64 KiB body limit
    ],
    ids=["5000-digit-integer", "30k-deep"],
)
async def test_a_signed_change_beyond_the_json_limits_is_refused(
    registry: Registry, body: bytes
) -> None:
    utrecht = await enrol_gemeente(registry)
    signed = sign_body(body, utrecht.private_jwk, signing_time=START)
    before = await registry.audit_actions()
    path = f"/v1/participants/{UTRECHT_OIN}/entry-changes"
    response = await registry.http.post(path, content=signed.body, headers=signed.headers())
    assert response.status_code == 400, response.text
    assert response.json()["type"] == PROBLEM + "invalid-registry-input"
    assert "malformed_json" in response.json()["detail"]
    assert await registry.audit_actions() == before


async def test_signed_change_with_private_key_material_is_refused(registry: Registry) -> None:
    utrecht = await enrol_gemeente(registry)
    with pytest.raises(PrivateKeyMaterial):
        await change_own_entry(registry, utrecht, add_keys=[generate_private_jwk("EdDSA")])
    with pytest.raises(InvalidPublicKey):
        await change_own_entry(
            registry, utrecht, add_keys=[{"kty": "RSA", "n": "AQAB", "e": "AQAB"}]
        )


async def test_every_write_is_audited(registry: Registry) -> None:
    utrecht = await enrol_gemeente(registry)
    await enrol_supplier(registry)
    await registry.operator.add_contract(
        gemeentecode="0344",
        supplier_oin=SUPPLIER_OIN,
        iso_prefixes=["12 22"],
        valid_from=date(2025, 1, 1),
    )
    await change_own_entry(registry, utrecht, endpoint="http://moved.test")
    events = await registry.operator.audit_events()
    assert [event["action"] for event in events] == [
        "entry_changed",
        "contract_added",
        "enrolled",
        "enrolment_code_issued",
        "supplier_onboarded",
        "enrolled",
        "enrolment_code_issued",
        "gemeenten_seeded",
    ]
    assert events[0]["actor"] == f"participant:{UTRECHT_OIN}"
    assert events[1]["actor"] == "operator"
    # Enrolment codes and tokens never reach the audit trail.
    assert "code" not in json.dumps(events).replace("enrolment_code_issued", "")


async def test_enrolment_client_errors_are_registry_errors(registry: Registry) -> None:
    with pytest.raises(EnrolmentCodeInvalid):
        await registry.client().enrol(
            code="not-a-real-code",
            oin=UTRECHT_OIN,
            endpoint="http://agent.test",
            protocol_versions=["1.0"],
            message_types=["nl.meeverhuizen.dossier-offer"],
            public_jwks=[public_jwk(generate_private_jwk("EdDSA"))],
        )
