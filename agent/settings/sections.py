"""The sections of an agent's settings: consent, handover, takeover, continuation, werkbak.

Each is a nested table of the TOML file (``[consent]``, ``[handover]`` ...) and a group of
environment variables (``MEEVERHUIZEN_AGENT_CONSENT__...``); :mod:`agent.settings` composes them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from protocol.identifiers import IsoCode

__all__ = [
    "ConsentSettings",
    "ContinuationSettings",
    "DeviceExceptionPolicy",
    "ExceptionReason",
    "HandoverSettings",
    "MaintenanceState",
    "TakeoverSettings",
    "WerkbakRole",
    "WerkbakSettings",
]

ExceptionReason = Literal[
    "not-in-assortment", "unsafe-or-worn", "needs-changed", "wlz-institution", "other"
]


class DeviceExceptionPolicy(BaseModel):
    """A receiving gemeente's exception to takeover for devices under one ISO 9999 code."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    reason_code: ExceptionReason = Field(description="Reason code sent in the device decision.")
    reason_text: str = Field(min_length=1, description="Reason told to the client (Dutch, B1).")
    alternative: str = Field(min_length=1, description="Alternative offered to the client.")


class ConsentSettings(BaseModel):
    """The personal consent link, its reminders and the channels it goes out by."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    link_valid_days: int = Field(default=30, gt=0, description="Days a personal link stays valid.")
    session_minutes: int = Field(
        default=30, gt=0, description="Minutes the page session (cookie) lasts after the link."
    )
    attempts_per_address: int = Field(
        default=10, gt=0, description="Failed link attempts per client address per minute."
    )
    attempts_global: int = Field(
        default=300,
        gt=0,
        description="Failed link attempts per minute over all addresses; beyond it only "
        "addresses without a failure of their own may try.",
    )
    reminder_after_working_days: int = Field(
        default=5, gt=0, description="Working days without answer before a reminder goes out."
    )
    task_after_working_days: int = Field(
        default=10, gt=0, description="Working days without answer before a consulent gets a task."
    )
    expire_after_working_days: int = Field(
        default=20, gt=0, description="Working days without answer before the request expires."
    )
    job_interval_seconds: float = Field(
        default=3600.0, gt=0, description="Interval of the reminder and expiry job."
    )
    pseudonym_key: str | None = Field(
        default=None,
        repr=False,
        min_length=32,
        description="Key for pseudonymised data subject ids in the processing log "
        "(default: derived from the signing key).",
    )
    letter_directory: Path | None = Field(
        default=None, description="Where letters (PDF and plain text) are written for printing."
    )
    smtp_host: str | None = Field(default=None, description="SMTP server for e-mail links.")
    smtp_port: int = Field(default=25, ge=1, le=65535, description="SMTP port.")
    smtp_sender: str = Field(
        default="noreply@meeverhuizen.invalid", description="From address of e-mails."
    )
    smtp_starttls: bool = Field(default=False, description="Use STARTTLS on the SMTP connection.")
    clientondersteuning: str = Field(
        default="Bel uw gemeente en vraag naar onafhankelijke cliëntondersteuning. Dat is gratis.",
        description="Where the client finds independent cliëntondersteuning (Dutch, B1).",
    )
    phone_number: str | None = Field(
        default=None, description="Phone number of the departing gemeente shown to the client."
    )


# Life-critical devices: a client cannot be without them for a day (seed: urgent cases).
_URGENT_BY_DEFAULT: dict[str, str] = {
    "04 33": "Zonder anti-decubitusmateriaal kan de cliënt doorliggen.",
    "12 36": "Zonder tillift kan de cliënt niet veilig uit bed of van de stoel.",
    "22 21": "Zonder communicatiehulpmiddel kan de cliënt niet praten met anderen.",
}


class HandoverSettings(BaseModel):
    """Urgency, Wlz institutions and phone numbers for the client (docs/agent.md)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    urgent_iso_codes: dict[IsoCode, str] = Field(
        default_factory=lambda: dict(_URGENT_BY_DEFAULT),
        description="ISO 9999 codes or prefixes of life-critical devices, each with the reason "
        "(Dutch, B1) why a dossier with such a device is urgent (default: 04 33 "
        "anti-decubitus, 12 36 tilliften, 22 21 communicatiehulpmiddelen).",
    )
    wlz_institution_addresses: tuple[
        Annotated[str, StringConstraints(pattern=r"^[1-9][0-9]{3}[A-Z]{2} [1-9][0-9]*$")], ...
    ] = Field(
        default=(),
        description="Addresses of Wlz institutions as postcode and house number ('1012AB 5'): "
        "a move to one stops the Wmo takeover.",
    )
    phone_numbers: dict[
        Annotated[str, StringConstraints(pattern=r"^([0-9]{4}|[0-9]{20})$")],
        Annotated[str, StringConstraints(pattern=r"^\+?[0-9 ()-]{3,20}$")],
    ] = Field(
        default_factory=dict,
        description="Phone numbers shown to the client, by gemeentecode (4 digits) or supplier "
        "OIN (20 digits).",
    )


