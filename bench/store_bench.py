"""Store: TMF629 customer create and TMF680 asynchronous create over HTTP, with 1,000,
10,000 and 100,000 records already stored in the collection written to.

The TinyDB store rewrites (and fsyncs) a collection's whole file on every write, so
the cost of a write grows with the records stored; this measures it honestly: the
collection is filled through the project's store beforehand, one worker serves,
and a client (4 connections) creates for a fixed time or count. An asynchronous
TMF680 create is acknowledged (201) at once and evaluated by the worker's
background thread; its completion (state done) is timed too.
"""
from __future__ import annotations

import json
import random
import shutil
import time
import uuid
from pathlib import Path

from app.store import open_store

from .engine_bench import pct
from .http_bench import CONFIGS, RECO_PATH, log, populate
from .load import run_load
from .server import Server, service_env
from .workload import RULESET_ID, Workload, iso, YEAR_START

CUSTOMER_PATH = "/tmf-api/customerManagement/v4/customer"


def customer_bodies(count: int, seed: int) -> list[dict]:
    rng = random.Random(f"customer-bodies-{seed}")
    return [{"name": f"New customer {i}", "status": "approved",
             "engagedParty": {"id": f"new-party-{i}", "@referredType": "Individual"},
             "characteristic": [{"name": "segment", "value": rng.choice(["mass", "premium", "youth"])},
                                {"name": "tenure", "value": 0}]} for i in range(count)]


def async_bodies(workload: Workload, count: int) -> list[dict]:
    out = []
    for body in workload.bodies[:count]:
        body = dict(body)
        body["instantSyncRecommendation"] = False
        body["name"] = "storefront query"
        out.append(body)
    return out


def stored_customers(count: int, seed: int) -> list[dict]:
    rng = random.Random(f"stored-customers-{seed}")
    docs = []
    for i in range(count):
        cid = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        docs.append({"id": cid, "href": f"http://127.0.0.1{CUSTOMER_PATH}/{cid}", "name": f"Stored customer {i}",
                     "status": "approved", "engagedParty": {"id": f"stored-party-{i}", "@referredType": "Individual"},
                     "characteristic": [{"name": "segment", "value": "mass"}, {"name": "tenure", "value": i % 120}],
                     "@type": "Customer"})
    return docs


def stored_queries(workload: Workload, count: int) -> list[dict]:
    """Done TMF680 queries as the service stores them (request, state, 4 explained items)."""
    rng = random.Random(f"stored-queries-{workload.seed}")
    offerings = workload.catalog.offerings
    docs = []
    for i in range(count):
        qid = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        body = dict(workload.bodies[i % len(workload.bodies)])
        body["instantSyncRecommendation"] = False
        items = []
        for rank in range(1, 5):
            offering = offerings[rng.randrange(len(offerings))]
            items.append({"id": str(rank), "priority": rank, "productOffering": {
                "id": offering["id"], "href": f"http://127.0.0.1/tmf-api/productCatalogManagement/v4/productOffering/"
                                              f"{offering['id']}", "name": offering["name"],
                "@referredType": "ProductOffering"},
                "@type": "ExplainedRecommendationItem", "@baseType": "RecommendationItem",
                "@schemaLocation": "http://127.0.0.1/schemas/ExplainedRecommendationItem.schema.json",
                "explanation": {"ruleIds": [f"B{rng.randrange(1000):05d}"], "ruleSetId": RULESET_ID,
                                "ruleSetVersion": "1.0.0", "rulePriority": rng.randint(1, 100)}})
        docs.append({"id": qid, "href": f"http://127.0.0.1{RECO_PATH}/{qid}", **body, "state": "done",
                     "recommendationItem": items, "@type": "QueryProductRecommendation",
                     "validFor": {"startDateTime": iso(YEAR_START)}})
    return docs


def fill(data: Path, collection: str, docs: list[dict]) -> None:
    """Write a collection file in the TinyDB store's own format (one table named after
    the collection, keyed by id, compact JSON), as the store would after inserting
    the documents one by one; going through Txn.insert costs ~0.5 ms per document,
    a minute for 100,000 records, which the time budget cannot afford. The first
    create of each run reads the file back through the store."""
    data.mkdir(parents=True, exist_ok=True)
    tmp = data / f".{collection}.fill.tmp"
    with open(tmp, "w", encoding="utf-8") as handle:
        json.dump({collection: {doc["id"]: doc for doc in docs}}, handle, separators=(",", ":"))
    tmp.replace(data / f"{collection}.json")


