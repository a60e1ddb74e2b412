"""Production data plane on PostgreSQL, end to end: two hosts on one database,
an unreachable database, a database restart under load, the schema check,
and rule activation across hosts (several hosts share one database)."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg
import pytest

from helpers import DEMO_RULES, PATIENCE, ROOT, Client, Listener, assert_tmf_error, wait_until
from pgcluster import NoPostgres, PgCluster

C = Client.CUSTOMER
pytestmark = pytest.mark.backends("postgresql", reason="PostgreSQL deployment: its own clusters, "
                                  "hosts sharing one database, SQL faults")


def customer_body(name: str) -> dict:
    return {"name": name, "engagedParty": {"id": f"party-{name}", "@referredType": "Individual"}}


def two_version_rules(tmp_path: Path) -> Path:
    """A rules/ with the tests' demo (tests/demo, not the product managers'
    rules/, which the README tutorial edits) as 1.0.0 and a copy kept as
    0.9.0."""
    rules = tmp_path / "rules"
    shutil.copytree(DEMO_RULES, rules)
    text = (rules / "telco-demo.yaml").read_text()
    older = text.replace('version: "1.0.0"', 'version: "0.9.0"')
    assert older != text, "the demo rule set is no longer version 1.0.0"
    (rules / "versions").mkdir(exist_ok=True)
    (rules / "versions" / "telco-demo@0.9.0.yaml").write_text(older)
    return rules


def flask_cli(env: dict, *args: str, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "flask", "--app", "wsgi", *args], cwd=ROOT,
                            env={**os.environ, **env}, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, **kwargs)


def rules_version(client: Client) -> str | None:
    return client.get("/health").json()["rules"]["version"]


@pytest.fixture
def own_cluster(tmp_path):
    """A cluster of the test's own, for tests that stop or restart it."""
    try:
        cluster = PgCluster(tmp_path / "own-pg").start()
    except NoPostgres as exc:
        pytest.skip(f"PostgreSQL tests need its binaries: {exc}")
    yield cluster
    cluster.destroy()


def test_two_hosts_share_writes_activation_and_events(pg_url, make_server, listener, tmp_path):
    rules = two_version_rules(tmp_path)
    env = {"RECO_STORE_URL": pg_url}
    host_a = Client(make_server(data_dir=tmp_path / "a", env=env, rules_dir=rules).url)
    host_b = Client(make_server(data_dir=tmp_path / "b", env=env, rules_dir=rules).url)

    # a write on one host is read on the other at once
    created = host_a.post(f"{C}/customer", json=customer_body("ann"))
    assert created.status_code == 201, created.text
    seen = host_b.get(f"{C}/customer/{created.json()['id']}")
    assert seen.status_code == 200 and seen.json()["name"] == "ann"
    listed = host_b.get(f"{C}/customer", params={"name": "ann"}).json()
    assert [c["id"] for c in listed] == [created.json()["id"]]

    # each event is delivered once, though both hosts' dispatchers fan out the
    # event records and claim the delivery entries
    hub = host_a.post(f"{C}/hub", json={"callback": listener.url,
                                        "query": "eventType=CustomerCreateEvent"})
    assert hub.status_code == 201, hub.text
    ids = [host_b.post(f"{C}/customer", json=customer_body(f"n{i}")).json()["id"]
           for i in range(6)]
    assert listener.wait_for(lambda e: len(listener.events) >= 6, timeout=PATIENCE)
    time.sleep(3)  # time for a duplicate to arrive
    delivered = [e["event"]["customer"]["id"] for e in listener.events]
    assert sorted(delivered) == sorted(ids)

    # an activation on host A is served by host B within 5 s
    assert rules_version(host_b) == "1.0.0"
    done = flask_cli({**env, "RECO_DATA_DIR": str(tmp_path / "a"), "RECO_RULES_DIR": str(rules)},
                     "rules", "activate", "telco-demo", "0.9.0")
    output = done.communicate(timeout=300)[0]
    assert done.returncode == 0, output
    switched = time.monotonic()
    asked = []          # when each request that saw the new version was sent

    def served_new() -> bool:
        sent = time.monotonic()
        if rules_version(host_b) != "0.9.0":
            return False
        asked.append(sent)
        return True
    # by the send time of the first request it answered with the new version
    # (the time its answer came back added a loaded machine's delays)
    assert wait_until(served_new, timeout=PATIENCE), host_b.get("/health").json()["rules"]
    assert asked[0] - switched <= 5.0, asked[0] - switched


