"""Register import (CSV, JSON): every bad row with its line; a failed import applies nothing."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import event, func, select

from agent.errors import ImportFailed
from agent.local.synthetic import valid_bsns
from agent.register.imports import parse_import, read_import
from agent.register.store import load_client, store_import
from agent.storage.tables import DeviceRow
from tests.agent.conftest import AUTH, CLIENT_BSN, DATA, Agents

HEADER = (
    "bsn,initials,surname,street,house_number,postal_code,city,gemeentecode,contact_channels,"
    "phone_number,indicatie_legal_basis,indicatie_reference,indicatie_decision_date,"
    "indicatie_start_date,indicatie_end_date,device_id,iso_code,description,custom_made,movable,"
    "ownership,purchase_price_cents\n"
)
CLIENT = (
    "J.,Jansen,Oudegracht,12,3511AB,Utrecht,0344,phone,+31 30 1234567,"
    "Wmo,UTR-1,2023-05-01,2023-05-15,2028-05-14"
)
OTHER = "A.,Bakker,Biltstraat,3,3572AA,Utrecht,0344,phone,+31 30 7654321,,,,,"


def _csv(*rows: str) -> bytes:
    return (HEADER + "".join(row + "\n" for row in rows)).encode()


GOOD = _csv(
    f"{CLIENT_BSN},{CLIENT},a,12 23 03,Scootmobiel,false,true,huur,389000",
    f"{CLIENT_BSN},{CLIENT},b,18 12 10,Hoog-laagbed,false,true,bruikleen,",
    f"999990019,{OTHER},c,12 22 03,Rolstoel,false,true,huur,",
)


async def _device_count(agents: Agents) -> int:
    async with agents.departing.database.reading() as session:
        return int(await session.scalar(select(func.count()).select_from(DeviceRow)) or 0)


async def test_csv_import(agents: Agents) -> None:
    result = await agents.departing.import_provisions(GOOD, "csv")
    assert (result.clients, result.devices) == (2, 3)
    assert await _device_count(agents) == 3


async def test_csv_errors_name_every_line_and_nothing_is_applied(agents: Agents) -> None:
    await agents.departing.import_provisions((DATA / "clients.json").read_bytes(), "json")
    bad = _csv(
        f"{CLIENT_BSN},{CLIENT},a,12 23 03,Scootmobiel,false,true,huur,",
        f"123456789,{OTHER},c,12 22 03,Rolstoel,false,true,huur,",
        f"{CLIENT_BSN},{CLIENT},b,1223,Hoog-laagbed,false,true,bruikleen,",
        f"{CLIENT_BSN},{CLIENT},d,12 06 06,Rollator,false,maybe,huur,-5",
    )
    with pytest.raises(ImportFailed) as caught:
        await agents.departing.import_provisions(bad, "csv")
    lines = sorted({problem.line for problem in caught.value.problems})
    assert lines == [3, 4, 5]
    assert "123456789" not in caught.value.detail
    # The earlier import is untouched: three devices of the JSON import remain.
    assert await _device_count(agents) == 3


async def test_csv_missing_column(agents: Agents) -> None:
    with pytest.raises(ImportFailed) as caught:
        await agents.departing.import_provisions(b"bsn,surname\n999993653,Jansen\n", "csv")
    assert caught.value.problems[0].line == 1
    assert "missing columns" in caught.value.problems[0].reason


async def test_json_errors_name_the_line_of_the_record(agents: Agents) -> None:
    client = json.loads((DATA / "clients.json").read_text())[0]
    broken = json.loads(json.dumps(client))
    broken["devices"][0]["isoCode"] = "12 2"
    text = json.dumps([client, broken], indent=2)
    starts = [number for number, line in enumerate(text.splitlines(), 1) if line == "  {"]
    with pytest.raises(ImportFailed) as caught:
        await agents.departing.import_provisions(text.encode(), "json")
    problems = caught.value.problems
    assert {p.line for p in problems} == {starts[1]}
    assert any("isoCode" in p.reason for p in problems)
    assert await _device_count(agents) == 0


async def test_json_same_bsn_twice_is_refused(agents: Agents) -> None:
    client = json.loads((DATA / "clients.json").read_text())[0]
    text = json.dumps([client, client], indent=2)
    with pytest.raises(ImportFailed) as caught:
        await agents.departing.import_provisions(text.encode(), "json")
    assert "same bsn" in caught.value.detail
    assert CLIENT_BSN not in caught.value.detail


async def test_malformed_json_reports_its_line(agents: Agents) -> None:
    with pytest.raises(ImportFailed) as caught:
        await agents.departing.import_provisions(b'[\n{"bsn": }\n]', "json")
    assert caught.value.problems[0].line == 2


async def test_api_import_refusal_is_a_problem(agents: Agents) -> None:
    bad = _csv(f"12345678,{OTHER},c,12 22 03,Rolstoel,false,true,huur,")
    answer = await agents.http.post(
        "http://utrecht.test/v1/provisions/imports",
        content=bad,
        headers={**AUTH, "Content-Type": "text/csv"},
    )
    assert answer.status_code == 400
    assert answer.headers["Content-Type"] == "application/problem+json"
    assert answer.json()["type"] == "urn:meeverhuizen:problem:import-failed"
    assert "line 2" in answer.json()["detail"]


async def test_a_client_is_read_once_per_transaction_until_the_register_changes(
    agents: Agents,
) -> None:
    await agents.departing.import_provisions(GOOD, "csv")
    statements: list[str] = []

    def count(_connection: Any, _cursor: Any, statement: str, *_: Any) -> None:
        # The register's read of one client: the client with its devices.
        if statement.lstrip().upper().startswith("SELECT") and "FROM clients" in statement:
            statements.append(statement)

    engine = agents.departing.database.engine.sync_engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        async with agents.departing.database.transaction() as session:
            first = await load_client(session, CLIENT_BSN)
            again = await load_client(session, CLIENT_BSN)
            assert first is not None
            assert first is again
            assert len(statements) == 1
            # A change to the register in the same transaction is seen by the next read.
            row = f"{CLIENT_BSN},{CLIENT},z,12 23 03,Scootmobiel,false,true,huur,"
            await store_import(session, parse_import(_csv(row), "csv"), now=agents.clock.now())
            changed = await load_client(session, CLIENT_BSN)
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert changed is not None
    assert [device.device_id for device in changed.devices] == ["z"]
    assert len(statements) == 2  # the read again after the import


async def test_json_problem_after_stored_groups_applies_nothing(agents: Agents) -> None:
    """A large import is stored group by group; a bad client in a late group undoes them all."""
    client = json.loads((DATA / "clients.json").read_text())[0]
    clients = [client | {"bsn": bsn} for bsn in valid_bsns(130)]
    clients[125] = clients[125] | {"bsn": "123456789"}
    text = json.dumps(clients, indent=2)
    starts = [number for number, line in enumerate(text.splitlines(), 1) if line == "  {"]
    with pytest.raises(ImportFailed) as caught:
        await agents.departing.import_provisions(text.encode(), "json")
    assert [problem.line for problem in caught.value.problems] == [starts[125]]
    assert await _device_count(agents) == 0


async def test_json_groups_hold_every_client_once() -> None:
    client = json.loads((DATA / "clients.json").read_text())[0]
    bsns = valid_bsns(7)
    content = json.dumps([client | {"bsn": bsn} for bsn in bsns]).encode()
    groups = list(read_import(content, "json", chunk_size=3))
    assert [[c.bsn for c in group.clients] for group in groups] == [bsns[:3], bsns[3:6], bsns[6:]]
    assert groups[-1].done == groups[-1].total == len(content)
    assert groups[0].done < groups[1].done < groups[-1].done


def test_csv_carries_the_birth_date_and_the_representatives_own_address() -> None:
    header = (
        "bsn,surname,birth_date,street,house_number,postal_code,city,gemeentecode,"
        "contact_channels,representative_kind,representative_surname,representative_channels,"
        "representative_street,representative_house_number,representative_postal_code,"
        "representative_city,representative_gemeentecode,"
        "device_id,iso_code,description,custom_made,movable,ownership\n"
    )
    row = (
        f"{CLIENT_BSN},Jansen,2015-06-01,Oudegracht,12,3511AB,Utrecht,0344,letter,"
        "legal-representative,Jansen,letter,Nieuwegracht,3,3512LC,Utrecht,0344,"
        "a,18 12 10,Hoog-laagbed,false,true,huur\n"
    )
    (client,) = parse_import((header + row).encode(), "csv")
    assert client.birth_date is not None
    assert client.birth_date.isoformat() == "2015-06-01"
    assert client.representative is not None
    assert client.representative.address is not None
    assert client.representative.address.street == "Nieuwegracht"
    assert client.consents_through_representative(client.birth_date.replace(year=2025))
