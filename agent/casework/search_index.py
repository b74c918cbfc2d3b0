"""The werkbak's search index: the words a dossier is found by, kept with the dossier.

A search by name or postcode reads ``dossier_search_terms`` by exact, indexed equality and
never reads every dossier's client. The terms of a dossier are the prefixes of each word of its
client's name as the werkbak shows it, and its postcodes (the client's address and the new
address), all lower case without accents. They are written when the dossier leaves the state
it started in (its client and new address are known then) and again whenever the register is
imported for its client; a receiving dossier whose data was erased after a withdrawal keeps
none. Dossiers without terms (made before the index) are indexed by a job at the agent's start.
A BSN is never a term.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Final

from sqlalchemy import delete, exists, select
from sqlalchemy.ext.asyncio import AsyncSession

from agent.casework.files import Client, client_of
from agent.core.context import AgentContext
from agent.core.dossiers import side
from agent.core.hooks import Hooks, StateChange
from agent.core.states import STATES, initial_state
from agent.register.store import Register
from agent.storage.tables import DossierRow, DossierSearchTermRow

__all__ = ["SearchIndex", "dossiers_by_name", "dossiers_by_postcode", "normalised_words"]

# The longest term: a longer word is found by its first 40 letters.
_LONGEST: Final = 40
_WORD: Final = re.compile(r"[a-z0-9]+")
# Dossiers indexed per pass of the job for dossiers without terms.
_BATCH: Final = 200


def normalised_words(text: str) -> list[str]:
    """The words of ``text`` as the index holds them: lower case, no accents, letters and digits."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    plain = "".join(char for char in decomposed if not unicodedata.combining(char))
    return [word[:_LONGEST] for word in _WORD.findall(plain)]


def _terms(client: Client, dossier: DossierRow) -> set[str]:
    # "(gegevens gewist)" is no name: an erased client gives no words.
    name = "" if client.address is None and not client.devices else client.name
    terms = {word[:n] for word in normalised_words(name) for n in range(1, len(word) + 1)}
    postcodes = {client.address.postal_code if client.address else None}
    postcodes.add((dossier.new_address or {}).get("postalCode"))
    terms.update("".join(normalised_words(code)) for code in postcodes if code)
    return terms


async def _forget(session: AsyncSession, dossier: DossierRow) -> None:
    """Remove the dossier's terms, inside the caller's transaction."""
    await session.execute(
        delete(DossierSearchTermRow).where(DossierSearchTermRow.dossier_id == dossier.id)
    )


async def _index(session: AsyncSession, dossier: DossierRow) -> None:
    """Write the terms of a dossier that has none, from its client (none without a client)."""
    if dossier.client_bsn is None:
        return  # nothing to find it by but its id
    terms = _terms(await client_of(session, dossier), dossier)
    session.add_all(DossierSearchTermRow(dossier_id=dossier.id, term=term) for term in terms)


async def dossiers_by_name(session: AsyncSession, text: str) -> Sequence[DossierRow]:
    """Dossiers with a client's name word that starts with each word of ``text``, newest first."""
    words = normalised_words(text)
    if not words:
        return []
    query = select(DossierRow).order_by(DossierRow.created_at.desc(), DossierRow.id)
    for word in words:
        query = query.where(
            exists().where(
                DossierSearchTermRow.dossier_id == DossierRow.id,
                DossierSearchTermRow.term == word,
            )
        )
    return list(await session.scalars(query))


async def dossiers_by_postcode(session: AsyncSession, postcode: str) -> Sequence[DossierRow]:
    """Dossiers with exactly this postcode (``3511AB``), newest first."""
    return await dossiers_by_name(session, postcode.replace(" ", ""))


class SearchIndex:
    """Keeps the search terms of every dossier up to date."""

    def __init__(self, agent: AgentContext) -> None:
        self._agent = agent

    def register(self, hooks: Hooks, register: Register) -> None:
        """Index a new dossier, a register import and an erasure; index what has no terms yet."""
        hooks.on_state(self._on_state, *STATES)
        register.on_replaced(self._on_clients_replaced)
        hooks.every(3600, "search-index", self.index_missing)

    async def _on_state(self, session: AsyncSession, change: StateChange) -> None:
        dossier = change.dossier
        # A receiving agent erases the client's data after entering consent-withdrawn.
        erased = change.target == "consent-withdrawn" and dossier.side == "receiving"
        if erased:
            await _forget(session, dossier)
        elif change.previous == initial_state(side(dossier)):
            await _index(session, dossier)  # a new dossier: it has no terms yet

    async def _on_clients_replaced(
        self, session: AsyncSession, bsns: Iterable[str], now: datetime
    ) -> None:
        dossiers = await session.scalars(
            select(DossierRow).where(
                DossierRow.side == "departing", DossierRow.client_bsn.in_(list(bsns))
            )
        )
        for dossier in dossiers:
            await _forget(session, dossier)
            await _index(session, dossier)

    async def index_missing(self) -> bool:
        """Index dossiers that have no terms yet, a batch per transaction; never wakes delivery."""
        after = ""
        while True:
            async with self._agent.database.transaction() as session:
                missing = list(
                    await session.scalars(
                        select(DossierRow)
                        .where(
                            DossierRow.id > after,
                            DossierRow.client_bsn.is_not(None),
                            ~exists().where(DossierSearchTermRow.dossier_id == DossierRow.id),
                        )
                        .order_by(DossierRow.id)
                        .limit(_BATCH)
                    )
                )
                for dossier in missing:
                    await _index(session, dossier)
            if len(missing) < _BATCH:
                return False
            after = missing[-1].id
