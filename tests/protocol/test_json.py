"""Strict JSON reading: limits before parsing, UTF-8 only, no duplicates, no NaN."""

from __future__ import annotations

import pytest

from protocol._json import read_json
from protocol.errors import BodyTooLarge, DuplicateJsonKey, MalformedJson, ProtocolError


def test_reads_a_document() -> None:
    assert read_json(b'{"a":[1,2.5,"\xc3\xa9",null,true]}', max_bytes=100) == {
        "a": [1, 2.5, "\u00e9", None, True]
    }


def test_size_checked_before_parsing() -> None:
    # Not JSON at all: only the size check can have refused it.
    with pytest.raises(BodyTooLarge) as caught:
        read_json(b"x" * 101, max_bytes=100)
    assert caught.value.code == "body_too_large"


def test_size_limit_is_inclusive() -> None:
    assert read_json(b'"' + b"a" * 98 + b'"', max_bytes=100) == "a" * 98


@pytest.mark.parametrize(
    "data", [b'{"a":1,"a":2}', b'{"b":{"x":1,"y":2,"x":3}}', b'[{"k":1,"k":1}]']
)
def test_duplicate_keys_refused(data: bytes) -> None:
    with pytest.raises(DuplicateJsonKey) as caught:
        read_json(data, max_bytes=100)
    assert caught.value.code == "duplicate_json_key"


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"{",
        b"{'a':1}",
        b'{"a":1,}',
        b"[NaN]",
        b"[Infinity]",
        b"[-Infinity]",
        b"[1e400]",
        b'"\xff"',
        b'\xef\xbb\xbf{"a":1}',
        b'"\\ud800"',
        b'{"\\udc00":1}',
        b'"a\x01"',
        '{"a":1}'.encode("utf-16"),
    ],
)
def test_malformed_refused(data: bytes) -> None:
    with pytest.raises(MalformedJson) as caught:
        read_json(data, max_bytes=100)
    assert caught.value.code == "malformed_json"


def test_escaped_surrogate_pair_accepted() -> None:
    assert read_json(b'"\\ud83d\\ude00"', max_bytes=100) == "\U0001f600"


def test_deep_nesting_is_a_protocol_error() -> None:
    with pytest.raises(ProtocolError):
        read_json(b"[" * 100_000 + b"]" * 100_000, max_bytes=1_000_000)
