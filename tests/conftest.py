"""Fixtures that run the real service: a gunicorn process on loopback with its
own data directory, and a webhook listener that records notifications."""
from __future__ import annotations

import pytest

from helpers import Client, Listener, ServiceProcess

@pytest.fixture(scope="session")
def server(tmp_path_factory):
    """The shared service for tests that only add data of their own."""
    service = ServiceProcess(tmp_path_factory.mktemp("shared") / "data").start()
    yield service
    service.stop()


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
