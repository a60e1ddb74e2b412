"""The store's data-plane contract on every backend: look-ups by path, list
queries as data (typed filters, sort, paging, total), claims and
multi-collection transactions. Each test runs on TinyDB and PostgreSQL."""
from datetime import datetime, timedelta, timezone

import pytest

from app.store import DuplicateId, Filter, Query, SortKey

UTC = timezone.utc


def _ids(docs):
    return [doc["id"] for doc in docs]


@pytest.fixture
def products(store):
    docs = [
        {"id": "p1", "name": "Fibre", "price": 30, "active": True,
         "startDate": "2026-03-01T01:00:00+02:00", "relatedParty": [{"id": "c1"}, {"id": "c2"}]},
        {"id": "p2", "name": "fibre", "price": 12.5, "active": False,
         "startDate": "2026-02-28T23:30:00Z", "relatedParty": [{"id": "c2"}]},
        {"id": "p3", "name": "Éclair", "price": 100, "startDate": "2026-03-01 T00:00:00.0Z",
         "relatedParty": {"id": "c3"}},
        {"id": "p4", "name": "0001-01-01T00:00:00+01:00", "startDate": "0001-01-01T00:00:00+01:00"},
        {"id": "p5", "name": 7, "tags": ["a", "b"], "characteristic": [{"value": 5}]},
        {"id": "p6", "startDate": "not a date", "characteristic": [{"value": "5"}]},
    ]
    for doc in docs:
        store.insert("product", doc)
    return store


def test_find_by_path_reaches_into_arrays_in_insertion_order(products):
    assert _ids(products.find_by("product", ("relatedParty", "id"), ["c2"])) == ["p1", "p2"]
    assert _ids(products.find_by("product", ("relatedParty", "id"), ["c3", "c1"])) == ["p1", "p3"]
    assert _ids(products.find_by("product", ("tags",), ["b"])) == ["p5"]
    assert products.find_by("product", ("relatedParty", "id"), ["nobody"]) == []
    assert products.find_by("never-written", ("a",), ["x"]) == []
    found = products.find_by("product", ("relatedParty", "id"), ["c3"])
    found[0]["name"] = "changed"  # a copy
    assert products.get("product", "p3")["name"] == "Éclair"


def test_find_by_sees_later_writes(products):
    products.find_by("product", ("relatedParty", "id"), ["c9"])
    products.update("product", "p2", lambda d: {**d, "relatedParty": [{"id": "c9"}]})
    assert _ids(products.find_by("product", ("relatedParty", "id"), ["c9"])) == ["p2"]
    assert _ids(products.find_by("product", ("relatedParty", "id"), ["c2"])) == ["p1"]


def _q(store, *filters, sort=(), offset=0, limit=None):
    page, total = store.query("product", Query(tuple(filters), tuple(sort), offset, limit))
    return _ids(page), total


def test_string_filters_are_exact_and_by_code_point(products):
    assert _q(products, Filter(("name",), "eq", ("Fibre",))) == (["p1"], 1)
    assert _q(products, Filter(("name",), "eq", ("Fibre", "fibre"))) == (["p1", "p2"], 2)
    assert _q(products, Filter(("name",), "ne", ("Fibre",)))[0] == ["p2", "p3", "p4", "p5", "p6"]
    # "É" (U+00C9) sorts after every ASCII letter, as in Python
    assert _q(products, Filter(("name",), "gt", ("fibre",))) == (["p3"], 1)
    assert _q(products, Filter(("relatedParty", "id"), "eq", ("c2",))) == (["p1", "p2"], 2)


def test_number_and_boolean_filters_match_only_their_type(products):
    assert _q(products, Filter(("price",), "gte", (30.0,), "number")) == (["p1", "p3"], 2)
    assert _q(products, Filter(("price",), "lt", (30.0,), "number")) == (["p2"], 1)
    assert _q(products, Filter(("name",), "eq", (7.0,), "number")) == (["p5"], 1)
    assert _q(products, Filter(("active",), "eq", (False,), "boolean")) == (["p2"], 1)


def test_any_filters_match_the_text_or_the_value_it_spells(products):
    assert _q(products, Filter(("characteristic", "value"), "eq", ("5",), "any")) == (["p5", "p6"], 2)


def test_datetime_filters_compare_instants_and_skip_what_is_not_one(products):
    moment = datetime(2026, 2, 28, 23, 0, tzinfo=UTC)  # = 2026-03-01T01:00:00+02:00
    assert _q(products, Filter(("startDate",), "eq", (moment,), "datetime")) == (["p1"], 1)
    offset = timezone(timedelta(hours=1))
    assert _q(products, Filter(("startDate",), "lte", (datetime(2026, 3, 1, 1, 0, tzinfo=offset),),
                               "datetime"))[0] == ["p1", "p2", "p3"]
    assert _q(products, Filter(("startDate",), "gt", (moment,), "datetime"))[0] == ["p2", "p3"]


def test_sort_by_kind_absent_last_ties_in_insertion_order(products):
    by_name = _q(products, sort=[SortKey(("name",))])[0]
    assert by_name == ["p4", "p1", "p2", "p3", "p5", "p6"]  # p5 (a number) and p6: no string
    assert _q(products, sort=[SortKey(("name",), True)])[0] == ["p3", "p2", "p1", "p4", "p5", "p6"]
    assert _q(products, sort=[SortKey(("price",), True, "number")])[0] == \
        ["p3", "p1", "p2", "p4", "p5", "p6"]
    by_start = _q(products, sort=[SortKey(("startDate",), False, "datetime")])[0]
    assert by_start[:3] == ["p1", "p2", "p3"] and set(by_start[3:]) == {"p4", "p5", "p6"}


