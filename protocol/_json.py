"""Strict JSON reading (RFC 8259 with the I-JSON restrictions of RFC 7493).

The size limit is checked before any parsing; input must be UTF-8 without a byte order mark;
objects with a repeated key, NaN/Infinity, numbers that overflow a double and lone surrogates are
refused, so every accepted document has exactly one RFC 8785 canonical form.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any, TypeAlias

from protocol.errors import BodyTooLarge, DuplicateJsonKey, MalformedJson

__all__ = ["JsonValue", "read_json"]

JsonValue: TypeAlias = dict[str, "JsonValue"] | list["JsonValue"] | str | int | float | bool | None

# A \uD800-\uDFFF escape in the raw text: only then can a parsed string hold a surrogate.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
_SURROGATE = re.compile("[\ud800-\udfff]")


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


def read_json(data: bytes, *, max_bytes: int) -> Any:
    """Parse ``data`` as strict UTF-8 JSON, refusing oversized input before reading it."""
    if len(data) > max_bytes:
        raise BodyTooLarge(f"body has {len(data)} bytes, the limit is {max_bytes}")
    if data.startswith(b"\xef\xbb\xbf"):
        raise MalformedJson("body starts with a byte order mark (RFC 8259 section 8.1)")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedJson(f"body is not UTF-8: {exc.reason} at byte {exc.start}") from exc
    try:
        document = json.loads(
            text,
            object_pairs_hook=_object_from_pairs,
            parse_constant=_refuse_constant,
            parse_float=_finite_float,
        )
    except json.JSONDecodeError as exc:
        raise MalformedJson(f"body is not JSON: {exc.msg} at position {exc.pos}") from exc
    except RecursionError as exc:
        raise MalformedJson("body nests too deeply") from exc
    if _SURROGATE_ESCAPE.search(data) and _has_surrogate(document):
        raise MalformedJson("body contains an unpaired UTF-16 surrogate (RFC 7493 section 2.1)")
    return document