def test_a_host_lacking_the_activated_version_keeps_its_own(pg_url, make_server, tmp_path):
    rules = two_version_rules(tmp_path)
    env = {"RECO_STORE_URL": pg_url}
    make_server(data_dir=tmp_path / "a", env=env, rules_dir=rules)
    lacking = Client(make_server(data_dir=tmp_path / "b", env=env).url)  # demo rules only
    assert rules_version(lacking) == "1.0.0"
    done = flask_cli({**env, "RECO_DATA_DIR": str(tmp_path / "a"), "RECO_RULES_DIR": str(rules)},
                     "rules", "activate", "telco-demo", "0.9.0")
    assert done.wait(300) == 0, done.stdout.read()

    def says_so():
        rules_report = lacking.get("/health").json()["rules"]
        return [e for e in rules_report["errors"] if "0.9.0" in e and "not in" in e]

    assert wait_until(says_so, timeout=PATIENCE), lacking.get("/health").json()
    assert rules_version(lacking) == "1.0.0"
    answer = lacking.post(Client.RECOMMENDATION + "/queryProductRecommendation",
                          json={"instantSyncRecommendation": True})
    assert answer.status_code == 200 and answer.headers["X-Ruleset"] == "telco-demo@1.0.0", \
        (answer.status_code, dict(answer.headers))


def test_concurrent_activations_one_is_superseded(pg_url, make_server, tmp_path):
    """Both commands read the pointer, then wait for its row lock (held here);
    when it is released one wins and the other says it was superseded."""
    rules = two_version_rules(tmp_path)
    env = {"RECO_STORE_URL": pg_url, "RECO_DATA_DIR": str(tmp_path / "d"),
           "RECO_RULES_DIR": str(rules)}
    # unpinned (the pointer row exists): activating either version is a change
    # (activating the version already pinned does nothing and takes no lock)
    first = flask_cli(env, "rules", "activate", "telco-demo", "--latest")
    assert first.wait(300) == 0, first.stdout.read()
    with psycopg.connect(pg_url) as conn:
        conn.execute("SELECT 1 FROM documents WHERE collection = 'rulesetActivation' FOR UPDATE")
        runs = [flask_cli(env, "rules", "activate", "telco-demo", v) for v in ("0.9.0", "1.0.0")]

        def both_waiting_or_one_ended():
            # this test's database only: the cluster is shared by the tests of
            # one pytest worker, and a command that ended cannot start waiting
            if any(run.poll() is not None for run in runs):
                return True
            with psycopg.connect(pg_url, autocommit=True) as other:
                return other.execute("SELECT count(*) FROM pg_stat_activity WHERE "
                                     "wait_event_type = 'Lock' AND datname = current_database()"
                                     ).fetchone()[0] == 2

        assert wait_until(both_waiting_or_one_ended, timeout=3 * PATIENCE, interval=0.2)
        ended = [run.communicate()[0] for run in runs if run.poll() is not None]
        assert not ended, f"a command ended before the lock was released: {ended}"
    outputs = [run.communicate(timeout=300)[0] for run in runs]
    codes = sorted(run.returncode for run in runs)
    assert codes == [0, 1], outputs
    loser = outputs[[run.returncode for run in runs].index(1)]
    assert "superseded" in loser and "NOT activated" in loser and "Traceback" not in loser