def test_paging_and_total(products):
    assert _q(products, sort=[SortKey(("id",), True)], offset=1, limit=2) == (["p5", "p4"], 6)
    assert _q(products, offset=10, limit=2) == ([], 6)
    assert _q(products, Filter(("name",), "eq", ("none",)), limit=5) == ([], 0)
    assert _q(products, limit=0) == ([], 6)


def test_claim_takes_matching_documents_once(store):
    for n in range(5):
        store.insert("jobs", {"id": f"j{n}", "leaseUntil": 0.0 if n != 2 else 99.0})
    due = [Filter(("leaseUntil",), "lte", (1.0,), "number")]

    def take(doc):
        return None if doc["id"] == "j3" else {**doc, "leaseUntil": 50.0}

    assert _ids(store.claim("jobs", due, take, limit=2)) == ["j0", "j1"]
    assert _ids(store.claim("jobs", due, take)) == ["j4"]  # j3 left by change()
    assert store.claim("jobs", due, lambda doc: None) == []
    assert store.get("jobs", "j0")["leaseUntil"] == 50.0


def test_transactions_over_collections_commit_together_or_not_at_all(store):
    with store.transactions("customer", "outbox") as tx:
        tx["customer"].insert({"id": "c1"})
        tx["outbox"].insert({"id": "e1", "about": "c1"})
    assert store.get("customer", "c1") and store.get("outbox", "e1")
    with pytest.raises(DuplicateId):
        with store.transactions("customer", "outbox") as tx:
            tx["outbox"].insert({"id": "e2"})
            tx["customer"].insert({"id": "c1"})
    assert store.get("outbox", "e2") is None
    with pytest.raises(RuntimeError):
        with store.transactions("customer", "outbox") as tx:
            tx["customer"].delete("c1")
            tx["outbox"].insert({"id": "e3"})
            raise RuntimeError("abort")
    assert store.get("customer", "c1") and store.get("outbox", "e3") is None


def _extension(declared, located):
    """The service's rule (app/resources/service.py, is_extension) for Customer."""
    return located or (declared is not None and declared.lower() != "customer")


def test_attribute_names_are_those_of_the_stored_subclasses(store):
    store.insert("customer", {"id": "c1", "@type": "Customer", "name": "a"})
    store.insert("customer", {"id": "c2", "@type": "ResidentialCustomer", "loyaltyTier": "gold"})
    store.insert("customer", {"id": "c3", "@type": "Customer", "@schemaLocation": "https://x/s.json",
                              "householdSize": 3})
    store.insert("customer", {"id": "c4", "@type": "Customer", "@schemaLocation": "",
                              "typo": 1})  # an empty @schemaLocation opens nothing
    store.insert("other", {"id": "o1", "@type": "Elsewhere", "otherName": 1})
    assert store.attribute_names("customer", _extension) == {
        "id", "@type", "loyaltyTier", "@schemaLocation", "householdSize"}
    # names a write adds, through an update and a transaction as well
    store.update("customer", "c2", lambda doc: {**doc, "pets": 2})
    with store.transaction("customer") as tx:
        tx.insert({"id": "c5", "@type": "BusinessCustomer", "vatNumber": "x"})
    names = store.attribute_names("customer", _extension)
    assert {"pets", "vatNumber"} <= names and "otherName" not in names
    # a shape whose last document is gone no longer counts
    store.delete("customer", "c5")
    assert "vatNumber" not in store.attribute_names("customer", _extension)
    assert store.attribute_names("never-written", _extension) == set()


def test_count_by_groups_elements_by_their_values(store):
    from app.store import CountBy

    store.insert("q", {"id": "a", "kind": "x", "item": [{"id": "1", "rules": ["R1", "R2", "R1"]},
                                                       {"id": "2", "rules": []},
                                                       {"id": "3", "rules": "R2"}]})
    store.insert("q", {"id": "b", "kind": "y", "item": {"id": "1", "rules": ["R2"]}})
    store.insert("q", {"id": "c", "kind": "x"})

    def counted(count):
        return sorted(store.count_by("q", count), key=repr)

    assert counted(CountBy(keys=(("kind",),))) == [(("x",), 2), (("y",), 1)]
    # per element; a key with two values counts the element once for each,
    # a repeated value once, no value as None; keys outside `each` read the document
    assert counted(CountBy(keys=(("kind",), ("item", "rules")), each=("item",))) == sorted(
        [(("x", "R1"), 1), (("x", "R2"), 2), (("x", None), 1), (("y", "R2"), 1)], key=repr)
    assert counted(CountBy(keys=(("item", "id"),), each=("item",),
                           filters=(Filter(("kind",), "eq", ("x",)),))) == [
        (("1",), 1), (("2",), 1), (("3",), 1)]
    assert store.count_by("empty", CountBy(keys=(("kind",),))) == []


def test_reads_grouped_by_reading_share_one_connection(products):
    """An instant recommendation reads the customer and its products inside
    store.reading(): on PostgreSQL one pool check-out for both (it was two)."""
    store = products
    store.insert("customer", {"id": "c2", "name": "Two"})
    checkouts = []
    pool = store._get_pool() if store.backend == "postgresql" else None
    if pool is not None:
        getconn = pool.getconn
        pool.getconn = lambda *args, **kwargs: checkouts.append(1) or getconn(*args, **kwargs)
    with store.reading():
        customer = store.get("customer", "c2")
        owned = store.find_by("product", ("relatedParty", "id"), [customer["id"]])
        with store.reading():  # nested: the same session
            assert store.count("customer") == 1
    assert _ids(owned) == ["p1", "p2"]
    if pool is not None:
        assert len(checkouts) == 1
        store.get("customer", "c2")  # after it, a read takes its own again
        assert len(checkouts) == 2
