"""Imports into the register: CSV and JSON, every bad row reported with its line number and reason.

Parsing touches no database. :func:`read_import` yields the valid clients group by group as it
reads, so a large import never holds all its clients at once; after the first problem it yields
no more groups, reads on, and raises :class:`ImportFailed` with every problem at the end.
:func:`parse_import` returns every client at once. Formats are documented in ``docs/agent.md``.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import ValidationError

from agent.errors import ImportFailed, ImportProblem
from agent.register.models import RegisterClient
from protocol.messages import Device
from protocol.strict_json import MAX_NUMBER_LENGTH

__all__ = ["CSV_COLUMNS", "ImportChunk", "ImportFormat", "parse_import", "read_import"]

ImportFormat = Literal["csv", "json"]

# --- CSV ----------------------------------------------------------------------------------------

_CLIENT_COLUMNS: tuple[str, ...] = (
    "bsn",
    "initials",
    "given_names",
    "surname_prefix",
    "surname",
    "birth_date",
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
    "representative_street",
    "representative_house_number",
    "representative_postal_code",
    "representative_city",
    "representative_gemeentecode",
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
    representative = {"kind": values.get("representative_kind", ""), "name": name}
    representative["contact"] = contact
    columns = ("street", "house_number", "postal_code", "city", "gemeentecode")
    address = _present(row, *(f"representative_{column}" for column in columns))
    if address:
        # The representative's own address, for letters (it stays in the register).
        representative["address"] = {
            _camel(key.removeprefix("representative_")): value for key, value in address.items()
        }
    return representative


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
    client |= {_camel(k): v for k, v in _present(row, "birth_date").items()}
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
    rows = iter(reader)
    while True:
        try:
            row = next(rows)
        except StopIteration:
            return
        except csv.Error as exc:  # e.g. a field over the csv module's 128 KiB limit
            # DictReader counts only rows it returned; its reader knows the line that failed.
            problem = ImportProblem(reader.reader.line_num, f"not valid CSV: {exc}")
            raise ImportFailed([problem]) from exc
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


def _json_elements(text: str) -> Iterator[tuple[int, Any, int]]:
    """Yield each element of a top-level JSON array with the line it starts on and its end.

    Lines are counted from the previous element on, so the whole text is read once.
    """
    decoder = json.JSONDecoder(parse_int=_bounded_integer)
    lines = _LineCounter(text)
    position = _skip_space(text, 0)
    if not text.startswith("[", position):
        raise ImportFailed([ImportProblem(lines.at(position), "expected a JSON array")])
    position = _skip_space(text, position + 1)
    if text.startswith("]", position):
        return
    while True:
        try:
            element, end = decoder.raw_decode(text, position)
        except json.JSONDecodeError as exc:
            raise ImportFailed([ImportProblem(exc.lineno, f"malformed JSON: {exc.msg}")]) from exc
        except RecursionError as exc:
            problem = ImportProblem(lines.at(position), "malformed JSON: nested too deeply")
            raise ImportFailed([problem]) from exc
        except _NumberTooLong as exc:
            problem = ImportProblem(lines.at(position), f"malformed JSON: {exc}")
            raise ImportFailed([problem]) from exc
        yield lines.at(position), element, end
        position = _skip_space(text, end)
        if text.startswith(",", position):
            position = _skip_space(text, position + 1)
        elif text.startswith("]", position) and not text[position + 1 :].strip():
            return
        else:
            raise ImportFailed([ImportProblem(lines.at(position), "malformed JSON array")])


class _NumberTooLong(ValueError):
    """A number written with more digits than any field takes."""


def _bounded_integer(text: str) -> int:
    # int() of thousands of digits is slow and beyond 4300 refused: stop at a sane length.
    if len(text) > MAX_NUMBER_LENGTH:
        raise _NumberTooLong(f"a number is written with more than {MAX_NUMBER_LENGTH} characters")
    return int(text)


def _skip_space(text: str, position: int) -> int:
    while position < len(text) and text[position] in " \t\r\n":
        position += 1
    return position


class _LineCounter:
    """Line numbers of positions that only move forward: each stretch of text is counted once."""

    def __init__(self, text: str) -> None:
        self._text = text
        self._position = 0
        self._line = 1

    def at(self, position: int) -> int:
        self._line += self._text.count("\n", self._position, position)
        self._position = position
        return self._line


def _json_clients(text: str) -> Iterator[tuple[RegisterClient, int]]:
    """Each valid client with the position read up to; :class:`ImportFailed` at the end."""
    problems: list[ImportProblem] = []
    seen: dict[str, int] = {}
    for line, element, end in _json_elements(text):
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
        if not problems:
            yield client, end
    if problems:
        raise ImportFailed(problems)


@dataclass(frozen=True)
class ImportChunk:
    """A group of valid clients, and how far the import has been read (for a progress bar)."""

    clients: list[RegisterClient]
    done: int
    total: int


def _decode(content: bytes) -> str:
    try:
        return content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ImportFailed([ImportProblem(1, "file is not UTF-8")]) from exc


def read_import(
    content: bytes, import_format: ImportFormat, *, chunk_size: int
) -> Iterator[ImportChunk]:
    """The import's valid clients in groups of ``chunk_size``; every problem raised at the end."""
    text = _decode(content)
    if import_format == "csv":
        # Rows of one client may be anywhere in the file: the whole file is grouped first.
        clients = _parse_csv(text)
        for start in range(0, len(clients), chunk_size):
            end = min(start + chunk_size, len(clients))
            yield ImportChunk(clients[start:end], end, len(clients))
        return
    group: list[RegisterClient] = []
    for client, end in _json_clients(text):
        group.append(client)
        if len(group) == chunk_size:
            yield ImportChunk(group, end, len(text))
            group = []
    if group:
        yield ImportChunk(group, len(text), len(text))


def parse_import(content: bytes, import_format: ImportFormat) -> list[RegisterClient]:
    """Parse and validate a whole import; :class:`ImportFailed` lists every bad row."""
    return [
        client
        for chunk in read_import(content, import_format, chunk_size=1000)
        for client in chunk.clients
    ]
