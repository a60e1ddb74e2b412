"""Gunicorn's own log lines about a request carry its request id, on a real
server (one gthread worker, JSON logs, gunicorn's debug lines on).

The app binds the request's log context (request id, rule set version) when
Flask starts the request; Flask's teardown runs when the app returns its
answer, before gunicorn writes the body. The worker (app/gunicorn_worker.py)
keeps the context until it is done with the request, so a line gunicorn logs
while writing the body (a client that reset the connection, "Closing
connection." after the last byte) is the request's; the thread's lines at the
start of its next request carry nothing of the previous one."""
from __future__ import annotations

import json
import socket
import struct
import time

import pytest
import requests

from helpers import PATIENCE, ServiceProcess, wait_until

#: the largest answer the service has (about 650 kB); the server's send
#: buffer grows with the client's segment size (to megabytes on loopback's
#: 64 kB segments, where the whole answer fits and gunicorn is done before
#: the reset), so the client announces 536-byte segments and a 4 kB receive
#: buffer: gunicorn is still writing when the client resets
BIG = "/openapi.json"
RESETS = ("Ignoring connection reset", "Ignoring connection epipe")


@pytest.fixture
def service(tmp_path):
    service = ServiceProcess(tmp_path / "data", env={"GUNICORN_CMD_ARGS": "--log-level debug"}).start()
    yield service
    service.stop()


def log_lines(service: ServiceProcess) -> list[dict]:
    return [json.loads(line) for line in service.log_path.read_text().splitlines() if line.strip()]


def reset_while_answering(service: ServiceProcess, path: str, request_id: str) -> None:
    """Ask for `path`, read the first bytes of the answer, then reset the
    connection (SO_LINGER 0: an RST) while the server is writing the rest."""
    client = socket.socket()
    client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    client.setsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG, 536)
    client.connect(("127.0.0.1", service.port))
    client.settimeout(PATIENCE)
    client.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Request-ID: {request_id}\r\n\r\n".encode())
    assert client.recv(64).startswith(b"HTTP/1.1 200")
    time.sleep(0.3)                               # the server blocks on the full socket
    client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    client.close()


def test_gunicorn_lines_about_a_request_carry_its_id_and_none_after(service):
    reset_while_answering(service, BIG, "req-reset")
    answer = requests.get(service.url + "/health", timeout=PATIENCE,
                          headers={"Connection": "close", "X-Request-ID": "req-close"})
    assert answer.status_code == 200 and answer.headers["X-Request-ID"] == "req-close"
    requests.get(service.url + "/health", timeout=PATIENCE, headers={"X-Request-ID": "req-last"})

    def written():
        lines = log_lines(service)
        return lines if any(line.get("request_id") == "req-last" for line in lines) else None

    lines = wait_until(written, PATIENCE)
    assert lines, service.log_path.read_text()[-3000:]
    gunicorn = [line for line in lines if line.get("logger") == "gunicorn.error"]
    reset = [line for line in gunicorn if line["event"] in RESETS]
    assert [line.get("request_id") for line in reset] == ["req-reset"], gunicorn
    # "Closing connection." (no reason) is logged by handle_request after the last byte
    closing = [line for line in gunicorn if line["event"] == "Closing connection."]
    assert [line.get("request_id") for line in closing] == ["req-close"], gunicorn
    # a request's first gunicorn line ("GET /health"), logged before the app
    # binds its context, carries nothing of the request the thread served before
    starts = [line for line in gunicorn if line["event"].startswith("GET ")]
    assert len(starts) >= 3 and not any("request_id" in line for line in starts), starts
