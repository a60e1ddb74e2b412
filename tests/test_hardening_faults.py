"""Faults: the service killed (SIGKILL) mid-write, mid-delivery and
mid-reload; listeners that hang, fail or refuse connections; a rules
directory that changes under the service or holds a broken version; a
corrupt store file. Nothing acknowledged is lost, every pending event is
delivered at least once, the API keeps its latency, and the last good rule
set keeps serving while /health names the problem.

tests/store/test_durability.py has the plain "killed mid-write" case; the store's
own crash tests are in tests/store/.
"""
from __future__ import annotations

import json
import random
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from helpers import (DEMO_CATALOG, DEMO_RULES, PATIENCE, ROOT, Client, Listener, assert_tmf_error,
                     free_port, wait_until)

C = Client.CUSTOMER + "/customer"
HUB = Client.CUSTOMER + "/hub"
R = Client.RECOMMENDATION + "/queryProductRecommendation"
INSTANT = {"instantSyncRecommendation": True, "channel": [{"id": "21"}],
           "validFor": {"startDateTime": "2026-10-01T12:00:00Z"},
           "shoppingCart": [{"id": "c1", "@type": "ShoppingCart", "cartItem": [
               {"id": "1", "quantity": 1, "productOffering": {"id": "6547"}}]}]}


def customer() -> dict:
    return {"name": f"f-{uuid.uuid4().hex[:8]}",
            "engagedParty": {"id": uuid.uuid4().hex, "@referredType": "Individual"}}


# -- SIGKILL --------------------------------------------------------------

def test_sigkill_during_writes_and_delivery_loses_no_record_and_no_event(make_server, tmp_path):
    """Three rounds: writers and event delivery under way, the whole server
    SIGKILLed at a random moment, restarted on the same data. Every
    acknowledged create is stored, and its CustomerCreateEvent reaches the
    listener at least once (repeats share the eventId)."""
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    data_dir = tmp_path / "crash-data"
    listener = Listener()
    acknowledged: list[str] = []
    try:
        for round_number in range(3):
            service = make_server(data_dir=data_dir, workers=2)
            if round_number == 0:
                assert Client(service.url).post(HUB, json={"callback": listener.url}).status_code == 201
            stop = threading.Event()

            def writer():
                session = requests.Session()
                while not stop.is_set():
                    try:
                        response = session.post(service.url + C, json=customer(), timeout=5)
                    except requests.RequestException:
                        return
                    if response.status_code == 201:
                        acknowledged.append(response.json()["id"])

            threads = [threading.Thread(target=writer) for _ in range(3)]
            for thread in threads:
                thread.start()
            time.sleep(rng.uniform(0.4, 1.2))
            service.kill()
            stop.set()
            for thread in threads:
                thread.join()
        survivor = make_server(data_dir=data_dir)
        api = Client(survivor.url)
        assert api.get("/health").json()["store"]["ok"] is True
        stored = {c["id"] for c in api.get(C, params={"limit": 1000, "fields": "id"}).json()}
        assert set(acknowledged) <= stored, f"seed={seed}: acknowledged records lost"

        def delivered():
            ids = {e["event"]["customer"]["id"] for e in list(listener.events)
                   if e["eventType"] == "CustomerCreateEvent"}
            return set(acknowledged) <= ids
        # within the delivery lease (34 s: the 30 s attempt deadline of
        # helpers.ServiceProcess and its margins) of the killed workers:
        # entries they held are taken over once their processes are gone
        assert wait_until(delivered, timeout=25), (
            f"seed={seed}: {len(set(acknowledged) - {e['event']['customer']['id'] for e in listener.events})}"
            f" of {len(acknowledged)} acknowledged creates never notified; "
            f"health {api.get('/health').json()['events']}")
        assert len(acknowledged) > 10
        by_id: dict[str, set] = {}
        for event in listener.events:   # a repeat is the same event, not a new one
            by_id.setdefault(event["eventId"], set()).add(json.dumps(event, sort_keys=True))
        assert all(len(versions) == 1 for versions in by_id.values())
    finally:
        listener.close()


ACTIVATE_LOOP = """
import sys
sys.path.insert(0, {root!r})
from pathlib import Path
from app.rules import RuleService
service = RuleService(Path({rules!r}), Path({catalog!r}), Path({state!r}))
n = 0
while True:
    version = ("1.0.0", "1.1.0", None)[n % 3]
    service.activate("telco-demo", version)
    print(version, flush=True)
    n += 1
"""


