"""A differential property test of the request body's fast parse
(app/jsonbody.py): for any byte string, `parse_json` returns what
`strict_parse` returns (same Python types, same key order) or refuses it
with the same TMF error (status, code, message, details).

The bodies are built as raw JSON text, not dumped from Python values, so
that every spelling the parsers may read differently is reached: numbers in
every text form (1.0, 1e5, 1E+05, -0.0, 1.50, NaN, Infinity, integers past
64 bits and past Python's 4,300 digits), strings with `:`, `"` and `\\`,
standard and `\\u` escapes (NUL, lone surrogates, an escaped colon), raw
control characters, keys drawn from a small pool (duplicates at every
depth, also ones equal only after NFC), JSON and non-JSON whitespace, BOMs,
invalid UTF-8, trailing garbage, nesting near and past MAX_DEPTH (and past
orjson's own limit), arrays near MAX_ARRAY_ITEMS; plus valid bodies with
their bytes mutated.

The committed run is derandomized and small (CI, a few seconds); set
RECO_FUZZ_EXAMPLES (e.g. 20000) for a long local run with a random seed
(hypothesis prints the failing body). A counterexample found is kept as an
explicit case in tests/test_jsonbody_fast_path.py CASES; a run of 20,000
built bodies found none."""
from __future__ import annotations

import os

from hypothesis import HealthCheck, given, settings, strategies as st

from app.errors import TMFError
from app.jsonbody import MAX_ARRAY_ITEMS, MAX_DEPTH, _fast_parse, parse_json, strict_parse

EXAMPLES = int(os.environ.get("RECO_FUZZ_EXAMPLES", "0")) or None
FUZZ = settings(max_examples=EXAMPLES or 120, derandomize=EXAMPLES is None, deadline=None, database=None,
                suppress_health_check=list(HealthCheck))


def _typed(value):
    """The value with every type spelled out (True is not 1, 1 is not 1.0,
    0.0 is not -0.0) and every key order kept, as one comparable tree.
    Iterative over nothing deeper than MAX_DEPTH, so recursion is safe."""
    if isinstance(value, dict):
        return ("dict", tuple((key, _typed(item)) for key, item in value.items()))
    if isinstance(value, list):
        return ("list", tuple(_typed(item) for item in value))
    if isinstance(value, float):
        return ("float", value.hex())
    return (type(value).__name__, value)


def _outcome(parse, raw: bytes):
    try:
        return "value", _typed(parse(raw))
    except TMFError as exc:
        return "error", exc.status, exc.code, exc.message, repr(getattr(exc, "details", None))


def _same_answer(raw: bytes) -> None:
    strict = _outcome(strict_parse, raw)
    fast = _outcome(parse_json, raw)
    assert fast == strict, raw[:300]


# --- JSON text, built as text ---------------------------------------------

NUMBER_FORMS = ["0", "-0", "1", "-1", "1.0", "1e5", "1E+05", "1e-5", "-0.0", "0.0", "1.50",
                "12345678901234567890.5", "0.1", "0.1000000000000000055511151231257827",
                "NaN", "-NaN", "Infinity", "-Infinity", "1e999", "-1e999", "1e-999",
                "9223372036854775807", "9223372036854775808", "-9223372036854775808",
                "-9223372036854775809", "18446744073709551615", "18446744073709551616",
                "-18446744073709551616", "01", "+1", ".5", "1.", "1e", "-", "0x10", "1_000"]

numbers = st.one_of(
    st.integers(min_value=-(2 ** 64), max_value=2 ** 64).map(str),
    st.integers(min_value=-(2 ** 64), max_value=2 ** 64).map(str),
    st.sampled_from(NUMBER_FORMS),
    st.integers().map(str),
    st.integers(min_value=-(2 ** 70), max_value=2 ** 70).map(str),
    st.from_regex(r"-?(0|[1-9][0-9]{0,24})(\.[0-9]{1,20})?([eE][+-]?[0-9]{1,3})?", fullmatch=True),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.integers(min_value=4295, max_value=4305).map(lambda n: "-" * (n % 2) + "7" * n),
)