def test_unreachable_database_is_503_then_recovers_by_itself(make_server, tmp_path, own_cluster):
    cluster = own_cluster
    url = cluster.new_database()
    api = Client(make_server(data_dir=tmp_path / "d",
                             env={"RECO_STORE_URL": url,
                                  "RECO_STORE_TIMEOUT_SECONDS": "2"}).url)
    assert api.post(f"{C}/customer", json=customer_body("before")).status_code == 201
    cluster.stop()

    started = time.monotonic()
    ready = api.get("/health/ready")
    body = assert_tmf_error(ready, 503)
    assert body["details"]["store"]["ok"] is False
    assert "PostgreSQL" in body["details"]["store"]["errors"]["_store"]
    assert body["message"].startswith("Not ready: store: PostgreSQL")
    write = api.post(f"{C}/customer", json=customer_body("during"))
    body = assert_tmf_error(write, 503)
    assert body["code"] == "STORE_UNAVAILABLE"   # the one 503 of both stores (app/errors.py)
    # the kind in plain words; the address and the driver's text are only logged
    # (on a loaded machine the pool's wait of RECO_STORE_TIMEOUT_SECONDS can
    # end before the refused connection is seen: the other plain-words kind)
    assert body["message"].startswith(("Storage unavailable (database ",
                                       "Storage unavailable (no database connection in time)"))
    assert "PostgreSQL at" not in body["message"]
    assert_tmf_error(api.get(f"{C}/customer"), 503)
    assert time.monotonic() - started < 20  # bounded: no hang

    cluster.start()
    assert wait_until(lambda: api.get("/health/ready").status_code == 200, timeout=60,
                      interval=0.5)
    assert api.post(f"{C}/customer", json=customer_body("after")).status_code == 201
    names = {c["name"] for c in api.get(f"{C}/customer").json()}
    assert names == {"before", "after"}


def test_database_restart_mid_load_loses_no_acknowledged_write(make_server, tmp_path, own_cluster):
    cluster = own_cluster
    url = cluster.new_database()
    service = make_server(data_dir=tmp_path / "d", workers=2,
                          env={"RECO_STORE_URL": url, "RECO_STORE_TIMEOUT_SECONDS": "2"})
    acknowledged: list[str] = []
    refused: list[int] = []
    stop = threading.Event()

    def load(worker: int):
        client = Client(service.url)
        n = 0
        while not stop.is_set():
            n += 1
            try:
                response = client.post(f"{C}/customer", json=customer_body(f"w{worker}-{n}"),
                                       timeout=15)
            except Exception:  # noqa: BLE001 - a dropped connection is not an ack
                continue
            if response.status_code == 201:
                acknowledged.append(response.json()["id"])
            else:
                assert response.status_code == 503, response.text
                refused.append(response.status_code)

    threads = [threading.Thread(target=load, args=(k,)) for k in range(4)]
    for thread in threads:
        thread.start()
    wait_until(lambda: len(acknowledged) >= 30, timeout=60)
    before = len(acknowledged)
    cluster.restart()  # immediate: no checkpoint, WAL replay
    wait_until(lambda: len(acknowledged) >= before + 30, timeout=60)
    stop.set()
    for thread in threads:
        thread.join(60)
    assert len(acknowledged) >= before + 30
    with psycopg.connect(url) as conn:
        stored = {row[0] for row in conn.execute(
            "SELECT id FROM documents WHERE collection = 'customer'")}
    assert set(acknowledged) <= stored


def test_a_worker_does_not_serve_against_an_unknown_schema(pg_cluster, make_server, tmp_path):
    url = pg_cluster.new_database()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("UPDATE alembic_version SET version_num = 'ffffffffffff'")
    api = Client(make_server(data_dir=tmp_path / "d", env={"RECO_STORE_URL": url}).url)
    body = assert_tmf_error(api.get(f"{C}/customer"), 503)
    # the client hears the kind; the revision is the operator's (/health, the log)
    assert "schema" in body["message"] and "ffffffffffff" not in body["message"]
    ready = assert_tmf_error(api.get("/health/ready"), 503)
    assert "does not know" in ready["details"]["store"]["errors"]["_store"]
    assert "ffffffffffff" in ready["details"]["store"]["errors"]["_store"]

    with psycopg.connect(url, autocommit=True) as conn:  # a database never upgraded
        conn.execute("DROP TABLE alembic_version")
    fresh = Client(make_server(data_dir=tmp_path / "e", env={"RECO_STORE_URL": url}).url)
    body = assert_tmf_error(fresh.get(f"{C}/customer"), 503)
    assert "schema not installed" in body["message"]
    ready = assert_tmf_error(fresh.get("/health/ready"), 503)
    assert "flask store upgrade" in ready["details"]["store"]["errors"]["_store"]


