"""app/auth.py without a server: which header carries a key, how keys are
compared and named, and the CSRF token of a studio session. The protection
of each API over HTTP is in test_auth.py."""
from __future__ import annotations

import pytest
from flask import Flask, session

from app.auth import (CSRF_HEADER, csrf_token, csrf_valid, key_fingerprint, key_matches,
                      presented_key)


@pytest.fixture
def app():
    app = Flask(__name__)
    app.secret_key = "test-only"
    return app


@pytest.mark.parametrize("headers, key", [
    ({"Authorization": "Bearer k1"}, "k1"),
    ({"Authorization": "bearer   k1  "}, "k1"),          # the scheme is case-insensitive (RFC 9110 11.1)
    ({"X-API-Key": "k2"}, "k2"),
    ({"Authorization": "Bearer k1", "X-API-Key": "k2"}, "k1"),
    ({"Authorization": "Basic dTpw"}, None),               # another scheme is no key
    ({}, None),
])
def test_presented_key(app, headers, key):
    with app.test_request_context("/", headers=headers):
        assert presented_key() == key


@pytest.mark.parametrize("presented, keys, matches", [
    ("k1", ["k0", "k1"], True),
    ("k1", ["k0"], False),
    ("k1", [], False),
    ("", ["", "k1"], False),          # an empty key never opens anything
    (None, ["k1"], False),
    ("k1 ", ["k1"], False),
    ("clé", ["clé"], True),           # keys are compared as UTF-8 bytes
])
def test_key_matches(presented, keys, matches):
    assert key_matches(presented, keys) is matches


def test_a_fingerprint_is_short_stable_and_not_the_key():
    assert key_fingerprint("secret") == key_fingerprint("secret")
    assert key_fingerprint("secret") != key_fingerprint("secreT")
    assert len(key_fingerprint("secret")) == 12 and "secret" not in key_fingerprint("secret")


def test_the_csrf_token_is_kept_per_session_and_checked(app):
    with app.test_request_context("/"):
        token = csrf_token()
        assert token and csrf_token() == token        # one token per session
    with app.test_request_context("/", headers={CSRF_HEADER: token}):
        session["csrf"] = token
        assert csrf_valid()
    with app.test_request_context("/", headers={CSRF_HEADER: token + "x"}):
        session["csrf"] = token
        assert not csrf_valid()
    with app.test_request_context("/", method="POST", data={"csrf_token": token}):
        session["csrf"] = token
        assert csrf_valid()                           # a form's hidden field
    with app.test_request_context("/", headers={CSRF_HEADER: token}):
        assert not csrf_valid()                       # no token in the session
