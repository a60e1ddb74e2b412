"""List filters typed by their attribute (a date compares as a date), on every
backend (the `api` fixture runs each test on TinyDB and on PostgreSQL)."""
from __future__ import annotations

import uuid

import pytest

from helpers import Client, assert_tmf_error

C = Client.CUSTOMER + "/customer"
P = Client.INVENTORY + "/product"


def make_products(api, tag):
    starts = {"a": "2026-03-01T01:00:00+02:00",   # = 2026-02-28T23:00Z
              "b": "2026-02-28T23:30:00Z",
              "c": "2026-03-01 T00:00:00.0Z",       # the user guide's spelling
              "d": None}
    made = {}
    for name, start in starts.items():
        body = {"status": "active", "name": name, "description": tag, "isBundle": name == "b",
                "productOffering": {"id": "7001", "name": "Mobile 10GB"}}
        if start:
            body["startDate"] = start
        response = api.post(P, json=body)
        assert response.status_code == 201, response.text
        made[name] = response.json()
    return made


def names(response):
    assert response.status_code == 200, response.text
    return sorted(p["name"] for p in response.json())


def test_date_times_compare_as_instants(api):
    tag = uuid.uuid4().hex
    make_products(api, tag)
    same = api.get(P, params={"description": tag, "startDate": "2026-03-01T01:00:00+02:00"})
    assert names(same) == ["a"]
    other_spelling = api.get(P, params={"description": tag, "startDate": "2026-02-28T23:00:00Z"})
    assert names(other_spelling) == ["a"]
    before = api.get(P, params={"description": tag, "startDate.lt": "2026-03-01T01:00:00+01:00"})
    assert names(before) == ["a", "b"]
    ordered = api.get(P, params={"description": tag, "sort": "-startDate"}).json()
    assert [p["name"] for p in ordered] == ["c", "b", "a", "d"]  # without a startDate: last


def test_a_space_where_the_offset_plus_belongs_is_understood(api):
    tag = uuid.uuid4().hex
    make_products(api, tag)
    # `+` not percent-encoded, as many clients send it: it arrives as a space
    raw = api.get(f"{P}?description={tag}&startDate.lt=2026-03-01T01:00:00+01:00")
    assert names(raw) == ["a", "b"]
    exact = api.get(f"{P}?description={tag}&startDate=2026-03-01T01:00:00+02:00")
    assert names(exact) == ["a"]


@pytest.mark.parametrize("params, attribute", [
    ({"startDate.lt": "not-a-date"}, "startDate"),
    ({"startDate": "2026-13-01T00:00:00Z"}, "startDate"),
    ({"startDate.gte": "0001-01-01T00:00:00+01:00"}, "startDate"),
    ({"terminationDate.lt": "9999-12-31T23:30:00-01:00"}, "terminationDate"),
    ({"isBundle": "yes"}, "isBundle"),
    ({"productPrice.price.taxIncludedAmount.value.gt": "ten"}, "productPrice.price.taxIncludedAmount.value"),
])
def test_a_filter_value_not_of_its_attribute_type_is_400(api, params, attribute):
    body = assert_tmf_error(api.get(P, params=params), 400)
    assert attribute in body["message"]
    assert list(params.values())[0] in body["message"]


@pytest.mark.parametrize("value, expected", [
    ("0001-01-01T00:00:00+01:00", "within 0001-01-01T00:00:00Z to 9999-12-31"),
    ("9999-12-31T23:30:00-01:00", "within 0001-01-01T00:00:00Z to 9999-12-31"),
    ("2026-13-01T00:00:00Z", "an ISO 8601 date-time"),
])
def test_a_bad_filter_date_says_whether_it_is_malformed_or_out_of_range(api, value, expected):
    """A well-formed instant outside years 1-9999 is not "not ISO 8601"."""
    body = assert_tmf_error(api.get(P, params={"startDate.gte": value}), 400)
    assert expected in body["message"]


def test_boolean_filters_match_booleans(api):
    tag = uuid.uuid4().hex
    make_products(api, tag)
    assert names(api.get(P, params={"description": tag, "isBundle": "true"})) == ["b"]
    assert names(api.get(P, params={"description": tag, "isBundle": "false"})) == ["a", "c", "d"]


