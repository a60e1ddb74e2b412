"""app/resources/query.py without a server: a TMF630 list query string made
into the store's Query (app/store/query.py), typed by the resource's
marshmallow schema, and the 400 (with its code) for each thing it refuses.
The same queries over HTTP, on both stores, are in test_list_queries.py and
test_filter_paths.py."""
from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

import pytest
from marshmallow import Schema, fields
from werkzeug.datastructures import MultiDict

from app.errors import TMFError
from app.resources.query import parse_list_query, select_fields
from app.schemas.spec import DateTimeString
from app.store.query import Filter, SortKey


class Party(Schema):
    id = fields.String()
    role = fields.String()


class Resource(Schema):
    id = fields.String()
    name = fields.String()
    status = fields.String()
    score = fields.Float()
    isActive = fields.Boolean()
    validFrom = DateTimeString()
    relatedParty = fields.List(fields.Nested(Party))
    characteristic = fields.Raw()        # the TMF Any type


KNOWN = set(Resource().fields)


def parse(query: dict | list, max_limit: int = 100):
    return parse_list_query(MultiDict(query), KNOWN, max_limit, Resource())


def refused(query, max_limit: int = 100) -> TMFError:
    with pytest.raises(TMFError) as caught:
        parse(query, max_limit)
    assert caught.value.status == 400
    return caught.value


def test_no_arguments_is_every_document_in_order():
    query = parse({})
    assert (query.filters, query.sort, query.offset, query.limit, query.fields) == ((), (), 0, None, None)


def test_filters_are_typed_by_their_attribute():
    query = parse([("name", "ann,bob"), ("score.gte", "2.5"), ("isActive", "true"),
                   ("validFrom.lt", "2026-03-01T00:00:00Z"), ("relatedParty.role", "buyer")])
    name, score, active, valid, role = query.filters
    assert name == Filter(("name",), "eq", ("ann", "bob"), "string")       # comma = OR
    assert (score.op, score.kind) == ("gte", "number") and score.values[0] == Decimal("2.5")
    assert active == Filter(("isActive",), "eq", (True,), "boolean")
    assert valid.kind == "datetime" and valid.values == (datetime(2026, 3, 1, tzinfo=timezone.utc),)
    assert role == Filter(("relatedParty", "role"), "eq", ("buyer",), "string")


def test_an_unencoded_plus_in_an_offset_is_read_as_plus():
    (valid,) = parse({"validFrom.gt": "2026-03-01T01:00:00 01:00"}).filters
    assert valid.values == (datetime(2026, 3, 1, tzinfo=timezone.utc),)


def test_sort_paging_and_fields():
    query = parse({"sort": "-score,name", "offset": "10", "limit": "5", "fields": "name,status"})
    assert query.sort == (SortKey(("score",), True, "number"), SortKey(("name",), False, "string"))
    assert (query.offset, query.limit, query.fields) == (10, 5, ("name", "status"))


def test_select_fields_always_keeps_id_href_and_type():
    resource = {"id": "1", "href": "/x/1", "@type": "X", "name": "ann", "status": "s"}
    assert select_fields(resource, ["name"]) == {"id": "1", "href": "/x/1", "@type": "X", "name": "ann"}
    assert select_fields(resource, None) is resource


@pytest.mark.parametrize("query, code", [
    ({"nmae": "ann"}, "UNKNOWN_ATTRIBUTE"),
    ({"sort": "nmae"}, "UNKNOWN_ATTRIBUTE"),
    ({"fields": "name,nmae"}, "UNKNOWN_ATTRIBUTE"),
    ({"relatedParty.rol": "x"}, "UNKNOWN_ATTRIBUTE"),
    ({"status.neq": "x"}, "UNSUPPORTED_OPERATOR"),
    ({"name.regex": "a.*"}, "UNSUPPORTED_OPERATOR"),
    ({"score": "many"}, "INVALID_FILTER_VALUE"),
    ({"isActive": "yes"}, "INVALID_FILTER_VALUE"),
    ({"validFrom": "yesterday"}, "INVALID_FILTER_VALUE"),
    ({"name.": "x"}, "INVALID_FILTER"),
    ({"limit": "101"}, "INVALID_QUERY"),
    ({"limit": "ten"}, "INVALID_QUERY"),
    ({"offset": "-1"}, "INVALID_QUERY"),
])
def test_what_is_refused_and_its_code(query, code):
    assert refused(query).code == code


def test_any_attributes_take_free_paths():
    (flt,) = parse({"characteristic.colour.name": "red"}).filters
    assert flt == Filter(("characteristic", "colour", "name"), "eq", ("red",), "any")
