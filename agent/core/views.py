"""What the case system sends to start a dossier, and what it sees of one."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import Field

from agent.api_model import ApiModel
from protocol.identifiers import Bsn
from protocol.messages import Address, DeviceProgress

__all__ = ["DecisionView", "DossierStart", "DossierSummary", "DossierView", "TransitionView"]


class DossierStart(ApiModel):
    """Start a handover by hand for a client in the register (the BSN goes in the body)."""

    bsn: Bsn
    move_date: date
    new_address: Address = Field(description="Address in the receiving gemeente.")


class TransitionView(ApiModel):
    from_state: str | None
    to_state: str
    at: datetime
    cause: str


class DecisionView(ApiModel):
    device_id: str
    iso_code: str
    outcome: str
    reason_code: str | None
    reason_text: str | None
    alternative: str | None
    start_date: date | None
    end_date: date | None
    # Who acts next for the device at the receiving gemeente: "supplier-order" (its supplier,
    # named in supplier_name, has an order) or "gemeente-task" (a person has a task); None when
    # nothing is promised (the client keeps a device of their own, or the device stays behind).
    follow_up: str | None = None
    supplier_name: str | None = None


class DossierSummary(ApiModel):
    dossier_id: str = Field(validation_alias="id")
    side: str
    state: str
    partner_oin: str | None
    partner_gemeentecode: str | None
    move_date: date | None
    urgent: bool = Field(description="The client cannot be without a device: shorter deadlines.")
    urgency_reason: str | None = None
    created_at: datetime
    updated_at: datetime


class DossierView(DossierSummary):
    timeline: tuple[TransitionView, ...]
    decisions: tuple[DecisionView, ...]
    progress: tuple[DeviceProgress, ...] = Field(
        default=(),
        description="Departing side: the latest progress per device the receiving gemeente "
        "reported (handover-progress).",
    )