def test_a_change_whose_notification_cannot_be_stored_is_not_made(pg_url, make_server, listener,
                                                                   tmp_path):
    """The change and its event record are one transaction: when the event
    record's insert fails, the client gets a 503 and the customer is not stored."""
    api = Client(make_server(data_dir=tmp_path / "d", env={"RECO_STORE_URL": pg_url}).url)
    assert api.post(f"{C}/hub", json={"callback": listener.url}).status_code == 201
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("""
            CREATE FUNCTION refuse_event() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN RAISE EXCEPTION 'event is refusing writes'; END $$""")
        conn.execute("""
            CREATE TRIGGER refuse_event BEFORE INSERT ON documents FOR EACH ROW
            WHEN (NEW.collection = 'event') EXECUTE FUNCTION refuse_event()""")
    refused = api.post(f"{C}/customer", json=customer_body("unnotified"))
    body = assert_tmf_error(refused, 503)
    assert body["code"] == "EVENT_NOT_RECORDED"
    assert api.get(f"{C}/customer", params={"name": "unnotified"}).json() == []
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("DROP TRIGGER refuse_event ON documents")
    made = api.post(f"{C}/customer", json=customer_body("notified"))
    assert made.status_code == 201
    assert listener.wait_for(lambda e: e["event"]["customer"]["name"] == "notified")
    assert not [e for e in listener.events if e["event"]["customer"]["name"] == "unnotified"]


def test_upgrading_a_database_with_data_records_its_subclass_attributes(pg_cluster):
    """Migration 0002 fills document_attributes from the documents stored
    before it, so a list on an upgraded database still knows a stored
    ResidentialCustomer's loyaltyTier."""
    from app.store import open_store
    from app.store.schema import upgrade

    url = pg_cluster.database_url("upgraded_from_0001")
    pg_cluster.execute("DROP DATABASE IF EXISTS upgraded_from_0001")
    pg_cluster.execute("CREATE DATABASE upgraded_from_0001")
    upgrade(url, "0001")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("INSERT INTO documents (collection, id, doc) VALUES "
                     "('customer', 'c1', '{\"id\": \"c1\", \"@type\": \"Customer\"}'), "
                     "('customer', 'r1', '{\"id\": \"r1\", \"@type\": \"ResidentialCustomer\", "
                     "\"loyaltyTier\": \"gold\"}')")
    upgrade(url)
    store = open_store(url)
    try:
        names = store.attribute_names("customer", lambda declared, _located: declared != "Customer")
        assert names == {"id", "@type", "loyaltyTier"}
    finally:
        store.close()


def test_the_path_index_has_no_pending_list(pg_url):
    """Migration 0003: look-ups by path never scan a GIN pending list, which
    on a large table (autovacuum rare) grew with every write since the last
    vacuum and slowed each look-up (BENCHMARKS.md, "Data plane")."""
    from app.store import open_store

    store = open_store(pg_url)
    try:
        for number in range(50):
            store.insert("product", {"id": f"p{number}", "relatedParty": [{"id": f"c{number}"}]})
    finally:
        store.close()
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS pgstattuple")
        pending = conn.execute("SELECT pending_tuples FROM pgstatginindex('documents_doc_path')")
        assert pending.fetchone()[0] == 0
