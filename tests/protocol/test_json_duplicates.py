"""read_json's fast path (orjson) reads every text exactly as the strict json path does."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol._json import _read_exact, read_json
from protocol.errors import DuplicateJsonKey, ProtocolError

# Few characters, so that keys repeat often; ":" and '"' and "\\" are the ones the fast path's
# counting depends on.
_CHARACTERS = st.sampled_from(["a", "b", ":", '"', "\\", " ", "\u00e9", "\x01", "1"])
_KEYS = st.text(_CHARACTERS, max_size=3)
_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(_CHARACTERS, max_size=4)
)
# Objects are lists of members, so that a key may occur more than once at any depth.
_TREES = st.recursive(
    _SCALARS,
    lambda children: (
        st.lists(children, max_size=3).map(lambda items: ("array", items))
        | st.lists(st.tuples(_KEYS, children), max_size=4).map(lambda pairs: ("object", pairs))
    ),
    max_leaves=16,
)


def _write(tree: Any, *, item: str, member: str, ascii_only: bool) -> str:
    if isinstance(tree, tuple) and tree[0] == "array":
        return (
            "["
            + item.join(_write(x, item=item, member=member, ascii_only=ascii_only) for x in tree[1])
            + "]"
        )
    if isinstance(tree, tuple) and tree[0] == "object":
        members = (
            json.dumps(key, ensure_ascii=ascii_only)
            + member
            + _write(value, item=item, member=member, ascii_only=ascii_only)
            for key, value in tree[1]
        )
        return "{" + item.join(members) + "}"
    return json.dumps(tree, ensure_ascii=ascii_only)


def _outcome(read: Any, data: bytes) -> tuple[str, str]:
    try:
        return "value", repr(read(data))
    except ProtocolError as exc:
        return "error", type(exc).__name__


@given(
    _TREES,
    st.sampled_from([",", ", ", "\n,"]),
    st.sampled_from([":", ": ", " :", "\t:\n"]),
    st.booleans(),
)
def test_fast_path_reads_as_the_exact_path(
    tree: Any, item: str, member: str, ascii_only: bool
) -> None:
    data = _write(tree, item=item, member=member, ascii_only=ascii_only).encode("utf-8")
    expected = _outcome(_read_exact, data)
    assert _outcome(lambda body: read_json(body, max_bytes=1 << 20), data) == expected


@pytest.mark.parametrize(
    "data",
    [
        b'{"a":{"b":[{"c":1,"d":{"e":"x","e":"x"}}]}}',
        b'{"a":":","a":":"}',
        b'[{"":1,"":1}]',
        b'{"a" :1,"a":2}',
        b'{"k":{"x":":y","x":":y"},"z":1}',
    ],
)
def test_repeated_key_refused_at_any_depth(data: bytes) -> None:
    with pytest.raises(DuplicateJsonKey):
        read_json(data, max_bytes=1 << 20)


@pytest.mark.parametrize(
    "text",
    ["%s", "[%s]", "[1,%s]", '{"a":%s}', '{"a": %s}', "[\n%s]", "[-%s]", '{"oin":"%s","n":%s}'],
)
def test_integer_beyond_2_to_the_53_is_read_as_the_nearest_double(text: str) -> None:
    # RFC 7493 section 2.2: a JSON number is a double, however many digits it is written with.
    data = text.replace("%s", "123456789012345678901234567890").encode()
    expected = json.loads(
        data, parse_int=lambda digits: int(digits) if len(digits) < 16 else float(digits)
    )
    assert repr(read_json(data, max_bytes=200)) == repr(expected)


@pytest.mark.parametrize("text", ["9007199254740991", "-9007199254740991", "[1234567890123456]"])
def test_integer_up_to_2_to_the_53_minus_1_stays_an_integer(text: str) -> None:
    assert repr(read_json(text.encode(), max_bytes=200)) == repr(json.loads(text))
