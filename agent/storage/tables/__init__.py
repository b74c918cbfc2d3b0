"""Every table of the agent, imported in one place: the schema that the migrations describe.

Rows are grouped by the package whose rules write them; other packages may read them. Each table
is changed only through :class:`agent.storage.database.Database` transactions, and its schema
only through a migration in ``agent/storage/_migrations/versions/``. ``base`` holds the
declarative base; ``core`` the register, dossiers, consent, werkbak and delivery tables;
``follow_up`` the orders, settlement, BRP, registry-answer, transfer and letter tables.
"""

from __future__ import annotations

from agent.storage.tables.base import Base
from agent.storage.tables.core import (
    ClientRow,
    ConsentLinkRow,
    ConsentRow,
    DeadlineRow,
    DeliveryAttemptRow,
    DeviceRow,
    DossierRow,
    DossierSearchTermRow,
    InboundMessageRow,
    Leased,
    OutboxRow,
    PageSessionRow,
    ProcessingRecordRow,
    ProvisionRow,
    TaskRow,
    TransitionRow,
    WerkbakSessionRow,
)
from agent.storage.tables.follow_up import (
    BrpEventCountRow,
    BrpEventRow,
    ClientLetterRow,
    DepartingDeviceRow,
    DeviceTransferRow,
    FeedCursorRow,
    OrderRow,
    RegistryAnswerRow,
    SettlementRow,
    SupplierOrderRow,
)

__all__ = [
    "Base",
    "BrpEventCountRow",
    "BrpEventRow",
    "ClientLetterRow",
    "ClientRow",
    "ConsentLinkRow",
    "ConsentRow",
    "DeadlineRow",
    "DeliveryAttemptRow",
    "DepartingDeviceRow",
    "DeviceRow",
    "DeviceTransferRow",
    "DossierRow",
    "DossierSearchTermRow",
    "FeedCursorRow",
    "InboundMessageRow",
    "Leased",
    "OrderRow",
    "OutboxRow",
    "PageSessionRow",
    "ProcessingRecordRow",
    "ProvisionRow",
    "RegistryAnswerRow",
    "SettlementRow",
    "SupplierOrderRow",
    "TaskRow",
    "TransitionRow",
    "WerkbakSessionRow",
]
