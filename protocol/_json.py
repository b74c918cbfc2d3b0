"""Strict JSON reading (RFC 8259 with the I-JSON restrictions of RFC 7493).

The size limit is checked before any parsing; input must be UTF-8 without a byte order mark;
objects with a repeated key, NaN/Infinity, numbers that overflow a double and lone surrogates are
refused, so every accepted document has exactly one RFC 8785 canonical form.

Most documents are read by ``orjson`` (C, no Python call per object), see ``_read_fast``; anything
it would read differently, and anything it refuses, is read by ``json`` with a hook per object,
so the result and every error stay those of the ``json`` path.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any, TypeAlias

import orjson

from protocol.errors import BodyTooLarge, DuplicateJsonKey, MalformedJson

__all__ = ["JsonValue", "read_json"]

JsonValue: TypeAlias = dict[str, "JsonValue"] | list["JsonValue"] | str | int | float | bool | None

# A \uD800-\uDFFF escape in the raw text: only then can a parsed string hold a surrogate.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
_SURROGATE = re.compile("[\ud800-\udfff]")
# orjson reads integers beyond 64 bits as floats, so a number of 19 or more digits goes to the json
# path. With digits as "0", quotes kept and all else "x", such a number shows as "x" and 19 "0"
# (a number follows ":", ",", "[", "-" or whitespace); a string such as an OIN shows a quote first.
_NUMBER_CLASSES = bytes(
    ord("0") if chr(byte) in "0123456789" else byte if byte == ord('"') else ord("x")
    for byte in range(256)
)
_LONG_INTEGER = b"0" * 19


def _object_from_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    document = dict(pairs)
    if len(document) != len(pairs):
        raise DuplicateJsonKey(f"object key {_first_repeated(pairs)!r} occurs more than once")
    return document


def _first_repeated(pairs: list[tuple[str, Any]]) -> str:
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            return key
        seen.add(key)
    return ""


def _refuse_constant(name: str) -> Any:
    raise MalformedJson(f"{name} is not a JSON number (RFC 8259 section 6)")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise MalformedJson(f"number {text[:40]} does not fit an IEEE 754 double (RFC 7493)")
    return value


def _has_surrogate(value: Any) -> bool:
    if isinstance(value, str):
        return _SURROGATE.search(value) is not None
    if isinstance(value, dict):
        return any(_has_surrogate(key) or _has_surrogate(item) for key, item in value.items())
    if isinstance(value, list):
        return any(_has_surrogate(item) for item in value)
    return False


def _has_long_integer(data: bytes) -> bool:
    classes = data.translate(_NUMBER_CLASSES)
    return classes.startswith(_LONG_INTEGER) or b"x" + _LONG_INTEGER in classes


def _read_fast(data: bytes) -> tuple[bool, Any]:
    """``(True, document)`` when orjson reads ``data`` exactly as the json path would."""
    # Without a backslash every quote in the text delimits a string, and every string of the
    # parsed document is written with exactly two quotes; an object member lost to a repeated
    # key takes at least its name with it, so fewer quotes come back (RFC 8259 section 4).
    if b"\\" in data or _has_long_integer(data):
        return False, None
    try:
        document = orjson.loads(data)
        written_again = orjson.dumps(document)
    except (orjson.JSONDecodeError, orjson.JSONEncodeError):  # refused, or nested too deeply
        return False, None
    return written_again.count(b'"') == data.count(b'"'), document


def read_json(data: bytes, *, max_bytes: int) -> Any:
    """Parse ``data`` as strict UTF-8 JSON, refusing oversized input before reading it."""
    if len(data) > max_bytes:
        raise BodyTooLarge(f"body has {len(data)} bytes, the limit is {max_bytes}")
    if data.startswith(b"\xef\xbb\xbf"):
        raise MalformedJson("body starts with a byte order mark (RFC 8259 section 8.1)")
    exact, document = _read_fast(data)
    if not exact:
        document = _read_exact(data)
    if _SURROGATE_ESCAPE.search(data) and _has_surrogate(document):
        raise MalformedJson("body contains an unpaired UTF-16 surrogate (RFC 7493 section 2.1)")
    return document


def _read_exact(data: bytes) -> Any:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedJson(f"body is not UTF-8: {exc.reason} at byte {exc.start}") from exc
    try:
        return json.loads(
            text,
            object_pairs_hook=_object_from_pairs,
            parse_constant=_refuse_constant,
            parse_float=_finite_float,
        )
    except json.JSONDecodeError as exc:
        raise MalformedJson(f"body is not JSON: {exc.msg} at position {exc.pos}") from exc
    except RecursionError as exc:
        raise MalformedJson("body nests too deeply") from exc
