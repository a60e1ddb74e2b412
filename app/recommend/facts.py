"""The facts of one query. The request names a party; the rules want the
customer behind it and what that customer owns, so they are looked up here,
once, and handed to the engine as plain data."""
from __future__ import annotations

from marshmallow import ValidationError

from ..errors import TMFError
from ..rules import Context
from ..schemas import SpecSchemas
from ..timeutil import parse_datetime, utcnow

cart_schemas = SpecSchemas("TMF663-ShoppingCart-v4.0.0.swagger.json", "TMF663")


def _ids(refs) -> list[str]:
    return [str(ref["id"]) for ref in refs or [] if isinstance(ref, dict) and "id" in ref]


def cart_offerings(shopping_carts) -> list[str]:
    """Offering ids of carts sent by value (`@type: ShoppingCart` with
    `cartItem`, TMF663 CartItem shape). Carts by reference carry no items:
    this service has no cart store to resolve them from."""
    offerings: list[str] = []
    for position, cart in enumerate(shopping_carts or []):
        items = cart.get("cartItem")
        if items is None:
            continue
        try:
            loaded = cart_schemas["CartItem"](many=True).load(items)
        except ValidationError as exc:
            raise TMFError(400, "shoppingCart.cartItem does not match the TMF663 CartItem schema",
                           code="INVALID_BODY",
                           details={f"shoppingCart[{position}].cartItem": exc.messages}) from None
        offerings.extend(_item_offerings(loaded))
    return offerings


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


def find_customer(store, party: dict | None) -> dict | None:
    """By customer id, else by the id of its engaged party."""
    if not party or not party.get("id"):
        return None
    party_id = str(party["id"])
    customer = store.get("customer", party_id)
    if customer is not None:
        return customer
    found = store.find("customer", lambda candidate: str(
        (candidate.get("engagedParty") or {}).get("id")) == party_id)
    return found[0] if found else None


def customer_products(store, customer: dict | None) -> list[dict]:
    if customer is None:
        return []
    party_ids = {str(customer["id"])}
    engaged = customer.get("engagedParty") or {}
    if engaged.get("id"):
        party_ids.add(str(engaged["id"]))
    return store.find("product", lambda product: any(
        str(party.get("id")) in party_ids for party in product.get("relatedParty") or []))


def build_context(query: dict, store) -> Context:
    start = parse_datetime((query.get("validFor") or {}).get("startDateTime"))
    party = query.get("relatedParty")
    customer = find_customer(store, party if isinstance(party, dict) else None)
    place = query.get("place")
    categories = []
    for ref in query.get("category") or []:
        categories.extend(str(ref[key]) for key in ("id", "name") if ref.get(key))
    return Context(
        time=start or utcnow(),
        channels=_ids(query.get("channel")),
        cart=cart_offerings(query.get("shoppingCart")),
        customer=customer,
        products=customer_products(store, customer),
        places=[place] if isinstance(place, dict) else [],
        categories=categories,
        product_orders=_ids(query.get("productOrder")),
    )
