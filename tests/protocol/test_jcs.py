"""RFC 8785 canonicalization: the RFC's own data, the ES6 number file and properties."""

from __future__ import annotations

import csv
import json
import math
import struct
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol import canonicalize
from protocol._jcs import serialize_number
from protocol._json import read_json
from protocol.errors import IntegerOutOfRange, MalformedJson

VECTORS = Path(__file__).resolve().parent.parent / "vectors" / "rfc8785"
CASES = sorted(path.stem for path in (VECTORS / "input").glob("*.json"))


def _double(hex_text: str) -> float:
    value: float = struct.unpack(">d", bytes.fromhex(hex_text.rjust(16, "0")))[0]
    return value


@pytest.mark.parametrize("name", CASES)
def test_cyberphone_testdata(name: str) -> None:
    value = read_json((VECTORS / "input" / f"{name}.json").read_bytes(), max_bytes=1 << 20)
    assert canonicalize(value) == (VECTORS / "output" / f"{name}.json").read_bytes()


def test_rfc_examples() -> None:
    cases = json.loads((VECTORS / "rfc8785_examples.json").read_text("utf-8"))["cases"]
    for case in cases:
        value = read_json(case["input_json_text"].encode("utf-8"), max_bytes=1 << 20)
        assert canonicalize(value).hex() == case["expected_canonical_utf8_hex"], case["name"]


def _appendix_b() -> list[tuple[str, str]]:
    with (VECTORS / "rfc8785_appendix_b.csv").open(encoding="utf-8", newline="") as handle:
        return [(row["ieee754_hex"], row["json_string"]) for row in csv.DictReader(handle)]


@pytest.mark.parametrize(("hex_text", "expected"), _appendix_b())
def test_appendix_b_numbers(hex_text: str, expected: str) -> None:
    value = _double(hex_text)
    if math.isfinite(value):
        assert canonicalize([value]) == f"[{expected}]".encode()
    else:
        with pytest.raises(MalformedJson):
            canonicalize([value])


def test_es6_number_file() -> None:
    lines = (VECTORS / "es6testfile_first10000.txt").read_text("ascii").splitlines()
    assert len(lines) == 10_000
    wrong = []
    for line in lines:
        hex_text, expected = line.split(",")
        if serialize_number(_double(hex_text)) != expected:
            wrong.append(line)
    assert wrong == []


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1.0, b"1"),
        (-0.0, b"0"),
        (1e21, b"1e+21"),
        (1e20, b"100000000000000000000"),
        (1e-7, b"1e-7"),
        (1e-6, b"0.000001"),
        (123456789012345680.0, b"123456789012345680"),
        (9007199254740991, b"9007199254740991"),
        (-9007199254740991, b"-9007199254740991"),
        (2.0**53 + 2, b"9007199254740994"),
        (2.0**60, b"1152921504606847000"),
    ],
)
def test_numbers_python_gets_wrong(value: float, expected: bytes) -> None:
    assert canonicalize(value) == expected
    assert canonicalize({"a": [value]}) == b'{"a":[' + expected + b"]}"


@pytest.mark.parametrize(
    "value",
    [math.nan, math.inf, -math.inf, 10**400, "\ud800", {"\udfff": 1}, [{"a": "x\udc00"}]],
)
def test_refused_values(value: Any) -> None:
    with pytest.raises(MalformedJson):
        canonicalize(value)


@pytest.mark.parametrize(
    "value",
    [2**53, -(2**53), 2**53 + 1, 2**60, 2**64 + 1, 10**1000, {"a": [2**53]}, {"\ue000": 2**63}],
)
def test_integers_beyond_2_to_the_53_are_refused_not_rounded(value: Any) -> None:
    # I-JSON (RFC 7493 section 2.2): the receiver could only read them as a rounded double.
    with pytest.raises(IntegerOutOfRange, match="beyond 2\\*\\*53 - 1"):
        canonicalize(value)


