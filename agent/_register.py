"""The register of current provisions: clients with devices and indicatie; CSV and JSON import.

An import is all or nothing: every bad row is reported with its line number and reason, and a
failed import changes nothing. Formats are documented in ``docs/agent.md``.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Literal, Self

from pydantic import Field, ValidationError, model_validator
from sqlalchemy import bindparam, delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from agent._db import ClientRow, DeviceRow, execute, prepared
from agent.errors import ImportFailed, ImportProblem
from protocol.identifiers import Bsn
from protocol.messages import (
    Address,
    ContactPreferences,
    Device,
    FunctionalInformation,
    PersonName,
    Representative,
    WireModel,
)

__all__ = [
    "CSV_COLUMNS",
    "ImportFormat",
    "ImportResult",
    "RegisterClient",
    "RegisterIndicatie",
    "forget_loaded_clients",
    "load_client",
    "parse_import",
    "store_import",
]

ImportFormat = Literal["csv", "json"]


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
    address: Address
    contact_preferences: ContactPreferences
    representative: Representative | None = None
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


@dataclass(frozen=True)
class ImportResult:
    """What an applied import contained."""

    clients: int
    devices: int


# --- CSV ----------------------------------------------------------------------------------------

_CLIENT_COLUMNS: tuple[str, ...] = (
    "bsn",
    "initials",
    "given_names",
    "surname_prefix",
    "surname",
    "street",
    "house_number",
    "house_letter",
    "house_number_addition",
    "postal_code",
    "city",
    "gemeentecode",
    "contact_channels",
    "phone_number",
    "email_address",
    "representative_kind",
    "representative_initials",
    "representative_surname",
    "representative_channels",
    "representative_phone_number",
    "representative_email_address",
    "indicatie_legal_basis",
    "indicatie_reference",
    "indicatie_decision_date",
    "indicatie_start_date",
    "indicatie_end_date",
)
_DEVICE_COLUMNS: tuple[str, ...] = (
    "device_id",
    "iso_code",
    "description",
    "brand",
    "model",
    "serial_number",
    "custom_made",
    "custom_specifications",
    "movable",
    "ownership",
    "supplier_oin",
    "supplier_name",
    "contract_reference",
    "purchase_date",
    "purchase_price_cents",
)
CSV_COLUMNS: tuple[str, ...] = _CLIENT_COLUMNS + _DEVICE_COLUMNS
_REQUIRED_COLUMNS = frozenset(
    {"bsn", "surname", "street", "house_number", "postal_code", "city", "gemeentecode"}
    | {"contact_channels", "device_id", "iso_code", "description", "custom_made", "movable"}
    | {"ownership"}
)


def _present(row: Mapping[str, str], *names: str) -> dict[str, str]:
    return {name: row[name].strip() for name in names if (row.get(name) or "").strip()}


def _channels(text: str | None) -> list[str]:
    return [part for part in (text or "").replace(";", " ").split() if part]


def _contact(row: Mapping[str, str], prefix: str) -> dict[str, Any]:
    values = _present(row, f"{prefix}phone_number", f"{prefix}email_address")
    contact: dict[str, Any] = {"channels": _channels(row.get(f"{prefix}channels"))}
    if f"{prefix}phone_number" in values:
        contact["phoneNumber"] = values[f"{prefix}phone_number"]
    if f"{prefix}email_address" in values:
        contact["emailAddress"] = values[f"{prefix}email_address"]
    return contact


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)


def _csv_representative(row: Mapping[str, str]) -> dict[str, Any] | None:
    values = _present(row, "representative_kind", "representative_initials")
    values |= _present(row, "representative_surname")
    if not values:
        return None
    name = {"surname": values.get("representative_surname", "")}
    if "representative_initials" in values:
        name["initials"] = values["representative_initials"]
    contact = _contact(row, "representative_")
    return {"kind": values.get("representative_kind", ""), "name": name, "contact": contact}


def _csv_indicatie(row: Mapping[str, str]) -> dict[str, Any] | None:
    values = _present(
        row,
        "indicatie_legal_basis",
        "indicatie_reference",
        "indicatie_decision_date",
        "indicatie_start_date",
        "indicatie_end_date",
    )
    if not values:
        return None
    indicatie = {_camel(key.removeprefix("indicatie_")): value for key, value in values.items()}
    if "reference" in indicatie:
        indicatie["beschikkingReference"] = indicatie.pop("reference")
    return indicatie


def _csv_client(row: Mapping[str, str]) -> dict[str, Any]:
    name = {_camel(k): v for k, v in _present(row, "initials", "given_names").items()}
    name |= {_camel(k): v for k, v in _present(row, "surname_prefix", "surname").items()}
    address_columns = ("street", "house_number", "house_letter", "house_number_addition")
    address = {_camel(k): v for k, v in _present(row, *address_columns).items()}
    address |= {_camel(k): v for k, v in _present(row, "postal_code", "city").items()}
    address |= _present(row, "gemeentecode")
    contact: dict[str, Any] = {"channels": _channels(row.get("contact_channels"))}
    contact |= {_camel(k): v for k, v in _present(row, "phone_number", "email_address").items()}
    client: dict[str, Any] = {
        "bsn": row.get("bsn", "").strip(),
        "name": name,
        "address": address,
        "contactPreferences": contact,
    }
    representative = _csv_representative(row)
    if representative is not None:
        client["representative"] = representative
    indicatie = _csv_indicatie(row)
    if indicatie is not None:
        client["indicatie"] = indicatie
    return client


def _csv_device(row: Mapping[str, str]) -> dict[str, Any]:
    plain = _present(row, *(c for c in _DEVICE_COLUMNS if not c.startswith("supplier_")))
    device: dict[str, Any] = {_camel(key): value for key, value in plain.items()}
    supplier = _present(row, "supplier_oin", "supplier_name")
    if supplier:
        device["supplier"] = {
            "oin": supplier.get("supplier_oin"),
            "name": supplier.get("supplier_name"),
        }
    return device


def _describe(error: Mapping[str, Any], prefix: str) -> str:
    path = ".".join(str(part) for part in error["loc"])
    message = str(error["msg"]).removeprefix("Value error, ")
    # Never the input value: it may be a BSN or other personal data.
    return f"{prefix}{path}: {message}" if path else f"{prefix}{message}"


def _validation_problems(
    exc: ValidationError, line: int, prefix: str = "", *, skip_devices: bool = False
) -> list[ImportProblem]:
    return [
        ImportProblem(line, _describe(error, prefix))
        for error in exc.errors()
        # CSV: a bad device was already reported on its own line.
        if not (skip_devices and len(error["loc"]) > 1 and error["loc"][0] == "devices")
    ]


def _csv_rows(text: str) -> Iterator[tuple[int, dict[str, str]]]:
    reader = csv.DictReader(io.StringIO(text, newline=""))
    missing = sorted(_REQUIRED_COLUMNS - set(reader.fieldnames or ()))
    if missing:
        raise ImportFailed([ImportProblem(1, f"missing columns: {', '.join(missing)}")])
    unknown = sorted(set(reader.fieldnames or ()) - set(CSV_COLUMNS))
    if unknown:
        raise ImportFailed([ImportProblem(1, f"unknown columns: {', '.join(unknown)}")])
    for row in reader:
        if None in row:
            yield reader.line_num, {"__extra__": "x"}
            continue
        yield reader.line_num, row


def _parse_csv(text: str) -> list[RegisterClient]:
    problems: list[ImportProblem] = []
    groups: dict[str, tuple[int, dict[str, Any], list[dict[str, Any]]]] = {}
    for line, row in _csv_rows(text):
        if "__extra__" in row:
            problems.append(ImportProblem(line, "more fields than columns"))
            continue
        client = _csv_client(row)
        device = _csv_device(row)
        try:
            Device.model_validate(device)
        except ValidationError as exc:
            problems.extend(_validation_problems(exc, line, "device."))
        first = groups.setdefault(client["bsn"], (line, client, []))
        if first[1] != client:
            problems.append(
                ImportProblem(line, f"client columns differ from line {first[0]} for this bsn")
            )
        first[2].append(device)
    clients = []
    for line, client, devices in groups.values():
        try:
            clients.append(RegisterClient.model_validate({**client, "devices": devices}))
        except ValidationError as exc:
            problems.extend(_validation_problems(exc, line, skip_devices=True))
    if problems:
        raise ImportFailed(sorted(problems, key=lambda problem: problem.line))
    return clients


# --- JSON ---------------------------------------------------------------------------------------


def _json_elements(text: str) -> Iterator[tuple[int, Any]]:
    """Yield each element of a top-level JSON array with the line it starts on."""
    decoder = json.JSONDecoder()
    position = _skip_space(text, 0)
    if not text.startswith("[", position):
        raise ImportFailed([ImportProblem(_line(text, position), "expected a JSON array")])
    position = _skip_space(text, position + 1)
    if text.startswith("]", position):
        return
    while True:
        try:
            element, end = decoder.raw_decode(text, position)
        except json.JSONDecodeError as exc:
            raise ImportFailed([ImportProblem(exc.lineno, f"malformed JSON: {exc.msg}")]) from exc
        yield _line(text, position), element
        position = _skip_space(text, end)
        if text.startswith(",", position):
            position = _skip_space(text, position + 1)
        elif text.startswith("]", position) and not text[position + 1 :].strip():
            return
        else:
            raise ImportFailed([ImportProblem(_line(text, position), "malformed JSON array")])


def _skip_space(text: str, position: int) -> int:
    while position < len(text) and text[position] in " \t\r\n":
        position += 1
    return position


def _line(text: str, position: int) -> int:
    return text.count("\n", 0, position) + 1


def _parse_json(text: str) -> list[RegisterClient]:
    problems: list[ImportProblem] = []
    clients: list[RegisterClient] = []
    seen: dict[str, int] = {}
    for line, element in _json_elements(text):
        try:
            client = RegisterClient.model_validate(element)
        except ValidationError as exc:
            problems.extend(_validation_problems(exc, line))
            continue
        if client.bsn in seen:
            problems.append(
                ImportProblem(line, f"same bsn as the client on line {seen[client.bsn]}")
            )
        seen.setdefault(client.bsn, line)
        clients.append(client)
    if problems:
        raise ImportFailed(problems)
    return clients


def parse_import(content: bytes, import_format: ImportFormat) -> list[RegisterClient]:
    """Parse and validate a whole import; :class:`ImportFailed` lists every bad row."""
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ImportFailed([ImportProblem(1, "file is not UTF-8")]) from exc
    if import_format == "csv":
        return _parse_csv(text)
    return _parse_json(text)


# --- storage ------------------------------------------------------------------------------------


def _wire(model: WireModel, *, exclude: set[str] | None = None) -> dict[str, Any]:
    document: dict[str, Any] = model.model_dump(
        mode="json", by_alias=True, exclude_none=True, exclude=exclude
    )
    return document


async def store_import(
    session: AsyncSession, clients: Sequence[RegisterClient], *, now: datetime
) -> ImportResult:
    """Replace each imported client's record (by BSN) inside the caller's transaction."""
    forget_loaded_clients(session)
    for client in clients:
        existing = await session.scalar(select(ClientRow.id).where(ClientRow.bsn == client.bsn))
        if existing is not None:
            await session.execute(delete(DeviceRow).where(DeviceRow.client_id == existing))
            await session.execute(delete(ClientRow).where(ClientRow.id == existing))
        row = ClientRow(
            bsn=client.bsn, details=_wire(client, exclude={"bsn", "devices"}), imported_at=now
        )
        session.add(row)
        await session.flush()
        session.add_all(
            DeviceRow(
                client_id=row.id,
                device_id=device.device_id,
                iso_code=device.iso_code,
                movable=device.movable,
                details=_wire(device),
            )
            for device in client.devices
        )
    return ImportResult(clients=len(clients), devices=sum(len(c.devices) for c in clients))


_LOADED = "meeverhuizen.loaded_clients"
# One round trip: the client with its devices (a handover reads the client several times).
_CLIENT = prepared(
    select(ClientRow.details, DeviceRow.details.label("device"))
    .outerjoin(DeviceRow, DeviceRow.client_id == ClientRow.id)
    .where(ClientRow.bsn == bindparam("bsn"))
    .order_by(DeviceRow.id)
)


def forget_loaded_clients(session: AsyncSession) -> None:
    """After a change to clients in this session: :func:`load_client` reads them again."""
    session.info.pop(_LOADED, None)


async def load_client(session: AsyncSession, bsn: str) -> RegisterClient | None:
    """The register's record of the client with this BSN, or None.

    Read once per session (a handover's steps read the client several times in a transaction);
    a change in the same session calls :func:`forget_loaded_clients`.
    """
    loaded: dict[str, RegisterClient | None] = session.info.setdefault(_LOADED, {})
    if bsn in loaded:
        return loaded[bsn]
    await session.flush()  # an import earlier in the same transaction counts
    rows = (await execute(session, _CLIENT, {"bsn": bsn})).all()
    client = (
        RegisterClient.model_validate(
            {
                **rows[0].details,
                "bsn": bsn,
                "devices": [r.device for r in rows if r.device is not None],
            }
        )
        if rows
        else None
    )
    loaded[bsn] = client
    return client
