"""The registry client's verified answers, kept in the agent's database across restarts.

A restarted agent that meets a registry which is down at that moment still verifies and
delivers with the answers it had, within the same staleness bound as before the restart
(docs/registry.md, "Staleness bound"). The client verifies each answer again when it reads it
back, so a row cannot bring in anything the registry did not sign.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete, select

from agent.storage.database import Database
from agent.storage.tables import RegistryAnswerRow
from registry.client import StoredAnswer

__all__ = ["RegistryAnswers"]


class RegistryAnswers:
    """``registry.client.AnswerStore`` on the ``registry_answers`` table."""

    def __init__(self, database: Database) -> None:
        self._database = database

    async def load(self) -> Sequence[StoredAnswer]:
        async with self._database.reading() as session:
            rows = await session.scalars(select(RegistryAnswerRow))
            return [
                StoredAnswer(
                    resource=row.resource,
                    body=row.body,
                    headers=tuple((str(name), str(value)) for name, value in row.headers),
                    etag=row.etag,
                    fresh_until=row.fresh_until,
                    stale_until=row.stale_until,
                )
                for row in rows
            ]

    async def save(self, answer: StoredAnswer) -> None:
        async with self._database.transaction() as session:
            await session.execute(
                delete(RegistryAnswerRow).where(RegistryAnswerRow.resource == answer.resource)
            )
            session.add(
                RegistryAnswerRow(
                    resource=answer.resource,
                    body=answer.body,
                    headers=[list(header) for header in answer.headers],
                    etag=answer.etag,
                    fresh_until=answer.fresh_until,
                    stale_until=answer.stale_until,
                )
            )
