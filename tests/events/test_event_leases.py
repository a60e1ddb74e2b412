"""A hung dispatcher (SIGSTOP) holds nobody's deliveries for longer than its
lease, and /health says delivery is stalled while it hangs
(app/events/lease.py, app/events/status.py). Real gunicorn servers on
loopback; two hosts share one PostgreSQL database."""
from __future__ import annotations

import os
import signal
import threading
import time
import uuid

import pytest

from app.events.dispatcher import BATCH
from app.events.records import QUEUES
from app.store import open_store
from helpers import PATIENCE, Client, dispatcher_of, read_http_request, wait_until

C = "/tmf-api/customerManagement/v4/customer"
C_HUB = "/tmf-api/customerManagement/v4/hub"
LEASE = 5.0           # the least lease with a 1 s attempt deadline (lease.py)
POLL = 0.1
STALL = 3.0
FAST = {"RECO_EVENT_TIMEOUT_SECONDS": "1", "RECO_EVENT_POLL_SECONDS": str(POLL),
        "RECO_EVENT_LEASE_SECONDS": str(LEASE), "RECO_EVENT_STALL_SECONDS": str(STALL),
        "RECO_EVENT_BACKOFF_SECONDS": "0.2", "RECO_EVENT_BACKOFF_MAX_SECONDS": "1",
        "RECO_STORE_IDLE_TRANSACTION_SECONDS": str(LEASE)}
#: the documented bound of a takeover (docs/events.md, "A hung dispatcher": the longer
#: of the lease and a hung process's open transaction, plus one poll), and
#: what a loaded 2-core machine adds to it (scheduling a nice 10 dispatcher
#: at load 12, the next tick)
TAKEOVER_BOUND = LEASE + POLL
SLACK = 6.0


def create(api: Client) -> str:
    response = api.post(C, json={"name": "Ada", "engagedParty": {
        "id": uuid.uuid4().hex, "@referredType": "Individual"}})
    assert response.status_code == 201, response.text
    return response.json()["id"]


def customer_ids(bodies: list[dict]) -> list[str]:
    return [body["event"]["customer"]["id"] for body in bodies]


class Load:
    """Creates customers one after the other, alternately through each
    server, until stopped; `created` holds (id, time acknowledged) in the
    order they were acknowledged (so recorded: one client, one at a time)."""

    def __init__(self, *servers, gap: float = 0.03):
        self.apis = [Client(server.url) for server in servers]
        self.gap = gap
        self.created: list[tuple[str, float]] = []
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        n = 0
        while not self.done.is_set():
            self.created.append((create(self.apis[n % len(self.apis)]), time.monotonic()))
            n += 1
            time.sleep(self.gap)

    def stop(self) -> list[str]:
        self.done.set()
        self.thread.join(30)
        return [customer for customer, _at in self.created]


def host_of(pid: int | None) -> int | None:
    """The master (a test's "host") of a process: its process group."""
    try:
        return os.getpgid(pid) if pid else None
    except ProcessLookupError:
        return None


def resume(pid: int) -> None:
    """SIGCONT, unless its supervisor has killed it meanwhile (hung too long)."""
    try:
        os.kill(pid, signal.SIGCONT)
    except ProcessLookupError:
        pass


def first_arrivals(bodies: list[dict]) -> list[str]:
    seen, order = set(), []
    for customer in customer_ids(bodies):
        if customer not in seen:
            seen.add(customer)
            order.append(customer)
    return order


def stop_while_holding(dispatcher: int, store, hub_id: str, tries: int = 200) -> float:
    """SIGSTOP `dispatcher` at a moment it holds the hub's lease (so the test
    is about a hung HOLDER); returns time.monotonic() of the stop."""
    for _ in range(tries):
        queue = store.get(QUEUES, hub_id)
        if queue and queue.get("leaseOwner") == dispatcher:
            os.kill(dispatcher, signal.SIGSTOP)
            stopped = time.monotonic()
            queue = store.get(QUEUES, hub_id)
            if queue.get("leaseOwner") == dispatcher and queue["leaseUntil"] > time.time():
                return stopped
            os.kill(dispatcher, signal.SIGCONT)     # it had just released it
        time.sleep(0.005)
    pytest.fail("the dispatcher never held the hub's lease")


