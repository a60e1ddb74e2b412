"""Single-threaded semantics of the Store interface (TinyDB backend)."""

import json
import os

import pytest

from app.store import (
    CorruptCollection,
    DuplicateId,
    InvalidName,
    Store,
    StoreError,
    open_store,
)
from app.store.tinydb_store import TinyDBStore


# ---------------------------------------------------------------- open_store


def test_open_store_plain_path_and_urls(tmp_path, monkeypatch):
    s1 = open_store(str(tmp_path / "a"))
    s2 = open_store(f"tinydb://{tmp_path / 'b'}")  # tinydb:///abs/path
    s3 = open_store(tmp_path / "c")  # PathLike
    monkeypatch.chdir(tmp_path)
    s4 = open_store("tinydb://rel/dir")
    s5 = open_store(f"TinyDB:{tmp_path / 'e'}")
    try:
        for s, where in [(s1, tmp_path / "a"), (s2, tmp_path / "b"), (s3, tmp_path / "c"),
                         (s4, tmp_path / "rel" / "dir"), (s5, tmp_path / "e")]:
            assert isinstance(s, Store) and isinstance(s, TinyDBStore)
            assert s.path == str(where)
            assert os.path.isdir(where)
    finally:
        for s in (s1, s2, s3, s4, s5):
            s.close()


@pytest.mark.parametrize("url", ["mysql://db/x", "mongodb://localhost", "redis://h:1/0"])
def test_open_store_unknown_scheme(url):
    with pytest.raises(StoreError) as ei:
        open_store(url)
    msg = str(ei.value)
    assert "unsupported store URL scheme" in msg and url.split(":")[0] in msg and "tinydb" in msg


@pytest.mark.parametrize("bad", ["", "   ", "tinydb://", "tinydb:", "tinydb:///x?fsync=0", None])
def test_open_store_bad_locations(bad):
    with pytest.raises(StoreError):
        open_store(bad)


# ---------------------------------------------------------------- CRUD


def test_insert_get_all_count_delete(store):
    assert store.count("orders") == 0
    assert store.all("orders") == []
    assert store.get("orders", "nope") is None

    stored = store.insert("orders", {"id": "o1", "qty": 2, "tags": ("a", "b")})
    assert stored == {"id": "o1", "qty": 2, "tags": ["a", "b"]}  # JSON round trip
    store.insert("orders", {"id": "o2"})
    store.insert("orders", {"id": "o0"})

    assert store.get("orders", "o1") == stored
    assert [d["id"] for d in store.all("orders")] == ["o1", "o2", "o0"]  # insertion order
    assert store.count("orders") == 3
    assert store.count("other") == 0

    assert store.delete("orders", "o2") == {"id": "o2"}
    assert store.delete("orders", "o2") is None
    assert store.get("orders", "o2") is None
    assert [d["id"] for d in store.all("orders")] == ["o1", "o0"]
    store.insert("orders", {"id": "o2", "again": True})  # re-insert goes to the end
    assert [d["id"] for d in store.all("orders")] == ["o1", "o0", "o2"]


def test_duplicate_id(store):
    store.insert("c", {"id": "x", "v": 1})
    with pytest.raises(DuplicateId) as ei:
        store.insert("c", {"id": "x", "v": 2})
    assert isinstance(ei.value, StoreError)
    assert ei.value.collection == "c" and ei.value.doc_id == "x"
    assert store.get("c", "x") == {"id": "x", "v": 1}
    assert store.count("c") == 1


def test_collections_are_independent(store):
    store.insert("a", {"id": "1", "c": "a"})
    store.insert("b", {"id": "1", "c": "b"})
    assert store.get("a", "1")["c"] == "a"
    assert store.get("b", "1")["c"] == "b"


@pytest.mark.parametrize(
    "doc, exc",
    [
        ({"x": 1}, ValueError),
        ({"id": 5}, ValueError),
        ({"id": ""}, ValueError),
        ({"id": None}, ValueError),
        (["id", "x"], TypeError),
        ({"id": "a", "v": object()}, TypeError),
        ({"id": "a", "v": float("nan")}, ValueError),
    ],
)
def test_insert_rejects_bad_documents(store, doc, exc):
    with pytest.raises(exc):
        store.insert("c", doc)
    assert store.count("c") == 0


