"""What a list query does not understand is refused, not answered with an
empty list: an operator this service does not support (`status.neq=`,
`name.regex=`) is a 400 UNSUPPORTED_OPERATOR that names the supported ones;
a misspelt sub-attribute (`engagedParty.nme=x`, `sort=validFor.foo`) is a
400 UNKNOWN_ATTRIBUTE like a misspelt first-level name. On every list of
every API and on every hub's query; the `api` fixture runs each test on
TinyDB and on PostgreSQL."""
from __future__ import annotations

import pytest

from helpers import Client, assert_tmf_error

C = Client.CUSTOMER + "/customer"
P = Client.INVENTORY + "/product"
S = "/tmf-api/sales/v4/salesLead"
R = Client.RECOMMENDATION + "/queryProductRecommendation"
O = "/tmf-api/productCatalogManagement/v4/productOffering"
LISTS = [C, P, S, R, O]
HUBS = [Client.CUSTOMER + "/hub", Client.INVENTORY + "/hub", "/tmf-api/sales/v4/hub",
        Client.RECOMMENDATION + "/hub"]
SUPPORTED = ["gt", "gte", "lt", "lte", "eq", "ne"]

# a nested object of each resource, for misspelt sub-attributes
NESTED = {C: "engagedParty", P: "productOffering", S: "relatedParty", R: "relatedParty",
          O: "category"}


@pytest.mark.parametrize("path", LISTS)
@pytest.mark.parametrize("operator", ["neq", "regex", "like", "in", "foo"])
def test_an_unsupported_operator_is_400_naming_the_supported_ones(api, path, operator):
    body = assert_tmf_error(api.get(path, params={f"name.{operator}": "x"}), 400)
    assert body["code"] == "UNSUPPORTED_OPERATOR", body
    assert repr(operator) in body["message"] and "ne" in body["message"]
    assert body["details"]["supportedOperators"] == SUPPORTED


@pytest.mark.parametrize("path", LISTS)
def test_an_operator_name_after_an_object_is_an_unsupported_operator(api, path):
    body = assert_tmf_error(api.get(path, params={f"{NESTED[path]}.regex": "x"}), 400)
    assert body["code"] == "UNSUPPORTED_OPERATOR", body


@pytest.mark.parametrize("path", LISTS)
@pytest.mark.parametrize("suffix", ["", ".gt", ".ne"])
def test_a_misspelt_sub_attribute_is_400_unknown_attribute(api, path, suffix):
    body = assert_tmf_error(api.get(path, params={f"{NESTED[path]}.nme{suffix}": "x"}), 400)
    assert body["code"] == "UNKNOWN_ATTRIBUTE", body
    assert "'nme'" in body["message"] and NESTED[path] in body["message"]


@pytest.mark.parametrize("path", LISTS)
@pytest.mark.parametrize("sort", ["validFor.foo", "-validFor.foo", "name.gt"])
def test_a_sort_on_a_misspelt_sub_attribute_is_400(api, path, sort):
    if path == P and sort.lstrip("-").startswith("validFor"):
        sort = sort.replace("validFor", "productOffering")   # a Product has no validFor
    body = assert_tmf_error(api.get(path, params={"sort": sort}), 400)
    assert body["code"] == "UNKNOWN_ATTRIBUTE", body


@pytest.mark.parametrize("path, params", [
    (C, {"engagedParty.id": "nobody", "validFor.startDateTime.gt": "2020-01-01T00:00:00Z",
         "sort": "validFor.endDateTime", "characteristic.value.anything": "x"}),
    (P, {"productOffering.id.ne": "x", "sort": "-productOffering.name"}),
    (S, {"relatedParty.role": "x", "sort": "validFor.startDateTime"}),
    (R, {"relatedParty.id": "x", "name.ne": "y"}),
    (O, {"category.id.eq": "x", "sort": "validFor.startDateTime"}),
])
def test_known_paths_and_operators_still_filter(api, path, params):
    response = api.get(path, params=params)
    assert response.status_code in (200, 206), response.text


@pytest.mark.parametrize("hub", HUBS)
@pytest.mark.parametrize("query", ["event.customer.status.neq=active",
                                   "eventType.regex=Customer.*"])
def test_a_hub_query_with_an_unsupported_operator_is_400(api, hub, query):
    body = assert_tmf_error(api.post(hub, json={"callback": "http://127.0.0.1:9/l",
                                                "query": query}), 400)
    assert body["code"] == "INVALID_HUB_QUERY" and "supported operators" in body["message"]
