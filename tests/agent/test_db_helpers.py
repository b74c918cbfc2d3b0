"""The handover path's database helpers (agent._db) behave as the ORM would, on both backends:
rows they insert or attach are real persistent objects whose later changes are saved."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select

from agent._db import (
    Database,
    DossierRow,
    TransitionRow,
    add_rows,
    insert_persistent,
    load_dossier,
    update_dossier,
)

NOW = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)


def _dossier(dossier_id: str) -> DossierRow:
    return DossierRow(
        id=dossier_id,
        side="departing",
        state="started",
        client_bsn="999993653",
        created_at=NOW,
        updated_at=NOW,
    )


async def _stored(database: Database, dossier_id: str) -> DossierRow:
    async with database.reading() as session:
        found = await session.scalar(select(DossierRow).where(DossierRow.id == dossier_id))
    assert found is not None
    return found


async def test_an_inserted_dossier_stays_in_the_session_and_saves_later_changes(
    database: Database,
) -> None:
    async with database.transaction() as session:
        dossier = _dossier("d1")
        await insert_persistent(session, dossier)
        assert dossier.partner_oin is None  # not given: the column's default, no lazy load
        assert await load_dossier(session, "d1") is dossier
        dossier.partner_gemeentecode = "0363"  # an ordinary ORM change, flushed at commit
    stored = await _stored(database, "d1")
    assert (stored.state, stored.partner_gemeentecode) == ("started", "0363")


async def test_a_loaded_dossier_is_updated_now_and_saves_ordinary_changes(
    database: Database,
) -> None:
    async with database.transaction() as session:
        await insert_persistent(session, _dossier("d2"))
    async with database.transaction() as session:
        dossier = await load_dossier(session, "d2", lock=True)
        assert dossier is not None
        await update_dossier(session, dossier, state="waiting-for-consent", updated_at=NOW)
        assert dossier.state == "waiting-for-consent"
        assert dossier not in session.dirty  # written already, nothing left for the flush
        dossier.client_bsn = None  # erased, as a withdrawal does
        assert await load_dossier(session, "d2") is dossier
    stored = await _stored(database, "d2")
    assert (stored.state, stored.client_bsn) == ("waiting-for-consent", None)
    async with database.transaction() as session:
        assert await load_dossier(session, "missing") is None


async def test_rows_with_other_columns_given_are_inserted_together(database: Database) -> None:
    async with database.transaction() as session:
        await insert_persistent(session, _dossier("d3"))
        await add_rows(
            session,
            TransitionRow,
            {"dossier_id": "d3", "to_state": "started", "at": NOW, "cause": "a"},
            {"dossier_id": "d3", "from_state": "started", "to_state": "x", "at": NOW, "cause": "b"},
        )
    async with database.reading() as session:
        rows = (await session.scalars(select(TransitionRow).order_by(TransitionRow.id))).all()
    assert [(r.from_state, r.to_state, r.cause) for r in rows] == [
        (None, "started", "a"),
        ("started", "x", "b"),
    ]
