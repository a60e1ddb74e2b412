"""TinyDB's multi-collection commit is all-or-nothing across a crash: a
resource change and its outbox entry are never found one without the other."""
import multiprocessing

import pytest

import _store_workers as workers
from app.store import open_store


@pytest.mark.parametrize("crash_at, committed", [(1, False), (2, True), (3, True)])
def test_a_crash_mid_commit_leaves_all_or_nothing(data_dir, crash_at, committed):
    with open_store(data_dir) as store:
        with store.transactions("customer", "outbox") as tx:
            tx["customer"].insert({"id": "c1"})
            tx["outbox"].insert({"id": "e1"})
    child = multiprocessing.get_context("spawn").Process(
        target=workers.crash_mid_commit, args=(data_dir, crash_at))
    child.start()
    child.join(60)
    assert child.exitcode == -9  # killed mid-commit, as intended
    with open_store(data_dir) as store:  # opening finishes (or drops) the commit
        customers = {d["id"] for d in store.all("customer")}
        outbox = {d["id"] for d in store.all("outbox")}
    if committed:
        assert (customers, outbox) == ({"c1", "c2"}, {"e1", "e2"})
    else:
        assert (customers, outbox) == ({"c1"}, {"e1"})
    import os
    assert not [n for n in os.listdir(data_dir) if n.endswith((".journal", ".tmp"))]
