"""The active rule set pointer's compare-and-set (two admins may activate at once): of
activations that read the same revision, exactly one is written; the others
are told they were superseded. On the file (TinyDB deployments) and in the
store (PostgreSQL deployments)."""
import threading

import pytest

from app.rules.repository.pointer import FilePointer, StorePointer, Superseded


@pytest.fixture(params=["file", "store"])
def pointer(request, tmp_path, store):
    if request.param == "file":
        return FilePointer(tmp_path / "state" / "active-rulesets.json")
    return StorePointer(store, poll_seconds=0.0)


def entry(version):
    return {"telco-demo": {"version": version, "hash": "h", "activatedAt": "2026-11-29T00:00:00Z"}}


def test_compare_and_set_writes_only_over_the_revision_it_read(pointer):
    assert pointer.read() == ({}, 0)
    before = pointer.token()
    assert pointer.compare_and_set(0, entry("1.0.0")) == 1
    assert pointer.read() == (entry("1.0.0"), 1)
    assert pointer.token() != before
    with pytest.raises(Superseded) as info:
        pointer.compare_and_set(0, entry("0.9.0"))  # read before the write above
    assert info.value.current == 1 and info.value.pointer == entry("1.0.0")
    assert pointer.read() == (entry("1.0.0"), 1)
    assert pointer.compare_and_set(1, entry("0.9.0")) == 2


def test_of_simultaneous_activations_exactly_one_wins(pointer):
    pointer.compare_and_set(0, entry("1.0.0"))
    barrier = threading.Barrier(6)
    won, lost = [], []

    def activate(version):
        barrier.wait()
        try:
            pointer.compare_and_set(1, entry(version))
            won.append(version)
        except Superseded:
            lost.append(version)

    threads = [threading.Thread(target=activate, args=(f"2.0.{k}",)) for k in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(won) == 1 and len(lost) == 5
    assert pointer.read() == (entry(won[0]), 2)
