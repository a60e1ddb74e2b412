"""Notifications that are never lost and never held up.

Each test is one way delivery failed, through the real service (gunicorn on
loopback) and listeners on loopback that misbehave the way real ones do.
Timeouts are short through settings, so the whole module takes well under a
minute."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
import uuid

import pytest

from helpers import DEMO_CATALOG, DEMO_RULES, ROOT, Client, Listener, ServiceProcess, assert_tmf_error, free_port
from helpers import PATIENCE, read_http_request

C = "/tmf-api/customerManagement/v4/customer"
C_HUB = "/tmf-api/customerManagement/v4/hub"
R = "/tmf-api/recommendationManagement/v4/queryProductRecommendation"
R_HUB = "/tmf-api/recommendationManagement/v4/hub"

FAST = {
    "RECO_EVENT_TIMEOUT_SECONDS": "1",
    "RECO_EVENT_BACKOFF_SECONDS": "0.2",
    "RECO_EVENT_BACKOFF_MAX_SECONDS": "1",
    "RECO_EVENT_POLL_SECONDS": "0.1",
}


def customer(name: str = "Ada") -> dict:
    return {"name": name, "engagedParty": {"id": uuid.uuid4().hex, "@referredType": "Individual"}}


def wait_until(predicate, timeout: float, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


def events_health(api: Client) -> dict:
    return api.get("/health").json()["events"]


@pytest.fixture
def service(make_server):
    """A fresh server with short delivery timeouts; keyword arguments are
    extra environment variables."""
    def start(workers: int = 2, data_dir=None, **env) -> ServiceProcess:
        where = {"data_dir": data_dir} if data_dir else {}
        return make_server(workers=workers, env={**FAST, **env}, **where)
    return start


class RawListener:
    """A loopback TCP server whose answer to each notification is written by
    `answer(connection, request_body, index)`; it records every request body
    (parsed JSON) with the time it arrived."""

    def __init__(self, answer):
        self.answer = answer
        self.requests: list[tuple[float, dict]] = []
        self.lock = threading.Lock()
        self.closed = threading.Event()
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/listener"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.closed.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        with conn:
            request = read_http_request(conn)
            if request is None:
                return
            _head, body, _rest = request
            with self.lock:
                index = len(self.requests)
                self.requests.append((time.monotonic(), json.loads(body)))
            try:
                self.answer(self, conn, index)
            except OSError:
                pass

    def bodies(self) -> list[dict]:
        with self.lock:
            return [body for _, body in self.requests]

    def close(self):
        self.closed.set()
        self.sock.close()


OK = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"


@pytest.fixture
def raw_listeners():
    made: list[RawListener] = []

    def make(answer) -> RawListener:
        made.append(RawListener(answer))
        return made[-1]
    yield make
    for listener in made:
        listener.close()


def register(api: Client, callback: str, query: str | None = None, hub: str = C_HUB) -> str:
    body = {"callback": callback} if query is None else {"callback": callback, "query": query}
    response = api.post(hub, json=body)
    assert response.status_code == 201, response.text
    return response.json()["id"]


def create(api: Client, name: str = "Ada") -> str:
    response = api.post(C, json=customer(name))
    assert response.status_code == 201, response.text
    return response.json()["id"]


def created_ids(bodies: list[dict]) -> list[str]:
    return [b["event"]["customer"]["id"] for b in bodies if b["eventType"] == "CustomerCreateEvent"]


# -- a query that cannot be evaluated --------------------------------------

def test_a_query_that_cannot_be_evaluated_is_refused_and_a_stored_one_costs_only_its_hub(
        service, listener, tmp_path):
    first = service(workers=1)
    api = Client(first.url)
    for query in ("eventType.gt=0001-01-01T00:00:00%2B01:00",   # out of range in UTC
                  "eventType.lt=9999-12-31T23:59:59-01:00",
                  "nosuch.attribute=1", "event..customer=x", "a=1&&", "x" * 3000):
        body = assert_tmf_error(api.post(C_HUB, json={"callback": listener.url, "query": query}), 400)
        assert "query" in body["message"]
    assert api.get(C_HUB + "/none").status_code == 404
    first.stop()
    # a hub stored before registration checked queries (older version, restore)
    from app.store import open_store
    with open_store(first.store_url) as store:
        store.insert("hubs", {"id": "legacy", "api": "customerManagement", "callback": listener.url,
                              "query": "eventType.gt=0001-01-01T00:00:00%2B01:00"})
    second = service(workers=1, data_dir=first.data_dir)
    api = Client(second.url)
    register(api, listener.url, "eventType=CustomerCreateEvent")
    customer_id = create(api)
    assert listener.wait_for(lambda e: e["event"]["customer"]["id"] == customer_id, timeout=PATIENCE)
    assert wait_until(lambda: events_health(api)["pending"] == 0, PATIENCE)
    assert events_health(api)["failed"] == 0


# -- the event cannot be recorded ------------------------------------------

def test_a_change_whose_event_cannot_be_recorded_is_refused_and_nothing_is_stored(
        service, listener, full_disk):
    server = service(workers=2, **full_disk.env)
    api = Client(server.url)
    register(api, listener.url)
    before = api.get(C, params={"limit": 1000}).json()
    full_disk.fill(server, "event|outbox")      # the notification store is full
    for _ in range(3):
        body = assert_tmf_error(api.post(C, json=customer("Lost")), 503)
        assert body["code"] == "STORE_UNAVAILABLE"      # disk full: storage, not the request
    assert api.get(C, params={"limit": 1000}).json() == before
    ready = api.get("/health/ready")
    assert_tmf_error(ready, 503)
    report = ready.json()["details"]["events"]
    assert report["recordable"] is False and "No space left" in report["recordError"]
    full_disk.free()                            # space again
    assert events_health(api)["recordable"] is True
    customer_id = create(api, "Kept")
    assert listener.wait_for(lambda e: e["event"]["customer"]["id"] == customer_id, timeout=PATIENCE)
    assert not listener.wait_for(lambda e: e["event"]["customer"]["name"] == "Lost", timeout=0.5)


def test_an_event_whose_change_never_committed_is_never_sent(service, listener, full_disk):
    """The other half: the event was recorded, then the change's own write
    failed. The client gets an error and no listener hears of the change."""
    server = service(workers=1, **full_disk.env)
    api = Client(server.url)
    register(api, listener.url)
    full_disk.fill(server, "customer")          # the resource cannot be written
    response = api.post(C, json=customer("Phantom"))
    assert response.status_code >= 500
    assert_tmf_error(response, response.status_code)
    full_disk.free()
    customer_id = create(api, "Real")
    assert listener.wait_for(lambda e: e["event"]["customer"]["id"] == customer_id, timeout=PATIENCE)
    assert wait_until(lambda: events_health(api)["recorded"] == 0, PATIENCE)
    assert [e["event"]["customer"]["name"] for e in listener.events] == ["Real"]


# -- trickling listeners ---------------------------------------------------

def trickling(head: bytes, body: bytes):
    """Sends `head` at once, then `body` one byte every 0.2 s, for ever;
    notes how long the service kept the connection."""
    def answer(listener: RawListener, conn, index):
        conn.sendall(head)
        started = time.monotonic()
        for byte in (body * 1000):
            if listener.closed.is_set():
                return
            try:
                conn.sendall(bytes([byte]))
            except OSError:        # the service hung up: how long it took is the point
                break
            time.sleep(0.2)
        listener.held = max(getattr(listener, "held", 0.0), time.monotonic() - started)
    return answer


def test_trickling_listeners_cost_only_their_own_queue(service, listener, raw_listeners):
    server = service(workers=1, RECO_EVENT_MAX_IN_FLIGHT="4")
    api = Client(server.url)
    tricklers = [raw_listeners(trickling(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n",
                                         b"x")) for _ in range(5)]
    tricklers += [raw_listeners(trickling(b"", b"HTTP/1.1 200 OK\r\n")) for _ in range(4)]
    for slow in tricklers:
        register(api, slow.url)
    register(api, listener.url)
    customer_id = create(api)
    assert listener.wait_for(lambda e: e["event"]["customer"]["id"] == customer_id, timeout=PATIENCE), \
        "a healthy hub's event was held up behind trickling listeners"
    # every attempt ended by the 1 s whole-attempt deadline, although a byte
    # arrived every 0.2 s: the status line trickled is a failure, a body
    # trickled after a 200 is not waited for
    assert wait_until(lambda: all(hasattr(slow, "held") for slow in tricklers), PATIENCE)
    assert max(slow.held for slow in tricklers) < 3.0


# -- a huge answer body ----------------------------------------------------

def huge(listener: RawListener, conn, index):
    size = 100 * 1024 * 1024
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % size)
    block = b"0" * 65536
    sent = 0
    try:
        while sent < size:
            sent += conn.send(block)
    except OSError:
        pass
    listener.sent = sent


def test_only_a_capped_part_of_a_listeners_answer_is_read(service, raw_listeners, listener):
    server = service(workers=1, RECO_EVENT_TIMEOUT_SECONDS="5",
                     RECO_EVENT_DELIVERED_RETENTION_SECONDS="60")
    api = Client(server.url)
    big = raw_listeners(huge)
    register(api, big.url)
    register(api, listener.url)
    customer_id = create(api)
    assert listener.wait_for(lambda e: e["event"]["customer"]["id"] == customer_id, timeout=PATIENCE)
    assert wait_until(lambda: hasattr(big, "sent"), PATIENCE)
    # 64 KiB read, then the connection closed: what got out is the cap plus
    # the kernel's socket buffers, not the 100 MB
    assert big.sent < 20 * 1024 * 1024, big.sent
    assert wait_until(lambda: events_health(api)["delivered"] == 2, PATIENCE)


# -- fan-out on the request path, unlimited hubs ---------------------------

def test_a_change_records_one_event_whatever_the_hubs_and_hubs_are_capped(service, listener):
    server = service(workers=1, RECO_BACKGROUND_WORKERS="false", RECO_MAX_HUBS_PER_API="20")
    api = Client(server.url)
    for _ in range(20):
        register(api, listener.url)
    body = assert_tmf_error(api.post(C_HUB, json={"callback": listener.url}), 409)
    assert "RECO_MAX_HUBS_PER_API" in body["message"]
    create(api)
    report = events_health(api)
    # the request wrote one event record; fanning it out to 20 hubs is the
    # dispatcher's work, which this server does not run
    assert report["recorded"] == 1 and report["pending"] == 0, report
    assert listener.events == []


# -- failed entries are never purged ---------------------------------------

def test_finished_entries_are_purged_and_a_deleted_hub_takes_its_queue(
        service, listener, raw_listeners):
    server = service(workers=1, RECO_EVENT_MAX_ATTEMPTS="1", RECO_EVENT_CIRCUIT_FAILURES="100",
                     RECO_EVENT_FAILED_RETENTION_SECONDS="6",
                     RECO_EVENT_DELIVERED_RETENTION_SECONDS="6")
    api = Client(server.url)
    refused = register(api, f"http://127.0.0.1:{free_port()}/nobody")   # fails at once
    register(api, listener.url)
    # (a retention of 3 s was shorter than three creates and their failures
    # on a loaded machine: the first was purged before the third failed)
    for _ in range(3):
        create(api)
    assert wait_until(lambda: events_health(api)["failed"] == 3, PATIENCE), events_health(api)
    # failed entries go after their retention (6 s), and so do delivered ones
    assert wait_until(lambda: events_health(api)["failed"] == 0, PATIENCE), events_health(api)
    assert wait_until(lambda: events_health(api).get("delivered") == 0, PATIENCE), events_health(api)
    for _ in range(2):
        create(api)
    assert wait_until(lambda: events_health(api)["failed"] == 2, PATIENCE), events_health(api)
    assert api.delete(f"{C_HUB}/{refused}").status_code == 204
    assert events_health(api)["failed"] == 0          # at once, not after the retention

    def unhurried(raw: RawListener, conn, index):
        time.sleep(0.5)                     # within the 1 s deadline: its queue drains slowly
        conn.sendall(OK)
    slow = raw_listeners(unhurried)
    hub = register(api, slow.url)
    for _ in range(6):
        create(api)
    assert wait_until(lambda: len(slow.bodies()) >= 1, PATIENCE)
    assert api.delete(f"{C_HUB}/{hub}").status_code == 204
    sent = len(slow.bodies())
    time.sleep(2.0)
    assert len(slow.bodies()) <= sent + 1   # the one in flight when the hub went, at most
    assert sent + 1 < 6


def test_a_hub_deleted_during_its_batch_gets_no_more_than_the_notification_in_flight(
        service, raw_listeners):
    """The batch a dispatcher claimed (every notification pending then) ends
    within a quarter second of its hub's deletion, not at the next lease
    renewal (every 15 s with this lease): before, all 7 arrived."""
    server = service(workers=1, RECO_EVENT_MAX_ATTEMPTS="3", RECO_EVENT_BACKOFF_SECONDS="1.5",
                     RECO_EVENT_CIRCUIT_FAILURES="100", RECO_EVENT_LEASE_SECONDS="60")
    api = Client(server.url)

    def refuse_once_then_slow(raw: RawListener, conn, index):
        if index == 0:
            conn.sendall(b"HTTP/1.1 500 No\r\nContent-Length: 0\r\n\r\n")
            return
        time.sleep(0.5)
        conn.sendall(OK)
    slow = raw_listeners(refuse_once_then_slow)
    hub = register(api, slow.url)
    create(api)
    # (>= 1: on a loaded machine the retry 1.5 s later can come before a poll)
    assert wait_until(lambda: len(slow.bodies()) >= 1, PATIENCE)
    for _ in range(6):       # pending behind the refused one: its retry claims all 7
        create(api)
    assert wait_until(lambda: len(slow.bodies()) >= 3, PATIENCE)
    assert api.delete(f"{C_HUB}/{hub}").status_code == 204
    sent = len(slow.bodies())
    time.sleep(2.5)
    assert len(slow.bodies()) <= sent + 1, (sent, len(slow.bodies()))


# -- background work waits for the first request ---------------------------

def start_without_requests(stopped: ServiceProcess) -> subprocess.Popen:
    """gunicorn on the data (and store) of a stopped server, waited for by
    TCP connect only: no HTTP request reaches the app."""
    port = free_port()
    data_dir = stopped.data_dir
    store = {"RECO_STORE_URL": stopped.env["RECO_STORE_URL"]} if "RECO_STORE_URL" in stopped.env else {}
    environ = {**os.environ, **FAST, **store, "RECO_DATA_DIR": str(data_dir),
               "RECO_RULES_DIR": str(DEMO_RULES), "RECO_CATALOG_DIR": str(DEMO_CATALOG)}
    log = open(data_dir.parent / f"quiet-{port}.log", "ab")
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", str(ROOT / "gunicorn.conf.py"),
         "-b", f"127.0.0.1:{port}", "-w", "2", "wsgi:app"],
        cwd=ROOT, env=environ, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    process.port = port
    return process


def test_delivery_and_jobs_start_with_the_worker_not_its_first_request(make_server, listener):
    first = make_server(workers=1, env={**FAST, "RECO_BACKGROUND_WORKERS": "false"})
    api = Client(first.url)
    register(api, listener.url)
    register(api, listener.url, hub=R_HUB)
    customer_id = create(api)
    query = api.post(R, json={"relatedParty": {"id": customer_id, "role": "customer"}})
    assert query.status_code == 201, query.text
    query_id = query.json()["id"]
    first.stop()
    quiet = start_without_requests(first)
    try:
        created = listener.wait_for(
            lambda e: e["eventType"] == "CustomerCreateEvent", timeout=PATIENCE)
        done = listener.wait_for(
            lambda e: e["eventType"] == "QueryProductRecommendationStateChangeEvent"
            and e["event"]["queryProductRecommendation"]["id"] == query_id
            and e["event"]["queryProductRecommendation"]["state"] == "done", timeout=PATIENCE)
        assert created and done, [e["eventType"] for e in listener.events]
    finally:
        os.killpg(quiet.pid, 15)
        quiet.wait(30)


# -- a done query is evaluated again ---------------------------------------

def test_a_done_query_whose_job_survived_is_not_evaluated_again(make_server, listener):
    first = make_server(workers=1, env={**FAST, "RECO_BACKGROUND_WORKERS": "false"})
    api = Client(first.url)
    register(api, listener.url, hub=R_HUB)
    customer_id = create(api)
    body = {"relatedParty": {"id": customer_id, "role": "customer"}}
    finished, marker = (api.post(R, json=body).json()["id"] for _ in range(2))
    first.stop()
    # the state a kill leaves between writing `done` and deleting the job
    from app.store import open_store
    with open_store(first.store_url) as store:
        store.update("queryProductRecommendation", finished,
                     lambda q: {**q, "state": "done", "recommendationItem": []})
        assert store.get("recommendationJob", finished) is not None
    second = make_server(workers=1, env=FAST, data_dir=first.data_dir)
    api = Client(second.url)

    def state_events(query_id):
        return [e["event"]["queryProductRecommendation"]["state"] for e in listener.events
                if e["event"].get("queryProductRecommendation", {}).get("id") == query_id]
    assert wait_until(lambda: "done" in state_events(marker), PATIENCE)   # the jobs have run
    # its create was acknowledged, so its CreateEvent is sent (before the
    # marker's events: one hub, one ordered queue); nothing of a second run
    assert state_events(finished) == ["accepted"]
    again = api.get(f"{R}/{finished}").json()
    assert again["state"] == "done" and again["recommendationItem"] == []


# -- order after a failed attempt ------------------------------------------

def test_a_retry_holds_back_the_hubs_later_events_so_they_arrive_in_order(
        service, raw_listeners, listener):
    def fail_first(raw: RawListener, conn, index):
        conn.sendall(b"HTTP/1.1 500 Oops\r\nContent-Length: 0\r\n\r\n" if index == 0 else OK)
    server = service(workers=2)
    api = Client(server.url)
    flaky = raw_listeners(fail_first)
    register(api, flaky.url)
    register(api, listener.url)
    ids = [create(api, f"c{n}") for n in range(8)]
    assert listener.wait_for(lambda e: e["event"]["customer"]["id"] == ids[-1], timeout=PATIENCE)
    assert wait_until(lambda: len(flaky.bodies()) >= 9, PATIENCE)
    received = created_ids(flaky.bodies())
    assert received[0] == ids[0]                      # the failed attempt
    assert received[1:] == ids, "a hub's events arrived out of order"
    assert created_ids(listener.events) == ids        # the healthy hub: in order too
    first_id = {b["eventId"] for b in flaky.bodies()[:2]}
    assert len(first_id) == 1                          # the retry carries the same eventId


# -- a listener slower than the deadline -----------------------------------

def test_a_listener_slower_than_the_deadline_gets_its_first_event_a_bounded_number_of_times(
        service, raw_listeners):
    def slow(raw: RawListener, conn, index):
        time.sleep(1.6)                 # the deadline is 1 s
        conn.sendall(OK)
    server = service(workers=2, RECO_EVENT_CIRCUIT_FAILURES="2",
                     RECO_EVENT_CIRCUIT_OPEN_SECONDS="60")
    api = Client(server.url)
    sluggish = raw_listeners(slow)
    register(api, sluggish.url)
    ids = [create(api, f"c{n}") for n in range(4)]
    assert wait_until(lambda: len(sluggish.bodies()) >= 2, PATIENCE)
    time.sleep(3.0)             # time for more copies, and for the later events, if sent
    bodies = sluggish.bodies()
    # two attempts of the first event opened the circuit: nothing else was
    # sent, nothing was given up, every copy carries the same eventId
    assert created_ids(bodies) == [ids[0], ids[0]]
    assert len({b["eventId"] for b in bodies}) == 1
    report = events_health(api)
    assert report["openCircuits"] == 1
    assert report["pending"] == 4 and report["failed"] == 0, report
