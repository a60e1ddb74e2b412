"""Operator faults of the storage (they happen in production): a full disk or a
read-only data directory answered a generic 500 on writes and readiness did
not notice a full disk. Now every write of every API is a 503 TMF error
"Storage unavailable", reads go on, readiness fails, and all recovers when
the space comes back.

The disk is a small tmpfs mounted for the test (never the real disk is
filled); mounting needs root, so the test is skipped otherwise.
"""
from __future__ import annotations

import errno
import os
import subprocess
import uuid

import pytest

from helpers import PATIENCE, Client, assert_tmf_error, wait_until

C = Client.CUSTOMER + "/customer"
P = Client.INVENTORY + "/product"
L = "/tmf-api/sales/v4/salesLead"
R = Client.RECOMMENDATION + "/queryProductRecommendation"


def _mount(*args: str) -> None:
    subprocess.run(["mount", *args], check=True, capture_output=True)


@pytest.fixture
def small_disk(tmp_path):
    """A 4 MiB tmpfs (skipped when the test cannot mount one)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small filesystem needs root")
    disk = tmp_path / "data"   # the data directory itself (server logs go beside it)
    disk.mkdir()
    try:
        _mount("-t", "tmpfs", "-o", "size=4m", "tmpfs", str(disk))
    except (OSError, subprocess.CalledProcessError) as exc:
        pytest.skip(f"cannot mount a tmpfs here: {exc}")
    yield disk
    subprocess.run(["umount", "-l", str(disk)], check=False, capture_output=True)


def fill(disk) -> None:
    """Write zeros until the filesystem says ENOSPC (big blocks, then bytes)."""
    fd = os.open(disk / "filler", os.O_WRONLY | os.O_CREAT)
    try:
        for size in (65536, 512, 1):
            while True:
                try:
                    os.write(fd, b"\0" * size)
                except OSError as exc:
                    assert exc.errno == errno.ENOSPC
                    break
    finally:
        os.close(fd)


def writes(api, customer_id: str):
    """One write of each kind, on every API."""
    tag = uuid.uuid4().hex[:8]
    patch = {"headers": {"Content-Type": "application/merge-patch+json"}}
    return [
        api.post(C, json={"name": tag, "engagedParty": {"id": tag, "@referredType": "Individual"}}),
        api.patch(f"{C}/{customer_id}", json={"status": "approved"}, **patch),
        api.delete(f"{C}/{customer_id}"),
        api.post(P, json={"status": "active", "name": tag}),
        api.post(L, json={"name": tag}),
        api.post(R, json={"instantSyncRecommendation": False}),
        api.post(Client.CUSTOMER + "/hub", json={"callback": "http://127.0.0.1:9/x"}),
    ]


def check_unavailable(api, customer_id: str, why: str) -> None:
    before = api.get(C).json()
    for response in writes(api, customer_id):
        error = assert_tmf_error(response, 503)
        assert error["code"] == "STORE_UNAVAILABLE"
        assert error["message"].startswith("Storage unavailable") and why in error["message"]
    assert api.get(C).json() == before                       # reads go on, nothing changed
    ready = assert_tmf_error(api.get("/health/ready"), 503)
    assert ready["details"]["store"]["ok"] is False


@pytest.mark.backends("tinydb", reason="a real tmpfs under TinyDB's files; PostgreSQL's member is the test below")
def test_full_disk_and_read_only_data_directory_are_503_and_not_ready(small_disk, make_server):
    server = make_server(data_dir=small_disk)
    api = Client(server.url)
    tag = uuid.uuid4().hex[:8]
    customer = api.post(C, json={"name": tag, "engagedParty": {"id": tag, "@referredType": "Individual"}}).json()
    assert api.get("/health/ready").status_code == 200

    fill(small_disk)
    check_unavailable(api, customer["id"], "(disk full)")
    assert "no space left" in api.get("/health").json()["store"]["errors"]["_store"]

    (small_disk / "filler").unlink()
    assert api.get("/health/ready").status_code == 200
    assert api.post(L, json={"name": "after"}).status_code == 201

    # a read-only data directory: the service restarted on it (a mounted
    # filesystem with files open for writing cannot be remounted read-only)
    server.stop()
    _mount("-o", "remount,ro", str(small_disk))
    try:
        api = Client(make_server(data_dir=small_disk).url)
        assert api.get(C).status_code == 200
        check_unavailable(api, customer["id"], "(read-only storage)")
        assert "read-only" in api.get("/health").json()["store"]["errors"]["_store"]
    finally:
        _mount("-o", "remount,rw", str(small_disk))
    assert api.get("/health/ready").status_code == 200
    assert api.patch(f"{C}/{customer['id']}", json={"status": "approved"}).status_code == 200


@pytest.mark.backends("postgresql", reason="TinyDB's member is the real tmpfs test above")
def test_a_database_out_of_disk_space_is_503_on_every_api_and_not_ready(make_server, full_disk):
    """PostgreSQL's full disk (SQLSTATE 53100 disk_full on every write,
    tests/fulldisk.py): the same answers as TinyDB's, and all recovers when
    the space comes back."""
    server = make_server()
    api = Client(server.url)
    tag = uuid.uuid4().hex[:8]
    customer = api.post(C, json={"name": tag, "engagedParty": {"id": tag, "@referredType": "Individual"}}).json()
    assert api.get("/health/ready").status_code == 200

    full_disk.fill(server, ".*")
    check_unavailable(api, customer["id"], "(disk full)")

    full_disk.free()
    assert api.get("/health/ready").status_code == 200
    assert api.post(L, json={"name": "after"}).status_code == 201
    assert api.patch(f"{C}/{customer['id']}", json={"status": "approved"}).status_code == 200


@pytest.mark.backends("postgresql", reason="TinyDB's member is the read-only remount in the tmpfs test")
def test_a_read_only_database_is_503_on_every_api_and_not_ready(make_server, tmp_path):
    """PostgreSQL's read-only data directory: a database that refuses writes
    (`default_transaction_read_only`, as a hot standby or an operator's
    emergency setting), the service restarted on it as in the TinyDB test;
    all recovers when its sessions are renewed on a writable database."""
    import psycopg

    first = make_server(data_dir=tmp_path / "d")
    api = Client(first.url)
    tag = uuid.uuid4().hex[:8]
    customer = api.post(C, json={"name": tag, "engagedParty": {"id": tag, "@referredType": "Individual"}}).json()
    first.stop()
    url = first.store_url
    database = url.rsplit("/", 1)[1]
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'ALTER DATABASE "{database}" SET default_transaction_read_only = on')
    api = Client(make_server(data_dir=tmp_path / "d").url)
    assert api.get(C).status_code == 200
    check_unavailable(api, customer["id"], "read-only")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SET default_transaction_read_only = off")
        conn.execute(f'ALTER DATABASE "{database}" RESET default_transaction_read_only')
        conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                     "WHERE application_name = 'tmf-recommender'")   # as a failover does
    assert wait_until(lambda: api.get("/health/ready").status_code == 200, timeout=PATIENCE)
    assert api.patch(f"{C}/{customer['id']}", json={"status": "approved"}).status_code == 200
