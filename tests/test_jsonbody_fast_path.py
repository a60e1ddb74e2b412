"""Request bodies are parsed by orjson when that provably gives what the
strict stdlib parse gives (app/jsonbody.py, _fast_parse); every other body
takes the strict parse and its errors. Each case here is a body the fast
path could get wrong: parse_json must return, or refuse with, exactly what
strict_parse does, and the cases it must leave to the strict parse are left."""
from __future__ import annotations

import json

import pytest

from app.errors import TMFError
from app.jsonbody import MAX_ARRAY_ITEMS, MAX_DEPTH, _fast_parse, parse_json, strict_parse


def _nested(depth: int, leaf: str = "1") -> bytes:
    return ("[" * depth + leaf + "]" * depth).encode()


CASES = {
    "plain": b'{"channel": [{"id": "21"}], "validFor": {"startDateTime": "2026-05-01T10:00:00Z"}}',
    "colons in keys and strings": b'{"a:b": "x:y:z", "t": ["10:00", {"k:": ":"}]}',
    "duplicate key": b'{"a": 1, "a": 2}',
    "duplicate key, deep": b'{"x": [{"y": {"a": "1:2", "a": "3"}}]}',
    "duplicate key whose dropped value held colons": b'{"a": "b", "a": "c:"}',
    "duplicate key whose kept value holds the colon": b'{"a": "c:", "a": "b"}',
    "float": b'{"quantity": 1.5}',
    "inexact float": b'{"x": 0.1000000000000000055511151231257827}',
    "exponent": b'{"x": 1e2}',
    "overflowing number": b'{"x": 1e999}',
    "NaN": b'{"x": NaN}',
    "integer beyond 64 bits": b'{"x": 18446744073709551616}',
    "negative integer beyond 64 bits": b'{"x": -9223372036854775809}',
    "largest unsigned 64-bit integer": b'{"x": 18446744073709551615}',
    "integer over Python's digits": b'{"x": ' + b"9" * 5000 + b"}",
    "escaped NUL": b'{"x": "a\\u0000b"}',
    "escaped colon in a duplicate": b'{"a": "\\u003a", "a": 1}',
    "lone surrogate escape": b'{"x": "\\ud800"}',
    "raw control character": b'{"x": "a\x01b"}',
    "invalid UTF-8": b'{"x": "\xff"}',
    "UTF-8 encoded surrogate": b'{"x": "\xed\xa0\x80"}',
    "BOM": b'\xef\xbb\xbf{"x": 1}',
    "empty": b"",
    "blank": b"  \n",
    "not JSON": b"{x}",
    "trailing comma": b'{"x": 1,}',
    "non-ASCII, not NFC": '{"name": "prive\u0301"}'.encode(),
    "non-ASCII key, not NFC": '{"e\u0301": 1}'.encode(),
    "an array": b'[1, 2]',
    "a string": b'"a:b"',
    "null": b"null",
    "depth at the limit": _nested(MAX_DEPTH - 1),
    "depth over the limit": _nested(MAX_DEPTH),
    "empty array at the limit": _nested(MAX_DEPTH, ""),
    "empty array over the limit": _nested(MAX_DEPTH + 1, ""),
    "very deep": _nested(5000),
    "array at the limit": json.dumps({"x": list(range(MAX_ARRAY_ITEMS))}).encode(),
    "array over the limit": json.dumps({"x": list(range(MAX_ARRAY_ITEMS + 1))}).encode(),
}

# bodies the fast path must leave to the strict parse (the rest it may take)
STRICT_ONLY = {"duplicate key", "duplicate key, deep", "duplicate key whose dropped value held colons",
               "duplicate key whose kept value holds the colon", "float", "inexact float", "exponent",
               "integer beyond 64 bits", "negative integer beyond 64 bits", "escaped NUL",
               "escaped colon in a duplicate", "lone surrogate escape", "depth over the limit",
               "empty array over the limit", "very deep", "array over the limit"}


def _outcome(parse, raw: bytes):
    try:
        return "value", json.dumps(parse(raw))             # key order counts
    except TMFError as exc:
        return "error", exc.status, exc.code, exc.message


@pytest.mark.parametrize("name", sorted(CASES))
def test_parse_json_answers_as_the_strict_parse(name):
    raw = CASES[name]
    assert _outcome(parse_json, raw) == _outcome(strict_parse, raw)


@pytest.mark.parametrize("name", sorted(STRICT_ONLY))
def test_what_orjson_would_read_differently_takes_the_strict_parse(name):
    assert _fast_parse(CASES[name]) is None


def test_common_bodies_take_the_fast_path():
    for name in ("plain", "colons in keys and strings", "depth at the limit", "empty array at the limit",
                 "array at the limit",
                 "largest unsigned 64-bit integer", "non-ASCII, not NFC"):
        assert _fast_parse(CASES[name]) is not None, name
