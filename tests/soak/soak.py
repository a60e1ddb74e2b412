"""Soak test: several gunicorn workers under mixed load for N minutes, then
checks that nothing was lost.

    .venv/bin/python tests/soak/soak.py                 # 10 minutes, 3 workers
    .venv/bin/python tests/soak/soak.py --minutes 1 --workers 2

Load (all on loopback, each loop bounded by the deadline): instant and
asynchronous TMF680 recommendations, TMF629 customer and TMF637 product
creates, patches and deletes (a bounded ring, so the data set stays the same
size and memory can be compared), list and retrieve reads, hub registrations
coming and going, and rule set reloads (a new version of the rule file every
--reload-every seconds, default 30, written atomically).

Passes (exit 0) when: no answer was a 5xx and no request failed; every
acknowledged write is there (every live customer and product with its last
acknowledged patch, deleted ones gone); every async query reached `done`;
every acknowledged create was notified at least once; no worker was
replaced; and the RSS of every worker grew by less than --max-growth-mb
between the end of the warm-up and the end of the run.

Each new rule set version costs a worker about 0.4 MB that is not given
back (durable-rules keeps every compiled ruleset; app/rules does not delete
them), so frequent reloads show up in the RSS: "ruleVersions" in the report
says how many there were.
"""
from __future__ import annotations

import argparse
import collections
import json
import os
import random
import shutil
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import requests

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE.parent.parent)]

from helpers import DEMO_RULES, ROOT, Listener, ServiceProcess  # noqa: E402

C = "/tmf-api/customerManagement/v4/customer"
P = "/tmf-api/productInventory/v4/product"
R = "/tmf-api/recommendationManagement/v4/queryProductRecommendation"
HUBS = ["/tmf-api/customerManagement/v4/hub", "/tmf-api/productInventory/v4/hub"]
CARTS = [["6547"], ["6550"], ["7001"], [], ["6547", "6542"]]
CHANNELS = ["21", "22", "23", "24"]
RING = 150          # live customers (and products) kept per writer thread
PATCHED = {C: "statusReason", P: "description"}     # the attribute each patch sets


class Run:
    """Shared state of one soak run: counters, expected data, failures."""

    def __init__(self, url: str, deadline: float):
        self.url = url
        self.deadline = deadline
        self.lock = threading.Lock()
        self.statuses: collections.Counter = collections.Counter()
        self.failures: list[str] = []
        self.expected: dict[str, dict[str, str]] = {C: {}, P: {}}   # id -> last statusReason
        self.deleted: dict[str, set] = {C: set(), P: set()}
        self.created: dict[str, set] = {C: set(), P: set()}
        self.async_ids: list[str] = []
        self.rulesets: collections.Counter = collections.Counter()
        self.rule_versions = 0

    def running(self) -> bool:
        return time.time() < self.deadline and len(self.failures) < 50

    def call(self, session, method, path, expect, **kwargs):
        kwargs.setdefault("timeout", 60)
        try:
            response = session.request(method, self.url + path, **kwargs)
        except requests.RequestException as exc:
            self.fail(f"{method} {path}: {type(exc).__name__}: {exc}")
            return None
        with self.lock:
            self.statuses[response.status_code] += 1
        if response.status_code not in expect:
            self.fail(f"{method} {path}: {response.status_code} {response.text[:200]}")
            return None
        return response

    def fail(self, message: str) -> None:
        with self.lock:
            self.failures.append(message)


def party() -> dict:
    return {"id": uuid.uuid4().hex, "@referredType": "Individual"}


