"""Strict JSON reading for every body a service accepts (RFC 8259 with I-JSON, RFC 7493).

``read_json`` checks the size, the nesting depth (``MAX_DEPTH``) and the length of numbers
(``MAX_NUMBER_LENGTH``) before parsing, refuses repeated keys, NaN and lone surrogates, each with
its own :mod:`protocol.errors` class, and reads integers beyond 2**53 - 1 as the nearest double
(I-JSON; ``canonicalize`` refuses to write such an integer).
"""

from __future__ import annotations

from protocol._json import MAX_DEPTH, MAX_NUMBER_LENGTH, JsonValue, read_json

__all__ = ["MAX_DEPTH", "MAX_NUMBER_LENGTH", "JsonValue", "read_json"]
