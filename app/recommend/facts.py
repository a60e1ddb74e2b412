"""The facts of one query. The request names a party; the rules want the
customer behind it and what that customer owns, so they are looked up here,
once, and handed to the engine as plain data."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from marshmallow import ValidationError

from ..errors import TMFError
from ..rules import Context
from ..rules.engine.contact import reaction_windows, window
from ..schemas import SpecSchemas
from ..schemas.fast import FastLoader
from ..timeutil import parse_datetime, parse_request_datetime, utcnow

cart_schemas = SpecSchemas("TMF663-ShoppingCart-v4.0.0.swagger.json", "TMF663")
_carts = cart_schemas["ShoppingCart"]()
_cart_loader = FastLoader(_carts)     # a valid cart skips marshmallow; any other goes through it


def _ids(refs) -> list[str]:
    return [str(ref["id"]) for ref in refs or [] if isinstance(ref, dict) and "id" in ref]


def cart_offerings(shopping_carts, one_object: bool = False) -> list[str]:
    """Offering ids of carts sent by value (`@type: ShoppingCart`, or a cart
    with `cartItem`), each checked whole against TMF663 ShoppingCart (its
    validFor, prices, parties and items, dates included: a bad or
    out-of-range date-time is a 400 naming it). Carts by reference carry no
    items: this service has no cart store to resolve them from. The 400's
    details are nested as the schema's are: `shoppingCart.<n>.<attribute>`,
    or `shoppingCart.<attribute>` when the client sent one cart object
    (`one_object`), not an array."""
    offerings: list[str] = []
    for position, cart in enumerate(shopping_carts or []):
        if cart.get("@type") != "ShoppingCart" and "cartItem" not in cart:
            continue
        # @referredType belongs to the reference the TMF680 body wraps the cart in
        by_value = {key: value for key, value in cart.items() if key != "@referredType"}
        try:
            loaded = _cart_loader.load(by_value)
        except ValidationError as exc:
            raise TMFError(400, "shoppingCart does not match the TMF663 ShoppingCart schema",
                           code="INVALID_BODY",
                           details={"shoppingCart": exc.messages if one_object
                                    else {str(position): exc.messages}}) from None
        offerings.extend(_item_offerings(loaded.get("cartItem") or []))
    return offerings


@dataclass(frozen=True)
class QueryFacts:
    """What the evaluation reads of a query's own attributes, read once when
    the query is checked (query_facts) and handed on to build_context: the
    offering ids of its carts by value (in cart order, the cart checked
    against TMF663 on the way) and its evaluation time (validFor.startDateTime
    as an aware UTC datetime, None when not sent: now)."""

    cart: list[str]
    start: dt.datetime | None


def query_facts(query: dict, sent: dict | None = None) -> QueryFacts:
    """Check a create body's carts (cart_offerings: a 400 TMFError naming the
    cart that does not match) and read its evaluation time; the body passed
    the create schema, so startDateTime, when sent, is a date-time."""
    start = (query.get("validFor") or {}).get("startDateTime")
    one_object = isinstance((sent or {}).get("shoppingCart"), dict)
    return QueryFacts(cart=cart_offerings(query.get("shoppingCart"), one_object),
                      start=parse_request_datetime(start) if isinstance(start, str) else parse_datetime(start))


def checked_cart_offerings(shopping_carts) -> list[str]:
    """cart_offerings of a query that already passed check_query (the create
    schema and the TMF663 ShoppingCart check): the same ids without validating the
    items a second time (it was 111 us of an instant request)."""
    return [offering for cart in shopping_carts or [] if isinstance(cart, dict)
            for offering in _item_offerings(cart.get("cartItem") or [])]


def _item_offerings(items) -> list[str]:
    found = []
    for item in items:
        if item.get("action") in ("delete",):
            continue
        offering = item.get("productOffering")
        if isinstance(offering, dict) and offering.get("id"):
            found.append(str(offering["id"]))
        found.extend(_item_offerings(item.get("cartItem") or []))
    return found


def _engaged_party_id(customer: dict) -> list[str]:
    engaged = customer.get("engagedParty") or {}
    return [str(engaged["id"])] if engaged.get("id") is not None else []


class PartyFacts:
    """The customer a query names and what it owns, through the store's
    look-ups by indexed path (an instant recommendation must not scan every
    stored product of every customer)."""

    def __init__(self, store, history=None):
        self.store = store
        #: the contact policies' history source (app/contact), set by the app factory
        self.history = history

    def customer(self, party: dict | None) -> dict | None:
        """By customer id, else by the id of its engaged party."""
        return self.look_up(party)[0]

    def look_up(self, party: dict | None, when=None, policies=()) -> tuple[dict | None, object]:
        """(the customer, by customer id, else by the id of its engaged
        party; the contact policies' history source for this request).

        When the answering version declares contact `policies`, the store
        speaks SQL and the source can read ahead (app/contact
        PostgresHistory.ahead), the look-up by id and the party's history
        for those policies at `when` (datetime, aware UTC) are ONE statement
        (PostgresStore.get_along): the source returned answers the
        policies' read from its rows, and their evaluation costs no
        statement of its own. Otherwise the source is `self.history`
        unchanged (it reads when the policies ask)."""
        source = self.history
        if not party or not party.get("id"):
            return None, source
        party_id = str(party["id"])
        if (policies and when is not None and self.store.sql and source is not None
                and source.ahead is not None):
            (sql, params, columns), finish = source.ahead(party_id, *window(policies, when),
                                                     kinds=reaction_windows(policies, when))
            customer, rows = self.store.get_along("customer", party_id, sql, params, columns)
            source = finish(rows)
        else:
            customer = self.store.get("customer", party_id)
        if customer is None:
            found = self.store.find_by("customer", ("engagedParty", "id"), [party_id])
            customer = found[0] if found else None
        return customer, source

    def products(self, customer: dict | None) -> list[dict]:
        if customer is None:
            return []
        return self.store.find_by("product", ("relatedParty", "id"),
                                  [str(customer["id"]), *_engaged_party_id(customer)])


def build_context(query: dict, parties: PartyFacts, facts: QueryFacts | None = None,
                  policies=()) -> Context:
    """The Context of a QueryProductRecommendation that passed the create
    checks (every caller: the TMF680 create, the job over a stored query, the
    rules admin's context_from_query). `facts`: what those checks read of it
    (query_facts), so the carts are not walked and the time not parsed again;
    without them (a stored query) they are read here, the carts unchecked.
    `policies`: the contact policies of the version that will answer, when
    the caller knows it (the instant path): their history is then read with
    the customer (PartyFacts.look_up)."""
    if facts is None:
        facts = QueryFacts(cart=checked_cart_offerings(query.get("shoppingCart")),
                           start=parse_datetime((query.get("validFor") or {}).get("startDateTime")))
    when = facts.start or utcnow()
    party = query.get("relatedParty")
    party = party if isinstance(party, dict) else None
    customer, products, history = None, [], parties.history
    if party and party.get("id"):
        # PostgreSQL: one connection for both look-ups; none for an anonymous
        # query, which is then answered while the database is down
        with parties.store.reading():
            customer, history = parties.look_up(party, when, policies)
            products = parties.products(customer)
    place = query.get("place")
    categories = []
    for ref in query.get("category") or []:
        categories.extend(str(ref[key]) for key in ("id", "name") if ref.get(key))
    return Context(
        time=when,
        channels=_ids(query.get("channel")),
        cart=list(facts.cart),
        customer=customer,
        products=products,
        places=[place] if isinstance(place, dict) else [],
        categories=categories,
        product_orders=_ids(query.get("productOrder")),
        party_id=str(party["id"]) if party and party.get("id") else None,
        history=history,
    )
