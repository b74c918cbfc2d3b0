"""Strict JSON reading (RFC 8259 with the I-JSON restrictions of RFC 7493).

The size limit is checked before any parsing, and so are the nesting depth and the length of
every number (``_check_limits``, cheap byte scans); input must be UTF-8 without a byte order
mark; objects with a repeated key, NaN/Infinity, numbers that overflow a double and lone
surrogates are refused, and integers beyond 2**53 - 1 are read as doubles, so every accepted
document has exactly one RFC 8785 canonical form.

Most documents are read by ``orjson`` (C, no Python call per object), see ``_read_fast``; anything
it would read differently, and anything it refuses, is read by ``json`` with a hook per object,
so the result and every error stay those of the ``json`` path.
"""

from __future__ import annotations

import itertools
import json
import math
import re
from typing import Any, TypeAlias

import orjson

from protocol.errors import BodyTooLarge, DuplicateJsonKey, MalformedJson

__all__ = ["MAX_DEPTH", "MAX_NUMBER_LENGTH", "JsonValue", "read_json"]

JsonValue: TypeAlias = dict[str, "JsonValue"] | list["JsonValue"] | str | int | float | bool | None

# A \uD800-\uDFFF escape in the raw text: only then can a parsed string hold a surrogate.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
_SURROGATE = re.compile("[\ud800-\udfff]")
# orjson reads integers beyond 64 bits as floats and accepts those beyond 2**53 - 1, so a number of
# 16 or more digits goes to the json path, which reads such integers as doubles (``_integer``).
# With digits as "0", quotes kept and all else "x", such a number shows as "x" and 16 "0"
# (a number follows ":", ",", "[", "-" or whitespace); a string such as an OIN shows a quote first.
_NUMBER_CLASSES = bytes(
    ord("0") if chr(byte) in "0123456789" else byte if byte == ord('"') else ord("x")
    for byte in range(256)
)
_LONG_INTEGER = b"0" * 16

# The deepest nesting of arrays and objects accepted; protocol messages nest less than ten deep.
MAX_DEPTH = 64
# The longest number token accepted (a double needs at most 25 characters written out).
MAX_NUMBER_LENGTH = 40
# I-JSON (RFC 7493 section 2.2): integers a double holds exactly.
_SAFE_INTEGER = 2**53 - 1
_LONG_NUMBER = re.compile(rb"[-+0-9.eE]{%d,}" % (MAX_NUMBER_LENGTH + 1))
# +1 for "[" and "{", -1 for "]" and "}", 0 for every other byte.
_DEPTH_STEP = tuple(1 if byte in b"[{" else -1 if byte in b"]}" else 0 for byte in range(256))
_BRACKETS = bytes(byte for byte in range(256) if byte not in b"[]{}")


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


def _integer(text: str) -> int | float:
    value = int(text)
    if abs(value) <= _SAFE_INTEGER:
        return value
    # Every JSON number is a double (RFC 7493 section 2.2, RFC 8785 section 3.2.2.3, which writes
    # 1e20 as 100000000000000000000): beyond 2**53 - 1 an integer is read as the nearest double,
    # as any I-JSON receiver reads it, never as an unbounded Python int.
    return _finite_float(text)


def _outside_strings(data: bytes) -> bytes:
    # Without its escaped backslashes and quotes, every other piece between quotes is text.
    unescaped = data.replace(b"\\\\", b"").replace(b'\\"', b"") if b"\\" in data else data
    return b"".join(unescaped.split(b'"')[::2])


def _check_limits(data: bytes) -> None:
    """Refuse nesting deeper than ``MAX_DEPTH`` and over-long numbers, before any parsing.

    Byte scans at C speed: string literals are left out first, so brackets and digits inside
    text do not count.
    """
    brackets = data.translate(None, _BRACKETS)
    numbers_possible = _LONG_NUMBER.search(data) is not None
    if len(brackets) <= MAX_DEPTH and not numbers_possible:
        return
    outside_strings = _outside_strings(data)
    if len(brackets) > MAX_DEPTH:
        only_brackets = outside_strings.translate(None, _BRACKETS)
        depth = max(itertools.accumulate(map(_DEPTH_STEP.__getitem__, only_brackets)), default=0)
        if depth > MAX_DEPTH:
            raise MalformedJson(f"body nests {depth} deep, the limit is {MAX_DEPTH}")
    if numbers_possible and _LONG_NUMBER.search(outside_strings) is not None:
        raise MalformedJson(f"body holds a number longer than {MAX_NUMBER_LENGTH} characters")


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
    _check_limits(data)
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
            parse_int=_integer,
        )
    except json.JSONDecodeError as exc:
        raise MalformedJson(f"body is not JSON: {exc.msg} at position {exc.pos}") from exc
    except RecursionError as exc:
        raise MalformedJson("body nests too deeply") from exc
