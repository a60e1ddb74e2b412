"""app/jsonbody.py without a server: what the strict body reader accepts and
the TMF error (status and code) of each thing it refuses. The same bodies
over HTTP are in test_hardening_nasties.py and test_input_encoding.py; here
each rule is pinned where it lives."""
from __future__ import annotations

import gzip
import json
import unicodedata
import zlib

import pytest

from app.errors import TMFError
from app.jsonbody import MAX_ARRAY_ITEMS, MAX_DEPTH, _inflate, parse_json


def refused(raw: bytes) -> TMFError:
    with pytest.raises(TMFError) as caught:
        parse_json(raw)
    return caught.value


def test_a_plain_object_is_read_as_is():
    assert parse_json(b'{"name": "ann", "n": [1, 2.5, true, null]}') == {
        "name": "ann", "n": [1, 2.5, True, None]}


@pytest.mark.parametrize("raw, code", [
    (b"", "EMPTY_BODY"),
    (b"  \n", "EMPTY_BODY"),
    (b'{"a": 1, "a": 2}', "INVALID_JSON"),          # duplicate key
    (b'{"a": NaN}', "INVALID_JSON"),
    (b'{"a": Infinity}', "INVALID_JSON"),
    (b'{"a": -Infinity}', "INVALID_JSON"),
    (b'{"a": 1e999}', "INVALID_JSON"),              # overflows a double
    (b'{"a": "\xff"}', "INVALID_JSON"),             # not UTF-8
    (b'{"a": "\\ud800"}', "INVALID_JSON"),          # lone surrogate in a value
    (b'{"\\udc00": 1}', "INVALID_JSON"),            # ... and in a key
    (b'{"a": ', "INVALID_JSON"),
    (b'{"a": 0.1000000000000000055511151231257827}', "INEXACT_NUMBER"),
])
def test_what_is_refused_and_its_code(raw, code):
    error = refused(raw)
    assert (error.status, error.code) == (400, code), error.message


def test_a_nul_is_refused_naming_where_it_is():
    error = refused(b'{"party": {"name": "a\\u0000b"}}')
    assert error.status == 400 and error.code != "INVALID_JSON"
    assert error.details and "name" in next(iter(error.details))


def test_nesting_is_bounded_without_exhausting_the_stack():
    assert parse_json(("[" * (MAX_DEPTH - 1) + "]" * (MAX_DEPTH - 1)).encode()) is not None
    assert refused(("[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1)).encode()).code == "INVALID_JSON"
    assert refused(b"[" * 100_000 + b"]" * 100_000).code == "INVALID_JSON"


def test_arrays_are_bounded():
    assert len(parse_json(json.dumps({"a": [0] * MAX_ARRAY_ITEMS}).encode())["a"]) == MAX_ARRAY_ITEMS
    error = refused(json.dumps({"a": [0] * (MAX_ARRAY_ITEMS + 1)}).encode())
    assert error.code == "INVALID_JSON" and str(MAX_ARRAY_ITEMS) in error.message


def test_text_is_read_in_nfc_keys_and_values():
    nfd = unicodedata.normalize("NFD", "privé")
    value = parse_json(json.dumps({nfd: [nfd]}).encode())
    assert value == {"privé": ["privé"]}


@pytest.mark.parametrize("coding, pack", [
    ("gzip", gzip.compress),
    ("deflate", zlib.compress),
    ("deflate", lambda data: zlib.compress(data)[2:-4]),   # raw DEFLATE under that name
])
def test_content_codings_are_undone(coding, pack):
    assert _inflate(pack(b'{"a": 1}'), coding, limit=1000) == b'{"a": 1}'


def test_a_decoded_body_over_the_limit_is_a_413_not_memory():
    bomb = gzip.compress(b" " * 10_000_000)
    with pytest.raises(TMFError) as caught:
        _inflate(bomb, "gzip", limit=1000)
    assert (caught.value.status, caught.value.code) == (413, "BODY_TOO_LARGE")


@pytest.mark.parametrize("raw, code", [
    (gzip.compress(b'{"a": 1}', mtime=0)[:-6], "INVALID_ENCODING"),
    (b"not gzip at all", "INVALID_ENCODING"),
], ids=["truncated", "not-gzip"])   # ids, not the bytes: every xdist worker must collect the same names
def test_bad_coded_bodies_are_a_400(raw, code):
    with pytest.raises(TMFError) as caught:
        _inflate(raw, "gzip", limit=None)
    assert (caught.value.status, caught.value.code) == (400, code)
