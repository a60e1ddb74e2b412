"""Numbers that keep their exact value, in storage and in comparisons, on
every store.

JSON numbers are decimal text of any precision (RFC 8259 section 6).
PostgreSQL's jsonb keeps them as ``numeric`` (exact decimal); Python's json
reads an integer as an exact ``int`` and anything with a fraction or an
exponent as a binary double. Two rules make both stores agree:

* Stored numbers: an integer is kept as it is (an ICCID of 19 or 20 digits
  stays exact); a number with a fraction or exponent is accepted only when
  the double it becomes writes back as the same number
  (``Decimal(repr(float(text))) == Decimal(text)``: ``0.1``, ``1.50``,
  ``1e-05`` are, ``12345678901234567890.5`` and ``1e-400`` are not). So the
  text stored on PostgreSQL and the double kept by TinyDB are the same
  number, and a value is never silently changed: one a double cannot hold
  is refused (:func:`stored_float`), to be sent as text or as an integer.
* Comparisons: a filter value is read without passing through a double
  (:func:`filter_number`: int, or the float of an exact decimal, else a
  :class:`~decimal.Decimal`), and Python compares numbers as PostgreSQL's
  ``numeric`` does, a double by the decimal it writes as
  (:func:`comparable`), so ``1e23`` equals ``100000000000000000000000`` on
  both stores, as their stored texts say.
"""
from __future__ import annotations

import math
import re
from decimal import Decimal, InvalidOperation

#: Decimal exponents a filter value may have: PostgreSQL's numeric reaches
#: about 1e131072, and a literal far beyond anything stored is a typo.
MAX_EXPONENT = 1000

_INTEGER = re.compile(r"-?[0-9]+")


class InexactNumber(ValueError):
    """A number that would not keep its value; the message says why."""


def stored_float(text: str) -> float:
    """The double of a JSON number with a fraction or an exponent (a
    ``parse_float`` hook for :func:`json.loads`), when it writes back as the
    same number; else :class:`InexactNumber`."""
    value = float(text)
    if not math.isfinite(value):
        raise InexactNumber(f"number {text[:40]} is out of range")
    if Decimal(repr(value)) != Decimal(text):
        raise InexactNumber(
            f"number {text[:60]} cannot be kept exactly (it would become {value!r}); "
            "send it as a string, or as an integer if it is one")
    return value


def filter_number(text: str) -> int | float | Decimal | None:
    """A filter value as an exact number, or None when it is not one (or
    its exponent is beyond ``MAX_EXPONENT``): an int for an integer literal,
    the float of a decimal that a double writes back as itself, else a
    Decimal. Never a float that is not the number the text says."""
    text = text.strip()
    if not text.isascii():     # int() and Decimal() read other digits (١٠٠); JSON does not
        return None
    if _INTEGER.fullmatch(text):
        try:
            return int(text)
        except ValueError:        # beyond Python's integer string limit
            return None
    try:
        exact = Decimal(text)
    except (InvalidOperation, ValueError):
        return None
    if not exact.is_finite() or abs(exact.adjusted()) > MAX_EXPONENT:
        return None
    value = float(exact)
    if math.isfinite(value) and Decimal(repr(value)) == exact:
        return value
    return exact


def comparable(value):
    """A number as PostgreSQL's numeric sees it: a float by the decimal it
    writes as (its shortest repr, which is what json and jsonb store), an
    int or Decimal as it is. Anything else unchanged."""
    if isinstance(value, float):
        return Decimal(repr(value))
    return value


def literal(value) -> str:
    """A number as SQL/JSON path literal text: exact, without an exponent
    (``filter_number`` bounds the exponent)."""
    if isinstance(value, float):
        return format(Decimal(repr(value)), "f")
    if isinstance(value, Decimal):
        return format(value, "f")
    return str(value)
