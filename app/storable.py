"""Which text a stored document may hold, decided the same on every store.

JSON (RFC 8259 section 7) can spell two kinds of string that a store cannot
keep:

* U+0000 (``"\\u0000"``): PostgreSQL's ``jsonb`` and ``text`` cannot hold it
  (PostgreSQL 15 manual, 8.14 "JSON Types": "\\u0000 is disallowed"), while
  TinyDB's JSON file can. Accepting it on one store and refusing it on the
  other would make one request mean two things, so it is refused everywhere.
* An unpaired UTF-16 surrogate (``"\\ud800"``): not Unicode text (RFC 8259
  section 8.2 says the behaviour is unpredictable); it cannot be encoded as
  UTF-8, and ``jsonb`` refuses it.

Used on every way in: request bodies (app/jsonbody.py), query strings
(app/api/tmf.py), bulk loads and copies (app/cli/store.py), and the resource
service itself (app/resources/service.py), so the answer is decided before
a store is reached."""
from __future__ import annotations

import re

#: Characters no stored string may contain: NUL and the surrogate range.
UNSTORABLE = re.compile("[\x00\ud800-\udfff]")

#: The error code of a refused string, in bodies, query strings and loads.
CODE = "UNSUPPORTED_CHARACTER"


def why_unstorable(text: str) -> str | None:
    """What is wrong with one string, or None when it can be stored."""
    found = UNSTORABLE.search(text)
    if found is None:
        return None
    if found.group() == "\x00":
        return "a NUL character (\\u0000)"
    return f"an unpaired UTF-16 surrogate (\\u{ord(found.group()):04x})"


def first_unstorable(value, where: str = "") -> tuple[str, str] | None:
    """The first string (key or value) of a JSON value that no store can
    hold: ``(where, why)``, where being a path such as
    ``characteristic[0].value`` (``where`` prefixes it), or None.
    Iterative, so a deep document cannot exhaust the stack."""
    stack = [(value, where)]
    while stack:
        node, path = stack.pop()
        if isinstance(node, str):
            why = why_unstorable(node)
            if why:
                return path or "the value", why
        elif isinstance(node, dict):
            for key, child in reversed(list(node.items())):
                name = f"{path}.{key}" if path else str(key)
                if isinstance(key, str):
                    why = why_unstorable(key)
                    if why:
                        return f"an attribute name in {path or 'the object'}", why
                stack.append((child, name))
        elif isinstance(node, list):
            stack.extend((child, f"{path}[{index}]")
                         for index, child in reversed(list(enumerate(node))))
    return None
