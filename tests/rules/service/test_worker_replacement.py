"""A worker whose retired rule versions passed RECO_RULES_RETIRED_BUDGET is
replaced without a moment when nobody accepts: its replacement builds and
serves while it still answers, and only then does it leave, so a one-worker
host is never without a worker that serves (before, the worker left first and
every request waited for the replacement's whole build). Judged by what the
host reports, not by timings (those are in bench/activation_load.py)."""
from __future__ import annotations

import threading

import pytest
import requests

from rulegen import dump, make_ruleset
from test_reload_under_load import INSTANT as INSTANT_BODY, Readers, publish, wait_until, worker_pids


class ServedWatch:
    """Polls /health while running: every set of pids seen serving a version
    at the same moment (the served-versions files of live processes)."""

    def __init__(self, url: str):
        self.url = url
        self.stop = threading.Event()
        self.seen: list[frozenset[int]] = []
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        session = requests.Session()
        while not self.stop.is_set():
            try:
                report = session.get(self.url + "/health", timeout=60).json()
            except (requests.RequestException, ValueError):
                continue
            workers = report.get("rules", {}).get("workers", [])
            self.seen.append(frozenset(w["pid"] for w in workers if w.get("hash") and not w.get("buildFailure")))
            self.stop.wait(0.05)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(90)


@pytest.mark.backends("tinydb", reason="the worker's rule engine memory; the store plays no part")
def test_one_worker_host_keeps_a_serving_worker_while_it_is_replaced(make_server, tmp_path):
    catalog_data, ruleset_data = make_ruleset(400, 150, seed=17)
    (tmp_path / "catalog").mkdir()
    (tmp_path / "catalog" / "catalog.yaml").write_text(dump(catalog_data))
    rules_dir = tmp_path / "rules"
    rules_dir.mkdir()
    (rules_dir / "generated.yaml").write_text(dump(ruleset_data))
    service = make_server(rules_dir=rules_dir, catalog_dir=tmp_path / "catalog", workers=1,
                          env={"RECO_RULES_RETIRED_BUDGET": "200", "RECO_RULES_CHECK_INTERVAL": "0.2"})
    master = service.process.pid
    (first,) = worker_pids(master)
    body = dict(INSTANT_BODY, shoppingCart=[{"id": "c1", "@type": "ShoppingCart", "cartItem": [
        {"id": "1", "quantity": 1, "productOffering": {"id": "O00001"}}]}])
    with Readers(service.url, body, count=2) as readers, ServedWatch(service.url) as watch:
        assert wait_until(lambda: readers.seen("generated@1.0.0"), 60)
        for n in (1, 2):           # 300 retired rules after the second: past the budget of 200
            ruleset_data["version"] = f"1.{n}.0"
            publish(rules_dir, f"generated@1.{n}.0.yaml", dump(ruleset_data))
            assert wait_until(lambda: readers.seen(f"generated@1.{n}.0"), 90), n
        # the first worker leaves once its replacement serves; then the host has one worker again
        assert wait_until(lambda: first not in worker_pids(master), 180)
        assert wait_until(lambda: len(worker_pids(master)) == 1, 60), worker_pids(master)
        assert wait_until(lambda: any(first not in pids and pids for pids in watch.seen[-3:]), 30)
    failed = [(status, answer) for status, _header, answer in readers.answers if status != 200]
    assert failed == []
    # the replacement served while the first worker still did: two pids serving at one moment
    assert any(first in pids and len(pids) >= 2 for pids in watch.seen), sorted(set(watch.seen), key=len)
    # and the arbiter's count came back to one: a single worker serves afterwards
    (last,) = worker_pids(master)
    assert last != first