def test_sigkill_during_rule_activation_leaves_a_valid_pointer(tmp_path):
    """A process pinning versions in a loop is SIGKILLed at random moments:
    the pointer file is always complete JSON naming a version that exists,
    and a new RuleService serves a valid version."""
    from app.rules import RuleService
    rules_dir, state_dir = tmp_path / "rules", tmp_path / "state"
    (rules_dir / "versions").mkdir(parents=True)
    demo = (DEMO_RULES / "telco-demo.yaml").read_text()
    (rules_dir / "versions" / "telco-demo@1.0.0.yaml").write_text(demo)
    (rules_dir / "telco-demo.yaml").write_text(demo.replace('version: "1.0.0"', 'version: "1.1.0"'))
    rng = random.Random()
    code = ACTIVATE_LOOP.format(root=str(ROOT), rules=str(rules_dir),
                                catalog=str(DEMO_CATALOG), state=str(state_dir))
    for _ in range(4):
        child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, cwd=ROOT)
        assert child.stdout.readline()
        time.sleep(rng.uniform(0.0, 0.3))
        child.send_signal(signal.SIGKILL)
        child.wait()
        child.stdout.close()
        pointer = state_dir / "active-rulesets.json"
        if pointer.exists():
            pinned = json.loads(pointer.read_text())["rulesets"].get("telco-demo")
            assert pinned is None or pinned["version"] in ("1.0.0", "1.1.0"), pinned
        status = RuleService(rules_dir, DEMO_CATALOG, state_dir).status()
        assert status["ok"] and status["version"] in ("1.0.0", "1.1.0"), status


# -- listeners that misbehave ---------------------------------------------

class _Misbehaving(BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802
        length = int(self.headers.get("Content-Length", 0))
        body = json.loads(self.rfile.read(length))
        self.server.hits.append((time.monotonic(), body))
        if self.server.mode == "hang":
            self.server.release.wait(30)
            return
        self.send_response(500 if self.server.mode == "fail" else 201)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def misbehaving(mode: str) -> ThreadingHTTPServer:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Misbehaving)
    server.daemon_threads = True
    server.mode, server.hits, server.release = mode, [], threading.Event()
    server.url = f"http://127.0.0.1:{server.server_address[1]}/listener"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def closed_port_url() -> str:
    return f"http://127.0.0.1:{free_port()}/listener"   # nothing listens there


def registered(api: Client, callback: str) -> dict:
    answer = api.post(HUB, json={"callback": callback})
    assert answer.status_code == 201, answer.text
    return answer.json()


def median_create_latency(api: Client, n: int = 25) -> float:
    timings = []
    for _ in range(n):
        started = time.perf_counter()
        assert api.post(C, json=customer()).status_code == 201
        timings.append(time.perf_counter() - started)
    return statistics.median(timings)


def test_bad_listeners_do_not_slow_the_api_and_retries_stop(make_server):
    """Side by side with a healthy listener: a hanging one, one answering 500
    and a closed port do not hold up the API: its median latency stays well
    under the 2 s a delivery to the hanging one waits (a ratio to the baseline,
    < 2x + 50 ms, failed when the load of a shared machine changed between the
    two series; the API's speed is measured in bench/);
    each failing delivery is retried with growing delays, stops after
    RECO_EVENT_MAX_ATTEMPTS, and the hubs stay registered."""
    attempts = 4
    service = make_server(env={"RECO_EVENT_MAX_ATTEMPTS": str(attempts),
                               "RECO_EVENT_BACKOFF_SECONDS": "1",
                               "RECO_EVENT_TIMEOUT_SECONDS": "2"})
    api = Client(service.url)
    healthy, hanging, failing = misbehaving("ok"), misbehaving("hang"), misbehaving("fail")
    try:
        hub = api.post(HUB, json={"callback": healthy.url}).json()
        median_create_latency(api, 5)                          # warm up
        baseline = median_create_latency(api)
        api.delete(f"{HUB}/{hub['id']}")
        bad_hubs = [registered(api, url) for url in (hanging.url, failing.url, closed_port_url())]
        with_bad = median_create_latency(api)
        assert with_bad < baseline + 1.0, (baseline, with_bad)

        # one event per bad hub from here on, to watch its retries
        for hub in bad_hubs:
            api.delete(f"{HUB}/{hub['id']}")
        failing.hits.clear()
        hubs = [registered(api, url) for url in (hanging.url, failing.url, closed_port_url())]
        created = api.post(C, json=customer()).json()
        mine = lambda server: [t for t, e in server.hits  # noqa: E731
                               if e["event"]["customer"]["id"] == created["id"]]
        assert wait_until(lambda: len(mine(failing)) >= attempts, timeout=PATIENCE)
        time.sleep(3)                                          # nothing after the bound
        times = mine(failing)
        assert len(times) == attempts, times
        gaps = [b - a for a, b in zip(times, times[1:])]
        # 1 s, 2 s, 4 s (+ poll): at least these (a load can only lengthen
        # a gap, so a ratio of two gaps failed on a loaded machine)
        assert all(gap >= 0.9 * 2 ** n for n, gap in enumerate(gaps)), gaps
        assert gaps[-1] > gaps[0], gaps
        assert len(mine(hanging)) <= attempts
        events = wait_until(lambda: api.get("/health").json()["events"]["failed"] >= 3 and
                            api.get("/health").json()["events"], timeout=40)
        assert events["failed"] >= 3, events
        for hub in hubs:                                       # the hubs are not lost
            assert api.get(f"{HUB}/{hub['id']}").status_code == 200
        failing.mode = "ok"                                    # and they work again
        again = api.post(C, json=customer()).json()
        assert wait_until(lambda: any(e["event"]["customer"]["id"] == again["id"]
                                      for _, e in failing.hits), timeout=15)
    finally:
        hanging.release.set()
        for server in (healthy, hanging, failing):
            server.shutdown()
            server.server_close()


