"""Rule Studio sessions: a logout ends the session on the server, so a copy
of the cookie saved before it neither reads pages nor saves (with its old
CSRF token), on every worker and both stores; over HTTPS from a trusted proxy
the cookie is Secure; the login's `next` never leaves /studio."""
from __future__ import annotations

import re
import shutil

import pytest
import requests

from app import create_app
from helpers import DEMO_CATALOG, DEMO_RULES

KEY = "s3cret-admin"
COOKIE = "reco_studio"
PAGES = ("/studio/", "/studio/playground", "/studio/cases", "/studio/impact", "/studio/edit",
         "/studio/conversion", "/studio/activate?version=1.0.0")


def login(url: str, browser: requests.Session, headers: dict | None = None) -> str:
    """Log in as Ana; returns the CSRF token of the logged-in session."""
    page = browser.get(url + "/studio/login", headers=headers).text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    done = browser.post(url + "/studio/login", data={"csrf_token": token, "name": "Ana", "key": KEY,
                                                     "next": "/studio/"}, allow_redirects=False, headers=headers)
    assert done.status_code == 302, done.text
    page = browser.get(url + "/studio/").text
    return re.search(r'<meta name="csrf-token" content="([^"]+)"', page).group(1)


def test_a_cookie_saved_before_logout_neither_reads_nor_saves(make_server, tmp_path):
    rules = tmp_path / "rules"
    shutil.copytree(DEMO_RULES, rules)
    server = make_server(rules_dir=rules, workers=2, env={"RECO_ADMIN_KEYS": KEY})
    url = server.url
    browser = requests.Session()
    token = login(url, browser)
    saved = browser.cookies.get(COOKIE)
    thief = requests.Session()
    thief.cookies.set(COOKIE, saved)
    assert thief.get(url + "/studio/edit", allow_redirects=False).status_code == 200   # a copy works while logged in
    text = (rules / "telco-demo.yaml").read_text()
    changed = text.replace('version: "1.0.0"', 'version: "1.0.1"').replace("description:", "description: x", 1)

    out = browser.post(url + "/studio/logout", data={"csrf_token": token}, allow_redirects=False)
    assert out.status_code == 302
    for _ in range(4):                                  # every worker
        for path in PAGES:
            page = thief.get(url + path, allow_redirects=False)
            assert page.status_code == 302 and "/studio/login" in page.headers["Location"], (path, page.status_code)
        assert thief.get(url + "/admin/rules/overview").status_code == 401
    save = thief.put(url + "/admin/rules/telco-demo/working-copy", json={"text": changed},
                     headers={"X-CSRF-Token": token})
    assert save.status_code == 401 and save.json()["code"] == "UNAUTHORIZED"
    form = thief.post(url + "/studio/activate", data={"rulesetId": "telco-demo", "version": "1.0.0",
                                                      "csrf_token": token}, allow_redirects=False)
    assert form.status_code == 401
    assert (rules / "telco-demo.yaml").read_text() == text
    assert not (rules / "versions").exists()
    assert requests.get(url + "/admin/rules/activations", headers={"Authorization": f"Bearer {KEY}"}).json() == []

    again = requests.Session()                          # a new login works, and is a new session
    login(url, again)
    assert again.cookies.get(COOKIE) != saved
    assert thief.get(url + "/studio/edit", allow_redirects=False).status_code == 302


def set_cookie(response) -> str:
    return response.headers.get("Set-Cookie", "")


@pytest.mark.backends("tinydb", reason="the cookie's attributes; the store plays no part")
def test_the_cookie_is_secure_behind_a_trusted_https_proxy(make_server):
    server = make_server(env={"RECO_ADMIN_KEYS": KEY})
    https = {"X-Forwarded-Proto": "https"}
    page = requests.get(server.url + "/studio/login", headers=https)
    assert "Secure" in set_cookie(page) and "HttpOnly" in set_cookie(page), set_cookie(page)
    browser = requests.Session()
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    browser.cookies.set(COOKIE, page.cookies.get(COOKIE))
    done = browser.post(server.url + "/studio/login", headers=https, allow_redirects=False,
                        data={"csrf_token": token, "name": "Ana", "key": KEY})
    assert done.status_code == 302 and "Secure" in set_cookie(done), set_cookie(done)
    plain = requests.get(server.url + "/studio/login")            # plain HTTP (development): no Secure
    assert COOKIE in set_cookie(plain) and "Secure" not in set_cookie(plain)


