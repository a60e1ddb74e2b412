"""Strict reading of request bodies: the stdlib json module accepts NaN,
Infinity (also as an overflowing number like 1e999), lone UTF-16 surrogates
(`"\\ud800"`) and duplicate keys, none of which a TMF payload may carry (nor
can they be stored or sent on as JSON); a deeply nested document must not
exhaust the interpreter's stack, and a huge array must not cost seconds of
validation and a many times larger error answer."""
from __future__ import annotations

import json
import math
import sys
import zlib

import orjson
from flask import Request, request
from werkzeug.datastructures import ImmutableMultiDict
from werkzeug.utils import cached_property

from .errors import TMFError
from .exactnumbers import InexactNumber, stored_float
from .storable import CODE as UNSUPPORTED_CHARACTER, UNSTORABLE, first_unstorable
from .textform import nfc, nfc_tree

MAX_DEPTH = 64
MAX_ARRAY_ITEMS = 10_000


def _unstorable_text(document) -> TMFError:
    """The 400 for a document holding a string no store can keep
    (app/storable.py): an unpaired surrogate is not valid JSON text; a NUL
    is valid JSON that this service accepts nowhere, named by its path."""
    where, why = first_unstorable(document)
    if "surrogate" in why:
        what = "a key" if where.startswith("an attribute name") else "a string"
        return TMFError(400, f"The body is not valid JSON text: {what} holds an "
                             "unpaired UTF-16 surrogate escape", code="INVALID_JSON")
    return TMFError(400, f"{where} holds {why}, which this service accepts in no text",
                    code=UNSUPPORTED_CHARACTER, details={where: [f"Holds {why}."]})


JSON_TYPES = ("application/json",)
MERGE_PATCH_TYPES = ("application/merge-patch+json", "application/json")

#: The patch document formats every PATCH of this service takes, as the
#: Accept-Patch header lists them (RFC 5789 section 3.1: "Accept-Patch =
#: "Accept-Patch" ":" 1#media-type"). RFC 5789 section 2.2, "Unsupported
#: patch document": a 415 "SHOULD include an Accept-Patch response header as
#: described in Section 3.1 to notify the client what patch document media
#: types are supported"; section 3.1: "Accept-Patch SHOULD appear in the
#: OPTIONS response for any resource that supports the use of the PATCH
#: method" (install_accept_patch). JSON Patch (RFC 6902,
#: application/json-patch+json) is not one of them.
ACCEPT_PATCH = ", ".join(MERGE_PATCH_TYPES)


def _no_duplicates(pairs):
    result = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate key {key!r}")
        result[key] = value
    return result


def _no_constants(name):
    raise ValueError(f"{name} is not a JSON number")


def _finite(text: str) -> float:
    """A number with a fraction or exponent as the double that writes back
    as the same number (app/exactnumbers.py); out of range is not JSON a
    TMF payload may carry, one a double cannot hold exactly is refused
    rather than stored altered."""
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text[:40]} is out of range")
    try:
        return stored_float(text)
    except InexactNumber as exc:
        raise TMFError(400, str(exc), code="INEXACT_NUMBER") from None


def _check_tree(value) -> None:
    """Depth, array sizes and text of the parsed document, without recursion."""
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise TMFError(400, f"The JSON body is nested deeper than {MAX_DEPTH} levels",
                           code="INVALID_JSON")
        if isinstance(node, dict):
            for key, child in node.items():
                if UNSTORABLE.search(key):
                    raise _unstorable_text(value)
                stack.append((child, depth + 1))
        elif isinstance(node, list):
            if len(node) > MAX_ARRAY_ITEMS:
                raise TMFError(400, f"The JSON body has an array of {len(node)} items; "
                                    f"at most {MAX_ARRAY_ITEMS} are accepted", code="INVALID_JSON")
            stack.extend((child, depth + 1) for child in node)
        elif isinstance(node, str) and UNSTORABLE.search(node):
            raise _unstorable_text(value)



def long_integer_problem(exc: ValueError) -> str | None:
    """What is wrong, in plain words ("has an integer of more than 4300
    digits, ..."), when `exc` is json's refusal of an integer longer than
    Python reads (sys.get_int_max_str_digits; its own message advises a
    call to Python, an internal detail); None for any other ValueError."""
    if "integer string conversion" not in str(exc):
        return None
    return (f"has an integer of more than {sys.get_int_max_str_digits()} digits, "
            "more than this service reads")


