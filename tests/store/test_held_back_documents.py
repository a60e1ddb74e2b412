"""A TinyDB collection file edited by hand: the one document the store
cannot hold as it is (a number no double keeps exactly, NaN, a key that
is not its id, a value that is not an object) is held back, and the rest
of the collection is served and written as usual, the held-back document
kept in the file as it was read (app/store/atomic_storage.py).

Before: the reader read `12345678901234567890.5` as the float
12345678901234567000 and served (and on the next write stored) that, and
one document whose key was not its id made every call on the collection
raise CorruptCollection."""
from __future__ import annotations

import json
import os

import pytest

from app.store import open_store

FILE = ('{"orders":{"o1":{"id":"o1","v":1},'
        '"o2":{"id":"o2","iccid":12345678901234567890.5,"n":[NaN,1.5]},'
        '"o3":{"id":"WRONG","v":3},'
        '"o4":7,'
        '"o5":{"id":"o5","v":0.1}}}')
HELD = {"o2": '{"id":"o2","iccid":12345678901234567890.5,"n":[NaN,1.5]}',
        "o3": '{"id":"WRONG","v":3}', "o4": "7"}


@pytest.fixture
def edited(tmp_path):
    data_dir = str(tmp_path / "data")
    with open_store(data_dir) as store:
        store.insert("orders", {"id": "o1", "v": 1})
        store.insert("other", {"id": "x"})
    path = os.path.join(data_dir, "orders.json")
    with open(path, "w") as handle:
        handle.write(FILE)
    store = open_store(data_dir)
    yield store, path
    store.close()


def test_the_other_documents_are_served_and_each_held_back_one_is_named(edited):
    store, _path = edited
    assert [doc["id"] for doc in store.all("orders")] == ["o1", "o5"]
    assert store.count("orders") == 2
    assert store.get("orders", "o2") is None and store.get("orders", "o3") is None
    held = store.held_back("orders")
    assert sorted(held) == ["o2", "o3", "o4"]
    assert "12345678901234567890.5 cannot be kept exactly" in held["o2"]
    assert "'WRONG'" in held["o3"] and held["o4"] == "not a JSON object"
    assert store.held_back("other") == {}
    health = store.health()
    assert health["ok"] is True and health["collections"]["orders"] == 2
    assert health["heldBack"] == {"orders": 3}


def _held_texts(path: str) -> dict:
    with open(path) as handle:
        text = handle.read()
    return {key: value for key, value in HELD.items() if f'"{key}":{value}' in text}


def test_writes_keep_the_held_back_documents_as_they_were_read(edited):
    store, path = edited
    store.insert("orders", {"id": "o6", "v": 6})
    store.update("orders", "o1", lambda doc: {**doc, "v": 10})
    store.delete("orders", "o5")
    assert _held_texts(path) == HELD
    with store.transactions("orders", "other") as txns:      # the journaled commit too
        txns["orders"].insert({"id": "o7"})
        txns["other"].insert({"id": "y"})
    assert _held_texts(path) == HELD
    assert [doc["id"] for doc in store.all("orders")] == ["o1", "o6", "o7"]
    assert sorted(store.held_back("orders")) == ["o2", "o3", "o4"]
    with open_store(os.path.dirname(path)) as other_process_view:
        assert other_process_view.get("orders", "o1")["v"] == 10
        assert sorted(other_process_view.held_back("orders")) == ["o2", "o3", "o4"]


def test_a_document_written_under_a_held_back_key_replaces_it(edited):
    store, path = edited
    store.insert("orders", {"id": "o3", "v": "new"})
    assert store.get("orders", "o3") == {"id": "o3", "v": "new"}
    assert sorted(store.held_back("orders")) == ["o2", "o4"]
    with open(path) as handle:
        assert json.loads(handle.read().replace("NaN", "null"))["orders"]["o3"] == {
            "id": "o3", "v": "new"}


def test_each_held_back_document_is_logged_once_per_process(edited, caplog):
    store, path = edited
    with caplog.at_level("WARNING", logger="app.store.atomic_storage"):
        store.all("orders")
        with open_store(os.path.dirname(path)) as other:   # another process's writes
            other.insert("orders", {"id": "o8"})
            other.insert("orders", {"id": "o9"})
            store.all("orders")
            other.insert("orders", {"id": "o10"})
        assert [doc["id"] for doc in store.all("orders")][-3:] == ["o8", "o9", "o10"]
    held = [record.getMessage() for record in caplog.records if "is held back" in record.getMessage()]
    assert sorted(message.split("'")[1] for message in held) == ["o2", "o3", "o4"], held
