"""Roles and territory: what each participant may claim, and a regional service's gemeentecodes."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from registry._migrations import MIGRATIONS
from registry.errors import (
    InvalidRegistryInput,
    OperatorCredentialRequired,
    ParticipantNotEnrolled,
    UnknownGemeentecode,
)
from registry.operator import OperatorClient
from tests.registry.conftest import (
    BASE_URL,
    UTRECHT_OIN,
    Registry,
    enrol_gemeente,
    enrol_supplier,
)

AMSTERDAM_OIN = "00000001002564440000"
BUNNIK = "0312"


async def test_a_gemeente_plays_both_gemeente_roles_and_serves_its_own_code(
    registry: Registry,
) -> None:
    await enrol_gemeente(registry)
    utrecht = await registry.client().participant(UTRECHT_OIN)
    assert utrecht.roles == ("departing-gemeente", "receiving-gemeente")
    assert utrecht.gemeentecodes == ("0344",)


async def test_a_supplier_plays_both_supplier_roles_and_serves_no_gemeente(
    registry: Registry,
) -> None:
    supplier = await enrol_supplier(registry)
    entry = await registry.client().participant(supplier.oin)
    assert entry.roles == ("departing-supplier", "receiving-supplier")
    assert entry.gemeentecodes == ()


async def test_a_regional_agent_is_found_by_every_code_it_serves(registry: Registry) -> None:
    await enrol_gemeente(registry)
    with pytest.raises(ParticipantNotEnrolled):
        await registry.client().gemeente(BUNNIK)
    await registry.operator.assign_gemeenten(oin=UTRECHT_OIN, gemeentecodes=["0344", BUNNIK])
    client = registry.client()
    served = await client.gemeente(BUNNIK)
    assert served.oin == UTRECHT_OIN
    assert served.gemeentecodes == (BUNNIK, "0344")  # sorted

    await registry.operator.assign_gemeenten(oin=UTRECHT_OIN, gemeentecodes=["0344"])
    with pytest.raises(ParticipantNotEnrolled):  # back to Bunnik's own entry, not enrolled
        await registry.client().gemeente(BUNNIK)
    assert (await registry.client().participant(UTRECHT_OIN)).gemeentecodes == ("0344",)


async def test_a_code_moves_from_one_agent_to_another(registry: Registry) -> None:
    await enrol_gemeente(registry)
    await enrol_gemeente(registry, gemeentecode="0363", oin=AMSTERDAM_OIN)
    await registry.operator.assign_gemeenten(oin=UTRECHT_OIN, gemeentecodes=["0344", BUNNIK])
    await registry.operator.assign_gemeenten(oin=AMSTERDAM_OIN, gemeentecodes=["0363", BUNNIK])
    client = registry.client()
    assert (await client.participant(UTRECHT_OIN)).gemeentecodes == ("0344",)
    assert (await client.gemeente(BUNNIK)).oin == AMSTERDAM_OIN
    assert "gemeenten_assigned" in await registry.audit_actions()


async def test_what_an_agent_serves_is_the_operators_to_set(registry: Registry) -> None:
    supplier = await enrol_supplier(registry)
    await enrol_gemeente(registry)
    refusals: list[tuple[str, list[str], type[Exception]]] = [
        (supplier.oin, ["0344"], InvalidRegistryInput),
        (UTRECHT_OIN, [BUNNIK], InvalidRegistryInput),  # its own code is missing
        (UTRECHT_OIN, ["0344", "0000"], UnknownGemeentecode),
    ]
    for oin, codes, error in refusals:
        with pytest.raises(error):
            await registry.operator.assign_gemeenten(oin=oin, gemeentecodes=codes)
    stranger = OperatorClient(BASE_URL, "not-the-operator-token-0123456789", http=registry.http)
    with pytest.raises(OperatorCredentialRequired):
        await stranger.assign_gemeenten(oin=UTRECHT_OIN, gemeentecodes=["0344", BUNNIK])
    assert (await registry.client().participant(UTRECHT_OIN)).gemeentecodes == ("0344",)


async def test_the_migration_gives_existing_participants_their_roles_and_code(
    database_url: str,
) -> None:
    engine = create_async_engine(database_url)
    try:
        await MIGRATIONS.upgrade(engine, "4e37a88dabc1")
        async with engine.begin() as connection:
            await connection.execute(
                sa.text(
                    "INSERT INTO participants (kind, name, gemeentecode, oin, kvk_number, "
                    "created_at) VALUES ('gemeente', 'Utrecht', '0344', NULL, NULL, "
                    "'2025-01-01 00:00:00+00:00'), ('supplier', 'Hulpmiddelen BV', NULL, "
                    "'00000003123456780000', '12345678', '2025-01-01 00:00:00+00:00')"
                )
            )
        await MIGRATIONS.upgrade(engine)
        async with engine.connect() as connection:
            rows = (
                await connection.execute(
                    sa.text("SELECT kind, roles, gemeentecodes FROM participants ORDER BY kind")
                )
            ).all()
    finally:
        await engine.dispose()
    assert [(kind, _json(roles), _json(codes)) for kind, roles, codes in rows] == [
        ("gemeente", ["departing-gemeente", "receiving-gemeente"], ["0344"]),
        ("supplier", ["departing-supplier", "receiving-supplier"], []),
    ]


def _json(value: object) -> object:
    # SQLite hands JSON columns back as text, PostgreSQL as the value.
    return json.loads(value) if isinstance(value, str) else value
