"""app/store/query.py without a store: the Query data's own checks and the
Python evaluation TinyDB runs (run_python, count_python). That both backends
give the same answers is the contract in test_store_query.py; here are the
semantics the module docstring promises, on plain documents."""
from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

import pytest

from app.store.query import CountBy, Filter, Query, SortKey, count_python, run_python, values_at

DOCS = [
    {"id": "a", "n": 2, "party": [{"id": "p1"}, {"id": "p2"}], "at": "2026-03-01T00:00:00Z"},
    {"id": "b", "n": 10, "party": [{"id": "p2"}], "at": "2026-03-01T01:00:00+02:00"},
    {"id": "c", "n": "10", "party": []},
    {"id": "d", "n": 2.5},
]


def ids(query: Query) -> list[str]:
    found, total = run_python(DOCS, query)
    return [doc["id"] for doc in found]


@pytest.mark.parametrize("bad", [
    dict(path=("a",), op="neq", values=("x",)),
    dict(path=("a",), op="eq", values=("x",), kind="text"),
    dict(path=(), op="eq", values=("x",)),
    dict(path=("a", ""), op="eq", values=("x",)),
])
def test_a_filter_checks_itself(bad):
    with pytest.raises(ValueError):
        Filter(**bad)


def test_values_at_descends_into_arrays():
    assert list(values_at(DOCS[0], ("party", "id"))) == ["p1", "p2"]
    assert list(values_at(DOCS[2], ("party", "id"))) == []
    assert list(values_at(DOCS[0], ("missing",))) == []


def test_any_reached_value_matches_and_ne_is_none_equal():
    assert ids(Query((Filter(("party", "id"), "eq", ("p2",)),))) == ["a", "b"]
    assert ids(Query((Filter(("party", "id"), "ne", ("p1",)),))) == ["b", "c", "d"]
    assert ids(Query((Filter(("party", "id"), "eq", ("p1", "zz")),))) == ["a"]   # alternatives


def test_a_value_of_another_type_never_matches():
    assert ids(Query((Filter(("n",), "eq", (Decimal(10),), "number"),))) == ["b"]   # not "10"
    assert ids(Query((Filter(("n",), "gt", (Decimal(2),), "number"),))) == ["b", "d"]


def test_date_times_compare_as_instants():
    march = datetime(2026, 3, 1, tzinfo=timezone.utc)
    assert ids(Query((Filter(("at",), "lt", (march,), "datetime"),))) == ["b"]   # 23:00Z the day before


def test_sort_puts_documents_without_a_value_last_either_way_and_pages():
    by_n = (SortKey(("n",), False, "number"),)
    assert ids(Query(sort=by_n)) == ["a", "d", "b", "c"]
    assert ids(Query(sort=(SortKey(("n",), True, "number"),))) == ["b", "d", "a", "c"]
    found, total = run_python(DOCS, Query(sort=by_n, offset=1, limit=2))
    assert [doc["id"] for doc in found] == ["d", "b"] and total == 4


def test_count_by_counts_each_distinct_value_once_per_document():
    counted = dict(count_python(DOCS, CountBy(keys=(("party", "id"),))))
    assert counted == {("p1",): 1, ("p2",): 2, (None,): 2}