def writer(run: Run, path: str, seed: int) -> None:
    """Creates, patches and deletes, keeping a ring of RING live resources."""
    rng = random.Random(seed)
    session = requests.Session()
    mine: collections.deque = collections.deque()
    counter = 0
    while run.running():
        counter += 1
        action = rng.random()
        if action < 0.4 or len(mine) < 10:
            body = ({"name": f"soak-{counter}", "engagedParty": party(),
                     "characteristic": [{"name": "segment",
                                         "value": rng.choice(["premium", "standard"])}]}
                    if path == C else
                    {"name": f"soak-{counter}", "status": "active",
                     "productOffering": {"id": rng.choice(["7001", "7002", "7101"])}})
            response = run.call(session, "POST", path, (201,), json=body)
            if response is not None:
                rid = response.json()["id"]
                mine.append(rid)
                with run.lock:
                    run.created[path].add(rid)
                    run.expected[path][rid] = None
        elif action < 0.85:
            rid = rng.choice(mine)
            reason = f"patch-{counter}"
            response = run.call(session, "PATCH", f"{path}/{rid}", (200,),
                                headers={"Content-Type": "application/merge-patch+json"},
                                data=json.dumps({PATCHED[path]: reason}))
            if response is not None:
                with run.lock:
                    run.expected[path][rid] = reason
        if len(mine) > RING:
            rid = mine.popleft()
            if run.call(session, "DELETE", f"{path}/{rid}", (204,)) is not None:
                with run.lock:
                    run.expected[path].pop(rid, None)
                    run.deleted[path].add(rid)


def recommender(run: Run, seed: int, asynchronous: bool) -> None:
    rng = random.Random(seed)
    session = requests.Session()
    while run.running():
        body = {"instantSyncRecommendation": not asynchronous,
                "channel": [{"id": rng.choice(CHANNELS)}],
                "validFor": {"startDateTime": rng.choice(["2026-10-01T12:00:00Z",
                                                          "2026-12-01T12:00:00Z"])},
                "shoppingCart": [{"id": "c", "@type": "ShoppingCart", "cartItem": [
                    {"id": str(n), "quantity": 1, "productOffering": {"id": offering}}
                    for n, offering in enumerate(rng.choice(CARTS))]}]}
        response = run.call(session, "POST", R, (201,) if asynchronous else (200,), json=body)
        if response is None:
            continue
        if asynchronous:
            with run.lock:
                run.async_ids.append(response.json()["id"])
            time.sleep(0.5)
        else:
            with run.lock:
                run.rulesets[response.headers.get("X-Ruleset")] += 1


def reader(run: Run, seed: int) -> None:
    rng = random.Random(seed)
    session = requests.Session()
    while run.running():
        path = rng.choice([C, P, R])
        run.call(session, "GET", path, (200, 206),
                 params={"limit": 20, "offset": rng.randrange(0, 100), "fields": "id,name"})
        with run.lock:
            known = list(run.expected[C])
        if known:
            run.call(session, "GET", f"{C}/{rng.choice(known)}", (200, 404))
        time.sleep(0.05)


def hub_churn(run: Run, listener_url: str) -> None:
    session = requests.Session()
    while run.running():
        for hub in HUBS:
            response = run.call(session, "POST", hub, (201,), json={
                "callback": listener_url, "query": "eventType=NoSuchEvent"})
            if response is None:
                continue
            hub_id = response.json()["id"]
            run.call(session, "GET", f"{hub}/{hub_id}", (200,))
            run.call(session, "DELETE", f"{hub}/{hub_id}", (204,))
            run.call(session, "GET", f"{hub}/{hub_id}", (404,))
        time.sleep(0.5)


def rule_reloads(run: Run, rules_dir: Path, every: float) -> None:
    """A new version of the rule file every `every` seconds, atomically."""
    demo = (DEMO_RULES / "telco-demo.yaml").read_text()
    target = rules_dir / "telco-demo.yaml"
    n = 0
    due = time.time() + every
    while run.running():
        time.sleep(min(1.0, max(0.0, due - time.time())))
        if time.time() < due:
            continue
        due += every
        n += 1
        run.rule_versions = n
        text = demo.replace('version: "1.0.0"', f'version: "1.{n}.0"')
        tmp = target.with_name(f".telco-demo.{n}.tmp")
        tmp.write_text(text)
        os.replace(tmp, target)


