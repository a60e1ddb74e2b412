"""The settings that name an address or a folder are checked when read, like
every other RECO_* value: a bad one stops `gunicorn -c gunicorn.conf.py` (so
bin/serve, which runs it) and `flask` with one line naming the variable,
before gunicorn binds, a worker boots or a link is stored. Before, gunicorn
took `RECO_BIND=localhost` as localhost:8000, a bad store URL was a
traceback in every worker, and a bad base URL or callback entry was kept and
misused quietly."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from helpers import ROOT

from app.config import Settings, SettingsError


@pytest.mark.parametrize("variable, value, words", [
    ("RECO_BIND", "localhost", "HOST:PORT"),
    ("RECO_BIND", "1.2.3.4:99999", "port 99999 is not 0-65535"),
    ("RECO_BIND", ":abc", "HOST:PORT"),
    ("RECO_BIND", "   ", "HOST:PORT"),
    ("RECO_BIND", "[::zz]:8080", "not a listening address"),
    ("RECO_BIND", "http://127.0.0.1:8080", "HOST:PORT"),
    ("RECO_BIND", "unix:", "needs a path"),
    ("RECO_STORE_URL", "mysql://db/reco", "unsupported store URL scheme 'mysql'"),
    ("RECO_STORE_URL", "tinydb://", "has no path"),
    ("RECO_STORE_URL", "tinydb:///data?x=1", "query strings"),
    ("RECO_PUBLIC_BASE_URL", "reco.example.com", "absolute http(s) URL"),
    ("RECO_PUBLIC_BASE_URL", "https://reco.example.com/?a=1", "no query string"),
    ("RECO_PUBLIC_BASE_URL", "https://user:pw@reco.example.com", "no user name or password"),
    ("RECO_PUBLIC_BASE_URL", "https://reco.example.com:port", "not a URL"),
    ("RECO_CALLBACK_ALLOWED_HOSTS", "localhost,10.0.0.0/33", "'10.0.0.0/33' is not a host name"),
    ("RECO_CALLBACK_ALLOWED_HOSTS", "https://listener.example.com", "no scheme, port or path"),
    ("RECO_CALLBACK_ALLOWED_HOSTS", "listener.example.com:8080", "no scheme, port or path"),
])
def test_a_bad_address_is_an_error_naming_the_variable(variable, value, words):
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({variable: value})
    assert f"{variable}={value!r}" in str(caught.value) and words in str(caught.value)


@pytest.mark.parametrize("variable", ["RECO_DATA_DIR", "RECO_RULES_DIR", "RECO_CATALOG_DIR"])
def test_a_folder_setting_that_names_a_file_is_refused(variable, tmp_path):
    file = tmp_path / "a-file"
    file.write_text("not a folder")
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({variable: str(file)})
    assert f"{variable}={str(file)!r}" in str(caught.value) and "is a file, not a folder" in str(caught.value)


def test_good_addresses_are_kept(tmp_path):
    for bind in ("127.0.0.1:8080", "0.0.0.0:80", "[::1]:8080", "localhost:0", "reco.internal:8443",
                 "unix:/run/reco.sock"):
        assert Settings.from_env({"RECO_BIND": bind}).bind == bind
    settings = Settings.from_env({
        "RECO_STORE_URL": "postgresql://reco:change-me@127.0.0.1:5432/reco",
        "RECO_PUBLIC_BASE_URL": "https://reco.example.com/base/",
        "RECO_CALLBACK_ALLOWED_HOSTS": "*.example.com, listener.example.com,10.1.2.0/24,::1,localhost",
        "RECO_DATA_DIR": str(tmp_path / "not-yet")})
    assert settings.store_url.startswith("postgresql://") and settings.public_base_url.endswith("/base/")
    assert settings.callback_allowed_hosts == ["*.example.com", "listener.example.com", "10.1.2.0/24", "::1",
                                               "localhost"]
    # an empty variable is unset, as for every setting: the default address
    assert Settings.from_env({"RECO_BIND": ""}).bind == "127.0.0.1:8080"


@pytest.mark.parametrize("variable, value", [
    ("RECO_BIND", "localhost"),
    ("RECO_BIND", "1.2.3.4:99999"),
    ("RECO_STORE_URL", "mysql://db/reco"),
])
def test_gunicorn_refuses_to_start_on_a_bad_address_and_says_which(variable, value, tmp_path):
    env = {key: val for key, val in os.environ.items() if not key.startswith("RECO_")}
    env.update({"RECO_DATA_DIR": str(tmp_path), "RECO_BIND": "127.0.0.1:0", variable: value})
    done = subprocess.run([sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert f"{variable}={value!r}: " in done.stderr, done.stderr
    assert "Traceback" not in done.stderr and "Listening at" not in done.stderr
