"""Sticky, stateless assignment of a customer to an experiment's arm.

bucket = the first 8 bytes of SHA-256("<experiment id>\\x1f<key>"), read as
a big-endian unsigned integer, modulo 10,000. The same key gets the same
bucket on every host, worker, restart and Python version (never Python's
hash(), which is salted per process). The experiment id is in the hash so
that two experiments split the same customers independently.

The key: the query's first relatedParty id (the customer); for an anonymous
shopper (no relatedParty) the shoppingCart id, which TMF680's
QueryProductRecommendation already carries (ShoppingCartRef), so a storefront
keeps a visitor in one arm by sending its cart or session id there. A query
with neither is not in the experiment (the active version answers it).

Arms take contiguous ranges of buckets, in the file's order:
[0, w1), [w1, w1 + w2), ... (weights in basis points of 10,000). Raising
the first arm's weight (a canary at 5 %, 25 %, 100 %) only moves the
buckets between the old and the new boundary, all into that arm: a customer
in it at 5 % stays in it at 25 %. Put the arm that grows first."""
from __future__ import annotations

import hashlib

BUCKETS = 10_000


def bucket(experiment_id: str, key: str) -> int:
    """The customer's bucket in [0, 10000) for one experiment."""
    digest = hashlib.sha256(f"{experiment_id}\x1f{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % BUCKETS


def boundaries(weights: list[float]) -> list[int]:
    """The exclusive upper bucket of each arm (weights in percent, adding up
    to 100): cumulative, rounded to a bucket, the last one 10,000."""
    bounds, total = [], 0.0
    for weight in weights:
        total += weight
        bounds.append(min(BUCKETS, round(total * 100)))
    if bounds:
        bounds[-1] = BUCKETS
    return bounds


def arm_index(bounds: list[int], found: int) -> int:
    """The arm whose range holds bucket `found` (a weight-0 arm holds none)."""
    for index, upper in enumerate(bounds):
        if found < upper:
            return index
    return len(bounds) - 1


def assignment_key(query: dict) -> str | None:
    """The customer's key in a TMF680 query: "party:<relatedParty[0].id>",
    else "cart:<shoppingCart id>", else None (not in any experiment)."""
    party = _first_id(query.get("relatedParty"))
    if party is not None:
        return "party:" + party
    cart = _first_id(query.get("shoppingCart"))
    return "cart:" + cart if cart is not None else None


def _first_id(value) -> str | None:
    if isinstance(value, list):
        value = value[0] if value else None
    if isinstance(value, dict) and value.get("id") not in (None, ""):
        return str(value["id"])
    return None