@pytest.mark.backends("postgresql", reason="two hosts share one store only on PostgreSQL")
def test_a_hung_dispatchers_hub_is_taken_over_within_its_lease_and_nothing_is_lost(
        make_server, listener):
    first = make_server(workers=1, env=FAST)
    second = make_server(workers=1, env=FAST, store_of=first)
    hung = dispatcher_of(first.process.pid)
    api = Client(first.url)
    response = api.post(C_HUB, json={"callback": listener.url})
    assert response.status_code == 201, response.text
    hub_id = response.json()["id"]
    store = open_store(first.store_url)
    load = Load(first, second)
    try:
        assert listener.wait_for(lambda e: True, timeout=PATIENCE)
        stopped = stop_while_holding(hung, store, hub_id)
        try:
            # both hosts say a dispatcher hangs (before its supervisor
            # replaces it, after twice the lease)
            def hung_reported(server) -> bool:
                events = Client(server.url).get("/health").json()["events"]
                return events["stalled"] and any(f":{hung} has not reported" in reason
                                                 for reason in events["stallReasons"])
            assert wait_until(lambda: hung_reported(first) and hung_reported(second),
                              STALL + 4)
            assert Client(second.url).get("/health/ready").status_code == 200
            # the other host's dispatcher takes the hub within the bound
            assert wait_until(lambda: host_of(store.get(QUEUES, hub_id).get("leaseOwner"))
                              == second.process.pid, TAKEOVER_BOUND + SLACK, interval=0.05)
            took = time.monotonic() - stopped
            assert took <= TAKEOVER_BOUND + SLACK, took
            # and delivers what was acknowledged after the stop
            mark = len(load.created)
            assert wait_until(lambda: len(load.created) > mark, PATIENCE)
            after = load.created[mark][0]
            assert listener.wait_for(lambda e: e["event"]["customer"]["id"] == after,
                                     timeout=SLACK), "nothing delivered after the takeover"
        finally:
            resume(hung)
        created = load.stop()
        assert wait_until(lambda: set(created) <= set(customer_ids(listener.delivered())), PATIENCE)
        # the resumed holder beats again: no longer stalled
        assert wait_until(lambda: api.get("/health").json()["events"]["stalled"] is False,
                          3 * STALL), api.get("/health").json()["events"]
        time.sleep(2 * LEASE)                     # anything the resumed holder would still send
        bodies = listener.delivered()
        # nothing lost; the first delivery of each in the order recorded
        assert first_arrivals(bodies) == created
        # a notification sent again is the same notification (its eventId),
        # and only what was in flight when the holder hung: one batch at most
        again = [body for n, body in enumerate(bodies)
                 if body["event"]["customer"]["id"] in customer_ids(bodies[:n])]
        assert len(again) <= BATCH, len(again)
        first_ids = {}
        for body in bodies:
            first_ids.setdefault(body["event"]["customer"]["id"], body["eventId"])
        assert all(first_ids[b["event"]["customer"]["id"]] == b["eventId"] for b in again)
        assert api.get("/health").json()["events"]["pending"] == 0
    finally:
        load.stop()
        store.close()


