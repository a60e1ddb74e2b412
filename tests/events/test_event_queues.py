"""The delivery data, on both stores: one ordered log of
change records shared by all hubs and one queue document per hub, so what a
claim or an outcome writes grows with the hubs, not with notifications x hubs
(BENCHMARKS.md "Event delivery").

The EventBus is driven in this process (its dispatcher ticked by the test)
against loopback listeners; the end-to-end behaviour through a served API is
in test_event_delivery.py and test_hub_events.py."""
from __future__ import annotations

import contextlib
import threading
import time

import psycopg
import pytest

from app.config import Settings
from app.events.bus import EventBus
from app.events.purge import purge_orphan_queues, trim_log
from app.events.queues import ensure_queues
from app.events.records import DELIVERIES, EVENTS, HUBS, LOG, LOG_HEAD, QUEUES
from app.store import open_store
from helpers import PATIENCE, Listener, wait_until

API = "customerManagement"


@pytest.fixture
def recorders():
    """Listeners whose status for the n-th request is `decide(body, n)`."""
    made: list[Listener] = []

    def make(decide=lambda body, n: 201) -> Listener:
        made.append(Listener(decide=decide))
        return made[-1]
    yield make
    for recorder in made:
        recorder.close()


@pytest.fixture
def bus(store_url, tmp_path):
    store = open_store(store_url)
    settings = Settings(data_dir=tmp_path / "data", callback_allowed_hosts=["127.0.0.0/8"],
                        event_timeout_seconds=2, event_backoff_seconds=0.05,
                        event_backoff_max_seconds=0.1, event_poll_seconds=0.05)
    bus = EventBus(store, settings)
    bus.dispatcher._start_in_this_process()
    yield bus
    store.close()


def change(bus: EventBus, name: str, events: int = 1) -> None:
    """One acknowledged change with `events` notifications, written as the
    API writes it: the resource and its event record in one transaction."""
    with bus.store.transactions("customer", EVENTS) as tx:
        tx["customer"].insert({"id": name, "name": name})
        bus.record(API, "customer", name,
                   [(f"CustomerEvent{n}", "customer", {"id": name, "n": n}) for n in range(events)],
                   into=tx[EVENTS])


