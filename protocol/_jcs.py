"""RFC 8785 JSON Canonicalization Scheme (JCS).

The fast path lets a C encoder (``orjson``, else ``json.dumps``) do the work; its output equals JCS
whenever the value holds no floats, no integers of 16 or more digits and no object key at or above
U+E000 (the only place where Python's code point order differs from the UTF-16 code unit order of
RFC 8785 section 3.2.3). Anything else goes through the exact, slower serializer below. ``orjson``
writes NaN and Infinity as ``null`` and refuses what ``json`` may accept (non-string keys,
subclasses, integers beyond 64 bits, deep nesting): output with ``null`` and every refusal go to
``json``, and what ``json`` refuses goes to the exact serializer, whose errors are the ones raised.
Integers beyond 2**53 - 1 are refused (I-JSON, RFC 7493 section 2.2) rather than rounded.

The proof that the encoder output has none of these uses only C-speed byte operations
(``bytes.translate`` and substring search), see ``_needs_exact_path``; a string that merely looks
like a number can give a false alarm, which only costs a detour through the exact serializer.
"""

from __future__ import annotations

import json
import math
from typing import Any

import orjson

from protocol._json import JsonValue
from protocol.errors import IntegerOutOfRange, MalformedJson

__all__ = ["canonicalize"]

# I-JSON (RFC 7493 section 2.2): integers in this range are exact doubles everywhere, and str()
# equals the ECMAScript form; larger ones would be rounded by the receiver, so they are refused.
_SAFE_INTEGER = 2**53 - 1
_NUMBER_START = frozenset(bytes([byte]) for byte in b"-0123456789")


def _table(*classes: tuple[bytes, bytes], other: bytes) -> bytes:
    table = bytearray(other * 256)
    for members, mark in classes:
        for byte in members:
            table[byte] = mark[0]
    return bytes(table)


# A number token is written between ":" "," "[" and "," "]" "}" (all marked ":" here) and is made
# of digits, signs, "." and "e" (repr() of a finite float always writes "." or "e").
_AROUND_VALUE = (b":,[]}", b":")
_DIGITS_AND_SIGNS = b"0123456789+-"
# Digits and signs as "0", and "!" for UTF-8 lead bytes 0xEE-0xF4 (characters at or above
# U+E000, which sort differently in UTF-16): an integer of 16 or more digits shows as 16 "0"
# before a ":".
_INTEGER_CLASSES = _table(
    (_DIGITS_AND_SIGNS, b"0"), _AROUND_VALUE, (bytes(range(0xEE, 0xF5)), b"!"), other=b"x"
)
_LONG_INTEGER = b"0" * 16 + b":"
# With digits and signs deleted and "e" marked as ".", a float leaves ":.:" or ":..:"; every other
# value keeps an "x" (a quote, or a letter of true/false/null). Free text keeps its letters and
# spaces as "x", so only text such as ",1.5," gives a (harmless) false alarm.
_FLOAT_CLASSES = _table((b".e", b"."), _AROUND_VALUE, other=b"x")
_ORJSON_OPTIONS = (
    orjson.OPT_SORT_KEYS
    | orjson.OPT_PASSTHROUGH_DATACLASS
    | orjson.OPT_PASSTHROUGH_DATETIME
    | orjson.OPT_PASSTHROUGH_SUBCLASS
)
_fast_encoder = json.JSONEncoder(
    ensure_ascii=False, allow_nan=False, sort_keys=True, separators=(",", ":")
)


def canonicalize(value: JsonValue) -> bytes:
    """Return the RFC 8785 canonical UTF-8 form of a JSON value."""
    try:
        data = _encode(value)
        if data is None or _needs_exact_path(data):
            return _serialize(value).encode("utf-8")
    except UnicodeEncodeError as exc:
        raise MalformedJson("string contains an unpaired UTF-16 surrogate") from exc
    except RecursionError as exc:
        raise MalformedJson("value nests too deeply to be canonicalized") from exc
    return data