def test_a_hanging_listener_does_not_hold_up_the_others(make_server):
    """24 notifications for a listener that never answers (30 s read timeout)
    and for a healthy one: the healthy one has all of its 24 while the
    hanging one's first delivery is still waiting, not after the hanging
    deliveries have used up every delivery thread. (Told by the order of
    what the listeners saw, not by a wall-clock bound: "within 8 s" failed
    on a loaded machine.)"""
    service = make_server(env={"RECO_EVENT_TIMEOUT_SECONDS": "30",
                               "RECO_EVENT_LEASE_SECONDS": "40"})
    api = Client(service.url)
    hanging, healthy = misbehaving("hang"), Listener()
    try:
        for url in (hanging.url, healthy.url):
            assert api.post(HUB, json={"callback": url}).status_code == 201
        ids = {api.post(C, json=customer()).json()["id"] for _ in range(24)}
        # within the hanging delivery's 30 s deadline: held up behind it,
        # the healthy one would wait at least that long
        got = wait_until(lambda: ids <= {e["event"]["customer"]["id"] for e in list(healthy.events)},
                         timeout=25)
        assert got, "the healthy listener did not get its 24 notifications"
        # the hanging listener's queue is still at its first attempt (a
        # retry would come only after its 30 s deadline)
        assert len(hanging.hits) <= 1, [e["event"]["customer"]["id"] for _, e in hanging.hits]
    finally:
        hanging.release.set()
        for server in (hanging,):
            server.shutdown()
            server.server_close()
        healthy.close()


# -- the rules directory --------------------------------------------------

@pytest.fixture
def rules_copy(tmp_path):
    rules_dir = tmp_path / "rules"
    shutil.copytree(DEMO_RULES, rules_dir)
    return rules_dir


def instant(api: Client) -> requests.Response:
    return api.post(R, json=INSTANT)