def test_delivery_claims_skip_rows_locked_by_another_worker(make_server, tmp_path):
    """Claims use FOR UPDATE SKIP LOCKED, so workers on any number
    of hosts share the work without waiting for each other. Here the test
    holds the row lock of one hub's queue document (as a dispatcher does
    while it claims it) for 5 s (a claim that waits would hang until the
    statement timeout); two hosts of two workers each go on delivering the
    other hub's events, no server session waits for a lock, and when the
    lock goes each hub has each event once, in order."""
    fast = {"RECO_EVENT_POLL_SECONDS": "0.1", "RECO_EVENT_BACKOFF_MAX_SECONDS": "0.5"}
    host_a = make_server(data_dir=tmp_path / "a", workers=2, env=fast)
    host_b = make_server(data_dir=tmp_path / "b", workers=2, env=fast, store_of=host_a)
    url = host_a.store_url
    a, b = Client(host_a.url), Client(host_b.url)
    held, free = Listener(), Listener()
    try:
        held_hub = a.post(f"{C}/hub", json={"callback": held.url}).json()["id"]
        assert b.post(f"{C}/hub", json={"callback": free.url}).status_code == 201
        with psycopg.connect(url) as conn:             # one transaction until the block ends
            def lock_held_queue():
                return conn.execute(
                    "SELECT id FROM documents WHERE collection = 'eventQueue' "
                    "AND id = %s FOR UPDATE", (held_hub,)).fetchall()
            assert wait_until(lock_held_queue, timeout=PATIENCE)
            ids = [(a if n % 2 else b).post(f"{C}/customer", json=customer_body(f"n{n}")).json()["id"]
                   for n in range(6)]
            waits = []
            deadline = time.monotonic() + 5
            with psycopg.connect(url, autocommit=True) as watch:
                while time.monotonic() < deadline or len(free.events) < len(ids):
                    waits += watch.execute(
                        "SELECT query FROM pg_stat_activity WHERE application_name = "
                        "'tmf-recommender' AND wait_event_type = 'Lock'").fetchall()
                    time.sleep(0.05)
                    # (the free hub's deliveries polled while the lock is held,
                    # not read after a fixed 5 s: a loaded machine took longer)
                    assert time.monotonic() < deadline + PATIENCE, "the free hub waited"
            delivered = [e["event"]["customer"]["id"] for e in free.events]
            assert delivered == ids, "the free hub waited behind a locked row"
            # no claim waits; the lease holder's renewal of the held hub's own
            # queue row (a look-up by id) may wait for this test's lock on that
            # row, which blocks nothing else (the free hub got every event)
            claims = [w for w in waits if "AND id = $2 FOR UPDATE" not in w[0]]
            assert claims == [], claims
            assert held.events == []
        assert held.wait_for(lambda e: len(held.events) >= len(ids), timeout=PATIENCE)
        time.sleep(2)                                  # time for a duplicate to arrive
        assert [e["event"]["customer"]["id"] for e in held.events] == ids
        assert [e["event"]["customer"]["id"] for e in free.events] == ids
    finally:
        held.close()
        free.close()


def test_first_registrations_and_changes_on_two_hosts_at_once(make_server, tmp_path):
    """A fresh database, two hosts of two workers each, hub registrations and
    changes sent at once from several threads to both: every registration is
    a 201 (the first ones numbered into a log whose head did not yet exist,
    and were answered 409 when another worker numbered too), and every hub
    gets every change sent after its registration was answered."""
    env = {"RECO_STORE_URL": make_server.store_url(tmp_path / "a")}
    with ThreadPoolExecutor(2) as starting:      # the two starts take most of the time
        hosts = list(starting.map(lambda name: make_server(data_dir=tmp_path / name, env=env,
                                                           workers=2), "ab"))
    clients = [Client(host.url) for host in hosts]
    listener = Listener()
    registered: dict[str, float] = {}       # hub's callback -> when its 201 came back
    sent: dict[str, float] = {}             # customer id -> when its POST was sent
    refused: list[str] = []
    start = threading.Barrier(8)

    def register(worker: int) -> None:
        start.wait()
        for n in range(3):
            callback = f"{listener.url}?hub={worker}-{n}"
            answer = clients[(worker + n) % 2].post(f"{C}/hub", json={"callback": callback})
            if answer.status_code != 201:
                refused.append(f"hub: {answer.status_code} {answer.text}")
            registered[callback] = time.monotonic()

    def create(worker: int) -> None:
        start.wait()
        for n in range(4):
            at = time.monotonic()
            answer = clients[(worker + n) % 2].post(f"{C}/customer",
                                                    json=customer_body(f"w{worker}-{n}"))
            if answer.status_code != 201:
                refused.append(f"customer: {answer.status_code} {answer.text}")
                continue
            sent[answer.json()["id"]] = at

    threads = [threading.Thread(target=register, args=(w,)) for w in range(4)]
    threads += [threading.Thread(target=create, args=(w,)) for w in range(4)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(PATIENCE)
        assert not refused, refused
        assert len(registered) == 12 and len(sent) == 16
        wanted = {(callback.split("?")[1], customer)
                  for callback, at in registered.items()
                  for customer, sent_at in sent.items() if sent_at > at}

        def got() -> set:
            with listener.condition:
                return {(path.split("?")[1], body["event"]["customer"]["id"])
                        for (body, _status), path in zip(listener.requests, listener.paths)}
        assert wait_until(lambda: wanted <= got(), PATIENCE), sorted(wanted - got())
    finally:
        listener.close()
