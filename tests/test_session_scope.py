"""The Rule Studio's signed-cookie session is opened only on /studio and the
admin API; the TMF APIs (keys in headers) never read or set it."""
from __future__ import annotations

import pytest
from flask.sessions import SecureCookieSessionInterface

from helpers import Client
from test_rules_admin_authoring import KEY, _studio_login, make_client, project  # noqa: F401

pytestmark = pytest.mark.backends("tinydb", reason="the session cookie is decided before any store access")

INSTANT = {"instantSyncRecommendation": True, "channel": [{"id": "21"}],
           "validFor": {"startDateTime": "2026-10-01T12:00:00Z"}}


@pytest.fixture
def opened(monkeypatch):
    """The paths of the requests whose session cookie was opened (read and verified)."""
    paths = []
    original = SecureCookieSessionInterface.open_session

    def spy(self, app, request):
        paths.append(request.path)
        return original(self, app, request)
    monkeypatch.setattr(SecureCookieSessionInterface, "open_session", spy)
    return paths


def test_only_the_studio_and_the_admin_api_open_the_session(project, opened):  # noqa: F811
    client = make_client(project, admin_keys=[KEY])
    _studio_login(client)                                  # the browser now sends the studio cookie
    assert client.get("/admin/rules/overview").status_code == 200      # the session is read there
    opened.clear()
    recommendation = Client.RECOMMENDATION + "/queryProductRecommendation"
    answer = client.post(recommendation, json=INSTANT)
    assert answer.status_code == 200 and "Set-Cookie" not in answer.headers
    assert "Cookie" not in answer.headers.get("Vary", "")
    assert client.get(Client.CUSTOMER + "/customer").status_code == 200
    assert client.get("/health").status_code == 200
    assert opened == []
    assert client.get("/admin/rules/overview").status_code == 200      # the studio login still works
    assert client.get("/studio/").status_code == 200
    assert opened == ["/admin/rules/overview", "/studio/"]
