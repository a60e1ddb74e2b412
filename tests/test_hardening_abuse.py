"""Abuse: hub callbacks only to hosts the operator allows (a hub makes the
server send requests, so it must not become a way into internal networks),
request size limits, optional API keys, and no secret in logs."""
from __future__ import annotations

import http.client
import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from app.events.allowlist import CallbackPolicy, CallbackRejected
from helpers import PATIENCE, Client, ServiceProcess, assert_tmf_error

C = Client.CUSTOMER + "/customer"
HUBS = [Client.CUSTOMER + "/hub", Client.INVENTORY + "/hub", Client.RECOMMENDATION + "/hub",
        "/tmf-api/sales/v4/hub"]
BODY = {"name": "Abuse", "engagedParty": {"id": "a-1", "@referredType": "Individual"}}


# -- callback allow-list --------------------------------------------------

REFUSED_BY_DEFAULT = [
    "http://169.254.169.254/latest/meta-data/",      # cloud metadata (link-local)
    "http://[fe80::1]/x",                            # IPv6 link-local
    "http://10.0.0.1/x", "http://172.16.5.4/x", "http://192.168.1.1/x",   # RFC 1918
    "http://100.64.0.1/x",                           # carrier-grade NAT
    "http://[fd00::1]/x",                            # IPv6 unique local
    "http://0.0.0.0:8080/x", "http://[::]/x",        # "this host", any address
    "http://[::ffff:169.254.169.254]/x",             # IPv4-mapped IPv6
    "http://224.0.0.1/x", "http://255.255.255.255/x",
    "http://8.8.8.8/x",                              # public, but not allowed either
    "https://hooks.invalid/x",                       # does not resolve
]


@pytest.mark.parametrize("callback", REFUSED_BY_DEFAULT)
def test_callbacks_outside_the_allow_list_are_refused(api, callback):
    for hub in HUBS:
        body = assert_tmf_error(api.post(hub, json={"callback": callback}), 400)
        assert body["code"] == "CALLBACK_NOT_ALLOWED", body


def test_loopback_is_allowed_by_default(api, listener):
    for callback in (listener.url, listener.url.replace("127.0.0.1", "localhost")):
        response = api.post(HUBS[0], json={"callback": callback})
        assert response.status_code == 201, response.text
        assert api.delete(f"{HUBS[0]}/{response.json()['id']}").status_code == 204


@pytest.mark.backends("tinydb", reason="the allow list is checked at registration; the store plays no part")
def test_operator_allow_list_replaces_the_default(make_server):
    """RECO_CALLBACK_ALLOWED_HOSTS: networks, names and *.domain; loopback is
    then refused too, also by a DNS name or a numeric spelling that resolves
    to it."""
    service = make_server(env={"RECO_CALLBACK_ALLOWED_HOSTS":
                               "10.0.0.0/8, fd00::/8, hooks.internal, *.example.test"})
    api = Client(service.url)
    for allowed in ("http://10.1.2.3:8080/listener", "http://[fd00::12]/x",
                    "https://hooks.internal/cb", "https://a.b.example.test/cb"):
        response = api.post(HUBS[1], json={"callback": allowed})
        assert response.status_code == 201, (allowed, response.text)
    for refused in ("http://127.0.0.1:9/x", "http://localhost:9/x",
                    f"http://{socket.gethostname()}:9/x",     # resolves to 127.0.0.1 here
                    "http://2130706433:9/x",                   # 127.0.0.1 spelt as a number
                    "http://0x7f000001:9/x", "http://169.254.169.254/x",
                    "http://11.0.0.1/x", "https://example.test/cb",
                    "https://hooks.internal.evil.test/cb"):
        body = assert_tmf_error(api.post(HUBS[1], json={"callback": refused}), 400)
        assert body["code"] == "CALLBACK_NOT_ALLOWED", (refused, body)