def _cmdline(pid: str) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def worker_pids(master: int) -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == master \
                    and b"app.events\x00dispatch" not in _cmdline(entry):   # no worker
                pids.append(int(entry))
    return sorted(pids)


def rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def sampler(run: Run, master: int, samples: dict, every: float) -> None:
    while run.running():
        now = time.time()
        for pid in worker_pids(master):
            value = rss_mb(pid)
            if value is not None:
                samples.setdefault(pid, []).append((now, value))
        time.sleep(every)


def all_of(session, url: str, path: str) -> list[dict]:
    found, offset = [], 0
    while True:
        response = session.get(url + path, params={"limit": 1000, "offset": offset,
                                                   "fields": f"id,{PATCHED[path]}"}, timeout=60)
        response.raise_for_status()
        page = response.json()
        if not page:
            return found
        found.extend(page)
        offset += len(page)


def verify(run: Run, listener: Listener, report: dict) -> list[str]:
    problems = []
    session = requests.Session()
    for path in (C, P):
        stored = {r["id"]: r.get(PATCHED[path]) for r in all_of(session, run.url, path)}
        lost = [rid for rid in run.expected[path] if rid not in stored]
        stale = [rid for rid, reason in run.expected[path].items()
                 if reason is not None and stored.get(rid) != reason]
        back = [rid for rid in run.deleted[path] if rid in stored]
        report[f"{path.rsplit('/', 1)[1]}s"] = {"created": len(run.created[path]),
                                                 "live": len(run.expected[path]),
                                                 "deleted": len(run.deleted[path])}
        if lost or stale or back:
            problems.append(f"{path}: {len(lost)} lost, {len(stale)} lost patches, "
                            f"{len(back)} deleted but back")
    deadline = time.time() + 120
    pending = list(run.async_ids)
    while pending and time.time() < deadline:
        state = session.get(f"{run.url}{R}/{pending[0]}", params={"fields": "state"},
                            timeout=60).json().get("state")
        if state == "done":
            pending.pop(0)
        elif state == "terminatedWithError":
            problems.append(f"async query {pending.pop(0)} terminatedWithError")
        else:
            time.sleep(0.5)
    report["asyncQueries"] = len(run.async_ids)
    if pending:
        problems.append(f"{len(pending)} async queries not done 120 s after the load")
    wanted = run.created[C] | run.created[P]
    deadline = time.time() + 180
    while time.time() < deadline:
        notified = {e["event"].get("customer", e["event"].get("product", {})).get("id")
                    for e in list(listener.events) if e["eventType"].endswith("CreateEvent")}
        if wanted <= notified:
            break
        time.sleep(1)
    missing = wanted - notified
    report["events"] = {"received": len(listener.events),
                        "distinct": len({e["eventId"] for e in list(listener.events)})}
    if missing:
        problems.append(f"{len(missing)} acknowledged creates never notified")
    return problems