@pytest.mark.backends("tinydb", reason="the cookie's attributes; the store plays no part")
def test_an_untrusted_proxy_cannot_claim_https(make_server):
    """Only a proxy gunicorn trusts (forwarded_allow_ips, FORWARDED_ALLOW_IPS;
    loopback by default) sets the scheme: from anyone else the header is ignored."""
    server = make_server(env={"RECO_ADMIN_KEYS": KEY, "FORWARDED_ALLOW_IPS": "192.0.2.1"})
    page = requests.get(server.url + "/studio/login", headers={"X-Forwarded-Proto": "https"})
    assert COOKIE in set_cookie(page) and "Secure" not in set_cookie(page)


@pytest.fixture
def client(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    app = create_app(data_dir=tmp_path / "data", rules_dir=DEMO_RULES, catalog_dir=DEMO_CATALOG,
                     background_workers=False, admin_keys=[KEY])
    return app.test_client()


@pytest.mark.parametrize("target", [
    "/studio/../admin", "/studio/../admin/rules", "/studio/%2e%2e/admin", "/studio/%2E%2E/admin",
    "/studio/.%2e/admin", "/studio/./../admin", "/studio\\..\\admin", "/studio/..\\admin", "/studiox",
    "/studio-evil", "//evil.example", "\\\\evil.example", "/\\evil.example", "https://evil.example/studio",
    "http:/evil.example", "//evil.example/studio", "javascript:alert(1)", "/studio/\t/../admin",
    "/studio/\r\nSet-Cookie:x=y", "studio", "",
])
def test_login_never_redirects_outside_the_studio(client, target):
    page = client.get("/studio/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    done = client.post("/studio/login", data={"csrf_token": token, "name": "Ana", "key": KEY, "next": target})
    assert done.status_code == 302 and done.headers["Location"] == "/studio/", done.headers["Location"]
    shown = client.get("/studio/login", query_string={"next": target}).get_data(as_text=True)
    assert re.search(r'name="next" value="/studio/"', shown), shown


@pytest.mark.parametrize("target", ["/studio", "/studio/edit?rulesetId=telco-demo", "/studio/activate?version=1.0.0"])
def test_login_goes_on_to_a_studio_page(client, target):
    page = client.get("/studio/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    done = client.post("/studio/login", data={"csrf_token": token, "name": "Ana", "key": KEY, "next": target})
    assert done.status_code == 302 and done.headers["Location"] == target


def test_a_login_ends_after_its_lifetime_and_is_then_removed(client, monkeypatch):
    """An absolute lifetime (app.sessions.MAX_AGE): a login nobody logged out
    of stops working, and the next login removes it from the store."""
    import datetime as dt

    from app import sessions

    page = client.get("/studio/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    client.post("/studio/login", data={"csrf_token": token, "name": "Ana", "key": KEY})
    assert client.get("/studio/edit").status_code == 200
    store = client.application.extensions["reco"].store
    assert len(store.all(sessions.COLLECTION)) == 1
    later = dt.datetime.now(dt.timezone.utc) + sessions.MAX_AGE + dt.timedelta(minutes=1)
    monkeypatch.setattr(sessions, "_now", lambda: later)
    assert client.get("/studio/edit").status_code == 302
    other = client.application.test_client()
    page = other.get("/studio/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    other.post("/studio/login", data={"csrf_token": token, "name": "Bo", "key": KEY})
    assert [doc["name"] for doc in store.all(sessions.COLLECTION)] == ["Bo"]
