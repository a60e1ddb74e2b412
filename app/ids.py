"""The id alphabet: what the id of a stored resource (or of a catalog
offering) may be, the same on every way in.

An id is the last segment of its resource's href
(`/tmf-api/customerManagement/v4/customer/{id}`) and of every URL a client
builds from it. Ids the server makes are UUIDs; ids that come from outside
(`flask store load` and `flask store copy` keep them, catalog files name
them) are held to the characters a URL path segment carries as they are:
RFC 3986 section 2.3's unreserved characters (letters, digits, `-`, `.`,
`_`, `~`) plus `:` and `@` (allowed in a segment, section 3.3), at most 200
of them, and not `.` or `..` (dot segments, removed by section 5.2.4). So an
href never needs percent-encoding, and no id holds a `/` (which no route
can carry), a space, or anything a client library might encode differently.
An id outside the alphabet is refused where it comes in, with the reason.
"""
from __future__ import annotations

import re

MAX_LENGTH = 200
ID_ALPHABET = re.compile(r"[A-Za-z0-9._~:@-]+")
#: For messages: the alphabet in words.
ALLOWED = "letters A-Z and a-z, digits and - . _ ~ : @"


def id_problem(value) -> str | None:
    """Why `value` cannot be a resource id, or None when it can."""
    if not isinstance(value, str) or not value:
        return "an id must be a non-empty string"
    if len(value) > MAX_LENGTH:
        return f"an id has at most {MAX_LENGTH} characters (this one has {len(value)})"
    if not ID_ALPHABET.fullmatch(value):
        bad = sorted({char for char in value if not ID_ALPHABET.fullmatch(char)})
        shown = ", ".join(repr(char) for char in bad[:5])
        return (f"id {value[:60]!r} holds {shown}; an id may hold only {ALLOWED}, "
                "as it is a URL path segment")
    if value in (".", ".."):
        return f"id {value!r} is a dot segment, which URLs remove (RFC 3986 section 5.2.4)"
    return None