def test_a_stored_value_that_looks_like_an_extreme_date_never_breaks_a_list(api):
    name = "0001-01-01T00:00:00+01:00"
    created = api.post(C, json={"name": name, "engagedParty": {
        "id": uuid.uuid4().hex, "@referredType": "Individual"}})
    assert created.status_code == 201, created.text
    found = api.get(C, params={"name": name})
    assert found.status_code == 200 and created.json()["id"] in [c["id"] for c in found.json()]
    for sort in ("name", "-name"):
        listed = api.get(C, params={"sort": sort, "limit": 1000})
        assert listed.status_code in (200, 206), listed.text
        assert created.json()["id"] in [c["id"] for c in listed.json()]
    late = api.get(C, params={"name": "9999-12-31T23:30:00-01:00"})
    assert late.status_code == 200 and late.json() == []


def test_nul_characters_never_make_a_5xx(api):
    """JSON allows U+0000; PostgreSQL's jsonb cannot hold it: one answer on
    both stores, a 400 naming the attribute (tests/test_unstorable_text.py
    has the other ways in). Never a 500."""
    body = {"name": "a\u0000b", "engagedParty": {"id": uuid.uuid4().hex,
                                                 "@referredType": "Individual"}}
    refused = assert_tmf_error(api.post(C, json=body), 400)
    assert "name" in refused["message"] and "NUL" in refused["message"]
    made = api.post(C, json={**body, "name": "fine"}).json()
    assert_tmf_error(api.patch(f"{C}/{made['id']}", json={"name": "x\u0000"}), 400)
    assert_tmf_error(api.get(C, params={"name": "a\u0000b"}), 400)
    assert_tmf_error(api.get(f"{C}/a%00b"), 404)
    assert api.get(f"{C}/{made['id']}").json()["name"] == "fine"


class _RowCounter:
    """A connection of the PostgreSQL store's pool that adds up the rows its
    statements return (a test double around the real connection)."""

    def __init__(self, conn, fetched: list):
        self._conn, self._fetched = conn, fetched

    def execute(self, *args, **kwargs):
        cursor = self._conn.execute(*args, **kwargs)
        if cursor.description is not None:
            self._fetched.append(cursor.rowcount)
        return cursor

    def cursor(self, *args, **kwargs):
        self._fetched.append(float("inf"))  # a server-side cursor streams a collection
        return self._conn.cursor(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._conn, name)


def test_a_list_on_postgresql_never_reads_the_collection(pg_url, tmp_path):
    """No list operation on PostgreSQL loads a whole collection (millions of rows),
    also when a stored subclass's extension attribute is filtered, sorted
    and selected (it used to read every customer to learn those names)."""
    import contextlib

    from app import create_app

    app = create_app(data_dir=tmp_path / "data", store_url=pg_url, background_workers=False)
    store = app.extensions["reco"].store.inner
    stored = [{"id": f"c{i}", "href": f"{C}/c{i}", "name": f"Customer {i}", "@type": "Customer",
               "status": "Approved"} for i in range(600)]
    stored += [{"id": f"r{i}", "href": f"{C}/r{i}", "name": f"Resident {i}",
                "@type": "ResidentialCustomer", "loyaltyTier": tier}
               for i, tier in enumerate(["silver", "gold", "bronze"])]
    store.insert_many("customer", stored)
    fetched: list = []
    connection = store.connection

    @contextlib.contextmanager
    def counted(*args, **kwargs):
        with connection(*args, **kwargs) as conn:
            yield _RowCounter(conn, fetched)

    store.connection = counted
    client = app.test_client()
    answer = client.get(C, query_string={"sort": "-loyaltyTier", "fields": "loyaltyTier",
                                         "loyaltyTier": "gold,silver"})
    assert answer.status_code == 200, answer.text
    assert [c["loyaltyTier"] for c in answer.json] == ["silver", "gold"]
    assert answer.headers["X-Total-Count"] == "2"
    page = client.get(C, query_string={"limit": 5, "fields": "name"})
    assert page.status_code == 206 and len(page.json) == 5
    assert fetched and sum(fetched) < 50, fetched
    store.connection = connection
