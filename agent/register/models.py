"""The register's records: a client with the devices provided now, as imports carry them."""

from __future__ import annotations

from datetime import date
from typing import Self

from pydantic import Field, model_validator

from agent.api_model import ApiModel
from protocol.identifiers import Bsn
from protocol.messages import (
    Address,
    ClientRepresentative,
    ContactPreferences,
    Device,
    FunctionalInformation,
    PersonName,
    WireModel,
)

__all__ = [
    "ADULT_CONSENT_AGE",
    "ImportResult",
    "RegisterClient",
    "RegisterIndicatie",
]

# AVG/UAVG art. 5: from 16 a person consents for themselves; below it a parent or guardian does.
ADULT_CONSENT_AGE = 16


class RegisterIndicatie(WireModel):
    """The indicatie and beschikking under which the client's devices are provided."""

    legal_basis: str = Field(min_length=1, max_length=200)
    beschikking_reference: str = Field(min_length=1, max_length=200)
    decision_date: date
    start_date: date
    end_date: date | None = None

    @model_validator(mode="after")
    def _end_after_start(self) -> Self:
        if self.end_date is not None and self.end_date < self.start_date:
            raise ValueError("endDate is before startDate")
        return self


class RegisterClient(WireModel):
    """A client with the devices provided now (JSON import: one array element)."""

    bsn: Bsn
    name: PersonName
    birth_date: date | None = None
    address: Address
    contact_preferences: ContactPreferences
    # With their own postal address for letters, as the offer carries them.
    representative: ClientRepresentative | None = None
    indicatie: RegisterIndicatie | None = None
    functional_information: FunctionalInformation | None = None
    devices: tuple[Device, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _device_ids_unique(self) -> Self:
        seen: set[str] = set()
        for device in self.devices:
            if device.device_id in seen:
                raise ValueError(f"device id {device.device_id} occurs twice")
            seen.add(device.device_id)
        return self

    def consents_through_representative(self, on: date) -> bool:
        """Whether, on ``on``, a parent or guardian answers for this client (under 16)."""
        if self.birth_date is None:
            return False
        born = self.birth_date
        age = on.year - born.year - ((on.month, on.day) < (born.month, born.day))
        return age < ADULT_CONSENT_AGE


class ImportResult(ApiModel):
    """What an applied import contained."""

    clients: int
    devices: int