@pytest.mark.backends("tinydb", reason="rule files on disk; no activation, the store plays no part")
def test_invalid_rule_versions_keep_the_last_good_one_serving(make_server, rules_copy, tmp_path):
    """Broken files of every kind appear as a newer version: recommendations
    keep coming from 1.0.0 (never a 500 or 503) and /health names each
    problem; when a good 2.0.0 arrives it serves."""
    service = make_server(rules_dir=rules_copy)
    api = Client(service.url)
    first = instant(api)
    assert first.status_code == 200 and first.headers["X-Ruleset"] == "telco-demo@1.0.0"
    demo = (DEMO_RULES / "telco-demo.yaml").read_text()
    v2 = demo.replace('version: "1.0.0"', 'version: "2.0.0"')
    marker = tmp_path / "pwned"
    broken = {
        "syntax": v2.replace("rules:\n", "rules:\n  - [unclosed\n", 1),
        "unknown offering": v2.replace('{offering: "6542", priority: 20}',
                                       '{offering: "9999", priority: 20}'),
        "exec tag": v2.replace("owner: product-management",
                               f'owner: !!python/object/apply:os.system ["touch {marker}"]'),
        "half written": v2[: len(v2) // 2],
        "deeply nested": 'id: telco-demo\nversion: "2.0.0"\nrules: ' + "[" * 5000 + "]" * 5000,
        "huge integer": v2.replace("limit: 4", "limit: " + "9" * 5000),
    }
    target = rules_copy / "versions" / "telco-demo@2.0.0.yaml"
    target.parent.mkdir(exist_ok=True)
    for name, text in broken.items():
        target.write_text(text)
        for _ in range(3):
            response = instant(api)
            assert response.status_code == 200, (name, response.text)
            assert response.headers["X-Ruleset"] == "telco-demo@1.0.0", name
        rules = api.get("/health").json()["rules"]
        assert rules["ok"] and rules["version"] == "1.0.0", (name, rules)
        assert any("telco-demo@2.0.0.yaml" in error or "reload failed" in error
                   for error in rules["errors"]), (name, rules["errors"])
    assert not marker.exists()
    target.write_text(v2)
    assert wait_until(lambda: instant(api).headers.get("X-Ruleset") == "telco-demo@2.0.0", PATIENCE)
    assert api.get("/health").json()["rules"]["errors"] == []


@pytest.mark.backends("tinydb", reason="rule files on disk; no activation, the store plays no part")
def test_rules_rewritten_while_requests_run(make_server, rules_copy):
    """A writer rewrites the rule file in place, slowly and non-atomically
    (truncate, then a few bytes at a time), flipping between versions while
    two workers answer: every answer is a 200 from a complete version, and
    after the last write that version serves."""
    service = make_server(rules_dir=rules_copy, workers=2)
    demo = (DEMO_RULES / "telco-demo.yaml").read_text()
    versions = [demo.replace('version: "1.0.0"', f'version: "1.{n}.0"') for n in range(1, 4)]
    target = rules_copy / "telco-demo.yaml"
    stop = threading.Event()
    seen, failures = set(), []

    def reader():
        session = requests.Session()
        while not stop.is_set():
            response = session.post(service.url + R, json=INSTANT, timeout=30)
            if response.status_code != 200:
                failures.append(response.text[:300])
            else:
                seen.add(response.headers["X-Ruleset"])

    readers = [threading.Thread(target=reader) for _ in range(3)]
    for thread in readers:
        thread.start()
    try:
        for n in range(9):
            text = versions[n % 3]
            with open(target, "w") as handle:
                for start in range(0, len(text), 512):
                    handle.write(text[start:start + 512])
                    handle.flush()
                    time.sleep(0.01)
    finally:
        stop.set()
        for thread in readers:
            thread.join()
    assert not failures, failures[:3]
    assert seen <= {"telco-demo@1.0.0", "telco-demo@1.1.0", "telco-demo@1.2.0", "telco-demo@1.3.0"}
    api = Client(service.url)
    assert wait_until(lambda: instant(api).headers.get("X-Ruleset") == "telco-demo@1.3.0", PATIENCE)


@pytest.mark.backends("tinydb", reason="rule files on disk; no activation, the store plays no part")
def test_rule_file_briefly_missing_keeps_serving(make_server, rules_copy):
    """A deploy that removes and re-creates the file (rm; cp) does not take
    recommendations down in between."""
    service = make_server(rules_dir=rules_copy, env={"RECO_RULESET": "telco-demo"})
    api = Client(service.url)
    assert instant(api).status_code == 200
    target = rules_copy / "telco-demo.yaml"
    saved = target.read_text()
    target.unlink()
    try:
        response = instant(api)
        assert response.status_code == 200, response.text
        assert api.get("/health").json()["rules"]["errors"], "the missing file is not reported"
    finally:
        target.write_text(saved)
    assert instant(api).status_code == 200


# -- a corrupt store ------------------------------------------------------

@pytest.mark.backends("tinydb", reason="a corrupt TinyDB file; PostgreSQL has no such file")
def test_a_corrupt_collection_file_is_a_500_tmf_error_and_health_says_so(make_server, tmp_path):
    data_dir = tmp_path / "corrupt-data"
    service = make_server(data_dir=data_dir)
    api = Client(service.url)
    assert api.post(C, json=customer()).status_code == 201
    (data_dir / "customer.json").write_text('{"_default": {"1": {"id": "x", "na')
    response = api.get(C)
    body = assert_tmf_error(response, 500)
    assert "Traceback" not in response.text and str(data_dir) not in body["message"]
    assert api.get("/health").json()["store"]["ok"] is False
    assert_tmf_error(api.get("/health/ready"), 503)
    log = service.log_path.read_text()
    assert "Traceback" in log          # the details are in the log, for the operator