def _plain_tree(value, colons: int) -> bool:
    """Whether orjson's parse of a body without `\\u` escapes is what the
    strict parse below would return, checked in one walk: no float (the
    strict parse keeps only exactly written-back doubles, and orjson turns
    an integer beyond 64 bits into one), depth and array sizes within the
    limits, and no duplicate key. orjson keeps the last of duplicate keys
    silently; each object member has one `:` outside strings, so the body
    held a duplicate exactly when its `colons` (count of b":") exceed the
    members kept plus the colons inside the kept keys and strings (without
    escapes a string's colons are all written as `:`). No text check is
    needed: without escapes a string can hold neither NUL nor a surrogate
    (orjson refuses raw control characters and invalid UTF-8)."""
    members = 0
    stack = [(value, 1)]
    pop, push = stack.pop, stack.append
    while stack:
        node, depth = pop()
        kind = type(node)
        if kind is str:
            colons -= node.count(":")
        elif kind is dict:
            if depth >= MAX_DEPTH and node:
                return False
            members += len(node)
            for key, child in node.items():
                colons -= key.count(":")
                if type(child) in _LEAVES:
                    if type(child) is str:
                        colons -= child.count(":")
                else:
                    push((child, depth + 1))
        elif kind is list:
            if len(node) > MAX_ARRAY_ITEMS or (depth >= MAX_DEPTH and node):
                return False
            for child in node:
                if type(child) in _LEAVES:
                    if type(child) is str:
                        colons -= child.count(":")
                else:
                    push((child, depth + 1))
        elif kind is float:
            return False
    return colons == members


_LEAVES = (str, int, bool, type(None))


def _fast_parse(raw: bytes):
    """The body parsed by orjson when that is provably the strict parse's
    result (_plain_tree), else None: the strict parse then decides, with its
    own errors. Bodies with `\\u` escapes always take the strict path.
    Measured on the bench's 1,000 instant bodies (generated and demo; thread
    CPU, medians of 7 alternating rounds, load 4.6): the strict parse 32.7
    µs a body (json's object_pairs_hook is a Python call per object), this
    path 14.2 µs."""
    if b"\\u" in raw:
        return None
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    if not _plain_tree(value, raw.count(b":")):
        return None
    return value


def parse_json(raw: bytes):
    """A request body (bytes) as its JSON value, or the TMF error (400) that
    says what is wrong: not UTF-8, empty, not JSON, NaN or an overflowing
    number, a duplicate key, nested deeper than MAX_DEPTH, an array over
    MAX_ARRAY_ITEMS, text no store holds, an inexact or too long number.
    Strings are returned in NFC."""
    fast = _fast_parse(raw)
    if fast is not None:
        if raw.isascii():
            return fast         # ASCII text without escapes is NFC already (the common case)
        try:
            return nfc_tree(fast)
        except ValueError as exc:
            raise TMFError(400, f"The body is not valid JSON: {exc}", code="INVALID_JSON") from None
    return strict_parse(raw)


