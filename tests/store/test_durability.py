"""The store under real gunicorn workers: concurrent writers in several
processes lose nothing, and a server killed mid-write keeps every write it
acknowledged."""
from __future__ import annotations

import random
import threading
import time
import uuid

import pytest
import requests

from helpers import Client

C = Client.CUSTOMER + "/customer"


def customer_body(n):
    return {"name": f"writer-{n}", "engagedParty": {"id": str(n), "@referredType": "Individual"}}


def test_two_workers_writing_at_once_lose_nothing(make_server):
    service = make_server(workers=2)
    api = Client(service.url)
    created: list[str] = []
    lock = threading.Lock()

    def writer(offset):
        session = requests.Session()
        for n in range(offset, offset + 60):
            response = session.post(service.url + C, json=customer_body(n), timeout=30)
            assert response.status_code == 201, response.text
            with lock:
                created.append(response.json()["id"])

    threads = [threading.Thread(target=writer, args=(k * 1000,)) for k in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    listed = api.get(C, params={"limit": 1000})
    assert listed.headers["X-Total-Count"] == str(len(created)) == "360"
    assert {c["id"] for c in listed.json()} == set(created)
    # the patched counter shows no lost update either
    cid = created[0]

    def patcher(values):
        for value in values:
            assert api.patch(f"{C}/{cid}", json={"statusReason": value}).status_code == 200

    threads = [threading.Thread(target=patcher, args=([f"{k}-{i}" for i in range(20)],)) for k in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert api.get(f"{C}/{cid}").json()["statusReason"].endswith("-19")


@pytest.mark.backends("tinydb", reason="on PostgreSQL test_hardening_faults.py's SIGKILL "
                      "test covers the same and more (every acknowledged write and its event)")
def test_killed_server_keeps_every_acknowledged_write(make_server, tmp_path):
    data_dir = tmp_path / "crash-data"
    acknowledged: list[str] = []
    for round_number in range(3):
        service = make_server(data_dir=data_dir, workers=2)
        stop = threading.Event()

        def writer():
            session = requests.Session()
            while not stop.is_set():
                try:
                    response = session.post(service.url + C, json=customer_body(uuid.uuid4().int % 10**6),
                                            timeout=5)
                except requests.RequestException:
                    return
                if response.status_code == 201:
                    acknowledged.append(response.json()["id"])

        threads = [threading.Thread(target=writer) for _ in range(4)]
        for thread in threads:
            thread.start()
        time.sleep(random.uniform(0.5, 1.5))
        service.kill()  # SIGKILL to the whole process group, mid-write
        stop.set()
        for thread in threads:
            thread.join()
    assert len(acknowledged) > 20
    survivor = make_server(data_dir=data_dir)
    api = Client(survivor.url)
    health = api.get("/health").json()
    assert health["store"]["ok"] is True
    stored = set()
    offset = 0
    while True:
        page = api.get(C, params={"limit": 1000, "offset": offset, "fields": "id"}).json()
        if not page:
            break
        stored.update(c["id"] for c in page)
        offset += len(page)
    missing = set(acknowledged) - stored
    assert not missing, f"{len(missing)} acknowledged writes lost"