MaintenanceState = Literal["good", "fair", "poor"]


class TakeoverSettings(BaseModel):
    """Takeover orders, supplier deadlines and the takeover price (docs/supplier.md)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    contact_working_days: int = Field(
        default=5, gt=0, description="Working days the supplier has to contact the client."
    )
    reminder_working_days_before: int = Field(
        default=1, ge=0, description="Working days before the contact deadline the reminder fires."
    )
    bevrijdingsdag: Literal["never", "every-year", "lustrum"] = Field(
        default="lustrum", description="Whether 5 May is a day off: never, every year, lustrum."
    )
    deadline_interval_seconds: float = Field(
        default=60.0, gt=0, description="Interval of the job that fires due deadlines."
    )
    economic_lifetime_months: dict[IsoCode, int] = Field(
        default_factory=dict,
        description="Supplier: contract lifetimes per ISO 9999 prefix (override the defaults).",
    )
    floor_basis_points: int = Field(
        default=1000, ge=0, le=10_000, description="Supplier: contract floor, share of the price."
    )
    maintenance_state: MaintenanceState = Field(
        default="good", description="Supplier: maintenance state offered when none is recorded."
    )
    settlement_order_wait_working_days: int = Field(
        default=10,
        gt=0,
        description="Supplier: working days a takeover price offer waits for its takeover order "
        "before it is disputed.",
    )
    settlement_answered_by: Literal["agent", "planner"] = Field(
        default="agent",
        description="Supplier: who answers a takeover price offer once the device is taken over: "
        "the agent by its own recalculation, or a planner in the werkbak.",
    )
    settlement_planner_working_days: int = Field(
        default=5,
        gt=0,
        description="Supplier: working days a planner has to accept or dispute an offered takeover "
        "price before a task says the answer is late.",
    )


class ContinuationSettings(BaseModel):
    """After the decision: bruikleen transfers, alternatives, fixed devices (docs/supplier.md)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    transfer_price: Literal["free", "residual-value"] = Field(
        default="free",
        description="Bruikleen: what this gemeente asks for a device it lends out (departing) or "
        "pays for one it takes over (receiving); the residual value only when both say so.",
    )
    alternative_working_days: int = Field(
        default=10,
        gt=0,
        description="Receiving side: working days to provide the alternative for an exception.",
    )
    fixed_device_contact_working_days: int = Field(
        default=5,
        gt=0,
        description="Receiving side: working days to contact a client about a fixed device need.",
    )


WerkbakRole = Literal["consulent", "planner", "operator"]


def _default_role_values() -> dict[str, WerkbakRole]:
    return {"consulent": "consulent", "planner": "planner", "operator": "operator"}


class WerkbakSettings(BaseModel):
    """The werkbak's sign-in with OpenID Connect (docs/werkbak.md)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    oidc_issuer: str | None = Field(
        default=None,
        description="Issuer URL of the organisation's OpenID Connect provider; its "
        "`/.well-known/openid-configuration` is read. Unset: no sign-in with a provider.",
    )
    oidc_client_id: str | None = Field(
        default=None, description="Client id of the werkbak at the provider."
    )
    oidc_client_secret: str | None = Field(
        default=None,
        repr=False,
        description="Client secret at the provider (`client_secret_basic`); unset for a public "
        "client, which PKCE protects.",
    )
    oidc_scopes: str = Field(
        default="openid profile", description="Scopes asked at sign-in (`openid` is required)."
    )
    roles_claim: str = Field(
        default="roles", description="ID token claim holding the person's roles (a list)."
    )
    role_values: dict[str, WerkbakRole] = Field(
        default_factory=_default_role_values,
        description="Values of the roles claim and the werkbak role each gives (default: the "
        "values `consulent`, `planner` and `operator` give the role of that name).",
    )
    organisation_claim: str | None = Field(
        default=None,
        description="ID token claim that must hold this organisation's OIN (a provider that "
        "serves several organisations); unset: not checked.",
    )
    name_claim: str = Field(default="name", description="ID token claim with the person's name.")
    session_minutes: int = Field(
        default=480, gt=0, description="Minutes a werkbak session lasts after sign-in."
    )
    base_url: str | None = Field(
        default=None,
        description="Base URL people open the werkbak on (the provider's redirect goes there); "
        "default: public_base_url.",
    )