# per character of a string: written raw, or as one of its escapes
ESCAPES = {'"': '\\"', "\\": "\\\\", "/": "\\/", "\b": "\\b", "\f": "\\f", "\n": "\\n",
           "\r": "\\r", "\t": "\\t"}
SPECIAL_PIECES = ["\\u0000", "\\ud800", "\\udc00", "\\ud83d\\ude00", "\\ud83d", "\\u003a",
                  "\\u003A", "\\u00e9", "\\u0065\\u0301", "\\u", "\\u12", "\\x41", "\\:", "\\'",
                  "\x00", "\x01", "\x1f", "\x7f", "\n", "\t", "\u2028", "\ufeff", "\ufffe",
                  "e\u0301", "\u00e9", ":", "::", '\\"', "\\\\", "\\\\u0041", "\\/"]


@st.composite
def string_texts(draw):
    chars = draw(st.lists(st.one_of(
        st.characters(codec="utf-8", exclude_categories=["Cc", "Cs"]),
        st.sampled_from(":\"\\/é"),
    ), max_size=12))
    if draw(st.integers(0, 5)) == 0:      # now and then a piece a parser may read differently
        chars.insert(draw(st.integers(0, len(chars))),
                     ("piece", draw(st.sampled_from(SPECIAL_PIECES))))
        if draw(st.booleans()):
            chars.append(draw(st.characters(codec="utf-8")))
    out = []
    for char in chars:
        if isinstance(char, tuple):
            out.append(char[1])
        elif char in ESCAPES:
            out.append(ESCAPES[char] if draw(st.booleans()) or char in '"\\' else char)
        elif draw(st.integers(0, 29)) == 0:
            out.append("\\u%04x" % ord(char) if ord(char) < 0x10000 else char)
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


KEY_POOL = ['"a"', '"b"', '"a:"', '":"', '"\\""', '"\\\\"', '"\u00e9"', '"e\u0301"',
            '"\\u0061"', '"a\\u003ab"', '"a:b"', '""', '"id"', '"@type"']
keys = st.one_of(st.sampled_from(['"a"', '"b"', '"a:"']), st.sampled_from(KEY_POOL), string_texts())

JSON_SPACE = ["", "", "", " ", "\n", "\t", "\r\n", "  "]
ODD_SPACE = ["\x0b", "\x0c", "\u00a0", "\u3000", "\u2028", "\ufeff", "\x85", "\x1c"]
spaces = st.one_of(st.sampled_from(JSON_SPACE), st.sampled_from(JSON_SPACE), st.sampled_from(ODD_SPACE))
plain_spaces = st.sampled_from(JSON_SPACE)

scalars = st.one_of(st.sampled_from(["true", "false", "null"]), numbers, string_texts(),
                    st.sampled_from(["True", "nul", "'a'", ""]))


def _container(children):
    member = st.tuples(plain_spaces, keys, plain_spaces, children, plain_spaces)
    objects = st.lists(member, max_size=5).map(
        lambda ms: "{" + ",".join(f"{a}{k}{b}:{c}{v}" for a, k, b, v, c in ms) + "}")
    arrays = st.lists(st.tuples(plain_spaces, children), max_size=5).map(
        lambda items: "[" + ",".join(s + v for s, v in items) + "]")
    return st.one_of(objects, arrays)


values = st.recursive(scalars, _container, max_leaves=30)


@st.composite
def deep_values(draw):
    """Nesting around MAX_DEPTH (and past orjson's 1024), arrays and objects
    mixed, the innermost value empty, a scalar or a small value."""
    depth = draw(st.one_of(st.integers(MAX_DEPTH - 3, MAX_DEPTH + 3), st.sampled_from([1023, 1024, 1025, 3000])))
    inner = draw(st.sampled_from(["", "1", '"x:y"', "1.5", "[]", "{}", '{"a":1,"a":2}']))
    opens, closes = [], []
    for _ in range(depth):
        if draw(st.integers(0, 3)) == 0:
            opens.append('{"k:":')
            closes.append("}")
        else:
            opens.append("[")
            closes.append("]")
    if inner == "" and opens and opens[-1] != "[":
        inner = "0"
    return "".join(opens) + inner + "".join(reversed(closes))


