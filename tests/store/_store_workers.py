"""Code run in child processes by the store tests.

Lives in its own module (not a test file) so ``spawn`` children can import it
by name, and so it can be run as a script by the crash test.
"""

import os
import sys


def increment(doc):
    doc["n"] += 1
    return doc


def insert_and_increment(data_dir, worker, n_docs):
    """multiprocessing target: n inserts of own docs + n increments of a shared counter."""
    from app.store import open_store

    store = open_store(data_dir)
    try:
        for i in range(n_docs):
            store.insert("items", {"id": f"w{worker}-{i}", "worker": worker, "i": i})
            assert store.update("counters", "shared", increment) is not None
    finally:
        store.close()


def forked_increments(store, n, ready=None):
    """multiprocessing 'fork' target: uses the store object inherited from the parent."""
    if ready is not None:
        ready.set()
    for _ in range(n):
        store.update("counters", "shared", increment)


def crash_child_main(data_dir, prefix):
    """Insert docs / bump a counter forever; print each *acknowledged* write.

    A line is printed only after the store call returned, with one write(2)
    per line, so every complete line the parent reads was acknowledged.
    """
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    from app.store import open_store

    store = open_store(data_dir)
    out = sys.stdout.buffer
    payload = "x" * 300
    i = 0
    while True:
        doc_id = f"{prefix}-{i}"
        store.insert("crash", {"id": doc_id, "payload": payload, "i": i})
        out.write(f"i {doc_id}\n".encode())
        out.flush()
        new = store.update("crashcounter", "c", increment)
        out.write(f"c {new['n']}\n".encode())
        out.flush()
        i += 1


if __name__ == "__main__":
    crash_child_main(sys.argv[1], sys.argv[2])


def crash_mid_commit(data_dir, crash_at):
    """Commit one change to two collections and SIGKILL this process at the
    ``crash_at``-th step of the commit (1: writing the journal, 2: renaming
    the first collection file, 3: the second): a crash halfway through."""
    import signal

    from app.store import open_store

    from app.store import tinydb_store

    store = open_store(data_dir)
    replace, write_journal = os.replace, tinydb_store._write_journal
    steps = []

    def step():
        steps.append(1)
        if len(steps) == crash_at:
            os.kill(os.getpid(), signal.SIGKILL)

    def dying_journal(path, data):
        if crash_at == 1:
            with open(path, "wb") as handle:  # half a journal on disk, then death
                handle.write(data[: len(data) // 2])
        step()
        write_journal(path, data)

    def dying_replace(src, dst):
        step()
        return replace(src, dst)

    tinydb_store._write_journal = dying_journal
    os.replace = dying_replace
    with store.transactions("customer", "outbox") as tx:
        tx["customer"].insert({"id": "c2"})
        tx["outbox"].insert({"id": "e2", "about": "c2"})