def test_health_says_delivery_stalled_while_the_dispatcher_hangs_and_a_hung_one_is_replaced(
        make_server, listener):
    server = make_server(workers=1, env=FAST)
    api = Client(server.url)
    assert api.post(C_HUB, json={"callback": listener.url}).status_code == 201
    warm = create(api)
    assert listener.wait_for(lambda e: e["event"]["customer"]["id"] == warm, timeout=PATIENCE)
    # ok once the delivery's outcome is written and the dispatcher has
    # reported (polled: on a loaded machine the niced dispatcher can report
    # later than the 3 s stall bound of this server)
    health = wait_until(lambda: (now := api.get("/health").json())["status"] == "ok" and now,
                        PATIENCE)
    assert health, api.get("/health").json()
    assert health["status"] == "ok" and health["events"]["stalled"] is False, health
    assert health["events"]["dispatchers"] == 1, health
    hung = dispatcher_of(server.process.pid)
    time.sleep(0.5)                 # idle: it holds no store lock when it stops
    os.kill(hung, signal.SIGSTOP)
    stopped = time.monotonic()
    try:
        created = [create(api) for _ in range(40)]
        assert wait_until(lambda: api.get("/health").json()["events"]["stalled"], 3 * STALL)
        health = api.get("/health").json()
        events = health["events"]
        assert health["status"] == "degraded", health
        assert events["recorded"] + events["pending"] == 40, events
        assert events["dispatchers"] == 0 and events["backlogAgeSeconds"] > 0, events
        assert any(f":{hung} has not reported" in reason for reason in events["stallReasons"])
        # still ready: it takes changes and records their events
        assert api.get("/health/ready").status_code == 200
        assert listener.delivered()[-1]["event"]["customer"]["id"] == warm
        # left stopped: the master's supervisor kills it after twice the
        # lease without a heartbeat, and its successor delivers the rest
        assert wait_until(lambda: set(created) <= set(customer_ids(listener.delivered())),
                          2 * LEASE + SLACK + 10)
        assert time.monotonic() - stopped >= 2 * LEASE
        assert dispatcher_of(server.process.pid) != hung
    finally:
        resume(hung)
    assert customer_ids(listener.delivered()) == [warm, *created]
    assert wait_until(lambda: api.get("/health").json()["status"] == "ok", 4 * STALL)
    events = api.get("/health").json()["events"]
    assert (events["stalled"], events["pending"], events["recorded"]) == (False, 0, 0), events
    assert events["dispatchers"] == 1, events


class KeepAliveListener:
    """A loopback HTTP/1.1 listener that answers 200 with Content-Length 0
    and keeps each connection open for the next request, unless
    `close_after_answer` (then it closes without saying so, as a listener
    whose idle timeout has passed does). Counts connections and requests."""

    def __init__(self, close_after_answer: bool = False):
        import json
        import socket

        self.close_after_answer = close_after_answer
        self.connections = 0
        self.bodies: list[dict] = []
        self.lock = threading.Lock()
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/keep"
        self._json = json
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self.connections += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        data = b""
        with conn:
            while True:
                request = read_http_request(conn, data)
                if request is None:
                    return
                _head, body, data = request
                with self.lock:
                    self.bodies.append(self._json.loads(body))
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
                if self.close_after_answer:
                    return

    def close(self):
        self.sock.close()


@pytest.mark.parametrize("close_after_answer", [False, True], ids=["kept", "closed-by-listener"])
def test_a_hubs_notifications_share_one_connection_and_a_closed_one_is_replaced(
        make_server, close_after_answer):
    listener = KeepAliveListener(close_after_answer)
    try:
        server = make_server(workers=1, env=FAST)
        api = Client(server.url)
        assert api.post(C_HUB, json={"callback": listener.url}).status_code == 201
        created = [create(api) for _ in range(12)]
        assert wait_until(lambda: len(listener.bodies) >= 12, PATIENCE)
        time.sleep(1.0)
        # each once, in order: a kept connection the listener closed is
        # replaced without losing or repeating the notification
        assert customer_ids(listener.bodies) == created
        if close_after_answer:
            assert listener.connections == 12
        else:
            # one per claimed batch at most, not one per notification
            assert listener.connections <= 2, listener.connections
    finally:
        listener.close()


def test_a_hung_processs_open_transaction_frees_its_locks(pg_url):
    """PostgreSQL ends a transaction whose process stopped between two
    statements (here a thread that waits while holding a row lock) after
    idle_transaction_timeout, so the others' writes of that row go on."""
    from app.store import StoreError

    store = open_store(pg_url, idle_transaction_timeout=1.0)
    store.insert("head", {"id": "head", "last": 0})
    locked, hung = threading.Event(), threading.Event()
    outcome: list = []

    def hang():
        try:
            with store.transaction("head") as tx:
                tx.get("head")                    # FOR UPDATE: the row is locked
                locked.set()
                hung.wait(30)
        except StoreError as exc:                # its session was ended
            outcome.append(exc)
    holder = threading.Thread(target=hang)
    holder.start()
    try:
        assert locked.wait(10)
        started = time.monotonic()
        store.update("head", "head", lambda head: {**head, "last": 1})
        assert time.monotonic() - started < 10
        assert store.get("head", "head")["last"] == 1
    finally:
        hung.set()
        holder.join(30)
        store.close()
    assert outcome, "the hung transaction was not ended"
