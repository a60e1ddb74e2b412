"""Txn.insert_batch and Txn.delete_batch (the event dispatcher moves many
records per transaction with them), on both backends: the same results as
one insert or delete each, in one statement on PostgreSQL."""
import pytest

from app.store import DuplicateId


def test_a_batch_inserts_in_order_and_deletes_what_exists(store):
    with store.transaction("log") as tx:
        written = tx.insert_batch([{"id": f"r{n}", "n": n} for n in range(5)])
        assert [doc["id"] for doc in written] == [f"r{n}" for n in range(5)]
        assert tx.insert_batch([]) == []
    assert [doc["id"] for doc in store.all("log")] == [f"r{n}" for n in range(5)]
    with store.transaction("log") as tx:
        assert tx.delete_batch(["r1", "r3", "missing"]) == 2
        assert tx.delete_batch([]) == 0
    assert [doc["id"] for doc in store.all("log")] == ["r0", "r2", "r4"]


def test_a_batch_with_an_id_already_stored_writes_nothing(store):
    store.insert("log", {"id": "taken"})
    with pytest.raises(DuplicateId):
        with store.transaction("log") as tx:
            tx.insert_batch([{"id": "new"}, {"id": "taken"}])
    assert [doc["id"] for doc in store.all("log")] == ["taken"]