def _write_jsonl(path: Path, docs: list[dict]) -> Path:
    with open(path, "w", encoding="utf-8") as handle:
        for doc in docs:
            handle.write(json.dumps(doc, separators=(",", ":")) + "\n")
    return path


def store_run(workload: Workload, api: str, stored: int, *, n_rules: int, max_requests: int, max_seconds: float,
              completion_timeout: float) -> dict:
    workers, server_cpus, client_cpus, connections = CONFIGS["1 worker, pinned"]
    data = workload.root / "runs" / f"store-{api}-{stored}"
    if data.exists():
        shutil.rmtree(data)
    collection = "customer" if api == "TMF629 create" else "queryProductRecommendation"
    t0 = time.perf_counter()
    docs = stored_customers(stored, workload.seed) if collection == "customer" else stored_queries(workload, stored)
    if collection == "customer":
        fill(data, "customer", docs)                    # exactly `stored` customers
    else:                                               # the parties the evaluations read, and the queries
        populate(data, {"customer": workload.parties.customers, "product": workload.parties.products})
        fill(data, collection, docs)
    fill_s = time.perf_counter() - t0
    file_bytes = (data / f"{collection}.json").stat().st_size
    del docs
    bodies = workload.root / f"bodies-{'customer' if collection == 'customer' else 'async'}.jsonl"
    if not bodies.exists():
        _write_jsonl(bodies, customer_bodies(500, workload.seed) if collection == "customer"
                     else async_bodies(workload, 500))
    env = service_env(data, workload.rules_dir(n_rules), workload.catalog_dir, RULESET_ID)
    server = Server("wsgi:app", workload.root, workers=1, cpus=server_cpus, env=env,
                    name=f"store-{collection}-{stored}").start(timeout=600)
    url = server.url + (CUSTOMER_PATH if collection == "customer" else RECO_PATH)
    try:
        # one create first: loads the collection into the worker's cache (not measured)
        run_load(url, bodies, client="python", connections=1, count=1, cpus=client_cpus)
        if collection != "customer":
            _wait_jobs(data, completion_timeout)
        offset = server.log_offset()
        began = time.time()
        result = run_load(url, bodies, client="python", connections=connections, count=max_requests,
                          duration=max_seconds, cpus=client_cpus, offset=1)
        acknowledged = time.time()
        entries = [e for e in server.access_entries(offset) if e[3] == "POST"]
        row = {"api": api, "stored": stored, "collection": collection, "fileMiB": round(file_bytes / 2**20, 1),
               "fill_s": round(fill_s, 1), "requests": result["requests"], "seconds": result["seconds"],
               "rps": result["rps"], "p50_ms": result["p50_ms"], "p99_ms": result["p99_ms"],
               "errors": result["errors"],
               "serverP50_ms": round(pct([e[2] for e in entries], 50) / 1000, 2),
               "statuses": sorted({e[1] for e in entries})}
        if collection != "customer":
            remaining = _wait_jobs(data, completion_timeout)
            done_at = time.time()
            completed = result["requests"] - remaining
            row.update({"completed": completed, "pendingAtTimeout": remaining,
                        "completion_s": round(done_at - began, 2),
                        "completedPerSecond": round(completed / (done_at - began), 2) if done_at > began else None,
                        "drain_s": round(done_at - acknowledged, 2)})
        row["rss_kib"] = server.worker_rss_kib()
        return row
    finally:
        server.stop()
        shutil.rmtree(data, ignore_errors=True)


def _wait_jobs(data: Path, timeout: float) -> int:
    """Pending asynchronous evaluations (recommendationJob records) once they are all
    done, or when `timeout` runs out."""
    store = open_store(str(data))
    try:
        deadline = time.time() + timeout
        while True:
            pending = store.count("recommendationJob")
            if pending == 0 or time.time() >= deadline:
                return pending
            time.sleep(0.2)
    finally:
        store.close()


def store_matrix(workload: Workload, sizes: list[int], *, n_rules: int, max_requests: int, max_seconds: float,
                 completion_timeout: float) -> list[dict]:
    rows = []
    for stored in sizes:
        for api in ("TMF629 create", "TMF680 async create"):
            log(f"store: {api} with {stored} stored records")
            row = store_run(workload, api, stored, n_rules=n_rules, max_requests=max_requests,
                            max_seconds=max_seconds, completion_timeout=completion_timeout)
            rows.append(row)
            extra = (f", completed {row['completed']} in {row['completion_s']} s" if "completed" in row else "")
            log(f"  {row['rps']} creates/s, p50 {row['p50_ms']} ms, p99 {row['p99_ms']} ms, "
                f"file {row['fileMiB']} MiB{extra}")
    return rows
