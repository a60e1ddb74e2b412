"""Store.claim in the order the caller asks (the event dispatcher serves the
hubs furthest behind first), on both backends."""
from app.store.query import Filter, SortKey


def test_claim_takes_documents_in_the_sort_order_then_insertion_order(store):
    for doc_id, position in (("a", 5), ("b", 1), ("c", 3), ("d", 1), ("e", 9)):
        store.insert("queue", {"id": doc_id, "position": position, "leaseUntil": 0})
    store.update("queue", "c", lambda d: {**d, "leaseUntil": 10})   # not free

    def take(doc):
        return {**doc, "leaseUntil": 10}
    free = [Filter(("leaseUntil",), "lte", (0,), "number")]
    first = store.claim("queue", free, take, limit=2,
                        sort=[SortKey(("position",), kind="number")])
    assert [d["id"] for d in first] == ["b", "d"]
    rest = store.claim("queue", free, take, limit=5,
                       sort=[SortKey(("position",), descending=True, kind="number")])
    assert [d["id"] for d in rest] == ["e", "a"]
    assert store.claim("queue", free, take) == []
