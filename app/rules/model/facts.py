"""The facts of one evaluation.

The HTTP side (or the case runner) builds a `Context`; the engine turns it into
`Facts`, the normalised view the `when` conditions read: sets of offering ids
and categories (joined with the catalog), channel, places, customer segment
and characteristics, counts and the evaluation time.
"""
from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field

from ...textform import nfc
from ...timeutil import isoformat_as_given
from .common import UTC, parse_time


@dataclass
class Context:
    time: dt.datetime                     # aware UTC; request validFor.startDateTime else now
    channels: list[str] = field(default_factory=list)       # channel ids
    cart: list[str] = field(default_factory=list)           # offering ids in the cart (by value)
    customer: dict | None = None          # TMF629 Customer, or None (anonymous)
    products: list[dict] = field(default_factory=list)      # TMF637 Products, ALL statuses
    places: list[dict] = field(default_factory=list)        # RelatedPlaceRefOrValue dicts
    categories: list[str] = field(default_factory=list)     # category ids/names of the query
    product_orders: list[str] = field(default_factory=list)  # productOrder ids
    party_id: str | None = None           # the query's relatedParty id (contact policies)
    history: object | None = None         # source of the party's history (engine/contact.py)


def characteristics(customer: dict | None) -> dict[str, object]:
    """TMF629 Characteristic list -> {name: value} (the first of a name wins;
    names in NFC, as the rules' are)."""
    found: dict[str, object] = {}
    for item in (customer or {}).get("characteristic") or []:
        if isinstance(item, dict) and isinstance(item.get("name"), str) and nfc(item["name"]) not in found:
            found[nfc(item["name"])] = item.get("value")
    return found


def normalise_value(value) -> str | None:
    """Characteristic and segment values compare as text: 12 == "12", True == "true",
    "privé" in NFD == "privé" in NFC (app/textform.py)."""
    if value is None or isinstance(value, (dict, list)):
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (dt.datetime, dt.date)):
        when = parse_time(value)
        return isoformat_as_given(when) if when else None
    return nfc(str(value).strip())


def number_value(value) -> float | None:
    """A characteristic as a finite float, else None (the comparison is false).

    JSON admits integers of any size (10**400 is valid, and stored as sent) and
    texts such as "1e400" or "nan"; none of them is a double, which is what the
    engine compares. Beyond about ±1.8e308 a value counts as not a number rather
    than being clamped: an overflow must never become a 500."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        if isinstance(value, (int, float)):
            number = float(value)
        elif isinstance(value, str):
            number = float(value.strip())
        else:
            return None
    except (OverflowError, ValueError):
        return None
    return number if math.isfinite(number) else None


def date_value(value) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return None
    when = parse_time(value)
    return when.timestamp() if when else None


@dataclass
class Facts:
    """What rules read, already joined with the catalog."""

    time: dt.datetime
    cart: list[str]
    cart_category: list[str]
    owns: list[str]
    owns_category: list[str]
    channel: list[str]
    place: list[str]
    category: list[str]
    segment: str | None
    known: bool
    characteristics: dict[str, object]
    counts: dict[str, int]

    def set_of(self, name: str) -> list[str]:
        return getattr(self, name)


def _unique(values) -> list[str]:
    """The distinct non-empty texts of `values` in NFC, in order."""
    seen: dict[str, None] = {}
    for value in values:
        if value is not None and value != "":
            seen.setdefault(nfc(str(value)), None)
    return list(seen)


def owned_offerings(products: list[dict]) -> list[str]:
    """Offering ids of the customer's products whose status is active."""
    owned = []
    for product in products or []:
        if not isinstance(product, dict):
            continue
        if str(product.get("status") or "").lower() != "active":
            continue
        offering = product.get("productOffering")
        if isinstance(offering, dict) and offering.get("id") is not None:
            owned.append(str(offering["id"]))
    return _unique(owned)


def build_facts(ctx: Context, catalog) -> Facts:
    when = ctx.time
    if not (isinstance(when, dt.datetime) and when.tzinfo is UTC):   # as build_context makes it: used as is
        when = parse_time(when) if when is not None else None
    if when is None:
        when = dt.datetime.now(UTC)
    cart = _unique(ctx.cart or [])
    owns = owned_offerings(ctx.products)

    def categories_of(ids):
        tokens = []
        for offering_id in ids:
            offering = catalog.get(offering_id)
            if offering is not None:
                tokens.extend(offering.categories)
        return _unique(tokens)

    places = []
    for place in ctx.places or []:
        if isinstance(place, dict):
            places.extend(place.get(key) for key in ("id", "name") if place.get(key) is not None)
    chars = characteristics(ctx.customer)
    segment = normalise_value(chars.get("segment")) if ctx.customer is not None else None
    return Facts(
        time=when,
        cart=cart,
        cart_category=categories_of(cart),
        owns=owns,
        owns_category=categories_of(owns),
        channel=_unique(str(c) for c in ctx.channels or []),
        place=_unique(str(p) for p in places),
        category=_unique(str(c) for c in ctx.categories or []),
        segment=segment or None,
        known=ctx.customer is not None,
        characteristics=chars if ctx.customer is not None else {},
        counts={"cart_count": len(cart), "owns_count": len(owns),
                "order_count": len(_unique(ctx.product_orders or []))},
    )
