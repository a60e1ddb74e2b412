"""Fixtures that run the real service: a gunicorn process on loopback with its
own data directory, and a webhook listener that records notifications."""
from __future__ import annotations

import pytest

from helpers import Client, Listener, ServiceProcess
from pgcluster import NoPostgres, PgCluster

BACKENDS = ["tinydb", "postgresql"]


@pytest.fixture(scope="session")
def pg_cluster(tmp_path_factory):
    """One throw-away PostgreSQL cluster for the session (bin/pg)."""
    cluster = PgCluster(tmp_path_factory.mktemp("pg"))
    try:
        cluster.start()
    except NoPostgres as exc:
        pytest.skip(f"PostgreSQL tests need its binaries: {exc}")
    yield cluster
    cluster.destroy()


def store_url_for(backend: str, request, directory) -> str:
    """Where a test's store lives: a TinyDB directory, or a fresh database."""
    if backend == "postgresql":
        return request.getfixturevalue("pg_cluster").new_database()
    return str(directory)


@pytest.fixture(params=BACKENDS)
def store_url(request, tmp_path):
    """One parameter runs a test on each backend (the store contract)."""
    return store_url_for(request.param, request, tmp_path / "data")


@pytest.fixture(scope="session", params=BACKENDS)
def server(request, tmp_path_factory):
    """The shared service for tests that only add data of their own, once per
    backend: every end-to-end test that uses it runs on TinyDB and PostgreSQL."""
    data_dir = tmp_path_factory.mktemp("shared") / "data"
    env = {}
    if request.param == "postgresql":
        env["RECO_STORE_URL"] = store_url_for("postgresql", request, data_dir)
    service = ServiceProcess(data_dir, env=env).start()
    yield service
    service.stop()


@pytest.fixture
def pg_url(request):
    """A fresh PostgreSQL database (tests that are about PostgreSQL itself)."""
    return request.getfixturevalue("pg_cluster").new_database()


@pytest.fixture
def make_server(tmp_path):
    """A fresh service (or several) for tests that kill, reconfigure or count."""
    started: list[ServiceProcess] = []

    def factory(**kwargs) -> ServiceProcess:
        kwargs.setdefault("data_dir", tmp_path / f"data{len(started)}")
        service = ServiceProcess(**kwargs).start()
        started.append(service)
        return service

    yield factory
    for service in started:
        service.stop()


@pytest.fixture
def listener():
    receiver = Listener()
    yield receiver
    receiver.close()


@pytest.fixture
def api(server):
    return Client(server.url)