def test_a_name_is_judged_by_every_address_it_resolves_to(monkeypatch):
    """A DNS name is allowed only if all its addresses are in allowed networks
    (a name with one internal address among public ones is refused)."""
    answers = {
        "metadata.evil.test": ["169.254.169.254"],
        "mixed.evil.test": ["10.1.2.3", "192.168.7.7"],
        "inside.good.test": ["10.1.2.3", "10.9.9.9"],
    }

    def fake_getaddrinfo(host, *args, **kwargs):
        if host not in answers:
            raise socket.gaierror("unknown")
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (addr, 0)) for addr in answers[host]]

    monkeypatch.setattr(socket, "getaddrinfo", fake_getaddrinfo)
    policy = CallbackPolicy(["10.0.0.0/8"])
    policy.check("http://inside.good.test/x")
    for host in ("metadata.evil.test", "mixed.evil.test", "nowhere.test"):
        with pytest.raises(CallbackRejected):
            policy.check(f"http://{host}/x")
    CallbackPolicy(["*"]).check("http://metadata.evil.test/x")   # the operator's choice


class _Recorder(BaseHTTPRequestHandler):
    """Answers with the server's `status` (and `location`), records requests."""

    def do_POST(self):  # noqa: N802
        length = int(self.headers.get("Content-Length", 0))
        self.server.requests.append((time.monotonic(), json.loads(self.rfile.read(length))))
        self.send_response(self.server.status)
        if self.server.location:
            self.send_header("Location", self.server.location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def recorder(status: int, location: str | None = None) -> ThreadingHTTPServer:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    server.status, server.location, server.requests = status, location, []
    server.url = f"http://127.0.0.1:{server.server_address[1]}/listener"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.mark.backends("tinydb", reason="the delivery HTTP client's behaviour; the store plays no part")
def test_redirects_from_a_listener_are_not_followed(make_server):
    """A listener answering 307 to an internal address does not get the
    server to post there: the attempt counts as failed."""
    target = recorder(201)
    redirector = recorder(307, location=target.url)
    try:
        service = make_server(env={"RECO_EVENT_MAX_ATTEMPTS": "2"})
        api = Client(service.url)
        assert api.post(HUBS[0], json={"callback": redirector.url}).status_code == 201
        assert api.post(C, json=BODY).status_code == 201
        deadline = time.time() + PATIENCE
        while time.time() < deadline and api.get("/health").json()["events"].get("failed") != 1:
            time.sleep(0.2)
        events = api.get("/health").json()["events"]
        assert (events["pending"], events["failed"]) == (0, 1)
        assert len(redirector.requests) == 2 and target.requests == []
    finally:
        for server in (target, redirector):
            server.shutdown()
            server.server_close()


def test_the_allow_list_is_checked_again_at_delivery(make_server, tmp_path, listener):
    """A hub registered while its host was allowed gets nothing once the
    operator no longer allows it (checked on every delivery)."""
    data_dir = tmp_path / "policy-data"
    first = make_server(data_dir=data_dir)
    assert Client(first.url).post(HUBS[0], json={"callback": listener.url}).status_code == 201
    first.stop()
    second = make_server(data_dir=data_dir, env={"RECO_CALLBACK_ALLOWED_HOSTS": "10.0.0.0/8",
                                                 "RECO_EVENT_MAX_ATTEMPTS": "2"})
    api = Client(second.url)
    assert api.post(C, json=BODY).status_code == 201
    deadline = time.time() + PATIENCE
    while time.time() < deadline and api.get("/health").json()["events"].get("failed") != 1:
        time.sleep(0.2)
    events = api.get("/health").json()["events"]
    assert (events["pending"], events["failed"]) == (0, 1)
    assert listener.events == []


# -- size limits ----------------------------------------------------------

@pytest.mark.backends("tinydb", reason="a request size limit; the store plays no part")
def test_body_limit_is_configurable(make_server):
    service = make_server(env={"RECO_MAX_BODY_BYTES": "2048"})
    api = Client(service.url)
    small = dict(BODY, name="x" * 1500)
    assert api.post(C, json=small).status_code == 201
    large = dict(BODY, name="x" * 2100)
    for path in (C, HUBS[0], Client.RECOMMENDATION + "/queryProductRecommendation"):
        assert_tmf_error(api.post(path, json=large), 413)
    assert api.get(C).headers["X-Total-Count"] == "1"


def test_header_limits_hold_for_every_path(server):
    """gunicorn.conf.py: at most 100 headers of at most 8190 bytes, a request
    line of at most 8190 bytes; refused before the application runs."""
    for path in ("/health", C, "/openapi.json"):
        for headers in ({"X-Big": "x" * 8200}, {f"X-H{n}": "1" for n in range(101)}):
            connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
            connection.request("GET", path, headers=headers)
            response = connection.getresponse()
            body = json.loads(response.read())
            connection.close()
            assert response.status == 431 and body["@type"] == "Error", (path, body)


# -- API keys -------------------------------------------------------------

KEYS = {"RECO_API_KEYS": "s3cret-writer, s3cret-other", "RECO_ADMIN_KEYS": "s3cret-admin"}


@pytest.mark.backends("tinydb", reason="API keys; the store plays no part")
def test_hub_writes_need_a_key_and_keys_do_not_leak(make_server, listener):
    service = make_server(env=KEYS)
    api = Client(service.url)
    hub = HUBS[0]
    assert_tmf_error(api.post(hub, json={"callback": listener.url}), 401)
    for wrong in ({"Authorization": "Bearer wrong-key-123"}, {"Authorization": "Bearer "},
                  {"Authorization": "Basic czNjcmV0LXdyaXRlcg=="}, {"X-API-Key": ""},
                  {"X-API-Key": "s3cret-writer "[:-2]}, {"Authorization": "s3cret-writer"}):
        response = api.post(hub, json={"callback": listener.url}, headers=wrong)
        body = assert_tmf_error(response, 401)
        assert "s3cret" not in response.text and "wrong-key" not in response.text, body
    # a key in the URL is not a key (URLs end up in access logs: SECURITY.md)
    assert_tmf_error(api.post(hub, params={"api_key": "s3cret-writer"},
                              json={"callback": listener.url}), 401)
    created = api.post(hub, json={"callback": listener.url},
                       headers={"Authorization": "bearer s3cret-other"})
    assert created.status_code == 201
    assert api.get(f"{hub}/{created.json()['id']}").status_code == 200   # reads stay open
    assert_tmf_error(api.delete(f"{hub}/{created.json()['id']}"), 401)
    assert api.delete(f"{hub}/{created.json()['id']}",
                      headers={"X-API-Key": "s3cret-writer"}).status_code == 204
    service.stop()
    # only the request line that carried a key in its URL shows it
    log = [line for line in service.log_path.read_text().splitlines() if "?api_key=" not in line]
    assert not [line for line in log if "s3cret" in line or "wrong-key-123" in line]


@pytest.mark.backends("tinydb", reason="the admin key check comes before any store access")
def test_rule_administration_needs_the_admin_key(make_server):
    """/admin/ takes only the admin keys once they are set: a writer's key is
    not enough (whatever routes exist there, the check comes first)."""
    service = make_server(env=KEYS)
    api = Client(service.url)
    for method in ("GET", "POST", "PUT", "DELETE"):
        for headers in ({}, {"Authorization": "Bearer s3cret-writer"}):
            assert_tmf_error(api.request(method, "/admin/rules/telco-demo/activate",
                                         headers=headers, json={}), 401)
        response = api.request(method, "/admin/rules/telco-demo/activate", json={},
                               headers={"Authorization": "Bearer s3cret-admin"})
        assert response.status_code != 401, response.text
    service.stop()
    assert "s3cret" not in service.log_path.read_text()


OPEN_LOOKALIKES = [
    "/health/../tmf-api/customerManagement/v4/customer",
    "/schemas/../tmf-api/customerManagement/v4/customer",
    "/docs/../tmf-api/customerManagement/v4/customer",
    "/openapi.json/../tmf-api/customerManagement/v4/customer",
    "/healthx/../tmf-api/customerManagement/v4/customer",
    "/health%2F..%2Ftmf-api/customerManagement/v4/customer",
]


@pytest.fixture(scope="module")
def protected_reads(tmp_path_factory):
    """One TinyDB server with an API key and protected reads for this
    module's tests of them (API keys: the store plays no part), which only
    send requests that must be refused or only read: a request wrongly let
    through would show as a customer more than its test saw before. Its
    tests are one xdist_group, so a parallel run starts it once."""
    service = ServiceProcess(tmp_path_factory.mktemp("protected-reads") / "data",
                             env={"RECO_API_KEYS": "k", "RECO_PROTECT_READS": "true"}).start()
    yield service
    service.stop()


@pytest.mark.xdist_group("protected-reads")
def test_open_paths_do_not_open_anything_else(protected_reads):
    """/health, /docs, /openapi.json and /schemas/ are open without a key;
    a path that merely starts like them reaches no protected operation."""
    service = protected_reads
    customers = Client(service.url).get(C, headers={"X-API-Key": "k"}).headers["X-Total-Count"]
    for target in OPEN_LOOKALIKES:
        for method in ("POST", "GET"):
            connection = http.client.HTTPConnection("127.0.0.1", service.port, timeout=10)
            connection.request(method, target, body=json.dumps(BODY),
                               headers={"Content-Type": "application/json"})
            response = connection.getresponse()
            body = json.loads(response.read())
            connection.close()
            assert response.status in (401, 404, 405), (method, target, response.status, body)
    listed = Client(service.url).get(C, headers={"X-API-Key": "k"})
    assert listed.headers["X-Total-Count"] == customers == "0"


@pytest.mark.xdist_group("protected-reads")
def test_protected_reads_cover_hubs_and_reports_but_not_health(protected_reads):
    api = Client(protected_reads.url)
    for path in (f"{HUBS[0]}/any", "/tmf-api/sales/v4/conversionReport",
                 Client.RECOMMENDATION + "/queryProductRecommendation"):
        assert_tmf_error(api.get(path), 401)
    for path in ("/health", "/health/ready", "/openapi.json",
                 "/schemas/ExplainedRecommendationItem.schema.json"):
        assert api.get(path).status_code == 200, path


def test_dns_rebinding_cannot_redirect_a_delivery(monkeypatch, tmp_path):
    """A DNS name allowed for the addresses it resolves to is delivered to
    exactly the address that was checked: an answer that changes between the
    check and the connection (DNS rebinding) does not lead elsewhere."""
    from app.config import Settings
    from app.events.bus import EventBus
    from app.store import open_store

    real_getaddrinfo = socket.getaddrinfo
    answers = iter(["127.0.0.1"])                  # the first answer only; then elsewhere

    def rebinding_getaddrinfo(host, *args, **kwargs):
        if host != "rebind.evil.test":
            return real_getaddrinfo(host, *args, **kwargs)
        address = next(answers, "10.255.255.1")    # nothing answers there
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, 0))]

    target = recorder(201)
    try:
        port = target.server_address[1]
        url = f"http://rebind.evil.test:{port}/listener"
        store = open_store(tmp_path / "data")
        bus = EventBus(store, Settings(data_dir=tmp_path / "data", event_timeout_seconds=2,
                                       callback_allowed_hosts=["127.0.0.0/8"]))
        entry = {"id": "e1", "hubId": "h1", "callback": url,
                 "notification": {"eventId": "x1", "eventType": "CustomerCreateEvent"}}
        monkeypatch.setattr(socket, "getaddrinfo", rebinding_getaddrinfo)
        assert bus.dispatcher.sender.attempt(entry) is None    # one attempt, answered 201
        assert [body["eventId"] for _, body in target.requests] == ["x1"]
        store.close()
    finally:
        target.shutdown()
        target.server_close()
