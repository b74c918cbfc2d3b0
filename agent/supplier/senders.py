"""Which gemeente may speak of a dossier at a supplier: the one its orders and notices came from."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from agent.errors import SenderNotPermitted
from agent.storage.tables import DepartingDeviceRow, SupplierOrderRow

__all__ = ["check_gemeente"]


async def check_gemeente(
    session: AsyncSession,
    dossier_id: str,
    sender_oin: str,
    *,
    orders: bool = True,
    notices: bool = True,
) -> None:
    """A dossier's orders (and its notices) come from one gemeente; no other may speak of it."""
    senders: set[str] = set()
    if orders:
        senders.update(
            await session.scalars(
                select(SupplierOrderRow.gemeente_oin).where(
                    SupplierOrderRow.dossier_id == dossier_id
                )
            )
        )
    if notices:
        senders.update(
            await session.scalars(
                select(DepartingDeviceRow.gemeente_oin).where(
                    DepartingDeviceRow.dossier_id == dossier_id
                )
            )
        )
    if senders and sender_oin not in senders:
        raise SenderNotPermitted("this dossier's orders come from another gemeente")
