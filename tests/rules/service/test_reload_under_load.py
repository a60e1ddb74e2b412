"""New rule set versions go live while clients keep asking, on real gunicorn
workers: no request fails, every answer is wholly one version's, and the
memory of retired versions stays bounded (the worker is replaced gracefully
once they pass RECO_RULES_RETIRED_BUDGET). These judge correctness, not
timings; the timings are in bench/ (BENCHMARKS.md)."""
from __future__ import annotations

import pytest

import os
import re
import shutil
import threading
import time
from pathlib import Path

import requests

from helpers import DEMO_RULES, PATIENCE, Client, is_event_dispatcher
from rulegen import dump, make_ruleset

R = Client.RECOMMENDATION + "/queryProductRecommendation"
INSTANT = {"instantSyncRecommendation": True, "channel": [{"id": "21"}],
           "validFor": {"startDateTime": "2026-10-01T12:00:00Z"},
           "shoppingCart": [{"id": "c1", "@type": "ShoppingCart", "cartItem": [
               {"id": "1", "quantity": 1, "productOffering": {"id": "6547"}}]}]}
DEMO_ANSWER = ["6542", "6543", "7301"]          # telco-demo 1.0.0 (limit 4) for INSTANT


def publish(rules_dir: Path, name: str, text: str) -> None:
    """As an operator's deploy does: write beside, then rename into place."""
    target = rules_dir / "versions" / name
    target.parent.mkdir(exist_ok=True)
    staged = target.with_name("." + target.name + ".tmp")
    staged.write_text(text)
    os.replace(staged, target)


class Readers:
    """Threads posting the same instant query until stopped; every answer kept."""

    def __init__(self, url: str, body: dict, count: int = 3):
        self.url, self.body = url, body
        self.stop = threading.Event()
        self.answers: list[tuple[int, str | None, dict | str]] = []
        self.threads = [threading.Thread(target=self.run, daemon=True) for _ in range(count)]

    def run(self) -> None:
        session = requests.Session()
        while not self.stop.is_set():
            try:
                response = session.post(self.url + R, json=self.body, timeout=60)
            except requests.RequestException as exc:     # a dropped connection is a failed request
                self.answers.append((0, None, repr(exc)))
                continue
            body = response.json() if response.headers.get("Content-Type", "").startswith("application/json") \
                else response.text
            self.answers.append((response.status_code, response.headers.get("X-Ruleset"), body))

    def seen(self, ruleset: str) -> bool:
        return any(header == ruleset for _status, header, _body in list(self.answers))

    def __enter__(self):
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for thread in self.threads:
            thread.join(90)


def wait_until(predicate, timeout: float) -> bool:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


@pytest.mark.backends("tinydb", reason="a rule file published; no activation pointer is written (tests/rules/service/test_hot_reload.py activates on both stores)")
def test_versions_go_live_under_load_without_a_failed_or_mixed_answer(make_server, tmp_path):
    rules_dir = tmp_path / "rules"
    shutil.copytree(DEMO_RULES, rules_dir)
    service = make_server(rules_dir=rules_dir, workers=2)
    demo = (DEMO_RULES / "telco-demo.yaml").read_text()
    limits = {}
    with Readers(service.url, INSTANT) as readers:
        assert wait_until(lambda: readers.seen("telco-demo@1.0.0"), PATIENCE)
        for n in range(1, 7):
            version, limit = f"1.{n}.0", 1 + n % 3          # each version answers with its own limit
            limits[version] = limit
            publish(rules_dir, f"telco-demo@{version}.yaml",
                    demo.replace('version: "1.0.0"', f'version: "{version}"').replace("limit: 4", f"limit: {limit}"))
            assert wait_until(lambda: readers.seen(f"telco-demo@{version}"), 60), version
    assert len(readers.answers) > 20
    limits["1.0.0"] = 4
    for status, header, body in readers.answers:
        assert status == 200, (status, body)
        version = re.fullmatch(r"telco-demo@(.+)", header).group(1)
        items = body["recommendationItem"]
        # the items are the ones this version gives, and say so themselves
        assert [i["productOffering"]["id"] for i in items] == DEMO_ANSWER[:limits[version]], header
        assert {i["explanation"]["ruleSetVersion"] for i in items} == {version}


def worker_pids(master: int) -> list[int]:
    """The master's children but its other one, the event dispatcher (app/events/process.py)."""
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    return [int(pid) for pid in children if not is_event_dispatcher(int(pid))]


def rss_mib(pid: int) -> float:
    """A worker's RSS; 0 for one that is exiting (a zombie has no VmRSS, or no /proc entry)."""
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    for line in lines:
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


@pytest.mark.backends("tinydb", reason="the rules engine's memory; the store plays no part")
def test_memory_stays_bounded_across_many_activations(make_server, tmp_path):
    """Each activation leaves a retired compiled version in the worker that
    durable-rules cannot free; past the budget the worker is replaced between
    requests, so RSS stays under twice what it was after the first version,
    and no request fails meanwhile."""
    catalog_data, ruleset_data = make_ruleset(600, 200, seed=13)
    (tmp_path / "catalog").mkdir()
    (tmp_path / "catalog" / "catalog.yaml").write_text(dump(catalog_data))
    rules_dir = tmp_path / "rules"
    rules_dir.mkdir()
    (rules_dir / "generated.yaml").write_text(dump(ruleset_data))
    service = make_server(rules_dir=rules_dir, catalog_dir=tmp_path / "catalog", workers=1,
                          env={"RECO_RULES_RETIRED_BUDGET": "700", "RECO_RULES_CHECK_INTERVAL": "0.2"})
    body = dict(INSTANT, shoppingCart=[{"id": "c1", "@type": "ShoppingCart", "cartItem": [
        {"id": str(i), "quantity": 1, "productOffering": {"id": f"O{i:05d}"}} for i in (1, 2, 3)]}])
    master = service.process.pid
    with Readers(service.url, body, count=2) as readers:
        assert wait_until(lambda: readers.seen("generated@1.0.0"), 60)
        (first_worker,) = worker_pids(master)
        first_rss = rss_mib(first_worker)
        workers, peak = {first_worker}, first_rss
        for n in range(1, 9):
            ruleset_data["version"] = f"1.{n}.0"
            publish(rules_dir, f"generated@1.{n}.0.yaml", dump(ruleset_data))
            assert wait_until(lambda: readers.seen(f"generated@1.{n}.0"), 90), n
            for pid in worker_pids(master):
                workers.add(pid)
                peak = max(peak, rss_mib(pid))
    failed = [(status, body) for status, _header, body in readers.answers if status != 200]
    assert failed == []
    assert len(workers) > 1                           # the budget was passed: a worker was replaced
    assert peak < 2 * first_rss, (first_rss, peak)
