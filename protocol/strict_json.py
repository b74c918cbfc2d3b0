"""Strict JSON reading for every body a service accepts (RFC 8259 with I-JSON, RFC 7493).

``read_json`` checks the size, the nesting depth and the numbers before parsing and refuses
repeated keys, NaN, lone surrogates and integers beyond 2**53 - 1, each with its own
:mod:`protocol.errors` class; ``check_json_limits`` is the depth and number check alone.
"""

from __future__ import annotations

from protocol._json import MAX_DEPTH, MAX_NUMBER_LENGTH, JsonValue, check_json_limits, read_json

__all__ = ["MAX_DEPTH", "MAX_NUMBER_LENGTH", "JsonValue", "check_json_limits", "read_json"]