@pytest.mark.parametrize("value", [2**53 - 1, -(2**53 - 1), {"a": [2**53 - 1]}])
def test_integers_up_to_2_to_the_53_minus_1_are_exact(value: Any) -> None:
    assert read_json(canonicalize(value), max_bytes=1 << 10) == value


def test_too_deep_a_value_is_refused_with_its_own_error() -> None:
    value: Any = []
    for _ in range(100_000):
        value = [value]
    with pytest.raises(MalformedJson, match="nests too deeply"):
        canonicalize(value)


def test_non_json_type_refused() -> None:
    with pytest.raises(TypeError):
        canonicalize({"when": object()})  # type: ignore[dict-item]


def test_keys_sorted_by_utf16_code_units() -> None:
    # U+FB33 sorts after U+1F600 in UTF-16 (D83D...) but before it by code point.
    assert canonicalize({"\ufb33": 1, "\U0001f600": 2, "a": 3}) == (
        '{"a":3,"\U0001f600":2,"\ufb33":1}'.encode()
    )


def test_strings_escaped_as_rfc_requires() -> None:
    assert canonicalize('\u000f\n"\\/\u007f\u20ac') == '"\\u000f\\n\\"\\\\/\u007f\u20ac"'.encode()


def test_string_that_looks_like_a_float_stays_fast_and_correct() -> None:
    assert canonicalize({"protocolVersion": "1.0", "n": 10}) == b'{"n":10,"protocolVersion":"1.0"}'


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53 - 1), max_value=2**53 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4)
    ),
    max_leaves=20,
)


@given(json_values)
def test_idempotent(value: Any) -> None:
    canonical = canonicalize(value)
    assert canonicalize(read_json(canonical, max_bytes=1 << 20)) == canonical


@given(st.dictionaries(st.text(max_size=6), json_values, max_size=6), st.randoms())
def test_key_order_independent(value: dict[str, Any], random: Any) -> None:
    items = list(value.items())
    random.shuffle(items)
    assert canonicalize(dict(items)) == canonicalize(value)


@given(json_values)
def test_fast_path_equals_exact_serializer(value: Any) -> None:
    from protocol._jcs import _serialize

    assert canonicalize(value) == _serialize(value).encode("utf-8")


# The fast path must detect every number that the C encoder writes differently from RFC 8785:
# floats where repr() differs from ECMAScript, large ones included.
_REWRITTEN = [(1e-07, "1e-7"), (-1e16, "-10000000000000000"), (2.0**60, "1152921504606847000")]


@pytest.mark.parametrize(("number", "expected"), _REWRITTEN)
@pytest.mark.parametrize(
    "shape",
    ['{"a":%s}', '{"a":1,"b":%s}', '{"a":%s,"b":1}', "[%s]", '[1,%s,"x"]', "[[%s]]", '{"a":[%s]}'],
)
def test_fast_path_detects_rewritten_numbers(number: float, expected: str, shape: str) -> None:
    value = json.loads(shape % json.dumps(number))
    assert canonicalize(value) == (shape % expected).encode()


@pytest.mark.parametrize(
    "value",
    [{"a": 0.5}, [1.5], {"a": -2.5e-300}, {"a": 1234567890123456}, {"\ue000": 1}],
)
def test_exact_path_taken_for_floats_long_integers_and_high_keys(value: Any) -> None:
    from protocol._jcs import _needs_exact_path, _serialize

    assert _needs_exact_path(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode())
    assert canonicalize(value) == _serialize(value).encode("utf-8")


def test_integer_only_message_stays_on_the_fast_path() -> None:
    from protocol._jcs import _needs_exact_path

    example = (
        Path(__file__).resolve().parent.parent.parent / "docs" / "examples" / "dossier-offer.json"
    )
    document = json.loads(example.read_text("utf-8"))
    assert not _needs_exact_path(canonicalize(document))
    assert not _needs_exact_path(b'{"oin":"00000001001234567000","n":[999999999999999,-1]}')