@pytest.mark.parametrize(
    "name", ["../etc", "a/b", "", ".hidden", "1abc", "a.json", "a b", "x" * 65, "é", None, 5, "a\n"]
)
def test_collection_names_validated(store, name):
    with pytest.raises(InvalidName):
        store.insert(name, {"id": "x"})
    with pytest.raises(InvalidName):
        store.get(name, "x")
    with pytest.raises(ValueError):  # InvalidName is also a ValueError
        store.count(name)


def test_valid_collection_names(tinydb_store):
    for name in ["a", "Orders", "product_order", "sales-lead-2", "x" * 64]:
        tinydb_store.insert(name, {"id": "1"})
        assert os.path.exists(os.path.join(tinydb_store.path, name + ".json"))


def test_returned_documents_are_copies(store):
    original = {"id": "d", "nested": {"list": [1, 2]}}
    stored = store.insert("c", original)
    original["nested"]["list"].append("mutated-input")
    stored["nested"]["list"].append("mutated-return")

    got = store.get("c", "d")
    assert got == {"id": "d", "nested": {"list": [1, 2]}}
    got["nested"]["list"].clear()
    got["new"] = 1
    store.all("c")[0]["nested"]["x"] = 1
    updated = store.update("c", "d", lambda doc: doc)
    updated["nested"]["y"] = 2
    deleted_later = store.get("c", "d")
    assert deleted_later == {"id": "d", "nested": {"list": [1, 2]}}


def test_update(store):
    store.insert("c", {"id": "a", "n": 1, "drop": True})

    def change(doc):
        doc["n"] += 1
        del doc["drop"]
        return doc

    assert store.update("c", "a", change) == {"id": "a", "n": 2}
    assert store.get("c", "a") == {"id": "a", "n": 2}  # replaced, not merged
    # a fresh dict may be returned too
    assert store.update("c", "a", lambda d: {"id": "a", "m": 0}) == {"id": "a", "m": 0}
    called = []
    assert store.update("c", "missing", lambda d: called.append(d) or d) is None
    assert called == []


def test_update_rollback_when_change_raises(tinydb_store):
    tinydb_store.insert("c", {"id": "a", "n": 1, "items": [1]})
    with open(os.path.join(tinydb_store.path, "c.json"), "rb") as f:
        before = f.read()

    def boom(doc):
        doc["n"] = 999  # mutates its copy, then fails
        doc["items"].append(2)
        raise RuntimeError("nope")

    with pytest.raises(RuntimeError, match="nope"):
        tinydb_store.update("c", "a", boom)
    assert tinydb_store.get("c", "a") == {"id": "a", "n": 1, "items": [1]}
    with open(os.path.join(tinydb_store.path, "c.json"), "rb") as f:
        assert f.read() == before
    # the lock was released: further writes work
    assert tinydb_store.update("c", "a", lambda d: {**d, "n": 2})["n"] == 2


@pytest.mark.parametrize(
    "change, exc",
    [
        (lambda d: None, TypeError),
        (lambda d: {**d, "id": "other"}, ValueError),
        (lambda d: {"n": 1}, ValueError),
        (lambda d: {**d, "bad": {1, 2}}, TypeError),
    ],
)
def test_update_rejects_bad_results(store, change, exc):
    store.insert("c", {"id": "a", "n": 0})
    with pytest.raises(exc):
        store.update("c", "a", change)
    assert store.get("c", "a") == {"id": "a", "n": 0}
    assert store.get("c", "other") is None


def test_reentrant_call_from_change_raises_instead_of_deadlocking(store):
    store.insert("c", {"id": "a"})
    with pytest.raises(StoreError, match="already locked by this thread"):
        store.update("c", "a", lambda d: store.insert("c", {"id": "b"}))
    assert store.count("c") == 1
    # another collection is fine
    store.update("c", "a", lambda d: (store.insert("other", {"id": "b"}), d)[1])
    assert store.count("other") == 1


def test_data_survives_reopen_and_file_format(data_dir):
    with open_store(data_dir) as s:
        s.insert("orders", {"id": "o1", "v": "é"})
        s.insert("orders", {"id": "o2"})
        s.update("orders", "o1", lambda d: {**d, "v": 2})
    with open(os.path.join(data_dir, "orders.json")) as f:
        raw = json.load(f)
    assert raw == {"orders": {"o1": {"id": "o1", "v": 2}, "o2": {"id": "o2"}}}
    with open_store(data_dir) as s:
        assert s.all("orders") == [{"id": "o1", "v": 2}, {"id": "o2"}]


