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