def memory_verdict(samples: dict, warm_until: float, max_growth_mb: float, report: dict) -> list[str]:
    problems = []
    workers = {}
    for pid, series in samples.items():
        after = [value for at, value in series if at >= warm_until]
        if len(after) < 2:
            continue
        head = sorted(after[: max(1, len(after) // 5)])
        tail = sorted(after[-max(1, len(after) // 5):])
        start, end = head[len(head) // 2], tail[len(tail) // 2]
        workers[pid] = {"startMB": round(start, 1), "endMB": round(end, 1),
                        "maxMB": round(max(after), 1)}
        if end - start > max_growth_mb:
            problems.append(f"worker {pid}: RSS {start:.0f} -> {end:.0f} MB")
    report["rss"] = workers
    return problems


def soak(minutes: float, workers: int, max_growth_mb: float, reload_every: float,
         keep: bool = False) -> tuple[bool, dict]:
    base = Path(tempfile.mkdtemp(prefix="reco-soak-"))
    rules_dir = base / "rules"
    shutil.copytree(DEMO_RULES, rules_dir)
    listener = Listener()
    service = ServiceProcess(base / "data", workers=workers, rules_dir=rules_dir,
                             env={"RECO_THREADS": "4", "RECO_EVENT_BACKOFF_SECONDS": "0.5"})
    service.start()
    started = time.time()
    run = Run(service.url, started + minutes * 60)
    report: dict = {"minutes": minutes, "workers": workers, "url": service.url,
                    "dataDir": str(base)}
    try:
        session = requests.Session()
        for hub in HUBS + ["/tmf-api/recommendationManagement/v4/hub"]:
            assert session.post(service.url + hub, json={"callback": listener.url},
                                timeout=30).status_code == 201
        master = service.process.pid
        first_workers = worker_pids(master)
        samples: dict = {}
        threads = [threading.Thread(target=sampler, args=(run, master, samples, 5.0)),
                   threading.Thread(target=writer, args=(run, C, 1)),
                   threading.Thread(target=writer, args=(run, C, 2)),
                   threading.Thread(target=writer, args=(run, P, 3)),
                   threading.Thread(target=recommender, args=(run, 4, False)),
                   threading.Thread(target=recommender, args=(run, 5, False)),
                   threading.Thread(target=recommender, args=(run, 6, True)),
                   threading.Thread(target=reader, args=(run, 7)),
                   threading.Thread(target=hub_churn, args=(run, listener.url)),
                   threading.Thread(target=rule_reloads, args=(run, rules_dir, reload_every))]
        for thread in threads:
            thread.start()
        while any(thread.is_alive() for thread in threads):
            time.sleep(10)
            with run.lock:
                done = sum(run.statuses.values())
            print(f"soak: {time.time() - started:5.0f} s, {done} requests, "
                  f"{len(run.failures)} failures", file=sys.stderr, flush=True)
        for thread in threads:
            thread.join()
        print("soak: load done, checking", file=sys.stderr, flush=True)
        report["requests"] = dict(sorted(run.statuses.items()))
        report["ruleVersions"] = run.rule_versions
        report["rulesetsServed"] = dict(run.rulesets)
        problems = list(run.failures[:20])
        if any(status >= 500 for status in run.statuses):
            problems.append("5xx answers: " + str({s: n for s, n in run.statuses.items() if s >= 500}))
        replaced = set(first_workers) ^ set(worker_pids(master))
        if replaced:
            problems.append(f"workers replaced during the run: {sorted(replaced)}")
        warm_until = started + min(60.0, minutes * 60 * 0.2)
        problems += memory_verdict(samples, warm_until, max_growth_mb, report)
        problems += verify(run, listener, report)
        health = session.get(service.url + "/health", timeout=30).json()
        report["health"] = {"status": health["status"], "events": health["events"],
                            "ruleset": health["rules"].get("version")}
        report["problems"] = problems
        return not problems, report
    finally:
        service.stop()
        listener.close()
        if not keep:
            shutil.rmtree(base, ignore_errors=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="load duration (default 10)")
    parser.add_argument("--workers", type=int, default=3, help="gunicorn workers (default 3)")
    parser.add_argument("--max-growth-mb", type=float, default=50.0,
                        help="largest RSS growth of a worker after warm-up (default 50)")
    parser.add_argument("--reload-every", type=float, default=30.0,
                        help="seconds between rule set versions (default 30)")
    parser.add_argument("--keep", action="store_true", help="keep the data and server log")
    args = parser.parse_args(argv)
    ok, report = soak(args.minutes, args.workers, args.max_growth_mb, args.reload_every,
                      args.keep)
    print(json.dumps(report, indent=2))
    print("SOAK PASSED" if ok else "SOAK FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
