"""TMF620 Product Catalog Management v4.0.0, read-only: the productOffering
resources of the catalog files the rules read (RECO_CATALOG_DIR), so that
every `productOffering.href` this service hands out (recommended items,
sales leads) resolves.

    GET /tmf-api/productCatalogManagement/v4/productOffering
        list, with `fields`, filters (`lifecycleStatus=Active`,
        `category.id=devices`, ...), `sort`, `offset`/`limit` paging, like
        every list of this service (app/resources/query.py)
    GET /tmf-api/productCatalogManagement/v4/productOffering/{id}[?fields=]

The catalog is authored as files (a product manager's change is a commit,
checked by `flask rules lint`), so the API has no POST, PATCH or DELETE:
those are 405. The offerings are the catalog the active rule set was loaded
with; when no catalog file is valid, both operations answer 503.
"""
from __future__ import annotations

from flask import request
from flask_smorest import Blueprint

from ..errors import TMFError
from ..resources.query import parse_fields, parse_list_query, select_fields
from ..rules.model.catalog import HREF_PATH
from ..store.query import run_python
from ..schemas import SpecSchemas
from .tmf import (FILTER_DESCRIPTION, base_url, error_responses, fields_parameter, json_response,
                  list_parameters, refuse_unknown_parameters, services)

# where the offerings' hrefs point (app/rules/model/catalog.py)
URL_PREFIX = HREF_PATH.removesuffix("/productOffering/")

# The catalog files give prices by value (name, priceType, price), as TMF620
# v5's ProductOfferingPriceRefOrValue allows; v4.0.0's ProductOffering lists
# only ProductOfferingPriceRef (id required), so the served document says
# "ProductOfferingPrice", the v4 definition of a price by value.
schemas = SpecSchemas("TMF620-ProductCatalog-v4.0.0.swagger.json", "TMF620", added_properties={
    "ProductOffering": {"productOfferingPrice": {
        "type": "array", "items": {"$ref": "#/definitions/ProductOfferingPrice"},
        "description": "Prices of the offering, by value, as the catalog files give them"}}})
OFFERING_SCHEMA = schemas["ProductOffering"]
KNOWN_ATTRIBUTES = set(OFFERING_SCHEMA().fields) | {"id", "href", "@type"}

blp = Blueprint("productCatalogManagement", __name__, url_prefix=URL_PREFIX,
                description="TMF620 Product Catalog Management (read-only productOffering)")
blp.before_request(refuse_unknown_parameters)

_ONE = {"application/json": {"schema": OFFERING_SCHEMA}}
_MANY = {"application/json": {"schema": {"type": "array", "items": OFFERING_SCHEMA}}}


def offerings() -> list[dict]:
    """The catalog's offerings as TMF620 ProductOffering resources, in file
    order, with hrefs built like every other link (app/api/tmf.py base_url)."""
    rules = services().rules
    rules.refresh()
    catalog = rules.catalog
    if catalog is None:
        raise TMFError(503, "The product catalog is unavailable: no catalog file is valid "
                            "(see GET /health)", code="CATALOG_UNAVAILABLE")
    base = base_url()
    return [offering.resource(base) for offering in catalog.offerings.values()]


@blp.route("/productOffering", methods=["GET"], endpoint="list")
@blp.doc(summary="List or find ProductOffering objects", description=FILTER_DESCRIPTION,
         parameters=list_parameters(KNOWN_ATTRIBUTES, OFFERING_SCHEMA()),
         responses={"200": {"description": "Success", "content": _MANY},
                    "206": {"description": "Partial page (see X-Total-Count)", "content": _MANY},
                    **error_responses()})
def list_offerings():
    max_page = services().settings.max_page_size
    # the catalog is files in memory, not the store: the same Query, run in
    # Python, with values typed by the offering's schema as for stored lists
    query = parse_list_query(request.args, KNOWN_ATTRIBUTES, max_page, OFFERING_SCHEMA())
    page, total = run_python(offerings(), query)
    page = [select_fields(offering, query.fields) for offering in page]
    return json_response(page, 206 if len(page) < total else 200, {
        "X-Total-Count": str(total), "X-Result-Count": str(len(page))})


@blp.route("/productOffering/<offering_id>", methods=["GET"], endpoint="retrieve")
@blp.doc(summary="Retrieve a ProductOffering by id",
         parameters=[fields_parameter(KNOWN_ATTRIBUTES)],
         responses={"200": {"description": "Success", "content": _ONE}, **error_responses()})
def retrieve_offering(offering_id):
    selected = parse_fields(request.args, KNOWN_ATTRIBUTES)
    found = next((o for o in offerings() if o["id"] == offering_id), None)
    if found is None:
        raise TMFError(404, f"No ProductOffering with id {offering_id!r}", code="NOT_FOUND")
    return json_response(select_fields(found, selected))
