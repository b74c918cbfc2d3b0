"""BRP events as CloudEvents: what the BRP publishes about a person, checked field by field.

Events follow the BRP API Gebeurtenissen work (type ``nl.brp.verhuisd`` with a subject, or the
dotted form ``nl.brp.verhuisd.<subject>``; ``nl.brp.verblijfplaats-gecorrigeerd``;
``nl.brp.overleden``) in CloudEvents 1.0 structured JSON mode. ``docs/brp-events.md`` gives the
exact shape. :func:`parse_events` refuses a malformed event with the first bad field named,
never with its value (it may be a BSN).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Final, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, ValidationError

from agent.errors import EventBatchTooLarge, EventInvalid
from protocol.errors import ProtocolError
from protocol.identifiers import Bsn, Gemeentecode
from protocol.strict_json import read_json

__all__ = [
    "BRP_TYPES",
    "KEPT_SUBJECTS",
    "MOVE_CANCELLED",
    "CloudEvent",
    "Kind",
    "PersonData",
    "parse_event",
    "parse_events",
]


VERHUISD: Final = "nl.brp.verhuisd"
CORRECTED: Final = "nl.brp.verblijfplaats-gecorrigeerd"
DIED: Final = "nl.brp.overleden"
# Own type (documented): the BRP work has no event for an announced move that is withdrawn.
MOVE_CANCELLED: Final = "nl.meeverhuizen.brp.verhuizing-ingetrokken"
Kind = Literal[
    "buitengemeentelijk", "binnengemeentelijk", "emigratie", "immigratie", "corrected", "died",
    "cancelled",
]  # fmt: skip
# (type, subject) -> kind; the dotted forms are those seen in the BRP work's feature files.
_KINDS: Final[dict[tuple[str, str | None], Kind]] = {
    (VERHUISD, "buitengemeentelijk"): "buitengemeentelijk",
    (VERHUISD, "binnengemeentelijk"): "binnengemeentelijk",
    (VERHUISD, "emigratie"): "emigratie",
    (VERHUISD, "immigratie"): "immigratie",
    ("nl.brp.verhuisd.buitengemeentelijk", None): "buitengemeentelijk",
    ("nl.brp.verhuisd.intergemeentelijk", None): "buitengemeentelijk",
    ("nl.brp.verhuisd.binnengemeentelijk", None): "binnengemeentelijk",
    ("nl.brp.verhuisd.emigratie", None): "emigratie",
    ("nl.brp.verhuisd.naar-buitenland", None): "emigratie",
    ("nl.brp.verhuisd.immigratie", None): "immigratie",
    ("nl.brp.ingeschreven.immigratie", None): "immigratie",
    (CORRECTED, None): "corrected",
    (DIED, None): "died",
    (MOVE_CANCELLED, None): "cancelled",
}
KEPT_SUBJECTS: Final[frozenset[str | None]] = frozenset(subject for _, subject in _KINDS)
BRP_TYPES: Final[frozenset[str]] = frozenset(event_type for event_type, _ in _KINDS)
_MAX_ID = 200
_MAX_SOURCE = 500
_ATTRIBUTE_CHARACTERS: Final = frozenset("abcdefghijklmnopqrstuvwxyz0123456789")

# --- event data (BRP field names) ---------------------------------------------------------------


class _Data(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)


class _Code(_Data):
    code: Gemeentecode


class _AddressFunction(_Data):
    code: Literal["W", "B"]  # woonadres, briefadres


class _Datum(_Data):
    datum: date


class _Verblijfplaats(_Data):
    """The new address (BRP ``verblijfplaats``); ``functieAdres`` B is a briefadres."""

    straat: str | None = Field(
        default=None,
        min_length=1,
        max_length=80,
        validation_alias=AliasChoices("straat", "officieleStraatnaam", "korteStraatnaam"),
    )
    huisnummer: int | None = Field(default=None, gt=0, le=99_999)
    huisletter: str | None = Field(default=None, pattern=r"^[A-Za-z]$")
    huisnummertoevoeging: str | None = Field(default=None, min_length=1, max_length=4)
    postcode: str | None = Field(default=None, pattern=r"^[1-9][0-9]{3}[A-Z]{2}$")
    woonplaats: str | None = Field(default=None, min_length=1, max_length=80)
    functie_adres: _AddressFunction | None = Field(default=None, alias="functieAdres")
    datum_aanvang_adreshouding: date | None = Field(default=None, alias="datumAanvangAdreshouding")
    datum_van: _Datum | None = Field(default=None, alias="datumVan")

    @property
    def start(self) -> date | None:
        if self.datum_aanvang_adreshouding is not None:
            return self.datum_aanvang_adreshouding
        return None if self.datum_van is None else self.datum_van.datum


class PersonData(_Data):
    burgerservicenummer: Bsn
    gemeente_van_inschrijving: _Code | None = Field(default=None, alias="gemeenteVanInschrijving")
    vorige_gemeente_van_inschrijving: _Code | None = Field(
        default=None, alias="vorigeGemeenteVanInschrijving"
    )
    verblijfplaats: _Verblijfplaats | None = None


@dataclass(frozen=True)
class CloudEvent:
    """One accepted event: its context attributes and, for BRP person events, its data."""

    source: str
    id: str
    type: str
    subject: str | None
    time: datetime | None
    kind: Kind | None
    data: PersonData | None
    raw_data: Mapping[str, Any] | None = field(default=None, repr=False)


# --- parsing ------------------------------------------------------------------------------------


def parse_events(body: bytes, *, batch: bool, max_events: int) -> list[CloudEvent]:
    """Parse a structured-mode body; :class:`EventInvalid` names the first bad field."""
    try:
        # Strict reading: nesting depth and number length are checked before parsing.
        document = read_json(body, max_bytes=len(body))
    except ProtocolError as exc:
        raise EventInvalid(f"the body is not JSON: {exc.detail}") from exc
    if not batch:
        return [parse_event(document, "")]
    if not isinstance(document, list):
        raise EventInvalid("a batch is a JSON array of events")
    if len(document) > max_events:
        raise EventBatchTooLarge(f"a batch holds at most {max_events} events")
    return [parse_event(raw, f"[{index}].") for index, raw in enumerate(document)]


def parse_event(raw: Any, prefix: str = "") -> CloudEvent:
    """Check one event's context attributes (CloudEvents 1.0, NL GOV profile) and its data."""
    if not isinstance(raw, dict):
        raise EventInvalid(f"{prefix or 'event'}: an event is a JSON object")
    if raw.get("specversion") != "1.0":
        raise EventInvalid(f"{prefix}specversion: must be 1.0")
    event_id = _text(raw, "id", prefix, _MAX_ID)
    source = _text(raw, "source", prefix, _MAX_SOURCE)
    event_type = _text(raw, "type", prefix, 200)
    subject = raw.get("subject")
    if subject is not None and not isinstance(subject, str):
        raise EventInvalid(f"{prefix}subject: must be a string")
    for name in raw:
        if not set(name) <= _ATTRIBUTE_CHARACTERS or len(name) > 20:
            raise EventInvalid(f"{prefix}attribute names use a-z and 0-9 only (20 at most)")
    kind = _KINDS.get((event_type, subject)) or _KINDS.get((event_type, None))
    data = None if kind is None else _person_data(raw, prefix)
    return CloudEvent(
        source=source,
        id=event_id,
        type=event_type,
        subject=subject,
        time=_time(raw.get("time"), prefix),
        kind=kind,
        data=data,
    )


def _text(raw: Mapping[str, Any], name: str, prefix: str, limit: int) -> str:
    value = raw.get(name)
    if not isinstance(value, str) or not value or len(value) > limit:
        raise EventInvalid(f"{prefix}{name}: required, a string of 1 to {limit} characters")
    return value


def _time(value: Any, prefix: str) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise EventInvalid(f"{prefix}time: must be an RFC 3339 timestamp with offset")
    return moment


def _person_data(raw: Mapping[str, Any], prefix: str) -> PersonData:
    content_type = raw.get("datacontenttype", "application/json")
    if content_type != "application/json":
        raise EventInvalid(f"{prefix}datacontenttype: must be application/json")
    try:
        return PersonData.model_validate(raw.get("data"))
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"])
        # Never the value: it may be a BSN.
        message = str(error["msg"]).removeprefix("Value error, ")
        raise EventInvalid(f"{prefix}data{'.' + where if where else ''}: {message}") from exc