def test_serialized_file_matches_plain_json_dumps(tinydb_store):
    # The fragment cache must produce exactly what json.dumps would.
    for i in range(20):
        tinydb_store.insert("c", {"id": f"d{i}", "s": "\u2603\"\\", "f": 1.5, "n": None, "l": [True]})
    tinydb_store.update("c", "d3", lambda d: {**d, "s": "changed"})
    tinydb_store.delete("c", "d7")
    with tinydb_store.transaction("c") as tx:
        tx.insert({"id": "t"})
        tx.delete("d0")
    with open(os.path.join(tinydb_store.path, "c.json"), "rb") as f:
        raw = f.read()
    expected = {"c": {d["id"]: d for d in tinydb_store.all("c")}}
    assert raw == json.dumps(expected, separators=(",", ":")).encode()


def test_sees_writes_of_another_store_instance(data_dir):
    a, b = open_store(data_dir), open_store(data_dir)
    try:
        a.insert("c", {"id": "1", "v": 0})
        assert b.get("c", "1") == {"id": "1", "v": 0}  # b caches this version
        for v in range(1, 30):  # many versions: inode numbers get recycled on ext4
            a.update("c", "1", lambda d, v=v: {**d, "v": v})
            assert b.get("c", "1")["v"] == v
        b.update("c", "1", lambda d: {**d, "v": d["v"] + 1})
        assert a.get("c", "1")["v"] == 30
    finally:
        a.close()
        b.close()


def test_closed_store_raises(data_dir):
    s = open_store(data_dir)
    s.insert("c", {"id": "1"})
    s.close()
    s.close()  # idempotent
    with pytest.raises(StoreError, match="closed"):
        s.get("c", "1")
    assert s.health()["ok"] is False


# ---------------------------------------------------------------- transactions


def test_transaction_commits_once_all_or_nothing(store):
    store.insert("outbox", {"id": "e1", "state": "pending"})
    store.insert("outbox", {"id": "e2", "state": "pending"})
    store.insert("outbox", {"id": "e3", "state": "done"})

    with store.transaction("outbox") as tx:
        claimed = []
        for ev in tx.all():
            if ev["state"] == "pending":
                claimed.append(tx.update(ev["id"], lambda d: {**d, "state": "claimed"}))
        tx.insert({"id": "e4", "state": "pending"})
        assert tx.get("e4") == {"id": "e4", "state": "pending"}  # sees own writes
        assert tx.count() == 4
        assert store.get("outbox", "e1")["state"] == "pending"  # not committed yet
        with pytest.raises(DuplicateId):
            tx.insert({"id": "e1"})
        assert tx.delete("e3") == {"id": "e3", "state": "done"}
        assert tx.delete("nope") is None
        assert tx.update("nope", lambda d: d) is None
    assert [c["id"] for c in claimed] == ["e1", "e2"]
    assert store.all("outbox") == [
        {"id": "e1", "state": "claimed"},
        {"id": "e2", "state": "claimed"},
        {"id": "e4", "state": "pending"},
    ]


def test_transaction_rolls_back_on_exception(store):
    store.insert("c", {"id": "a", "n": 0})
    with pytest.raises(KeyError):
        with store.transaction("c") as tx:
            tx.update("a", lambda d: {**d, "n": 1})
            tx.insert({"id": "b"})
            raise KeyError("abort")
    assert store.all("c") == [{"id": "a", "n": 0}]
    with pytest.raises(StoreError, match="finished"):
        tx.get("a")


def test_transaction_blocks_store_writes_from_same_thread(store):
    with store.transaction("c") as tx:
        tx.insert({"id": "a"})
        with pytest.raises(StoreError, match="already locked"):
            store.insert("c", {"id": "b"})
        with pytest.raises(StoreError, match="already locked"):
            with store.transaction("c"):
                pass
        assert store.get("c", "a") is None  # plain reads see committed state
    assert [d["id"] for d in store.all("c")] == ["a"]


def test_read_only_transaction_does_not_write(tinydb_store):
    tinydb_store.insert("c", {"id": "a"})
    path = os.path.join(tinydb_store.path, "c.json")
    ino = os.stat(path).st_ino
    with tinydb_store.transaction("c") as tx:
        assert tx.count() == 1
    assert os.stat(path).st_ino == ino


# ---------------------------------------------------------------- corruption / health


