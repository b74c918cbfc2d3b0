"""The werkbak's search by name and postcode reads an index that follows the dossier.

Utrecht (departing) and Amsterdam (receiving) on the in-process network: the index is written
when a dossier changes state and when the register is imported again, emptied when the
receiving side erases the client after a withdrawal, and filled for dossiers that have none.
"""

from __future__ import annotations

import json

from sqlalchemy import delete, select

from agent.casework.search_index import normalised_words
from agent.service import AgentService
from agent.storage.tables import DossierSearchTermRow
from tests.agent.conftest import CLIENT_BSN, DATA, Agents


async def _found(service: AgentService, query: str) -> list[str]:
    return [hit.dossier_id for hit in await service.casework.search(query, actor="Anna")]


def test_words_are_lower_case_without_accents() -> None:
    assert normalised_words("Ç. de Bruïne-van 't Hoff") == ["c", "de", "bruine", "van", "t", "hoff"]
    assert normalised_words("3511 AB") == ["3511", "ab"]


async def test_name_and_postcode_find_the_dossier_on_both_sides(agents: Agents) -> None:
    dossier_id = await agents.start_dossier()
    for query in ("jans", "Jansen", "j jansen", "3511AB", "3511 ab", "1012LG"):
        assert await _found(agents.departing, query) == [dossier_id], query
    for query in ("ansen", "jansens", "Pietersen", "3511AC", "j pietersen"):
        assert await _found(agents.departing, query) == [], query
    # The BSN is no term of the index: it finds only by exact match, as before.
    async with agents.departing.database.reading() as session:
        terms = set(await session.scalars(select(DossierSearchTermRow.term)))
    assert not {term for term in terms if term.isdigit()}
    assert await _found(agents.departing, CLIENT_BSN) == [dossier_id]
    assert await _found(agents.departing, CLIENT_BSN[:8]) == []

    await agents.give_consent(dossier_id)
    await agents.settle()
    # Amsterdam indexed the client from the offer: the new address's postcode.
    assert await _found(agents.receiving, "jansen") == [dossier_id]
    assert await _found(agents.receiving, "1012 LG") == [dossier_id]


async def test_an_import_that_renames_the_client_moves_the_index(agents: Agents) -> None:
    dossier_id = await agents.start_dossier()
    clients = json.loads((DATA / "clients.json").read_bytes())
    clients[0]["name"]["surname"] = "Bakker"
    clients[0]["address"]["postalCode"] = "3512CD"
    await agents.departing.import_provisions(json.dumps(clients).encode(), "json")
    assert await _found(agents.departing, "bakker") == [dossier_id]
    assert await _found(agents.departing, "3512CD") == [dossier_id]
    assert await _found(agents.departing, "jansen") == []
    assert await _found(agents.departing, "3511AB") == []


async def test_after_a_withdrawal_the_receiving_side_finds_the_client_no_more(
    agents: Agents,
) -> None:
    dossier_id = await agents.start_dossier()
    await agents.give_consent(dossier_id)
    await agents.settle()
    await agents.departing.consent.withdraw(dossier_id)
    await agents.settle()
    assert (await agents.receiving.dossier(dossier_id)).state == "consent-withdrawn"
    assert await _found(agents.receiving, "jansen") == []
    async with agents.receiving.database.reading() as session:
        kept = await session.scalars(
            select(DossierSearchTermRow).where(DossierSearchTermRow.dossier_id == dossier_id)
        )
        assert kept.all() == []
    # The departing gemeente still serves the client: it still finds the dossier.
    assert await _found(agents.departing, "jansen") == [dossier_id]


async def test_dossiers_without_terms_are_indexed_by_the_job(agents: Agents) -> None:
    dossier_id = await agents.start_dossier()
    async with agents.departing.database.transaction() as session:
        await session.execute(delete(DossierSearchTermRow))
    # The search reads the index only: a dossier without terms is not found by name.
    assert await _found(agents.departing, "jansen") == []
    assert [job.name for job in agents.departing.hooks.jobs if job.name == "search-index"] == [
        "search-index"
    ]
    search_index = next(j for j in agents.departing.hooks.jobs if j.name == "search-index")
    assert await search_index.run() is False
    assert await _found(agents.departing, "jansen") == [dossier_id]
