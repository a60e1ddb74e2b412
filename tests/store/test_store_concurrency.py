"""Threads, spawned processes and forked processes hitting one data dir."""

import multiprocessing
import os
import threading

import pytest

import _store_workers as workers
from app.store import open_store


def _run_threads(n, target):
    errors = []
    barrier = threading.Barrier(n)

    def wrapper(k):
        try:
            barrier.wait()
            target(k)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=wrapper, args=(k,)) for k in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_threads_increment_one_counter_exactly(store, store_url):
    store.insert("counters", {"id": "c", "n": 0})
    _run_threads(8, lambda k: [store.update("counters", "c", workers.increment) for _ in range(200)])
    assert store.get("counters", "c") == {"id": "c", "n": 1600}
    with open_store(store_url) as fresh:  # and it is on disk, not only cached
        assert fresh.get("counters", "c")["n"] == 1600


def test_threads_concurrent_inserts_all_present(store, store_url):
    def insert_many(k):
        for i in range(50):
            store.insert("items", {"id": f"t{k}-{i}"})

    _run_threads(8, insert_many)
    ids = {d["id"] for d in store.all("items")}
    assert ids == {f"t{k}-{i}" for k in range(8) for i in range(50)}
    assert store.count("items") == 400
    with open_store(store_url) as fresh:
        assert fresh.count("items") == 400


def test_threads_duplicate_insert_race_exactly_one_wins(store):
    from app.store import DuplicateId

    wins, dups = [], []

    def racer(k):
        for i in range(30):
            try:
                store.insert("race", {"id": f"r{i}", "by": k})
                wins.append(i)
            except DuplicateId:
                dups.append(i)

    _run_threads(4, racer)
    assert sorted(wins) == list(range(30))
    assert len(dups) == 90


def test_threads_readers_never_see_torn_state(store):
    # A writer moves one unit between two docs inside transactions; lock-free
    # readers of all() must always see the invariant a + b == 100.
    store.insert("acct", {"id": "a", "v": 100})
    store.insert("acct", {"id": "b", "v": 0})
    stop = threading.Event()
    bad = []

    def writer():
        try:
            for _ in range(150):
                with store.transaction("acct") as tx:
                    tx.update("a", lambda d: {**d, "v": d["v"] - 1})
                    tx.update("b", lambda d: {**d, "v": d["v"] + 1})
        finally:
            stop.set()

    def reader():
        try:
            while not stop.is_set():
                docs = {d["id"]: d["v"] for d in store.all("acct")}
                if docs["a"] + docs["b"] != 100:
                    bad.append(docs)
        except BaseException as exc:  # noqa: BLE001
            bad.append(exc)

    ts = [threading.Thread(target=writer)] + [threading.Thread(target=reader) for _ in range(2)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert bad == []
    assert store.get("acct", "b")["v"] == 150


def test_spawned_processes_lose_nothing(data_dir):
    n_procs, n_docs = 3, 40
    with open_store(data_dir) as s:
        s.insert("counters", {"id": "shared", "n": 0})
    ctx = multiprocessing.get_context("spawn")
    procs = [
        ctx.Process(target=workers.insert_and_increment, args=(data_dir, w, n_docs))
        for w in range(n_procs)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0] * n_procs

    with open_store(data_dir) as s:
        assert s.get("counters", "shared")["n"] == n_procs * n_docs
        ids = {d["id"] for d in s.all("items")}
        assert ids == {f"w{w}-{i}" for w in range(n_procs) for i in range(n_docs)}
        assert s.count("items") == n_procs * n_docs


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_forked_children_of_a_used_store_do_not_share_its_lock(store):
    """gunicorn --preload: the store is created (and used) before the fork.

    Without the at-fork reset, parent and children would flock through the
    same inherited open file description, so the flocks would not exclude
    each other and increments would be lost.
    """
    store.insert("counters", {"id": "shared", "n": 0})
    store.update("counters", "shared", workers.increment)  # lock fd + cache now exist
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=workers.forked_increments, args=(store, 100)) for _ in range(2)]
    for p in procs:
        p.start()
    for _ in range(100):
        store.update("counters", "shared", workers.increment)
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0, 0]
    assert store.get("counters", "shared")["n"] == 301


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_fork_while_parent_holds_the_lock(store):
    store.insert("counters", {"id": "shared", "n": 0})
    ctx = multiprocessing.get_context("fork")
    ready = ctx.Event()
    with store.transaction("counters") as tx:
        tx.update("shared", lambda d: {**d, "n": 1000})
        child = ctx.Process(target=workers.forked_increments, args=(store, 1, ready))
        child.start()
        assert ready.wait(30)
        child.join(0.3)  # the child must be blocked on our lock, not done
        assert child.is_alive()
    child.join(60)
    assert child.exitcode == 0
    # the child's increment happened after (and on top of) our commit
    assert store.get("counters", "shared")["n"] == 1001


def test_a_claim_inside_a_transaction_skips_what_another_transaction_holds(store):
    """Txn.get(skip_locked=True): on PostgreSQL a document another open
    transaction holds raises Locked at once (FOR UPDATE SKIP LOCKED), a free
    one is taken, a missing one is None; on TinyDB the second transaction
    waits for the collection instead, so nothing is ever Locked."""
    from app.store import Locked

    store.insert("jobs", {"id": "held"})
    store.insert("jobs", {"id": "free"})
    seen = {}
    done = threading.Event()

    def other():
        with store.transaction("jobs") as tx:
            for doc_id in ("held", "free", "missing"):
                try:
                    seen[doc_id] = tx.get(doc_id, skip_locked=True)
                except Locked:
                    seen[doc_id] = "locked"
        done.set()

    with store.transaction("jobs") as tx:
        assert tx.get("held", skip_locked=True) == {"id": "held"}
        thread = threading.Thread(target=other)
        thread.start()
        finished_meanwhile = done.wait(5 if store.backend == "postgresql" else 1)
    thread.join(10)
    if store.backend == "postgresql":
        assert finished_meanwhile, "the claim waited for the held row"
        assert seen == {"held": "locked", "free": {"id": "free"}, "missing": None}
    else:
        assert not finished_meanwhile
        assert seen == {"held": {"id": "held"}, "free": {"id": "free"}, "missing": None}
