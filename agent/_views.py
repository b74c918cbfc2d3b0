"""Request and response models of the agent's own API (camelCase on the wire)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from protocol.identifiers import Bsn
from protocol.messages import Address, DataKind, RepresentativeKind

ConsentChannel = Literal["online", "phone", "paper", "in-person"]
DeviceId = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")]

__all__ = [
    "ApiModel",
    "ConsentInput",
    "DecisionView",
    "DossierStart",
    "DossierSummary",
    "DossierView",
    "ImportSummary",
    "OutboxEntryView",
    "TaskCompletion",
    "TaskView",
    "TransitionView",
]


class ApiModel(BaseModel):
    """Base of the agent API models: camelCase on the wire, unknown fields refused."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True
    )


class DossierStart(ApiModel):
    """Start a handover by hand for a client in the register (the BSN goes in the body)."""

    bsn: Bsn
    move_date: date
    new_address: Address = Field(description="Address in the receiving gemeente.")


class ConsentInput(ApiModel):
    """The client's answer to the consent request, as a recorded fact."""

    outcome: Literal["given", "refused"] = "given"
    data_kinds: tuple[DataKind, ...] = ()
    device_ids: tuple[DeviceId, ...] = ()
    channel: ConsentChannel
    given_by: Literal["client", "representative"]
    given_at: datetime
    representative_name: str | None = Field(
        default=None, min_length=1, max_length=200, description="Name of the representative."
    )
    representative_relation: RepresentativeKind | None = Field(
        default=None, description="How the representative relates to the client."
    )
    recorded_by: str | None = Field(
        default=None,
        min_length=1,
        max_length=100,
        description="Consulent who recorded consent given by phone, paper or at the counter.",
    )


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


class DossierSummary(ApiModel):
    dossier_id: str
    side: str
    state: str
    partner_oin: str | None
    partner_gemeentecode: str | None
    move_date: date | None
    created_at: datetime
    updated_at: datetime


class DossierView(DossierSummary):
    timeline: tuple[TransitionView, ...]
    decisions: tuple[DecisionView, ...]


class ImportSummary(ApiModel):
    clients: int
    devices: int


class OutboxEntryView(ApiModel):
    message_id: str
    dossier_id: str
    sequence: int
    kind: str
    message_type: str
    destination_oin: str | None
    state: str
    attempts: int
    created_at: datetime
    execute_after: datetime
    last_error: str | None


class TaskView(ApiModel):
    """A task for a consulent or case worker about one dossier; never holds a BSN."""

    id: str
    dossier_id: str | None
    kind: str
    state: str
    description: str
    due_at: datetime | None
    created_at: datetime
    done_at: datetime | None
    done_by: str | None


class TaskCompletion(ApiModel):
    """Who finished the task (a name or employee number, not a client identifier)."""

    done_by: str = Field(min_length=1, max_length=100)