def strict_parse(raw: bytes):
    """The body by the stdlib parser with every check of this module: what
    parse_json returns or raises for any body (its fast path only takes
    bodies for which the result is provably the same)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        # RFC 8259: JSON exchanged between systems MUST be UTF-8 (8.1) and
        # a charset parameter "really has no effect on compliant recipients"
        # (11): a client that names latin-1 learns what to send instead
        raise TMFError(400, f"The body is not valid UTF-8 (byte {exc.start}): a JSON body is "
                            "UTF-8 whatever charset its Content-Type names (RFC 8259 section 8.1)",
                       code="INVALID_JSON") from None
    if not text.strip():
        raise TMFError(400, "The request body is empty; a JSON object is expected",
                       code="EMPTY_BODY")
    if text.startswith("\ufeff"):
        # RFC 8259 section 8.1: senders "MUST NOT add a byte order mark";
        # a parser may refuse one. Said plainly rather than with the json
        # module's own words (which tell a Python programmer what to call).
        raise TMFError(400, "The body starts with a byte order mark (U+FEFF): send the JSON "
                            "text without it (RFC 8259 section 8.1)", code="INVALID_JSON")
    try:
        value = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constants,
                           parse_float=_finite)
    except RecursionError:
        raise TMFError(400, "The JSON body is nested too deeply", code="INVALID_JSON") from None
    except json.JSONDecodeError as exc:
        raise TMFError(400, f"The body is not valid JSON: {exc}", code="INVALID_JSON") from None
    except ValueError as exc:   # Python's int() refuses one longer than its limit
        too_long = long_integer_problem(exc)
        if too_long is None:
            raise TMFError(400, f"The body is not valid JSON: {exc}",
                           code="INVALID_JSON") from None
        raise TMFError(400, f"The body {too_long}; send it as a string", code="INEXACT_NUMBER") from None
    _check_tree(value)
    if text.isascii() and "\\u" not in text:
        return value            # ASCII text without escapes is NFC already (the common case)
    try:
        return nfc_tree(value)  # one Unicode form for what is stored and compared
    except ValueError as exc:
        raise TMFError(400, f"The body is not valid JSON: {exc}", code="INVALID_JSON") from None


#: Content codings a request body may carry (RFC 9110 section 8.4.1):
#: zlib's window bits for each; "identity" is no coding.
CONTENT_CODINGS = {"gzip": 16 + zlib.MAX_WBITS, "x-gzip": 16 + zlib.MAX_WBITS,
                   "deflate": zlib.MAX_WBITS}
ACCEPT_ENCODING = "gzip, deflate, identity"


def _too_large() -> TMFError:
    return TMFError(413, "The request body is larger than this service accepts",
                    code="BODY_TOO_LARGE")


def _inflate(raw: bytes, coding: str, limit: int | None) -> bytes:
    """One content coding undone, never producing more than `limit` bytes
    (a 1 KB gzip bomb must not become gigabytes in memory). "deflate" is the
    zlib format (RFC 9110 section 8.4.1.2); raw DEFLATE, which some clients
    send under that name, is accepted too."""
    wbits = CONTENT_CODINGS[coding]
    for attempt in ((wbits, -zlib.MAX_WBITS) if coding == "deflate" else (wbits,)):
        inflater = zlib.decompressobj(attempt)
        try:
            out = inflater.decompress(raw, limit + 1 if limit is not None else 0)
        except zlib.error:
            continue
        if limit is not None and len(out) > limit:
            raise _too_large()
        if not inflater.eof:
            raise TMFError(400, f"The {coding} request body is truncated", code="INVALID_ENCODING")
        return out
    raise TMFError(400, f"The request body is not valid {coding} data", code="INVALID_ENCODING")


def decoded_body(raw: bytes, limit: int | None) -> bytes:
    """The body with its Content-Encoding undone (codings are listed in the
    order they were applied, so they are undone last first); an unsupported
    coding is a 415 with Accept-Encoding (RFC 9110 sections 8.4 and 12.5.3).
    The size limit applies to the decoded body."""
    header = request.headers.get("Content-Encoding", "")
    codings = [c.strip().lower() for c in header.split(",") if c.strip()]
    for coding in reversed(codings):
        if coding == "identity":
            continue
        if coding not in CONTENT_CODINGS:
            raise TMFError(415, f"Content-Encoding {coding!r} is not supported; use "
                                f"{ACCEPT_ENCODING}", code="UNSUPPORTED_ENCODING",
                           headers={"Accept-Encoding": ACCEPT_ENCODING})
        raw = _inflate(raw, coding, limit)
    return raw


def read_json_object(accepted_types=JSON_TYPES) -> dict:
    """The request body as a JSON object, or a TMF error naming what is wrong.
    A PATCH in another format is a 415 with Accept-Patch (RFC 5789 section
    2.2), any other request's a 415 naming the accepted types."""
    mimetype = (request.mimetype or "").lower()
    if mimetype not in accepted_types:
        headers = ({"Accept-Patch": ", ".join(accepted_types)} if request.method == "PATCH"
                   else None)
        raise TMFError(415, f"Content-Type must be one of {', '.join(accepted_types)}"
                            f" (got {request.content_type or 'none'})",
                       code="UNSUPPORTED_MEDIA_TYPE", headers=headers)
    raw = request.get_data(cache=True)
    limit = request.max_content_length             # MAX_CONTENT_LENGTH, unless an endpoint needs more
    if limit is not None and request.content_length is None and len(raw) >= limit:
        # A chunked body has no Content-Length to refuse up front, and werkzeug
        # stops reading it at the limit without saying so: refuse, don't parse
        # a truncated document.
        raise _too_large()
    value = parse_json(decoded_body(raw, limit))
    if not isinstance(value, dict):
        raise TMFError(400, "The JSON body must be an object", code="INVALID_BODY")
    return value


def install_accept_patch(app) -> None:
    """Accept-Patch on the answer to OPTIONS for every URL that takes PATCH
    (RFC 5789 section 3.1), whichever API it belongs to: the automatic
    OPTIONS answer already lists PATCH in Allow."""

    @app.after_request
    def _accept_patch(response):
        if request.method == "OPTIONS" and "PATCH" in response.allow:
            response.headers["Accept-Patch"] = ACCEPT_PATCH
        return response


def install_nfc_path_values(app) -> None:
    """Values taken from the URL's path (`/customer/<resource_id>`) in NFC,
    as query strings are: ids are stored in NFC (a loaded line's id too, so
    that the references to it, also NFC, name it), and the id a client
    holds in NFD (exported from a Mac) must find the same resource."""

    @app.url_value_preprocessor
    def _nfc_path_values(_endpoint, values):
        if values:
            for key, value in values.items():
                if isinstance(value, str):
                    values[key] = nfc(value)


class NfcRequest(Request):
    """The app's request class: query string names and values in Unicode NFC
    (app/textform.py), so that `?name=privé` typed in NFD finds what was
    stored in NFC, whatever reads `request.args` (filters, `fields`, `sort`,
    the admin API)."""

    @cached_property
    def args(self):
        return ImmutableMultiDict([(nfc(key), nfc(value))
                                   for key, value in super().args.items(multi=True)])