def test_health_ok(tinydb_store):
    tinydb_store.insert("a", {"id": "1"})
    tinydb_store.insert("a", {"id": "2"})
    tinydb_store.insert("b", {"id": "1"})
    h = tinydb_store.health()
    assert h["ok"] is True
    assert h["backend"] == "tinydb"
    assert h["path"] == tinydb_store.path
    assert h["collections"] == {"a": 2, "b": 1}
    assert h["errors"] == {}


@pytest.mark.parametrize(
    "content",
    [
        b'{"orders": {"o1": {"id": "o1", "v"',  # truncated by a non-atomic writer
        b"",  # truncated to zero
        b"\x00\x00\x00\x00",
        b"[1, 2]",
        b'{"orders": [1]}',
        b'{"orders": {"o1": {"id": "o1"}}, "other": {"x": 1e400}}',  # outside the documents
    ],
)
def test_corrupt_file_raises_and_is_never_overwritten(data_dir, content):
    with open_store(data_dir) as s:
        s.insert("orders", {"id": "o1", "v": 1})
        s.insert("fine", {"id": "x"})
    path = os.path.join(data_dir, "orders.json")
    with open(path, "wb") as f:  # someone edits/truncates it in place
        f.write(content)

    s = open_store(data_dir)
    try:
        for op in (
            lambda: s.get("orders", "o1"),
            lambda: s.all("orders"),
            lambda: s.count("orders"),
            lambda: s.insert("orders", {"id": "o2"}),
            lambda: s.update("orders", "o1", lambda d: d),
            lambda: s.delete("orders", "o1"),
        ):
            with pytest.raises(CorruptCollection) as ei:
                op()
            assert isinstance(ei.value, StoreError)
            assert path in str(ei.value)
            assert ei.value.path == path
        with open(path, "rb") as f:
            assert f.read() == content  # untouched, not replaced by an empty table

        h = s.health()
        assert h["ok"] is False
        assert path in h["errors"]["orders"]
        assert h["collections"] == {"fine": 1}

        # repairing the file heals the store without reopening
        with open(path, "w") as f:
            json.dump({"orders": {"o1": {"id": "o1", "v": 5}}}, f)
        assert s.get("orders", "o1") == {"id": "o1", "v": 5}
        assert s.health()["ok"] is True
    finally:
        s.close()


def test_health_never_raises(data_dir):
    s = open_store(data_dir)
    s.insert("a", {"id": "1"})
    os.rename(data_dir, data_dir + ".gone")
    h = s.health()
    assert h["ok"] is False and h["backend"] == "tinydb"
    s.close()


def test_orphan_temp_files_are_ignored_and_removed_on_open(data_dir):
    with open_store(data_dir) as s:
        s.insert("orders", {"id": "o1"})
    # what a writer killed between creating and renaming its temp file leaves
    orphans = [".orders.json.0123456789abcdef.tmp", ".newcoll.json.fedcba9876543210.tmp"]
    for name in orphans:
        with open(os.path.join(data_dir, name), "w") as f:
            f.write('{"orders": {"half')
    unrelated = os.path.join(data_dir, "notes.txt")
    open(unrelated, "w").close()

    with open_store(data_dir) as s:
        for name in orphans:
            assert not os.path.exists(os.path.join(data_dir, name))
        assert os.path.exists(unrelated)
        assert s.all("orders") == [{"id": "o1"}]
        h = s.health()
        assert h["ok"] and h["collections"] == {"orders": 1}


def test_find_returns_copies_of_matching_documents_in_order(store):
    for n in range(6):
        store.insert("things", {"id": f"t{n}", "n": n, "tags": ["even" if n % 2 == 0 else "odd"]})
    found = store.find("things", lambda doc: "even" in doc["tags"])
    assert [doc["id"] for doc in found] == ["t0", "t2", "t4"]
    found[0]["n"] = 99
    assert store.get("things", "t0")["n"] == 0
    assert store.find("things", lambda doc: False) == []
    assert store.find("never-written", lambda doc: True) == []


def test_version_changes_with_every_write_from_any_store(tinydb_store, data_dir):
    store = tinydb_store
    from app.store import open_store
    before = store.version("things")
    store.insert("things", {"id": "a"})
    after_insert = store.version("things")
    assert after_insert != before
    assert store.version("things") == after_insert  # stable while nothing changes
    other = open_store(str(data_dir))  # as another worker process would
    try:
        other.update("things", "a", lambda doc: {**doc, "n": 1})
        assert store.version("things") != after_insert
    finally:
        other.close()
