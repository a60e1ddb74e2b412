"""A worker whose retired rule versions passed RECO_RULES_RETIRED_BUDGET is
replaced without a moment when nobody accepts: its replacement builds and
serves while it still answers, and only then does it leave, so a one-worker
host is never without a worker that serves (before, the worker left first and
every request waited for the replacement's whole build). Judged by what the
host reports, not by timings (those are in bench/activation_load.py).

The budget is passed by the last version published, never earlier: a
replacement that starts while a later version is still to come builds the
version of that moment, retires it at the next activation and, over the
budget itself, is replaced in turn (by design: it holds those rules), so the
host has two workers again after it had come back to one."""
from __future__ import annotations

import logging
import signal
import threading
from types import SimpleNamespace

import pytest
import requests
from gunicorn.config import Config

from app import gunicorn_worker
from app.gunicorn_worker import READY_CHECK_S, RECYCLE_RETRY_S, TmfThreadWorker

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
    # 400 rules a version: 400 retired after 1.1.0 (within the budget), 800 after 1.2.0 (past it)
    service = make_server(rules_dir=rules_dir, catalog_dir=tmp_path / "catalog", workers=1,
                          env={"RECO_RULES_RETIRED_BUDGET": "600", "RECO_RULES_CHECK_INTERVAL": "0.2"})
    master = service.process.pid
    (first,) = worker_pids(master)
    body = dict(INSTANT_BODY, shoppingCart=[{"id": "c1", "@type": "ShoppingCart", "cartItem": [
        {"id": "1", "quantity": 1, "productOffering": {"id": "O00001"}}]}])
    with Readers(service.url, body, count=2) as readers, ServedWatch(service.url) as watch:
        assert wait_until(lambda: readers.seen("generated@1.0.0"), 60)
        for n in (1, 2):
            ruleset_data["version"] = f"1.{n}.0"
            publish(rules_dir, f"generated@1.{n}.0.yaml", dump(ruleset_data))
            assert wait_until(lambda: readers.seen(f"generated@1.{n}.0"), 90), n
            if n == 1:             # within the budget: the first worker is not replaced
                assert worker_pids(master) == [first]
        # the first worker leaves once its replacement serves; then the host has one worker again
        assert wait_until(lambda: first not in worker_pids(master), 180)
        assert wait_until(lambda: len(worker_pids(master)) == 1, 60), worker_pids(master)
        assert wait_until(lambda: any(first not in pids and pids for pids in watch.seen[-3:]), 30)
    failed = [(status, answer) for status, _header, answer in readers.answers if status != 200]
    assert failed == []
    # the replacement served while the first worker still did: two pids serving at one moment
    assert any(first in pids and len(pids) >= 2 for pids in watch.seen), sorted(set(watch.seen), key=len)
    # and the arbiter's count came back to one: the replacement that served beside the first stays alone
    (last,) = worker_pids(master)
    assert last != first
    assert any(first in pids and last in pids for pids in watch.seen), sorted(set(watch.seen), key=len)


def test_one_thread_at_a_time_takes_a_step_of_the_replacement(monkeypatch):
    """The gthread pool calls a step per request in several threads. While one
    thread reads the served-versions files (slow on a loaded host) a request
    in another thread READY_CHECK_S later took the step too: both saw the
    replacement ready and sent SIGTTOU, and the arbiter stopped one worker
    more than was replaced (on a one-worker host it asked for one replacement
    more instead, when the second thread came after the first had sent it)."""
    sent: list[int] = []
    monkeypatch.setattr(gunicorn_worker, "os", SimpleNamespace(kill=lambda pid, sig: sent.append(sig)))
    reading, read_on = threading.Event(), threading.Event()

    def serving_since(since: float, hash: str) -> list[int]:
        if not reading.is_set():          # the first look at the files takes long
            reading.set()
            read_on.wait(10)
        return [4242]
    rules = SimpleNamespace(retired_rules=800, retired_budget=600, served_hash="h1",
                            served=SimpleNamespace(serving_since=serving_since))
    monkeypatch.setattr(gunicorn_worker, "services", lambda app: SimpleNamespace(rules=rules))
    worker = TmfThreadWorker(1, 4241, [], None, 15, Config(), logging.getLogger(__name__))
    worker.wsgi = None                                           # the app: services() above stands for it
    try:
        worker._replace_when_ready(100.0)                        # asks for its replacement
        assert sent == [signal.SIGTTIN]
        first = threading.Thread(target=worker._replace_when_ready, args=(101.0,))
        first.start()
        assert reading.wait(10)
        second = threading.Thread(target=worker._replace_when_ready, args=(101.0 + 2 * READY_CHECK_S,))
        second.start()
        second.join(10)
        read_on.set()
        first.join(10)
        assert sent == [signal.SIGTTIN, signal.SIGTTOU]          # one worker fewer, once
        # still over the budget after the retry time (an older worker was stopped): it asks again
        worker._replace_when_ready(101.0 + RECYCLE_RETRY_S + 1)
        assert sent == [signal.SIGTTIN, signal.SIGTTOU, signal.SIGTTIN]
    finally:
        read_on.set()
        worker.tmp.close()