@st.composite
def big_arrays(draw):
    """An array around MAX_ARRAY_ITEMS long, at the top or inside an object."""
    count = draw(st.integers(MAX_ARRAY_ITEMS - 2, MAX_ARRAY_ITEMS + 2))
    item = draw(st.sampled_from(["0", '"a:"', "[]", "1.5", "{}"]))
    text = "[" + ",".join([item] * count) + "]"
    return draw(st.sampled_from(["{}", '{"x":%s}', '[%s]', '{"x":%s,"x":1}'])).replace("%s", text) \
        if draw(st.booleans()) else text


PREFIXES = [b"", b"", b"", b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff", b"\x00"]
SUFFIXES = [b"", b"", b"", b"x", b",", b"}", b"]", b"\x00", b"1", b"{}", b"\xff", b"\xc3", b'"']


@st.composite
def bodies(draw):
    kind = draw(st.integers(0, 19))
    text = draw(deep_values() if kind == 0 else big_arrays() if kind == 1 else values)
    body = (draw(spaces) + text + draw(spaces)).encode("utf-8", "surrogatepass")
    if draw(st.integers(0, 4)) == 0:      # a BOM, a UTF-16 mark, a NUL; trailing garbage
        body = draw(st.sampled_from(PREFIXES)) + body + draw(st.sampled_from(SUFFIXES))
    return body


INTERESTING_BYTES = [b":", b'"', b"\\", b"\\u", b",", b"{", b"}", b"[", b"]", b"\x00", b"\xff",
                     b"\xed\xa0\x80", b"\xc0\x80", b"\xc3", b"\xef\xbb\xbf", b" ", b"e", b".", b"-"]


@st.composite
def mutated_bodies(draw):
    """A body with a few byte edits: delete, insert, replace or repeat a span."""
    body = bytearray(draw(bodies()))
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(body)))
        edit = draw(st.integers(0, 3))
        piece = draw(st.one_of(st.sampled_from(INTERESTING_BYTES), st.binary(min_size=1, max_size=3)))
        if edit == 0 and body:
            del body[min(at, len(body) - 1)]
        elif edit == 1:
            body[at:at] = piece
        elif edit == 2 and body:
            body[at:at + len(piece)] = piece
        else:
            end = draw(st.integers(at, min(len(body), at + 40)))
            body[at:at] = body[at:end]
    return bytes(body)


@FUZZ
@given(bodies())
def test_built_bodies_get_the_strict_parse_answer(raw):
    _same_answer(raw)


@FUZZ
@given(mutated_bodies())
def test_mutated_bodies_get_the_strict_parse_answer(raw):
    _same_answer(raw)


@FUZZ
@given(st.binary(max_size=64))
def test_arbitrary_bytes_get_the_strict_parse_answer(raw):
    _same_answer(raw)


def test_the_generated_bodies_reach_both_paths():
    """A differential test that only ever reaches the strict path proves
    nothing: the fixed-seed bodies must take the fast path often."""
    taken = {"fast": 0, "strict": 0}

    @settings(max_examples=200, derandomize=True, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(bodies())
    def count(raw):
        taken["fast" if _fast_parse(raw) is not None else "strict"] += 1

    count()
    assert taken["fast"] >= 20 and taken["strict"] >= 20, taken


def test_the_bench_bodies_take_the_fast_path_and_the_bench_runs():
    """bench/jsonbody_bench.py in a quick mode: every instant body of the
    workload takes the fast path (else the bench measures the strict parse
    twice)."""
    from bench.jsonbody_bench import main

    result = main(["--bodies", "20", "--rounds", "1"])
    assert result["taken_by_fast_path"] == "20/20", result
    assert result["strict"]["median_us"] > 0 and result["parse_json"]["median_us"] > 0