def run_until(bus: EventBus, done, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        bus.dispatcher.tick()
        if done():
            return True
        time.sleep(0.02)
    return False


def test_delivery_state_grows_with_the_hubs_not_with_notifications_times_hubs(bus, recorders):
    listener = recorders()
    for n in range(30):
        bus.register_hub(API, f"{listener.url}?hub={n}", None)
    for n in range(5):
        change(bus, f"c{n}")
    assert bus.dispatcher.sequence() == 5
    store = bus.store
    # one record per change (and the log's head), one queue per hub, no
    # per-hub copy of any notification
    assert store.count(LOG) == 6 and store.count(QUEUES) == 30
    assert store.count(DELIVERIES) == 0 and store.count(EVENTS) == 0
    report = bus.backlog()
    assert report["pending"] == 150 and report["recorded"] == 0, report

    assert run_until(bus, lambda: len(listener.delivered()) >= 150)
    assert run_until(bus, lambda: bus.backlog()["pending"] == 0)
    for n in range(30):         # every hub got the five once, in the order recorded
        got = [body["event"]["customer"]["id"]
               for (body, _status), path in zip(listener.requests, listener.paths)
               if path.endswith(f"?hub={n}")]
        assert got == [f"c{m}" for m in range(5)], (n, got)
    bus.dispatcher.purge()
    assert store.count(LOG) == 1        # records every hub has passed are gone: the head
    assert store.count(DELIVERIES) == 0


def test_a_hub_registered_later_gets_only_what_was_recorded_after_it(bus, recorders):
    early, late = recorders(), recorders()
    bus.register_hub(API, early.url, None)
    change(bus, "before")
    bus.dispatcher.sequence()
    bus.register_hub(API, late.url, None)
    change(bus, "after")
    assert run_until(bus, lambda: len(early.delivered()) == 2 and len(late.delivered()) == 1)
    assert [b["event"]["customer"]["id"] for b in late.delivered()] == ["after"]


def test_a_change_acknowledged_before_a_hub_registered_is_not_sent_to_it(bus, recorders):
    early, late = recorders(), recorders()
    bus.register_hub(API, early.url, None)
    change(bus, "before")             # acknowledged, not yet numbered into the log
    bus.register_hub(API, late.url, None)
    change(bus, "after")
    assert run_until(bus, lambda: len(early.delivered()) == 2 and len(late.delivered()) == 1)
    run_until(bus, lambda: False, timeout=0.5)
    assert [b["event"]["customer"]["id"] for b in late.delivered()] == ["after"]


def test_a_record_with_several_notifications_resumes_at_the_one_that_failed(bus, recorders):
    def fail_second_once(body, n):
        return 500 if n == 1 else 201
    listener = recorders(fail_second_once)
    bus.register_hub(API, listener.url, None)
    change(bus, "multi", events=3)
    change(bus, "next")
    assert run_until(bus, lambda: len(listener.delivered()) == 4)
    sent = [(b["event"]["customer"]["id"], b["event"]["customer"].get("n"), status)
            for b, status in listener.requests]
    # the first is not sent again; the failed one is retried before the rest
    assert sent == [("multi", 0, 201), ("multi", 1, 500), ("multi", 1, 201),
                    ("multi", 2, 201), ("next", 0, 201)], sent
    assert listener.requests[1][0]["eventId"] == listener.requests[2][0]["eventId"]


def test_a_hub_stored_without_a_queue_gets_one_and_its_events(bus, recorders):
    listener = recorders()
    store = bus.store
    # a hub written without its queue (a restore of the hubs alone)
    store.insert("hubs", {"id": "h-prev", "api": API, "callback": listener.url, "query": None,
                          "consecutiveFailures": 0, "circuitOpenUntil": 0.0})
    other = recorders()
    bus.register_hub(API, other.url, None)
    change(bus, "c-new")
    assert run_until(bus, lambda: len(listener.delivered()) == 1 and len(other.delivered()) == 1)
    assert [b["event"]["customer"]["id"] for b in listener.delivered()] == ["c-new"]
    assert [b["event"]["customer"]["id"] for b in other.delivered()] == ["c-new"]
    assert store.count(DELIVERIES) == 0


def test_deleting_a_hub_drops_its_queue_and_what_was_kept_for_it(bus, recorders):
    listener = recorders(lambda body, n: 500)
    settings = bus.settings
    settings.event_max_attempts = 1
    settings.event_circuit_failures = 100
    hub = bus.register_hub(API, listener.url, None)["id"]
    for n in range(3):
        change(bus, f"c{n}")
    assert run_until(bus, lambda: bus.backlog()["failed"] == 3)
    assert bus.unregister_hub(API, hub)
    change(bus, "c-after")
    run_until(bus, lambda: False, timeout=0.5)
    assert bus.backlog() == {**bus.backlog(), "pending": 0, "failed": 0}
    assert bus.store.count(QUEUES) == 0 and len(listener.requests) == 3


def exact_pending(bus: EventBus) -> int:
    """What waits, counted record by record as /health did before the
    tallies (every hub's query evaluated over every record)."""
    from app.events.eventlog import pending_items
    from app.events.records import LOG_HEAD

    head = bus.store.get(LOG, LOG_HEAD)["last"]
    records = {r["seq"]: r for r in bus.store.all(LOG) if "seq" in r}
    return sum(len(pending_items(q, records, head)[0]) for q in bus.store.all(QUEUES))


def test_health_counts_what_waits_from_the_tallies_as_the_records_say(bus, recorders):
    from app.events.records import LOG_HEAD

    listener = recorders()
    hubs = [bus.register_hub(API, f"{listener.url}?hub={n}", None)["id"] for n in range(3)]
    bus.register_hub("productInventory", f"{listener.url}?hub=other", None)
    for n in range(6):
        change(bus, f"c{n}", events=1 + n % 3)     # 1, 2, 3, 1, 2, 3 notifications
    before = bus.backlog()
    assert (before["recorded"], before["pending"]) == (6, 0), before
    assert before["backlogAgeSeconds"] > 0
    bus.dispatcher.sequence()
    with bus.store.transactions(EVENTS) as tx:      # a change of the other API
        bus.record("productInventory", "product", "p1",
                   [("ProductCreateEvent", "product", {"id": "p1"})], into=tx[EVENTS])
    bus.dispatcher.sequence()
    report = bus.backlog()
    assert report["pending"] == 3 * 12 + 1 == exact_pending(bus), report
    assert report["recorded"] == 0 and report["backlogAgeSeconds"] > 0
    # one hub part-way into the record of c1 (its first of 2 settled), one past c3
    store = bus.store
    seqs = {r["resourceId"]: r["seq"] for r in store.all(LOG) if "seq" in r}
    store.update(QUEUES, hubs[0], lambda q: {**q, "position": seqs["c1"] - 1, "skip": 1})
    store.update(QUEUES, hubs[1], lambda q: {**q, "position": seqs["c3"], "skip": 0})
    report = bus.backlog()
    assert report["pending"] == (12 - 1 - 1) + (12 - 7) + 12 + 1 == exact_pending(bus), report
    # a log written before the tallies existed is counted record by record
    store.update(LOG, LOG_HEAD, lambda head: {k: v for k, v in head.items() if k != "tally"})
    for seq_id in [r["id"] for r in store.all(LOG) if "before" in r]:
        store.update(LOG, seq_id, lambda r: {k: v for k, v in r.items() if k != "before"})
    assert bus.backlog()["pending"] == exact_pending(bus)
    store.update(LOG, LOG_HEAD, lambda head: {**head, "tally": {}})
    assert run_until(bus, lambda: bus.backlog()["pending"] == 0)
    assert len(listener.delivered()) == 10 + 5 + 12 + 1
    assert bus.backlog()["stalled"] is False


class HeldOpen:
    """The store, but each transaction, its writes done, waits for
    `release` before it commits: another writer meets it open (as a second
    worker or host would, at the wrong moment)."""

    def __init__(self, store):
        self.store = store
        self.holding = threading.Event()
        self.release = threading.Event()

    def __getattr__(self, name):
        return getattr(self.store, name)

    @contextlib.contextmanager
    def transactions(self, *collections):
        with self.store.transactions(*collections) as tx:
            yield tx
            self.holding.set()
            assert self.release.wait(PATIENCE)


def in_thread(call) -> tuple[threading.Thread, dict]:
    """Run `call` in a thread; the dict gets its "result" or "error"."""
    outcome: dict = {}

    def run():
        try:
            outcome["result"] = call()
        except Exception as exc:  # noqa: BLE001 - the test looks at it
            outcome["error"] = exc
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, outcome


def until_a_writer_waits(store_url: str) -> None:
    """PostgreSQL: until a session of this database waits for a lock (the
    second writer has met the first one's open transaction). TinyDB: its
    writers take the store's lock in this process, where no one can see
    them wait; a moment is all the second writer is given."""
    if not store_url.startswith("postgresql"):
        time.sleep(0.3)
        return
    with psycopg.connect(store_url, autocommit=True) as conn:
        assert wait_until(lambda: conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock'").fetchone()[0] > 0, PATIENCE)


@pytest.mark.parametrize("first", ["dispatcher", "registration"])
def test_two_first_numberings_at_once_wait_for_each_other(bus, recorders, store_url, first):
    """A fresh store numbers its first change into the log while a hub
    registers: the dispatcher at the same moment (what CI met on
    2026-12-07), or a registration in another worker. Both read the log's
    head to number from; on PostgreSQL there was no head row yet to lock,
    so both numbered from 0 and the registration failed on the record's id
    once the other committed: a 409 CONFLICT to the client. Now it waits
    for the other, then numbers after it."""
    early, late = recorders(), recorders()
    # the hubs' attribute names are known (a hub came and went): their
    # first insert would otherwise make the two registrations wait on it
    bus.unregister_hub(API, bus.register_hub(API, "http://127.0.0.1:9/gone", None)["id"])
    change(bus, "before")                   # acknowledged, not yet numbered
    held = HeldOpen(bus.store)
    other = EventBus(held, bus.settings)    # another worker's
    first_writer, _ = in_thread(other.dispatcher.sequence if first == "dispatcher"
                                else lambda: other.register_hub(API, early.url, None))
    assert held.holding.wait(PATIENCE)      # it numbered "before" and holds its transaction
    second, registered = in_thread(lambda: bus.register_hub(API, late.url, None))
    until_a_writer_waits(store_url)
    held.release.set()
    first_writer.join(PATIENCE)
    second.join(PATIENCE)
    assert "result" in registered, registered
    assert bus.store.get(LOG, LOG_HEAD)["last"] == 1
    assert [r["seq"] for r in bus.store.all(LOG) if "seq" in r] == [1]
    assert {q["position"] for q in bus.store.all(QUEUES)} == {1}
    if first == "dispatcher":
        bus.register_hub(API, early.url, None)
    change(bus, "after")
    assert run_until(bus, lambda: len(early.delivered()) == 1 and len(late.delivered()) == 1)
    for listener in (early, late):
        assert [b["event"]["customer"]["id"] for b in listener.delivered()] == ["after"]


def test_two_dispatchers_giving_a_queue_to_the_same_hub_wait_for_each_other(bus, recorders,
                                                                          store_url):
    """Two dispatchers (two hosts) start at once while a hub has no queue
    (restored without it). The second used to insert the same queue and
    fail on its id once the first committed; now it finds the first's."""
    listener = recorders()
    bus.store.insert(HUBS, {"id": "h-restored", "api": API, "callback": listener.url,
                            "query": None})
    held = HeldOpen(bus.store)
    first, made_first = in_thread(lambda: ensure_queues(held))
    assert held.holding.wait(PATIENCE)
    second, made_second = in_thread(lambda: ensure_queues(bus.store))
    until_a_writer_waits(store_url)
    held.release.set()
    first.join(PATIENCE)
    second.join(PATIENCE)
    assert made_first == {"result": 1} and made_second == {"result": 0}, (made_first, made_second)
    assert [q["id"] for q in bus.store.all(QUEUES)] == ["h-restored"]
    change(bus, "c1")
    assert run_until(bus, lambda: len(listener.delivered()) == 1)


def test_two_registrations_at_once_keep_to_the_hub_limit(bus, recorders, store_url):
    """Two workers (or hosts) register a hub at once on an API with room for
    one more. The second counted the API's hubs before it waited for the
    first (PostgreSQL: the count saw the first's hub not yet committed), so
    both were created, one over RECO_MAX_HUBS_PER_API. Now it counts once
    the first has committed, and is answered 409 TOO_MANY_HUBS."""
    first, second = recorders(), recorders()
    one_more = bus.settings.model_copy(update={"max_hubs_per_api": 1})
    # as above: the hubs' attribute names known, so only the log's head is waited on
    bus.unregister_hub(API, bus.register_hub(API, "http://127.0.0.1:9/gone", None)["id"])
    held = HeldOpen(bus.store)
    first_writer, made_first = in_thread(
        lambda: EventBus(held, one_more).register_hub(API, first.url, None))
    assert held.holding.wait(PATIENCE)      # its hub is written, not yet committed
    second_writer, made_second = in_thread(
        lambda: EventBus(bus.store, one_more).register_hub(API, second.url, None))
    until_a_writer_waits(store_url)
    held.release.set()
    first_writer.join(PATIENCE)
    second_writer.join(PATIENCE)
    assert "result" in made_first, made_first
    refused = made_second.get("error")
    assert getattr(refused, "status", None) == 409 and refused.code == "TOO_MANY_HUBS", made_second
    assert [hub["callback"] for hub in bus.store.all(HUBS)] == [first.url]
    assert [queue["id"] for queue in bus.store.all(QUEUES)] == [made_first["result"]["id"]]


def test_a_hub_registered_while_the_log_is_trimmed_keeps_the_changes_after_it(bus, recorders):
    """The purge reads the queues (no hub: every record may go), then the
    log's head, and trims through it. A hub registered in between (another
    worker's or host's), and a change numbered after it (by another
    dispatcher, or another registration), were trimmed with the rest: the hub
    never got that change, acknowledged after its registration. The trim now
    goes no further than the head as it was before the queues were read."""
    listener = recorders()
    change(bus, "before")
    assert bus.dispatcher.sequence() == 1          # no hub: nobody waits for it
    passed = purge_orphan_queues(bus.store)         # the purge has read the queues: none
    bus.register_hub(API, listener.url, None)      # then, elsewhere: a hub
    change(bus, "after")
    assert bus.dispatcher.sequence() == 1          # and a change numbered after it (seq 2)
    trim_log(bus.store, bus.dispatcher.log_cache, passed)
    assert [r["seq"] for r in bus.store.all(LOG) if "seq" in r] == [2]
    assert run_until(bus, lambda: len(listener.delivered()) == 1)
    assert [b["event"]["customer"]["id"] for b in listener.delivered()] == ["after"]