def _encode(value: JsonValue) -> bytes | None:
    try:
        data = orjson.dumps(value, option=_ORJSON_OPTIONS)
    except orjson.JSONEncodeError:
        data = b"null"  # let json decide
    if b"null" not in data:
        return data
    try:
        return _fast_encoder.encode(value).encode("utf-8")
    except ValueError:  # NaN, Infinity, a lone surrogate or a huge integer: the exact path says
        return None


def _needs_exact_path(data: bytes) -> bool:
    if data[:1] in _NUMBER_START:  # a bare top-level number has no ":", "," or "[" around it
        return True
    integer_classes = data.translate(_INTEGER_CLASSES)
    if b"!" in integer_classes or _LONG_INTEGER in integer_classes:
        return True
    float_classes = data.translate(_FLOAT_CLASSES, _DIGITS_AND_SIGNS)
    return b":.:" in float_classes or b":..:" in float_classes


def _serialize(value: Any) -> str:
    if value is None or value is True or value is False:
        return json.dumps(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, int):
        return _serialize_integer(value)
    if isinstance(value, float):
        return serialize_number(value)
    if isinstance(value, list | tuple):
        return "[" + ",".join(_serialize(item) for item in value) + "]"
    if isinstance(value, dict):
        return _serialize_object(value)
    raise TypeError(f"{type(value).__name__} is not a JSON value")


def _serialize_integer(value: int) -> str:
    if abs(value) <= _SAFE_INTEGER:
        return str(value)
    # RFC 8785 section 3.2.2.3 would write the nearest double, silently changing the value.
    raise IntegerOutOfRange(
        f"an integer of {value.bit_length()} bits is beyond 2**53 - 1 (RFC 7493 section 2.2)"
    )


def _serialize_object(value: dict[Any, Any]) -> str:
    if not all(isinstance(key, str) for key in value):
        raise MalformedJson("object keys must be strings")
    # RFC 8785 section 3.2.3: sort on UTF-16 code units.
    keys = sorted(value, key=lambda key: key.encode("utf-16-be", "surrogatepass"))
    members = (json.dumps(key, ensure_ascii=False) + ":" + _serialize(value[key]) for key in keys)
    return "{" + ",".join(members) + "}"


def serialize_number(value: float) -> str:
    """Serialize a double like ECMAScript Number.prototype.toString (RFC 8785 section 3.2.2.3)."""
    if not math.isfinite(value):
        raise MalformedJson(f"{value} is not allowed in JSON (RFC 8785 section 3.2.2.3)")
    if value == 0:
        return "0"  # also for -0.0
    sign = "-" if value < 0 else ""
    digits, exponent = _shortest_digits(abs(value))
    return sign + _format_es6(digits, exponent)


def _shortest_digits(value: float) -> tuple[str, int]:
    """Shortest round-trip digits and n such that value = 0.digits * 10**n."""
    mantissa, _, exponent_text = repr(value).partition("e")
    whole, _, fraction = mantissa.partition(".")
    digits = whole + fraction
    exponent = int(exponent_text or "0") + len(whole)
    stripped = digits.lstrip("0")
    exponent -= len(digits) - len(stripped)
    return stripped.rstrip("0"), exponent


def _format_es6(digits: str, n: int) -> str:
    # ECMA-262 Number::toString, steps for k digits and decimal point position n.
    k = len(digits)
    if k <= n <= 21:
        return digits + "0" * (n - k)
    if 0 < n <= 21:
        return digits[:n] + "." + digits[n:]
    if -6 < n <= 0:
        return "0." + "0" * -n + digits
    exponent = n - 1
    exponent_text = ("+" if exponent >= 0 else "-") + str(abs(exponent))
    if k == 1:
        return digits + "e" + exponent_text
    return digits[0] + "." + digits[1:] + "e" + exponent_text
